"""The StyleGAN2-ADA part shared by configs/gan/stylegan2_*.py (method "stylegan2").

`stylegan2_config` takes the settings of one of the official code's configurations
(NVlabs/stylegan2-ada-pytorch, train.py `cfg_specs`) and turns their units into gen_jax's:
  total_kimg      -> num_train_steps = kimg * 1000 // batch
  ema_kimg        -> ema.decay = 0.5 ** (batch / (ema_kimg * 1000)) per step (the
                     official per-iteration beta); ema_rampup set -> ema.warmup = True
  lrate, betas    -> optim_g / optim_d (Adam, betas (0, 0.99), eps 1e-8), before the lazy
                     mb_ratio adjustment done by the method's builder
  gamma, map, mbstd, fmaps -> method.r1_gamma, mapping_layers, mbstd_group_size,
                     channel_base = fmaps * 32768
Lazy periods: G_reg_interval 4 (path length), D_reg_interval 16 (R1). ADA: target 0.6,
interval 4, kimg 500, pipeline "bgc".
"""

from __future__ import annotations

import ml_collections

from configs import common
from configs.gan import _gan


def ema_decay(batch: int, ema_kimg: float) -> float:
  """The official per-iteration G EMA beta 0.5 ** (batch / (ema_kimg * 1000))."""
  return 0.5 ** (batch / (ema_kimg * 1000.0))


def stylegan2_config(*, generator: dict, discriminator: dict, lr: float, gamma: float,
                     batch: int, kimg: float, ema_kimg: float, ema_rampup: bool,
                     z_dim: int = 512, pl_weight: float = 2.0, style_mixing_prob: float = 0.9,
                     ada: bool = True, class_conditional: bool = False
                     ) -> ml_collections.ConfigDict:
  """A base config with the "stylegan2" method filled in (see the module docstring)."""
  c = _gan.gan_config(generator=generator, discriminator=discriminator, lr_g=lr, lr_d=lr,
                      b1=0.0, b2=0.99, loss="non_saturating", z_dim=z_dim)
  c.method = ml_collections.ConfigDict(dict(
      name="stylegan2",
      z_dim=z_dim,
      class_conditional=class_conditional,
      r1_gamma=gamma,  # enters as gamma / 2 * R1
      r1_every=16,  # D_reg_interval
      pl_weight=pl_weight,  # 0 disables path length regularisation
      pl_every=4,  # G_reg_interval
      pl_decay=0.01,
      pl_batch_shrink=2,
      style_mixing_prob=style_mixing_prob,
      truncation=1.0,  # default psi of sampling (a SampleSpec's truncation overrides it)
      ada=ml_collections.ConfigDict(dict(
          enabled=ada, pipe="bgc", initial_p=0.0,
          adaptive=True,  # False: fixed p = initial_p ("--aug=fixed")
          target=0.6, interval=4, kimg=500.0)),
  ))
  c.optim.eps = 1e-8
  c.batch_size = batch
  c.num_train_steps = int(kimg * 1000) // batch
  c.ema.decay = ema_decay(batch, ema_kimg)
  c.ema.warmup = ema_rampup
  return c


def smoke_stylegan2(c: ml_collections.ConfigDict, resolution: int = 16) -> ml_collections.ConfigDict:
  """common.smoke plus tiny networks (batch 8, mbstd groups of 4)."""
  common.smoke(c)
  g, d = c.model.generator, c.model.discriminator
  c.method.z_dim = g.z_dim = 8
  g.w_dim = 8
  g.mapping_layers = 2
  if "channel_base" in g:
    g.channel_base = d.channel_base = 8 * resolution
    g.channel_max = d.channel_max = 8
    d.mapping_layers = 1
  else:
    g.hidden = 16
    d.hidden = (16, 16)
  d.mbstd_group_size = 4
  c.method.r1_every = 2
  c.method.pl_every = 2
  c.method.ada.interval = 2
  return c
