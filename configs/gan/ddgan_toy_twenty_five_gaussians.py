"""A denoising diffusion GAN (T = 4) on the 2-D grid of 25 Gaussians: minutes on a CPU.

configs/gan/ddgan_toy_eight_gaussians.py with the settings that learn the grid (issue 10,
bug 6): one generator MLP and one discriminator MLP per denoising step (`per_step=4`:
the pairs of the noisy steps no longer keep a shared discriminator flat), the
discriminator's condition x_t entering through a zero-initialised kernel
(`zero_init_condition`: it starts as a GAN discriminator on x_{t-1} and learns the
dependence on x_t), ReLU generators fed concat(x_t, z) (no latent mapping network), and
Adam (0.5, 0.99) at 2e-3 for both nets. The rest is the 8-Gaussian config's: the paper's
VP schedule with 4 steps, non-saturating loss, R1 gamma 0.1 on every step, x0 bounded by
3 tanh(h / 3), EMA 0.99, batch 256.

Measured (seed 0, 6000 steps, 2,000 EMA samples, experiments/bench/gan_mixture_coverage.py):
25/25 modes, high-quality fraction 0.698 (the 8-Gaussian config on this grid: ~0.07; the
plain GAN: 0.82); tests/gan/test_gan_method.py::test_training_covers_all_twenty_five_modes
checks 25/25 and > 0.25 (experiments/bench/gan_mixture_coverage_cpu.md).
The official code (github NVlabs/denoising-diffusion-gan) has no 2-D configuration or
networks. Against its CIFAR-10 command (readme.md, train_ddgan.py) this config deviates in:
* networks: MLPs, one G and one D per step, where the reference shares one NCSN++
  generator (z by adaptive group norm) and one time-embedded ResNet discriminator across
  t; D's condition x_t zero-initialised (the reference zero-initialises its blocks'
  second convolution, after the time embedding, instead); ReLU, no z mapping network;
* optimiser: Adam (0.5, 0.99) at 2e-3 for G and D, constant (reference: (0.5, 0.9),
  lr_g 1.6e-4, lr_d 1.25e-4, cosine annealing per epoch to 1e-5);
* R1: gamma 0.1 on every step (reference: 0.02 every lazy_reg = 15 steps);
* z_dim 8 (nz 100), EMA 0.99 (0.9999), batch 256 (64 on each of 4 GPUs), x0 bounded by
  3 tanh(h / 3) (tanh);
* the same: T = 4, the VP schedule (beta_min 0.1, beta_max 20), non-saturating loss,
  posterior sampling, the D / G steps (gen_jax/methods/ddgan.py lists the method's own
  deviations).

    python -m gen_jax.main --config=configs/gan/ddgan_toy_twenty_five_gaussians.py \
        --workdir=runs/ddgan_25g
"""

from configs import common
from configs.gan import _gan

NUM_TIMESTEPS = 4


def get_config(arg=None):
  args = common.parse_arg(arg, smoke=False)
  c = _gan.ddgan_config(
      generator=dict(name="ddgan_mlp", hidden=(128, 128, 128), z_dim=8, output_bound=3.0,
                     per_step=NUM_TIMESTEPS, activation="relu", z_mapping=False),
      discriminator=dict(name="mlp_discriminator", hidden=(128, 128, 128), time_embed_dim=0,
                         per_step=NUM_TIMESTEPS, zero_init_condition=True),
      lr_g=2e-3, lr_d=2e-3, b1=0.5, b2=0.99, num_timesteps=NUM_TIMESTEPS, z_dim=8,
      r1_gamma=0.1, r1_every=1)
  c.data.source = "toy2d"
  c.data.name = "twenty_five_gaussians"
  c.batch_size = 256
  c.num_train_steps = 6000
  c.ema.decay = 0.99
  _gan.toy_2d_run(c)
  if args.smoke:
    _gan.smoke_gan(c)
  c.lock()
  return c
