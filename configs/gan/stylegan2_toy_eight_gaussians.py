"""StyleGAN2-style GAN on the 2-D mixture of 8 Gaussians (data.source=toy2d), for mode
coverage: seconds to minutes on a CPU.

The StyleGAN2 machinery on vectors: mapping network (4 layers, lr multiplier 0.01,
tracked w_avg), 3 modulated/demodulated dense layers with noise inputs and skip outputs
(stylegan2_mlp_generator), an equalised-lr MLP discriminator with minibatch std; the
non-saturating loss, style mixing 0.9, path length regularisation (weight 2 every 4
steps) and lazy R1 (gamma 0.1 every 16 steps) with the official mb_ratio adjustment; Adam
with betas (0, 0.99). No ADA (vectors). The official code has no 2-D configuration:
widths, learning rate and gamma are gen_jax's. Metrics `modes_covered` and
`high_quality` show mode coverage while it trains. Not yet tuned: after 1000 steps it
covers all 8 modes but only 0.037 of its samples are of high quality (the plain toy GAN:
8 modes / 0.40), measured by tests/gan/test_gan_method.py's coverage protocol (seed 0;
experiments/bench/gan_mixture_coverage_cpu.md), where the quality bar is an xfail.

    python -m gen_jax.main --config=configs/gan/stylegan2_toy_eight_gaussians.py \
        --workdir=runs/sg2_8g
"""

from configs import common
from configs.gan import _gan, _stylegan2


def get_config(arg=None):
  args = common.parse_arg(arg, smoke=False)
  c = _stylegan2.stylegan2_config(
      generator=dict(name="stylegan2_mlp_generator", z_dim=32, w_dim=64, mapping_layers=4,
                     hidden=128, num_layers=3),
      discriminator=dict(name="stylegan2_mlp_discriminator", hidden=(128, 128, 128),
                         mbstd_group_size=4),
      lr=2e-3, gamma=0.1, batch=256, kimg=512, ema_kimg=20.0, ema_rampup=False,
      z_dim=32, ada=False)
  c.data.source = "toy2d"
  c.data.name = "eight_gaussians"
  _gan.toy_2d_run(c)
  if args.smoke:
    _stylegan2.smoke_stylegan2(c)
  c.lock()
  return c
