"""Latent diffusion on MNIST: DDPM (linear chain of 1000 steps, eps, L_simple, DDIM 50
steps) in the 7x7x4 latents of configs/latent_diffusion/autoencoder_mnist.py (f = 4).

    python -m gen_jax.main --config=configs/latent_diffusion/autoencoder_mnist.py \
        --workdir=runs/ldm_mnist_autoencoder
    python -m gen_jax.main --config=configs/latent_diffusion/mnist.py --workdir=runs/ldm_mnist \
        --config.latent.autoencoder_workdir=runs/ldm_mnist_autoencoder

A one-level UNet (7x7 cannot be halved) with attention at 7x7. The ':smoke' variant is the
second stage of the first stage's ':smoke' variant (f = 2: 14x14x4 latents).
"""

from configs import common
from configs.ddpm import _ddpm
from configs.latent_diffusion import _latent


def get_config(arg=None):
  args = common.parse_arg(arg, smoke=False)
  c = _ddpm.ddpm_config(image_size=7, ch=64, ch_mult=(1,), num_res_blocks=2,
                        attn_resolutions=(7,), dropout=0.1)
  c.data.source = "tfds"
  c.data.name = "mnist"
  c.batch_size = 128
  c.num_train_steps = 50_000
  c.optim.learning_rate = 2e-4
  c.optim.warmup_steps = 1000
  c.ema.decay = 0.9995
  latent_shape = (7, 7, 4)
  if args.smoke:
    _ddpm.smoke_ddpm(c)
    latent_shape = (14, 14, 4)
  _latent.latent_config(c, autoencoder_config="configs/latent_diffusion/autoencoder_mnist.py",
                        latent_shape=latent_shape)
  c.lock()
  return c
