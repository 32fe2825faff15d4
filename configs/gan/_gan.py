"""The GAN part shared by the configs in this folder (methods "gan" and "ddgan").

A GAN config has two networks, `model.generator` and `model.discriminator` (a name in
`gen_jax.nets.NETS` and its keyword arguments), and one optimiser per network (TTUR):
`optim_g` and `optim_d` hold each network's `learning_rate`, `b1` and `b2`; the other
optimiser fields (name, schedule, warmup_steps, eps, grad_clip_norm, ...) are shared and
live in `optim`, whose own learning_rate/b1/b2 are removed so that setting them is an
error rather than a silent no-op.
"""

from __future__ import annotations

import ml_collections
from ml_collections import config_dict

from configs import common


def _optim(lr: float, b1: float, b2: float) -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict(dict(learning_rate=lr, b1=b1, b2=b2))


def gan_config(*, generator: dict, discriminator: dict, lr_g: float, lr_d: float,
               b1: float, b2: float, loss: str, n_dis: int = 1,
               z_dim: int = 128) -> ml_collections.ConfigDict:
  """A base config with the "gan" method filled in."""
  c = common.base_config()
  for field in ("learning_rate", "b1", "b2"):
    del c.optim[field]
  c.optim.grad_clip_norm = 0.0  # GAN papers do not clip
  c.optim_g = _optim(lr_g, b1, b2)
  c.optim_d = _optim(lr_d, b1, b2)
  c.model = ml_collections.ConfigDict(dict(
      generator=ml_collections.ConfigDict(generator),
      discriminator=ml_collections.ConfigDict(discriminator)))
  c.method = ml_collections.ConfigDict(dict(
      name="gan",
      loss=loss,  # minimax | non_saturating | hinge | wasserstein | least_squares
      n_dis=n_dis,  # discriminator steps per generator step (each on batch_size / n_dis)
      z_dim=z_dim,
      gp_weight=0.0,  # WGAN-GP lambda
      r1_gamma=0.0,  # R1 gamma (enters as gamma / 2 * R1)
      r1_every=1,  # lazy R1 every k discriminator steps
      r1_lazy_scaling="stylegan2",  # its weight there: k gamma / 2 ("none": gamma / 2)
      lecam_weight=0.0,
      lecam_decay=0.99,
      diffaugment="",  # e.g. "color,translation,cutout"
      class_conditional=False,
      ortho_weight=0.0,  # BigGAN's orthogonal regularisation of G (official G_ortho; 1e-4)
      standing_stats=0,  # batches of BigGAN's standing statistics for the EMA G (0: off)
      standing_batch_size=0,  # latents per standing batch (0: batch_size / n_dis)
      diffusion=ml_collections.ConfigDict(dict(  # Diffusion-GAN (Wang et al.)
          enabled=False, t_min=10, t_max=1000, beta_start=1e-4, beta_end=2e-2,
          noise_std=0.05, target=0.6, interval=4, kimg=100.0, ts_dist="priority")),
  ))
  c.sample.sampler = "generator"  # one forward pass of the EMA generator
  c.sample.clip_x0 = True
  c.sample.truncation = config_dict.placeholder(float)  # psi: |z_i| <= psi (None: off)
  c.ema.warmup = False
  c.ema.start = 0  # the EMA copies the weights until this step (BigGAN's ema_start)
  return c


def ddgan_config(*, generator: dict, discriminator: dict, lr_g: float, lr_d: float,
                 b1: float, b2: float, num_timesteps: int, z_dim: int,
                 r1_gamma: float, r1_every: int) -> ml_collections.ConfigDict:
  """A base config with the "ddgan" method filled in.

  Lazy R1 follows DDGAN's code: gamma / 2 * R1 on every r1_every-th step, NOT multiplied
  by the period (r1_lazy_scaling="none"; "stylegan2" multiplies by it).
  """
  c = gan_config(generator=generator, discriminator=discriminator, lr_g=lr_g, lr_d=lr_d,
                 b1=b1, b2=b2, loss="non_saturating", z_dim=z_dim)
  c.method = ml_collections.ConfigDict(dict(
      name="ddgan", loss="non_saturating", z_dim=z_dim, num_timesteps=num_timesteps,
      beta_schedule="ddgan_vp", r1_gamma=r1_gamma, r1_every=r1_every,
      r1_lazy_scaling="none", class_conditional=False))
  c.sample.sampler = "ddgan"
  del c.sample["truncation"]  # DDGAN's latents are not truncated
  return c


def toy_2d_run(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """The 2-D toy runs' figures and periods: 2048 unclipped points per sample plot (1024 in
  the training grids), logs every 200 steps, checkpoint/sample/eval every 1000."""
  c.sample.clip_x0 = False
  c.sample.num_samples = 2048
  c.sample.batch_size = 2048
  c.sample.grid_size = 1024
  c.trainer.log_every_steps = 200
  c.trainer.checkpoint_every_steps = 1000
  c.trainer.sample_every_steps = 1000
  c.trainer.eval_every_steps = 1000
  return c


def smoke_gan(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """common.smoke plus tiny widths for the convolutional nets."""
  common.smoke(c)
  if c.method.name == "gan":
    c.method.n_dis = min(c.method.n_dis, 2)  # still a scan over several D steps
    c.batch_size = 8 * c.method.n_dis
  g, d = c.model.generator, c.model.discriminator
  for cfg, field, value in [(g, "ch", 16), (d, "ch", 8), (g, "num_res_blocks", 1),
                            (g, "z_dim", 8), (d, "time_embed_dim", 16)]:
    if cfg.get(field):  # shrink what is there; 0 (e.g. no time embedding) stays 0
      cfg[field] = value
  if "ch_mult" in g:
    g.ch_mult = (1,)
    g.attn_resolutions = ()
    g.mid_attention = False
    g.num_groups = 8
    g.n_mlp = 1
  if "hidden" in g:
    g.hidden = (16, 16)
    d.hidden = (16, 16)
  c.method.z_dim = 8
  if "down" in d:
    d.down = (True, True)
  return c
