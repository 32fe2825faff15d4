"""Latent diffusion on CIFAR-10: DDPM (linear chain of 1000 steps, eps, L_simple, DDIM 50
steps) in the 8x8x3 latents of configs/latent_diffusion/autoencoder_cifar10.py (f = 4).

    python -m gen_jax.main --config=configs/latent_diffusion/autoencoder_cifar10.py \
        --workdir=runs/ldm_cifar10_autoencoder
    python -m gen_jax.main --config=configs/latent_diffusion/cifar10.py \
        --workdir=runs/ldm_cifar10 \
        --config.latent.autoencoder_workdir=runs/ldm_cifar10_autoencoder

A three-level UNet (8, 4, 2) with attention at 4x4. `:f=8` pairs with the first stage's
`:f=8` (4x4x4 latents, two levels). The ':smoke' variant is the second stage of the first
stage's ':smoke' variant (f = 2: 16x16x3 latents).
"""

from configs import common
from configs.ddpm import _ddpm
from configs.latent_diffusion import _latent


def get_config(arg=None):
  args = common.parse_arg(arg, smoke=False, f=4)
  if args.f not in (4, 8):
    raise ValueError(f"The downsampling factor f must be 4 or 8, got {args.f}.")
  if args.f == 4:
    c = _ddpm.ddpm_config(image_size=8, ch=128, ch_mult=(1, 2, 2), num_res_blocks=2,
                          attn_resolutions=(4,), dropout=0.1)
    latent_shape = (8, 8, 3)
  else:
    c = _ddpm.ddpm_config(image_size=4, ch=128, ch_mult=(1, 2), num_res_blocks=2,
                          attn_resolutions=(2,), dropout=0.1)
    latent_shape = (4, 4, 4)
  c.data.source = "tfds"
  c.data.name = "cifar10"
  c.data.random_flip = True
  c.batch_size = 128
  c.num_train_steps = 200_000
  c.optim.learning_rate = 2e-4
  c.optim.warmup_steps = 1000
  if args.smoke:
    _ddpm.smoke_ddpm(c)
    latent_shape = (16, 16, 3)
  _latent.latent_config(c, autoencoder_config="configs/latent_diffusion/autoencoder_cifar10.py",
                        latent_shape=latent_shape)
  c.lock()
  return c
