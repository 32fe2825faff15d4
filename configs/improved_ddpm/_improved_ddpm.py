"""The improved-DDPM part shared by the configs in this folder (Nichol & Dhariwal 2021)."""

from __future__ import annotations

import ml_collections

from configs.ddpm import _ddpm


def improved_ddpm_config(*, ch: int, ch_mult, num_res_blocks: int, attn_resolutions,
                         dropout: float, num_heads: int = 1) -> ml_collections.ConfigDict:
  """The DDPM UNet with 2C outputs, the hybrid loss on a cosine chain, and the respaced
  learned-variance sampler (`sample.learned_variance`: num_steps K, spacing)."""
  c = _ddpm.ddpm_config(image_size=0, ch=ch, ch_mult=ch_mult, num_res_blocks=num_res_blocks,
                        attn_resolutions=attn_resolutions, dropout=dropout)
  c.model.num_heads = num_heads
  c.method = ml_collections.ConfigDict(dict(
      name="diffusion",
      process="chain",
      beta_schedule="cosine",
      num_timesteps=4000,
      prediction="eps",
      learned_variance=True,  # the UNet outputs 2C channels: eps and v_var
      loss="hybrid",  # L_simple + vlb_weight * L_vlb (stop-gradient on the mean)
      vlb_weight=0.001,
      class_conditional=False,
      class_dropout=0.1,
  ))
  c.sample.sampler = "learned_variance"
  c.sample.learned_variance = ml_collections.ConfigDict(dict(num_steps=100, spacing="uniform"))
  return c


def smoke_improved_ddpm(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """`_ddpm.smoke_ddpm` (tiny UNet, T = 20) with 5 respaced sampling steps."""
  _ddpm.smoke_ddpm(c)
  c.model.num_heads = 1
  c.sample.learned_variance.num_steps = 5
  return c
