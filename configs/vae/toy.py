"""An MLP VAE with a Gaussian decoder on 2-D toy data (default: eight Gaussians).

Two latent dimensions, two hidden layers of 128 units on each side, per-dimension
decoder variances; Adam 1e-3, batch 512. Reports -ELBO and the IWAE bound in nats.

    python -m gen_jax.main --config=configs/vae/toy.py --workdir=runs/vae_toy
    python -m gen_jax.main --config=configs/vae/toy.py:dist=two_moons --workdir=runs/vae_moons
"""

from configs import common
from configs.vae import _vae


def get_config(arg=None):
  args = common.parse_arg(arg, smoke=False, dist="eight_gaussians")
  c = _vae.vae_config(dict(name="vae_mlp", latent_dim=2, encoder_features=(128, 128),
                           decoder_features=(128, 128)),
                      dict(name="gaussian", scale="pixel", min_log_scale=-5.0))
  c.data.source = "toy2d"
  c.data.name = args.dist
  c.batch_size = 512
  c.num_train_steps = 5000
  c.optim.learning_rate = 1e-3
  c.optim.schedule = "cosine"
  c.ema.decay = 0.99
  c.trainer.log_every_steps = 500
  c.trainer.checkpoint_every_steps = 2500
  c.trainer.sample_every_steps = 2500
  c.trainer.eval_every_steps = 2500
  c.sample.num_samples = 2048
  c.sample.batch_size = 2048
  c.sample.grid_size = 2048
  c.sample.decode = "sample"  # a scatter of decoder means would hide the decoder's noise
  if args.smoke:
    _vae.smoke_vae(c)
  c.lock()
  return c
