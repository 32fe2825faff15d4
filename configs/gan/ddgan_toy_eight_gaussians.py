"""A denoising diffusion GAN (T = 4) on the 2-D mixture of 8 Gaussians: seconds on a CPU.

MLP generator x0 = G(x_t, t, z) and time-conditioned MLP discriminator D(x_{t-1}, x_t, t),
the paper's VP schedule with 4 steps, non-saturating loss with R1 (gamma 0.1, every step).
The generator's x0 prediction is bounded by 3 tanh(h / 3) (the reference's final tanh,
scaled to the mixtures' range). The official code has no 2-D configuration: these settings
are gen_jax's. On --config.data.name=twenty_five_gaussians it stalls at ~7% high-quality
samples (its time-conditioned MLP discriminator, shared by all t, never resolves the final
step's modes); configs/gan/ddgan_toy_twenty_five_gaussians.py has the settings that learn
the grid (gen_jax/methods/ddgan.py, experiments/bench/gan_mixture_coverage_cpu.md).

    python -m gen_jax.main --config=configs/gan/ddgan_toy_eight_gaussians.py --workdir=runs/ddgan_8g
"""

from configs import common
from configs.gan import _gan


def get_config(arg=None):
  args = common.parse_arg(arg, smoke=False)
  c = _gan.ddgan_config(
      generator=dict(name="ddgan_mlp", hidden=(128, 128, 128), z_dim=8, embed_dim=64,
                     output_bound=3.0),
      discriminator=dict(name="mlp_discriminator", hidden=(128, 128, 128), time_embed_dim=64),
      lr_g=1e-3, lr_d=1e-3, b1=0.5, b2=0.99, num_timesteps=4, z_dim=8,
      r1_gamma=0.1, r1_every=1)
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
