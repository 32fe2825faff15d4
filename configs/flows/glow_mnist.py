"""Glow on MNIST (28x28x1): 2 levels (28 -> 14 -> 7) of 32 steps, width 512.

Adamax 1e-3 with 2,000 warm-up steps, batch 64, 8-bit data. Glow is reported at 1.05
bits/dim on MNIST.

    python -m gen_jax.main --config=configs/flows/glow_mnist.py --workdir=runs/glow_mnist
"""

from configs import common
from configs.flows import _flows


def get_config(arg=None):
  args = common.parse_arg(arg, smoke=False)
  c = _flows.flow_config(dict(name="glow", num_levels=2, depth=32, width=512, coupling="affine",
                            permutation="lu", learn_top=True, learned_split_prior=True,
                            scan_blocks=True))
  c.data.source = "tfds"
  c.data.name = "mnist"
  c.batch_size = 64
  c.num_train_steps = 200_000
  c.optim.name = "adamax"
  c.optim.learning_rate = 1e-3
  c.optim.warmup_steps = 2000
  c.optim.grad_clip_norm = 0.0
  c.trainer.eval_every_steps = 10_000
  if args.smoke:
    _flows.smoke_flow(c)
  c.lock()
  return c
