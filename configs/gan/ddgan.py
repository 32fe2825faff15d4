"""Denoising diffusion GAN on CIFAR-10 with Xiao et al.'s settings (ICLR 2022, FID 3.75).

T = 4 denoising steps of the VP schedule (beta_min 0.1, beta_max 20); an x0-predicting
UNet generator (128 channels, multipliers (1, 2, 2, 2), 2 blocks per level, attention at
16x16) conditioned on t and a 100-d latent through a 4-layer mapping network (the paper
uses NCSN++ with adaptive group norm; here the latent joins the time embedding), ending
with tanh like the reference's; a time-conditioned ResNet discriminator on [x_{t-1}, x_t].
Non-saturating loss, lazy R1 gamma = 0.02 every 15 steps with weight gamma / 2 (the
reference's --lazy_reg 15, not multiplied by 15: method.r1_lazy_scaling="none"), Adam
lr_g 1.6e-4 / lr_d 1.25e-4 with betas (0.5, 0.9) and
cosine decay, EMA 0.9999, batch 256 (64 on each of 4 GPUs), 1800 epochs (~352k steps).

    python -m gen_jax.main --config=configs/gan/ddgan.py --workdir=runs/ddgan_cifar10
"""

from configs import common
from configs.gan import _cifar10, _gan


def get_config(arg=None):
  args = common.parse_arg(arg, smoke=False)
  c = _gan.ddgan_config(
      generator=dict(name="ddgan_unet", ch=128, ch_mult=(1, 2, 2, 2), num_res_blocks=2,
                     attn_resolutions=(16,), dropout=0.0, z_dim=100, n_mlp=4, num_groups=32,
                     mid_attention=True, output_bound=1.0),
      discriminator=dict(name="sngan_discriminator", ch=128, down=(True, True, True, False),
                         spectral_norm=False, time_embed_dim=128),
      lr_g=1.6e-4, lr_d=1.25e-4, b1=0.5, b2=0.9, num_timesteps=4, z_dim=100,
      r1_gamma=0.02, r1_every=15)
  _cifar10.cifar10_data(c)
  c.data.random_flip = True
  c.batch_size = 256
  c.num_train_steps = 352_000
  c.optim.schedule = "cosine"
  c.ema.decay = 0.9999
  if args.smoke:
    _gan.smoke_gan(c)
  c.lock()
  return c
