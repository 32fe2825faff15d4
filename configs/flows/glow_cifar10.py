"""Glow on CIFAR-10 (Kingma & Dhariwal 2018, Table 4 / released code): 3.35 bits/dim.

3 levels of 32 steps (actnorm, LU 1x1 conv, affine coupling with a 512-channel CNN), learned
split and top priors, Adamax 1e-3 with a linear warm-up over 10 epochs (the code's
epochs_warmup; 10 x 50,000 / 64 steps), batch 64, 8-bit data, Polyak (EMA) averaging, no
gradient clipping.

    python -m gen_jax.main --config=configs/flows/glow_cifar10.py --workdir=runs/glow_cifar10
    python -m gen_jax.main --config=configs/flows/glow_cifar10.py --workdir=runs/glow_cifar10 \\
        --mode=sample --config.sample.temperature=0.7
"""

from configs import common
from configs.flows import _flows


def get_config(arg=None):
  args = common.parse_arg(arg, smoke=False)
  c = _flows.flow_config(dict(name="glow", num_levels=3, depth=32, width=512, coupling="affine",
                            permutation="lu", learn_top=True, learned_split_prior=True,
                            remat=False, scan_blocks=True))
  c.data.source = "tfds"
  c.data.name = "cifar10"
  c.batch_size = 64
  c.num_train_steps = 1_000_000
  c.optim.name = "adamax"
  c.optim.learning_rate = 1e-3
  c.optim.warmup_steps = 7800
  c.optim.grad_clip_norm = 0.0
  c.trainer.eval_every_steps = 10_000
  if args.smoke:
    _flows.smoke_flow(c)
  c.lock()
  return c
