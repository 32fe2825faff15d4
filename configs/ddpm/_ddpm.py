"""The DDPM part shared by the configs in this folder."""

from __future__ import annotations

import ml_collections

from configs import common


def ddpm_config(*, image_size: int, ch: int, ch_mult, num_res_blocks: int, attn_resolutions,
                dropout: float) -> ml_collections.ConfigDict:
  """A base config with the DDPM UNet and method filled in."""
  del image_size  # documented by the caller; the data decides the shape
  return ddpm_config_with_model(ml_collections.ConfigDict(dict(
      name="unet", ch=ch, ch_mult=tuple(ch_mult), num_res_blocks=num_res_blocks,
      attn_resolutions=tuple(attn_resolutions), dropout=dropout, num_groups=32, num_heads=1,
      resamp_with_conv=True, remat=False)))


def ddpm_config_with_model(model: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """A base config with the DDPM method and samplers, and `model` (name + net kwargs)."""
  c = common.base_config()
  c.model = model
  c.method = ml_collections.ConfigDict(dict(
      name="ddpm",
      num_timesteps=1000,
      beta_schedule="linear",  # linear | cosine
      prediction="eps",  # eps | x0 | v
      loss="mse",  # mse | l1 (any name in diffusion.losses.LOSSES)
      weighting="simple",  # simple (L_simple) | sigma2 | snr (diffusion.losses.WEIGHTINGS)
      class_conditional=False,
      class_dropout=0.1,  # p(null label) when class-conditional (classifier-free guidance)
  ))
  diffusion_sample_fields(c, sampler="ddim")  # ddim | ancestral | any name in SAMPLERS
  c.sample.clip_x0 = True  # clip the x0 estimate to [-1, 1] in the chain samplers
  c.sample.ddim = ml_collections.ConfigDict(dict(num_steps=50, eta=0.0, spacing="uniform"))
  c.sample.ancestral = ml_collections.ConfigDict(dict(variance="fixed_large"))
  return c


def diffusion_sample_fields(c: ml_collections.ConfigDict, *, sampler: str) -> None:
  """The sample fields every diffusion config has: the sampler's name (its options in
  `sample.<name>`), the classifier-free guidance weight w and the classifier guidance."""
  c.sample.sampler = sampler
  c.sample.guidance_scale = 0.0  # out = (1 + w) out(y) - w out(null); class-conditional only
  # Classifier guidance: a noisy_classifier run's workdir (configs/classifier_guidance) and
  # the scale s of its gradient (0: off).
  c.sample.classifier_guidance = ml_collections.ConfigDict(dict(workdir="", scale=0.0))


def smoke_ddpm(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """A tiny UNet (or MLP) and a short chain on top of `common.smoke`."""
  common.smoke(c)
  if c.model.name == "mlp":
    c.model.features = (32, 32)
    c.model.time_embedding_dim = 16
  else:
    c.model.ch = 16
    c.model.ch_mult = (1, 2)
    c.model.num_res_blocks = 1
    c.model.num_groups = 8
  c.method.num_timesteps = 20
  c.sample.ddim.num_steps = 5
  return c
