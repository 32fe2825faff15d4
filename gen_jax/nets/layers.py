"""Convolutional building blocks of the DDPM UNet, shared by score-SDE and GAN networks.

Follows the TensorFlow reference of Ho, Jain & Abbeel, "Denoising Diffusion Probabilistic
Models" (NeurIPS 2020, arXiv:2006.11239), `diffusion_tf/models/unet.py`: GroupNorm + swish
pre-activation ResNet blocks (He et al. 2016, Wu & He 2018), single-head self-attention at
chosen resolutions (Wang et al. 2018), fan-avg uniform initialisation, and zero-initialised
last layers so that every residual branch starts as the identity. The `skip_rescale` option
(divide each residual sum by sqrt(2)) is the one of NCSN++/DDPM++ in Song et al., "Score-Based
Generative Modeling through Stochastic Differential Equations" (ICLR 2021, arXiv:2011.13456),
as are the BigGAN-style resampling inside `ResnetBlock` (`resample="up" | "down"`, Brock et al.
2019), the FIR (blurred) resampling of StyleGAN2 (`upsample_2d` / `downsample_2d`, Karras et
al. 2020; kernel [1, 3, 3, 1]) and the Gaussian Fourier projection of the noise level
(`GaussianFourierProjection`, Tancik et al. 2020).

All images are NHWC. Parameters are float32; activations are computed in `dtype`.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

Dtype = Any

# DDPM's `default_init`: variance_scaling(scale=1, mode="fan_avg", distribution="uniform").
default_init = nn.initializers.variance_scaling(1.0, "fan_avg", "uniform")
# DDPM uses init_scale=0 (rounded up to 1e-10) on the last layer of each residual branch;
# exact zeros behave the same and make "the network is the identity at init" testable.
zero_init = nn.initializers.zeros


def maybe_remat(fn: Callable, enabled: bool, static_argnums: Sequence[int] = ()) -> Callable:
  """`fn(module, *args)` rematerialised per call when `enabled` (flax `nn.remat`), else `fn`.

  `fn` builds and applies one block inside the calling module (pass `self` as `module`);
  with remat its activations are recomputed in the backward pass instead of being kept,
  trading compute for memory. Parameter and variable names are the same either way, so a
  checkpoint trained with remat loads without it. `static_argnums` index `fn`'s arguments
  (0 is the module) that are Python values (channel counts, names), not arrays.
  """
  return nn.remat(fn, static_argnums=tuple(static_argnums)) if enabled else fn


def fan_avg_init(scale: float) -> nn.initializers.Initializer:
  """`default_init` with variance `scale` (score_sde's `default_init(scale)`; its NIN layers,
  e.g. the attention q/k/v of NCSN++, use scale 0.1)."""
  return nn.initializers.variance_scaling(scale, "fan_avg", "uniform")


def timestep_embedding(t: jax.Array, dim: int, max_period: float = 10000.0, *,
                       flip_sin_to_cos: bool = False, freq_shift: float = 1.0) -> jax.Array:
  """Sinusoidal embedding of (possibly non-integer) timesteps, as in DDPM.

  Frequencies are `max_period ** (-i / (half - freq_shift))` for i = 0..half-1 with
  `half = dim // 2`, and the output is `[sin(t * f), cos(t * f)]` (DDPM's
  `get_timestep_embedding`, the Transformer position encoding of Vaswani et al. 2017), or
  `[cos(t * f), sin(t * f)]` with `flip_sin_to_cos`. An odd `dim` gets one zero column.
  The defaults are DDPM's; diffusers' `Timesteps(dim, flip_sin_to_cos, downscale_freq_shift)`
  is the same function with its own two settings.

  Args:
    t: [B] float (or int) timesteps / noise levels; any scale, e.g. 999 * continuous time.
    dim: embedding width, >= 2.
    max_period: the longest period (lowest frequency) of the sinusoids.
    flip_sin_to_cos: put the cosines first.
    freq_shift: the denominator of the exponent is `half - freq_shift` (at least 1).

  Returns:
    [B, dim] float32 embedding.
  """
  t = jnp.asarray(t)
  if t.ndim != 1:
    raise ValueError(f"timestep_embedding expects t of shape [B], got shape {t.shape}.")
  if dim < 2:
    raise ValueError(f"timestep_embedding needs dim >= 2, got {dim}.")
  half = dim // 2
  exponent = jnp.arange(half, dtype=jnp.float32) / max(half - freq_shift, 1)
  freqs = jnp.exp(-math.log(max_period) * exponent)
  args = t.astype(jnp.float32)[:, None] * freqs[None, :]
  waves = [jnp.cos(args), jnp.sin(args)] if flip_sin_to_cos else [jnp.sin(args), jnp.cos(args)]
  emb = jnp.concatenate(waves, axis=1)
  if dim % 2:
    emb = jnp.pad(emb, ((0, 0), (0, 1)))
  return emb


class GaussianFourierProjection(nn.Module):
  """Random Fourier features of a scalar: [sin(2 pi W s), cos(2 pi W s)], W ~ N(0, scale^2).

  W is drawn at initialisation and never trained: it is stored with the parameters (so it is
  checkpointed) but its gradient is stopped in the forward pass, as in NCSN++.

  Attributes:
    embedding_size: number of frequencies; the output has 2 * embedding_size features.
    scale: standard deviation of the frequencies (16 in NCSN++).
  """
  embedding_size: int = 256
  scale: float = 1.0

  @nn.compact
  def __call__(self, s: jax.Array) -> jax.Array:
    """Maps s [B] (e.g. log sigma) to [B, 2 * embedding_size] float32."""
    if s.ndim != 1:
      raise ValueError(f"GaussianFourierProjection expects s of shape [B], got {s.shape}.")
    w = self.param("W", nn.initializers.normal(stddev=self.scale), (self.embedding_size,))
    w = jax.lax.stop_gradient(w)
    proj = s.astype(jnp.float32)[:, None] * w[None, :] * (2.0 * math.pi)
    return jnp.concatenate([jnp.sin(proj), jnp.cos(proj)], axis=-1)


FIR_KERNEL = (1.0, 3.0, 3.0, 1.0)


def _fir_filter(x: jax.Array, kernel: tuple[float, ...], gain: float, pad: tuple[int, int]):
  """Depthwise 2-D convolution of x [B, H, W, C] with the separable normalised kernel."""
  k = jnp.asarray(kernel, jnp.float32)
  k2 = jnp.outer(k, k)
  k2 = k2 / jnp.sum(k2) * gain
  ch = x.shape[-1]
  w = jnp.tile(k2[::-1, ::-1, None, None], (1, 1, 1, ch)).astype(x.dtype)  # HWIO, depthwise
  return jax.lax.conv_general_dilated(
      x, w, window_strides=(1, 1), padding=(pad, pad),
      dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=ch)


def upsample_2d(x: jax.Array, fir: bool = False, kernel: tuple[float, ...] = FIR_KERNEL):
  """Doubles H and W: nearest neighbour, or zero insertion + FIR filter (StyleGAN2 upfirdn)."""
  if not fir:
    return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)
  b, h, w, c = x.shape
  up = jnp.zeros((b, h, 2, w, 2, c), x.dtype).at[:, :, 0, :, 0, :].set(x).reshape(b, 2 * h, 2 * w, c)
  p = len(kernel) - 2
  return _fir_filter(up, kernel, gain=4.0, pad=((p + 1) // 2 + 1, p // 2))


def downsample_2d(x: jax.Array, fir: bool = False, kernel: tuple[float, ...] = FIR_KERNEL):
  """Halves H and W: 2x2 average pooling, or FIR filter + stride 2 (StyleGAN2 upfirdn)."""
  if not fir:
    return nn.avg_pool(x, (2, 2), strides=(2, 2))
  p = len(kernel) - 2
  return _fir_filter(x, kernel, gain=1.0, pad=((p + 1) // 2, p // 2))[:, ::2, ::2, :]


def group_norm(channels: int, num_groups: int, *, dtype: Dtype, name: str,
               owner: str = "", epsilon: float = 1e-6,
               min_group_size: int = 1) -> nn.GroupNorm:
  """A GroupNorm over `channels` with min(num_groups, channels // min_group_size) groups.

  DDPM uses 32 groups (min_group_size 1); NCSN++/DDPM++ use min(C // 4, 32) groups
  (min_group_size 4), which differs only for narrow layers (C < 128).

  `epsilon` is added to the variance (DDPM 1e-6; PyTorch's and diffusers' default 1e-5).

  Raises:
    ValueError: if that group count does not divide `channels`; `owner` (the calling
      module's name) is put in the message to locate the offending layer.
  """
  groups = min(num_groups, max(channels // min_group_size, 1))
  if channels % groups:
    where = f" in {owner}" if owner else ""
    raise ValueError(
        f"GroupNorm{where}: {channels} channels are not divisible into {groups} groups "
        f"(num_groups={num_groups}). Choose num_groups dividing every channel count of the "
        f"network (including concatenated skip channels), or change the channel widths.")
  return nn.GroupNorm(num_groups=groups, epsilon=epsilon, dtype=dtype, name=name)


class ResnetBlock(nn.Module):
  """DDPM pre-activation residual block with an additive (time/label) embedding.

  x -> GroupNorm -> swish -> conv3x3 -> + Dense(swish(emb)) -> GroupNorm -> swish -> dropout
  -> conv3x3 (zero init), plus a skip connection (1x1 conv when the channel count changes).

  Attributes:
    out_channels: output channels; None keeps the input channel count.
    dropout: dropout rate before the second convolution (rng collection 'dropout').
    num_groups: maximal GroupNorm group count; min(num_groups, C) must divide C.
    skip_rescale: divide the residual sum by sqrt(2) (NCSN++/DDPM++).
    resample: "none", or "up" / "down" for a BigGAN-style block (NCSN++/DDPM++) that
      resamples both branches after the first activation: the output is [B, 2H, 2W, .]
      or [B, H/2, W/2, .], and the skip branch always gets a 1x1 convolution.
    fir: resample with the FIR kernel [1, 3, 3, 1] instead of nearest / average pooling.
    dtype: computation dtype.
    norm_eps: GroupNorm epsilon.
    min_group_size: see `group_norm` (4 in NCSN++/DDPM++).
    skip_init_scale: variance scale of the 1x1 skip projection (0.1 for the NIN shortcut of
      score_sde's DDPM++ block `ResnetBlockDDPMpp`).
  """
  out_channels: int | None = None
  dropout: float = 0.0
  num_groups: int = 32
  skip_rescale: bool = False
  resample: str = "none"
  fir: bool = False
  dtype: Dtype = jnp.float32
  norm_eps: float = 1e-6
  min_group_size: int = 1
  skip_init_scale: float = 1.0

  @nn.compact
  def __call__(self, x: jax.Array, emb: jax.Array | None, *, train: bool) -> jax.Array:
    """Applies the block.

    Args:
      x: [B, H, W, C] activations.
      emb: [B, E] conditioning embedding (DDPM: the time embedding, before its swish), or
        None for an unconditional block (then no projection parameters are created).
      train: enables dropout.

    Returns:
      [B, H, W, out_channels] activations in `dtype`.
    """
    if x.ndim != 4:
      raise ValueError(f"{self.name}: expected x of shape [B, H, W, C], got {x.shape}.")
    in_ch = x.shape[-1]
    out_ch = self.out_channels or in_ch
    conv = lambda ch, k, init, name: nn.Conv(
        ch, (k, k), dtype=self.dtype, kernel_init=init, name=name)

    if self.resample not in ("none", "up", "down"):
      raise ValueError(f"{self.name}: resample must be 'none', 'up' or 'down', got "
                       f"{self.resample!r}.")
    h = group_norm(in_ch, self.num_groups, dtype=self.dtype, name="norm1", owner=self.name,
                   epsilon=self.norm_eps,
                   min_group_size=self.min_group_size)(x)
    h = jax.nn.swish(h)
    if self.resample == "up":
      h, x = upsample_2d(h, self.fir), upsample_2d(x, self.fir)
    elif self.resample == "down":
      h, x = downsample_2d(h, self.fir), downsample_2d(x, self.fir)
    h = conv(out_ch, 3, default_init, "conv1")(h)
    if emb is not None:
      if emb.ndim != 2 or emb.shape[0] != x.shape[0]:
        raise ValueError(
            f"{self.name}: expected emb of shape [B={x.shape[0]}, E], got {emb.shape}.")
      e = nn.Dense(out_ch, dtype=self.dtype, kernel_init=default_init,
                   name="emb_proj")(jax.nn.swish(emb))
      h = h + e[:, None, None, :]
    h = group_norm(out_ch, self.num_groups, dtype=self.dtype, name="norm2", owner=self.name,
                   epsilon=self.norm_eps,
                   min_group_size=self.min_group_size)(h)
    h = jax.nn.swish(h)
    h = nn.Dropout(self.dropout, deterministic=not train)(h)
    h = conv(out_ch, 3, zero_init, "conv2")(h)

    needs_proj = in_ch != out_ch or self.resample != "none"
    skip_init = default_init if self.skip_init_scale == 1.0 else fan_avg_init(
        self.skip_init_scale)
    skip = conv(out_ch, 1, skip_init, "skip")(x) if needs_proj else x
    out = skip + h
    if self.skip_rescale:
      out = out / math.sqrt(2.0)
    return out


class AttentionBlock(nn.Module):
  """Residual multi-head self-attention over the H*W positions of an image.

  x + proj_out(attention(q, k, v)) with q, k, v 1x1 projections of GroupNorm(x) and a
  zero-initialised proj_out. One head (the default) is DDPM's block.

  Attributes:
    num_heads: attention heads; must divide the channel count. One wide head is much
      faster on CPU than many narrow ones.
    num_groups: maximal GroupNorm group count.
    skip_rescale: divide the residual sum by sqrt(2) (NCSN++/DDPM++).
    dtype: computation dtype (the softmax is computed in float32).
    norm_eps: GroupNorm epsilon.
    min_group_size: see `group_norm` (4 in NCSN++/DDPM++).
    qkv_init_scale: variance scale of the q, k, v projections (0.1 in NCSN++/DDPM++, whose
      `AttnBlockpp` uses score_sde's NIN default; 1 in DDPM).
  """
  num_heads: int = 1
  num_groups: int = 32
  skip_rescale: bool = False
  dtype: Dtype = jnp.float32
  norm_eps: float = 1e-6
  min_group_size: int = 1
  qkv_init_scale: float = 1.0

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """Maps [B, H, W, C] to [B, H, W, C]."""
    if x.ndim != 4:
      raise ValueError(f"{self.name}: expected x of shape [B, H, W, C], got {x.shape}.")
    b, height, width, ch = x.shape
    if ch % self.num_heads:
      raise ValueError(
          f"{self.name}: {ch} channels cannot be split into num_heads={self.num_heads} heads.")
    head_dim = ch // self.num_heads
    dense = lambda init, name: nn.Dense(ch, dtype=self.dtype, kernel_init=init, name=name)

    h = group_norm(ch, self.num_groups, dtype=self.dtype, name="norm", owner=self.name,
                   epsilon=self.norm_eps,
                   min_group_size=self.min_group_size)(x)
    h = h.reshape(b, height * width, ch)
    split = lambda a: a.reshape(b, height * width, self.num_heads, head_dim)
    qkv_init = (default_init if self.qkv_init_scale == 1.0
                else fan_avg_init(self.qkv_init_scale))
    q = split(dense(qkv_init, "q")(h))
    k = split(dense(qkv_init, "k")(h))
    v = split(dense(qkv_init, "v")(h))
    logits = jnp.einsum("bqhd,bkhd->bhqk", q, k) * (head_dim ** -0.5)
    weights = jax.nn.softmax(logits.astype(jnp.float32), axis=-1).astype(v.dtype)
    h = jnp.einsum("bhqk,bkhd->bqhd", weights, v).reshape(b, height * width, ch)
    h = dense(zero_init, "proj_out")(h).reshape(b, height, width, ch)

    out = x + h
    if self.skip_rescale:
      out = out / math.sqrt(2.0)
    return out


DOWNSAMPLE_PADDINGS = ("same", "symmetric")


class Downsample(nn.Module):
  """Halves H and W: a stride-2 3x3 convolution, or 2x2 average pooling without a conv.

  The convolution's padding: "same" (with even H, W one row/column at the bottom/right
  only, as DDPM's TensorFlow code and diffusers' `downsample_padding=0`), or "symmetric"
  (one on every side, diffusers' `downsample_padding=1`). Both give H/2 x W/2 outputs for
  even H, W, but sample the input on grids shifted by one pixel.
  """
  with_conv: bool = True
  dtype: Dtype = jnp.float32
  padding: str = "same"

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """Maps [B, H, W, C] to [B, H/2, W/2, C]."""
    if self.padding not in DOWNSAMPLE_PADDINGS:
      raise ValueError(f"{self.name}: padding must be one of {DOWNSAMPLE_PADDINGS}, got "
                       f"{self.padding!r}.")
    if self.with_conv:
      padding = "SAME" if self.padding == "same" else ((1, 1), (1, 1))
      return nn.Conv(x.shape[-1], (3, 3), strides=(2, 2), padding=padding, dtype=self.dtype,
                     kernel_init=default_init, name="conv")(x)
    return nn.avg_pool(x, (2, 2), strides=(2, 2))


class Upsample(nn.Module):
  """Doubles H and W by nearest-neighbour repetition, then (optionally) a 3x3 convolution."""
  with_conv: bool = True
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """Maps [B, H, W, C] to [B, 2H, 2W, C]."""
    x = jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)
    if self.with_conv:
      x = nn.Conv(x.shape[-1], (3, 3), dtype=self.dtype, kernel_init=default_init,
                  name="conv")(x)
    return x


class ResampleConv(nn.Module):
  """A 3x3 convolution that doubles or halves H and W (NCSN++'s resampling "with conv").

  Without FIR: nearest-neighbour upsampling then a 3x3 conv, or a stride-2 3x3 conv ('SAME').
  With FIR: StyleGAN2's fused `upsample_conv_2d` (a stride-2 transposed 3x3 convolution,
  then the FIR kernel scaled by 4 with padding (1, 1)) or `conv_downsample_2d` (the FIR
  kernel with padding (2, 2), then a stride-2 'VALID' 3x3 convolution), as in score_sde's
  `up_or_down_sampling.Conv2d`.

  Attributes:
    features: output channels.
    resample: "up" or "down".
    fir: use the FIR kernel.
    kernel: the separable FIR kernel.
    dtype: computation dtype.
  """
  features: int
  resample: str
  fir: bool = False
  kernel: tuple[float, ...] = FIR_KERNEL
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """Maps [B, H, W, C] to [B, 2H, 2W, features] ("up") or [B, H/2, W/2, features]."""
    if self.resample not in ("up", "down"):
      raise ValueError(f"{self.name}: resample must be 'up' or 'down', got {self.resample!r}.")
    w = self.param("kernel", default_init, (3, 3, x.shape[-1], self.features))
    b = self.param("bias", nn.initializers.zeros, (self.features,))
    w, x = w.astype(self.dtype), x.astype(self.dtype)
    dims = ("NHWC", "HWIO", "NHWC")
    taps = len(self.kernel)
    if self.resample == "up":
      if self.fir:
        h = jax.lax.conv_transpose(x, w, (2, 2), "VALID", dimension_numbers=dims)
        p = taps - 4  # the FIR taps minus the factor minus the conv's extra width
        h = _fir_filter(h, self.kernel, gain=4.0, pad=((p + 1) // 2 + 1, p // 2 + 1))
      else:
        h = jax.lax.conv_general_dilated(upsample_2d(x), w, (1, 1), "SAME",
                                         dimension_numbers=dims)
    elif self.fir:
      h = _fir_filter(x, self.kernel, gain=1.0, pad=((taps + 1) // 2, taps // 2))
      h = jax.lax.conv_general_dilated(h, w, (2, 2), "VALID", dimension_numbers=dims)
    else:
      h = jax.lax.conv_general_dilated(x, w, (2, 2), "SAME", dimension_numbers=dims)
    return h + b.astype(self.dtype)[None, None, None, :]
