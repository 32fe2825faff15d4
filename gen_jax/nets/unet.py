"""The DDPM UNet of Ho, Jain & Abbeel, "Denoising Diffusion Probabilistic Models" (2020).

A PixelCNN++-style UNet (Salimans et al. 2017) with GroupNorm, swish, a sinusoidal time
embedding added inside every ResNet block and self-attention at the 16x16 resolution; the
defaults are the 35.7M-parameter CIFAR-10 model (arXiv:2006.11239, Appendix B). Optional
class conditioning adds a learned label embedding to the time embedding; the extra label
`num_classes` is the "null" label of classifier-free guidance (Ho & Salimans 2022,
arXiv:2207.12598).

The options after `dtype` select the conventions of other implementations of the same
network (diffusers' `UNet2DModel`, see `gen_jax/tools/import_diffusers.py`); their defaults
are DDPM's and leave the parameter tree unchanged (no option adds or renames a parameter).
"""

from __future__ import annotations

import functools
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from gen_jax.nets import layers

Dtype = Any


class UNet(nn.Module):
  """DDPM noise-prediction UNet (defaults: the CIFAR-10 model).

  Module naming: level `i` of the down (up) path works at resolution H / 2**i and holds
  `down_{i}_block_{j}` / `down_{i}_attn_{j}` (`up_{i}_block_{j}` / `up_{i}_attn_{j}`),
  `down_{i}_downsample` / `up_{i}_upsample`; the bottleneck is `mid_block_1`, `mid_attn`,
  `mid_block_2`.

  Attributes:
    ch: base channel count; level i has ch * ch_mult[i] channels.
    ch_mult: channel multipliers, one per resolution level.
    num_res_blocks: ResNet blocks per level on the down path (num_res_blocks + 1 going up).
    attn_resolutions: spatial sizes H at which a self-attention block follows each ResNet
      block.
    dropout: dropout rate inside the ResNet blocks (active only with train=True).
    num_classes: 0 for an unconditional model; otherwise labels in [0, num_classes], where
      label `num_classes` is the null (unconditional) label for classifier-free guidance.
    out_channels: output channels; None means the input's channel count.
    resamp_with_conv: use convolutions in Downsample / Upsample.
    num_groups: maximal GroupNorm group count.
    num_heads: attention heads (ignored when attn_head_dim is set).
    skip_rescale: divide residual sums by sqrt(2) (NCSN++/DDPM++ style).
    dtype: computation dtype; parameters and the output are float32.
    norm_eps: epsilon of every GroupNorm (DDPM 1e-6; diffusers' default 1e-5).
    attn_head_dim: when set, each attention block has C // attn_head_dim heads of this
      width (diffusers' `attention_head_dim`); None: `num_heads` heads everywhere.
    downsample_padding: "same" (pad bottom/right, DDPM) or "symmetric" (pad every side,
      diffusers' `downsample_padding=1`) for the stride-2 convolutions.
    flip_sin_to_cos: time embedding [cos, sin] instead of DDPM's [sin, cos].
    freq_shift: time-embedding frequencies 10000 ** (-i / (ch / 2 - freq_shift)); DDPM 1.
    remat: recompute each ResNet and attention block's activations in the backward pass
      instead of storing them (less memory, ~1/3 more compute); same parameters.
  """
  ch: int = 128
  ch_mult: Sequence[int] = (1, 2, 2, 2)
  num_res_blocks: int = 2
  attn_resolutions: Sequence[int] = (16,)
  dropout: float = 0.1
  num_classes: int = 0
  out_channels: int | None = None
  resamp_with_conv: bool = True
  num_groups: int = 32
  num_heads: int = 1
  skip_rescale: bool = False
  dtype: Dtype = jnp.float32
  norm_eps: float = 1e-6
  attn_head_dim: int | None = None
  downsample_padding: str = "same"
  flip_sin_to_cos: bool = False
  freq_shift: float = 1.0
  remat: bool = False

  def _check_inputs(self, x: jax.Array, t: jax.Array, y: jax.Array | None) -> None:
    if x.ndim != 4:
      raise ValueError(
          f"UNet expects images x of shape [B, H, W, C] (NHWC), got shape {x.shape}.")
    batch, height, width, _ = x.shape
    factor = 2 ** (len(self.ch_mult) - 1)
    if height % factor or width % factor:
      raise ValueError(
          f"UNet with {len(self.ch_mult)} levels (ch_mult={tuple(self.ch_mult)}) needs H and W "
          f"divisible by {factor}, got H={height}, W={width}; pad or resize the images, or use "
          f"fewer levels.")
    if t.shape != (batch,):
      raise ValueError(
          f"UNet expects t of shape [B]=({batch},), got shape {t.shape}; broadcast a scalar "
          f"time with jnp.full((B,), t).")
    if self.num_classes > 0:
      if y is None:
        raise ValueError(
            f"UNet has num_classes={self.num_classes} and needs labels y of shape [B]; pass "
            f"y=jnp.full((B,), {self.num_classes}) for the null (unconditional) label.")
      if y.shape != (batch,) or not jnp.issubdtype(y.dtype, jnp.integer):
        raise ValueError(
            f"UNet expects integer labels y of shape [B]=({batch},), got shape {y.shape} "
            f"and dtype {y.dtype}.")
    elif y is not None:
      raise ValueError(
          "UNet got labels y but num_classes=0 (unconditional); set num_classes or drop y.")

  @nn.compact
  def __call__(self, x: jax.Array, t: jax.Array, y: jax.Array | None = None, *,
               train: bool) -> jax.Array:
    """Predicts (e.g.) the noise in x at noise level t.

    Args:
      x: [B, H, W, C] float images; H and W divisible by 2**(len(ch_mult) - 1).
      t: [B] float timesteps / noise levels, any scale (embedded sinusoidally as given).
      y: [B] int labels in [0, num_classes] when num_classes > 0 (num_classes = null
        label), else None.
      train: enables dropout (needs a 'dropout' rng).

    Returns:
      [B, H, W, out_channels or C] float32.
    """
    t = jnp.asarray(t)
    y = None if y is None else jnp.asarray(y)
    self._check_inputs(x, t, y)
    out_channels = self.out_channels or x.shape[-1]
    num_levels = len(self.ch_mult)
    emb_dim = 4 * self.ch

    def resnet(out_ch: int, name: str) -> layers.ResnetBlock:
      return layers.ResnetBlock(
          out_channels=out_ch, dropout=self.dropout, num_groups=self.num_groups,
          skip_rescale=self.skip_rescale, dtype=self.dtype, norm_eps=self.norm_eps,
          name=name)

    def attention(channels: int, name: str) -> layers.AttentionBlock:
      heads = self.num_heads
      if self.attn_head_dim is not None:
        if channels % self.attn_head_dim:
          raise ValueError(
              f"UNet {name}: {channels} channels are not a multiple of "
              f"attn_head_dim={self.attn_head_dim}.")
        heads = channels // self.attn_head_dim
      return layers.AttentionBlock(
          num_heads=heads, num_groups=self.num_groups, skip_rescale=self.skip_rescale,
          dtype=self.dtype, norm_eps=self.norm_eps, name=name)

    run_resnet = layers.maybe_remat(
        lambda mdl, h, emb, ch, name: resnet(ch, name)(h, emb, train=train), self.remat, (3, 4))
    run_attention = layers.maybe_remat(
        lambda mdl, h, name: attention(h.shape[-1], name)(h), self.remat, (2,))

    dense = lambda feats, name: nn.Dense(
        feats, dtype=self.dtype, kernel_init=layers.default_init, name=name)
    emb = layers.timestep_embedding(t, self.ch, flip_sin_to_cos=self.flip_sin_to_cos,
                                    freq_shift=self.freq_shift)
    emb = dense(emb_dim, "time_dense_0")(emb)
    emb = dense(emb_dim, "time_dense_1")(jax.nn.swish(emb))
    if self.num_classes > 0:
      emb = emb + nn.Embed(self.num_classes + 1, emb_dim, dtype=self.dtype,
                           name="label_emb")(y)

    conv3 = lambda feats, init, name: nn.Conv(
        feats, (3, 3), dtype=self.dtype, kernel_init=init, name=name)
    h = conv3(self.ch, layers.default_init, "conv_in")(x.astype(self.dtype))
    hs = [h]
    for level in range(num_levels):
      for block in range(self.num_res_blocks):
        h = run_resnet(self, hs[-1], emb, self.ch * self.ch_mult[level],
                       f"down_{level}_block_{block}")
        if h.shape[1] in self.attn_resolutions:
          h = run_attention(self, h, f"down_{level}_attn_{block}")
        hs.append(h)
      if level != num_levels - 1:
        hs.append(layers.Downsample(self.resamp_with_conv, dtype=self.dtype,
                                    padding=self.downsample_padding,
                                    name=f"down_{level}_downsample")(hs[-1]))

    h = hs[-1]
    h = run_resnet(self, h, emb, h.shape[-1], "mid_block_1")
    h = run_attention(self, h, "mid_attn")
    h = run_resnet(self, h, emb, h.shape[-1], "mid_block_2")

    for level in reversed(range(num_levels)):
      for block in range(self.num_res_blocks + 1):
        h = jnp.concatenate([h, hs.pop()], axis=-1)
        h = run_resnet(self, h, emb, self.ch * self.ch_mult[level], f"up_{level}_block_{block}")
        if h.shape[1] in self.attn_resolutions:
          h = run_attention(self, h, f"up_{level}_attn_{block}")
      if level != 0:
        h = layers.Upsample(self.resamp_with_conv, dtype=self.dtype,
                            name=f"up_{level}_upsample")(h)
    assert not hs, "every skip activation must be consumed"

    h = layers.group_norm(h.shape[-1], self.num_groups, dtype=self.dtype, name="norm_out",
                          owner="UNet output", epsilon=self.norm_eps)(h)
    h = conv3(out_channels, layers.zero_init, "conv_out")(jax.nn.swish(h))
    return h.astype(jnp.float32)


def tiny_unet_kwargs(image_size: int = 16, **overrides: Any) -> dict[str, Any]:
  """Keyword arguments of a two-level test-sized UNet (ch 16, attention at H = image_size/2).

  Args:
    image_size: input H (= W) the model will see; sets where attention sits.
    **overrides: any UNet field, replacing the tiny defaults.
  """
  kwargs = dict(ch=16, ch_mult=(1, 2), num_res_blocks=1, attn_resolutions=(image_size // 2,),
                dropout=0.1, num_groups=8)
  kwargs.update(overrides)
  return kwargs


TinyUNet = functools.partial(UNet, **tiny_unet_kwargs())
TinyUNet.__doc__ = "UNet(**tiny_unet_kwargs()): ch 16, ch_mult (1, 2), attention at 8x8."
