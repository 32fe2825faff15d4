"""A convolutional VAE on CIFAR-10 (32x32x3) with a discretized logistic mixture decoder.

8-bit data on the grid (no dequantization); the channel-conditional mixture of PixelCNN++
with 5 components per pixel, so the ELBO is a bound on a proper probability mass and its
bits/dim are comparable with other likelihood models (a single-latent-vector VAE is far
from the state of the art, ~4.5-5 bits/dim). Latent of 128 dimensions, encoder 32 -> 16
-> 8 -> 4 (widths 64, 128, 256).

    python -m gen_jax.main --config=configs/vae/cifar10.py --workdir=runs/vae_cifar10
"""

from configs import common
from configs.vae import _vae


def get_config(arg=None):
  args = common.parse_arg(arg, smoke=False)
  c = _vae.vae_config(dict(name="vae_conv", latent_dim=128, channels=(64, 128, 256),
                           hidden=1024),
                      dict(name="logistic_mixture", num_mix=5))
  c.data.source = "tfds"
  c.data.name = "cifar10"
  c.data.random_flip = True
  c.batch_size = 128
  c.num_train_steps = 200_000
  c.optim.learning_rate = 5e-4
  c.optim.schedule = "cosine"
  c.optim.warmup_steps = 1000
  c.trainer.eval_every_steps = 20_000
  if args.smoke:
    _vae.smoke_vae(c)
    c.model.channels = (8, 16, 16)
    c.method.likelihood.num_mix = 2
  c.lock()
  return c
