"""A GAN on the 2-D mixture of 8 Gaussians (data.source=toy2d): trains in seconds on a CPU.

MLP generator and discriminator (3 x 128), non-saturating loss with R1 (gamma 0.1),
Adam (0.5, 0.99) at 1e-3 for both nets. The training metrics `modes_covered` (of 8) and
`high_quality` (fraction within 3 std of a mode) show mode coverage while it trains;
`--mode=eval` reports `high_quality` of EMA samples.

    python -m gen_jax.main --config=configs/gan/toy_eight_gaussians.py --workdir=runs/gan_8g
"""

from configs import common
from configs.gan import _gan


def get_config(arg=None):
  args = common.parse_arg(arg, smoke=False)
  c = _gan.gan_config(
      generator=dict(name="mlp_generator", hidden=(128, 128, 128), batch_norm=False),
      discriminator=dict(name="mlp_discriminator", hidden=(128, 128, 128),
                         spectral_norm=False, time_embed_dim=0),
      lr_g=1e-3, lr_d=1e-3, b1=0.5, b2=0.99, loss="non_saturating", z_dim=8)
  c.method.r1_gamma = 0.1
  c.data.source = "toy2d"
  c.data.name = "eight_gaussians"
  c.batch_size = 256
  c.num_train_steps = 2000
  c.ema.decay = 0.99
  _gan.toy_2d_run(c)
  if args.smoke:
    _gan.smoke_gan(c)
  c.lock()
  return c
