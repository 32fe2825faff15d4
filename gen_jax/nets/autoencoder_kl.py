"""The KL-regularised autoencoder of latent diffusion's first stage (Rombach et al. 2022).

Encoder and decoder follow `ldm/modules/diffusionmodules/model.py` (`Encoder`, `Decoder`)
and `ldm/models/autoencoder.py` (`AutoencoderKL`) of the official CompVis code, built from
gen_jax's DDPM blocks (`nets/layers.py`):

  Encoder  conv_in(ch) -> per level l: num_res_blocks ResnetBlocks(ch * ch_mult[l]) and,
           except at the last level, a stride-2 Downsample -> mid: ResnetBlock, attention,
           ResnetBlock -> GroupNorm, swish, conv_out(2 z_channels) -> quant_conv (1x1)
           -> (mean, logvar) [B, H/f, W/f, z_channels], f = 2^(len(ch_mult) - 1)
  Decoder  post_quant_conv (1x1) -> conv_in(ch * ch_mult[-1]) -> mid -> per level from the
           last: num_res_blocks + 1 ResnetBlocks and, except at the first level, an
           Upsample (nearest 2x + conv) -> GroupNorm, swish, conv_out(out_channels)

Deviations from the official code: the downsampling conv pads "same" (one row/column at
the bottom/right) where the official pads (0, 1, 0, 1) explicitly - the same thing; no
attention at the resolution levels (the official `attn_resolutions` is empty for the
published f=4 and f=8 KL models too); the log-variance is clamped to [-30, 20] as in
`DiagonalGaussianDistribution`, here in the method (`methods/vae.py`); no dropout (the
published configs use dropout 0).
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from gen_jax.nets.layers import (AttentionBlock, Downsample, ResnetBlock, Upsample,
                                 default_init, group_norm)


def _conv(ch: int, k: int, name: str) -> nn.Conv:
  return nn.Conv(ch, (k, k), kernel_init=default_init, name=name)


class _Mid(nn.Module):
  num_groups: int
  attention: bool

  @nn.compact
  def __call__(self, h, train):
    block = lambda name: ResnetBlock(num_groups=self.num_groups, name=name)
    h = block("block_1")(h, None, train=train)
    if self.attention:
      h = AttentionBlock(num_groups=self.num_groups, name="attn_1")(h)
    return block("block_2")(h, None, train=train)


class AutoencoderKL(nn.Module):
  """A convolutional VAE with a spatial latent, downsampling H and W by f = 2^(levels-1).

  Attributes:
    data_shape: (H, W, C); H and W must be divisible by f.
    out_channels: decoder parameters per pixel (the likelihood's; C for a fixed/global
      scale).
    ch: base width.
    ch_mult: width multipliers per resolution level; len(ch_mult) - 1 downsamplings
      (LDM's f=4: (1, 2, 4); f=8: (1, 2, 4, 4)).
    num_res_blocks: residual blocks per level (the decoder has one more).
    z_channels: channels of the latent (LDM: 3 for f=4, 4 for f=8).
    attention: self-attention in the middle blocks.
    num_groups: GroupNorm groups (must divide every width).
  """

  data_shape: Sequence[int] = (28, 28, 1)
  out_channels: int = 1
  ch: int = 64
  ch_mult: Sequence[int] = (1, 2, 2)
  num_res_blocks: int = 1
  z_channels: int = 4
  attention: bool = True
  num_groups: int = 32

  @property
  def downsampling_factor(self) -> int:
    return 2 ** (len(self.ch_mult) - 1)

  def _check_input(self, x: jax.Array) -> None:
    f = self.downsampling_factor
    if x.ndim != 4 or x.shape[1] % f or x.shape[2] % f:
      raise ValueError(f"AutoencoderKL with ch_mult={tuple(self.ch_mult)} downsamples by "
                       f"{f}: it needs images [B, H, W, C] with H and W divisible by {f}; "
                       f"got {x.shape}.")

  def setup(self):
    fields = dict(ch=self.ch, ch_mult=tuple(self.ch_mult), num_res_blocks=self.num_res_blocks,
                  z_channels=self.z_channels, attention=self.attention,
                  num_groups=self.num_groups)
    self.encoder = _Encoder(**fields)
    self.decoder = _Decoder(out_channels=self.out_channels, **fields)

  def __call__(self, x: jax.Array, *, train: bool = False) -> jax.Array:
    mean, _ = self.encode(x, train=train)
    return self.decode(mean, train=train)

  def encode(self, x: jax.Array, *, train: bool = False):
    """x [B, H, W, C] -> (mean, logvar), each [B, H/f, W/f, z_channels]."""
    self._check_input(x)
    return self.encoder(x, train)

  def decode(self, z: jax.Array, *, train: bool = False) -> jax.Array:
    """z [B, h, w, z_channels] -> [B, h f, w f, out_channels]."""
    if z.ndim != 4 or z.shape[-1] != self.z_channels:
      raise ValueError(f"AutoencoderKL.decode takes latents [B, h, w, {self.z_channels}]; "
                       f"got {z.shape}.")
    return self.decoder(z, train)


class _Encoder(nn.Module):
  ch: int
  ch_mult: Sequence[int]
  num_res_blocks: int
  z_channels: int
  attention: bool
  num_groups: int

  @nn.compact
  def __call__(self, x, train):
    h = _conv(self.ch, 3, "conv_in")(x)
    for level, mult in enumerate(self.ch_mult):
      for i in range(self.num_res_blocks):
        h = ResnetBlock(self.ch * mult, num_groups=self.num_groups,
                        name=f"down_{level}_block_{i}")(h, None, train=train)
      if level != len(self.ch_mult) - 1:
        h = Downsample(name=f"down_{level}_downsample")(h)
    h = _Mid(self.num_groups, self.attention, name="mid")(h, train)
    h = nn.swish(group_norm(h.shape[-1], self.num_groups, dtype=jnp.float32,
                            name="norm_out")(h))
    h = _conv(2 * self.z_channels, 3, "conv_out")(h)
    moments = _conv(2 * self.z_channels, 1, "quant_conv")(h)
    mean, logvar = jnp.split(moments, 2, axis=-1)
    return mean, logvar


class _Decoder(nn.Module):
  ch: int
  ch_mult: Sequence[int]
  num_res_blocks: int
  z_channels: int
  attention: bool
  num_groups: int
  out_channels: int

  @nn.compact
  def __call__(self, z, train):
    h = _conv(self.z_channels, 1, "post_quant_conv")(z)
    h = _conv(self.ch * self.ch_mult[-1], 3, "conv_in")(h)
    h = _Mid(self.num_groups, self.attention, name="mid")(h, train)
    for level in reversed(range(len(self.ch_mult))):
      for i in range(self.num_res_blocks + 1):
        h = ResnetBlock(self.ch * self.ch_mult[level], num_groups=self.num_groups,
                        name=f"up_{level}_block_{i}")(h, None, train=train)
      if level != 0:
        h = Upsample(name=f"up_{level}_upsample")(h)
    h = nn.swish(group_norm(h.shape[-1], self.num_groups, dtype=jnp.float32,
                            name="norm_out")(h))
    return _conv(self.out_channels, 3, "conv_out")(h)
