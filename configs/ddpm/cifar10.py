"""DDPM on CIFAR-10 with the paper's settings (Ho et al. 2020, Appendix B).

35.7M-parameter UNet (ch 128, mult (1,2,2,2), 2 blocks, attention at 16x16, dropout 0.1),
T = 1000 linear betas 1e-4..0.02, Adam 2e-4 with 5000 warm-up steps, gradient clipping at
1.0, batch 128, EMA 0.9999, random horizontal flips, 800k steps on the 8-bit images as they
are (no dequantization), ancestral sampling over the 1000 steps with variance beta_t
("fixedlarge") (FID 3.17 reported); all as in the official code (diffusion_tf,
scripts/run_cifar.py). `--config.sample.sampler=ddim` samples in 50 steps instead.
This is also `configs/score_sde/cifar10.py:variant=vp_ddpm`, the SDE paper's DDPM baseline.

    python -m gen_jax.main --config=configs/ddpm/cifar10.py --workdir=runs/ddpm_cifar10
    python -m gen_jax.main --config=configs/ddpm/cifar10.py:smoke --workdir=/tmp/smoke
"""

from configs import common
from configs.ddpm import _ddpm


def get_config(arg=None):
  args = common.parse_arg(arg, smoke=False)
  c = _ddpm.ddpm_config(image_size=32, ch=128, ch_mult=(1, 2, 2, 2), num_res_blocks=2,
                        attn_resolutions=(16,), dropout=0.1)
  c.data.source = "tfds"
  c.data.name = "cifar10"
  c.data.split = "train"
  c.data.eval_split = "test"
  c.data.random_flip = True
  c.batch_size = 128
  c.num_train_steps = 800_000
  c.optim.learning_rate = 2e-4
  c.optim.warmup_steps = 5000
  c.optim.grad_clip_norm = 1.0
  c.ema.decay = 0.9999
  c.sample.sampler = "ancestral"  # with sample.ancestral.variance = fixed_large (_ddpm.py)
  if args.smoke:
    _ddpm.smoke_ddpm(c)
    c.model.attn_resolutions = (16,)
  c.lock()
  return c
