"""Latent diffusion's first stage on CIFAR-10: f = 4 (32x32x3 -> 8x8x3, the official
f=4 KL model's z_channels = 3) or `:f=8` (-> 4x4x4), KL weight 1e-6.

    python -m gen_jax.main --config=configs/latent_diffusion/autoencoder_cifar10.py \
        --workdir=runs/ldm_cifar10_autoencoder
"""

from configs import common
from configs.latent_diffusion import _first_stage


def get_config(arg=None):
  args = common.parse_arg(arg, smoke=False, f=4)
  if args.f not in (4, 8):
    raise ValueError(f"The downsampling factor f must be 4 or 8, got {args.f}.")
  ch_mult, z_channels = ((1, 2, 4), 3) if args.f == 4 else ((1, 2, 4, 4), 4)
  c = _first_stage.first_stage_config(ch=64, ch_mult=ch_mult, z_channels=z_channels)
  c.data.source = "tfds"
  c.data.name = "cifar10"
  c.data.random_flip = True
  c.batch_size = 64
  c.num_train_steps = 100_000
  if args.smoke:
    _first_stage.smoke_first_stage(c)
  c.lock()
  return c
