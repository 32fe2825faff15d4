"""BigGAN's recipe on the 2-D mixture of 8 Gaussians (data.source=toy2d), for mode coverage.

BigGAN's pieces at toy scale: an MLP generator (`biggan_mlp_generator`, 3 x 128) whose
batch norms are conditioned on hierarchical latents (z 16 = 4 chunks of 4), spectral norm
in G and D (SN MLP discriminator 3 x 128), orthogonal initialisation and regularisation
(1e-4), hinge loss, Adam with betas (0, 0.999), two D steps of 128 points per G step, G
EMA (decay 0.99, from step 100) sampled with standing statistics (16 batches of 256), and
sample.truncation available at sampling time. Learning rates are raised to 1e-3 for both
so that it learns in ~1000 steps on a CPU; the argument `lr` sets both (the 25-Gaussian
grid wants lr=5e-4: after 6000 steps 25/25 modes with 0.51 high quality against 0.24 at
1e-3, seed 0, experiments/bench/gan_mixture_coverage_cpu.md). Training logs `modes_covered` (of 8) and
`high_quality`. Measured (seed 0, 1000 steps, 2,000 EMA samples, the coverage test of
tests/gan/test_gan_method.py): 8/8 modes, high-quality fraction 0.44 with standing
statistics against 0.39 with the raw generator's running statistics.

    python -m gen_jax.main --config=configs/gan/biggan_toy_eight_gaussians.py \
        --workdir=runs/biggan_8g
    python -m gen_jax.main --config=configs/gan/biggan_toy_eight_gaussians.py:lr=5e-4 \
        --config.data.name=twenty_five_gaussians --config.num_train_steps=6000 \
        --workdir=runs/biggan_25g
"""

from configs import common
from configs.gan import _gan


def get_config(arg=None):
  args = common.parse_arg(arg, smoke=False, lr=1e-3)
  c = _gan.gan_config(
      generator=dict(name="biggan_mlp_generator", hidden=(128, 128, 128), shared_dim=0,
                     hierarchical=True, spectral_norm=True, weight_init="ortho"),
      discriminator=dict(name="mlp_discriminator", hidden=(128, 128, 128),
                         spectral_norm=True, time_embed_dim=0),
      lr_g=float(args.lr), lr_d=float(args.lr), b1=0.0, b2=0.999, loss="hinge", n_dis=2, z_dim=16)
  c.method.ortho_weight = 1e-4
  c.method.standing_stats = 16
  c.method.standing_batch_size = 256
  c.data.source = "toy2d"
  c.data.name = "eight_gaussians"
  c.batch_size = 2 * 128
  c.num_train_steps = 2000
  c.ema.decay = 0.99
  c.ema.start = 100
  _gan.toy_2d_run(c)
  if args.smoke:
    _gan.smoke_gan(c)
    c.method.z_dim = 9  # hidden (16, 16): 3 chunks
    c.method.standing_stats = 2
    c.method.standing_batch_size = 8
    c.ema.start = 2
  c.lock()
  return c
