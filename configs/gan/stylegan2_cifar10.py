"""StyleGAN2-ADA on CIFAR-10 with the official "cifar" configuration (Karras et al. 2020).

NVlabs/stylegan2-ada-pytorch `train.py --cfg=cifar --cond=1 --aug=ada`: class-conditional,
2-layer mapping network, 512 channels at every resolution (fmaps 1), "orig" discriminator
(no residual connections), minibatch-std groups of 32, no path length regularisation and
no style mixing, R1 gamma 0.01 every 16 steps, Adam 0.0025 with betas (0, 0.99) for both
nets (times the lazy mb_ratio), batch 64, 100,000 kimg (1,562,500 steps), G EMA half-life
500 kimg with ramp-up, ADA "bgc" with target 0.6. The paper reports FID 2.42 for it.
`:cond=False` trains it unconditionally; `:smoke` is a tiny network for the tests.

    python -m gen_jax.main --config=configs/gan/stylegan2_cifar10.py --workdir=runs/sg2_cifar
"""

from configs import common
from configs.gan import _cifar10, _stylegan2


def get_config(arg=None):
  args = common.parse_arg(arg, smoke=False, cond=True)
  c = _stylegan2.stylegan2_config(
      generator=dict(name="stylegan2_generator", z_dim=512, w_dim=512, mapping_layers=2,
                     channel_base=32768, channel_max=512, conv_clamp=256.0),
      discriminator=dict(name="stylegan2_discriminator", architecture="orig",
                         channel_base=32768, channel_max=512, mbstd_group_size=32,
                         conv_clamp=256.0),
      lr=0.0025, gamma=0.01, batch=64, kimg=100_000, ema_kimg=500.0, ema_rampup=True,
      pl_weight=0.0, style_mixing_prob=0.0, ada=True, class_conditional=args.cond)
  _cifar10.cifar10_data(c)
  if args.smoke:
    _stylegan2.smoke_stylegan2(c, resolution=32)
  c.lock()
  return c
