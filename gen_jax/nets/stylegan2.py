"""StyleGAN2 networks (Karras et al., "Analyzing and Improving the Image Quality of
StyleGAN", CVPR 2020), as configured by StyleGAN2-ADA (Karras et al., "Training Generative
Adversarial Networks with Limited Data", NeurIPS 2020). Layout NHWC.

Registered in `gen_jax.nets.NETS` (by `gen_jax/nets/__init__.py`):

  "stylegan2_generator"      z [B, Z], y [B] | None -> images [B, R, R, C]
      mapping(z, y) -> ws [B, num_ws, W];  synthesis(ws) -> images
  "stylegan2_discriminator"  x [B, R, R, C], y [B] | None -> logits [B]
  "stylegan2_mlp_generator", "stylegan2_mlp_discriminator"   the same pieces on vectors
      (2-D toy data): mapping network, modulated/demodulated dense layers with noise and
      skip outputs, minibatch-std discriminator.

Pieces, with the maths of the official code (NVlabs/stylegan2-ada-pytorch,
training/networks.py, torch_utils/ops/upfirdn2d.py and conv2d_resample.py):
* Equalised learning rate: every weight is stored ~ N(0, 1) / lr_mul and used times
  lr_mul / sqrt(fan_in); biases are used times lr_mul.
* Mapping network: z and the class embedding each normalised by their second moment,
  concatenated, `num_layers` dense lrelu layers with lr_mul 0.01; the tracked average
  w_avg <- lerp(mean_batch(w), w_avg, 0.995) while training (variable collection
  "w_avg"); truncation w' = w_avg + psi (w - w_avg).
* Modulated convolution: w'_ijk = s_i w_ijk, demodulated by
  sigma_j = (sum_ik w'_ijk^2 + 1e-8)^(-1/2). `modulated_conv` runs either as one grouped
  convolution with per-sample weights (fused, the inference path of the official code)
  or by scaling activations before and after a shared convolution (the training path);
  both are the same function (tests/gan/test_stylegan2.py).
* Resampling by the FIR filter [1, 3, 3, 1] (outer product, normalised): 2x upsampling =
  zero insertion + filter (gain 4) after the transposed convolution; 2x downsampling =
  filter then stride 2, with the paddings of conv2d_resample.
* Synthesis: learned 4x4 constant, per resolution conv0 (up 2), conv1, each followed by
  noise (per-pixel N(0, 1) times a learned strength, initialised 0), bias, lrelu * sqrt 2,
  clamp to +-conv_clamp; "skip" architecture: ToRGB (modulated 1x1, not demodulated, its
  styles times 1/sqrt(fan_in)) at every resolution, summed over upsampled images.
* Discriminator: "resnet" (or "orig") blocks: FromRGB at the top, conv0, conv1 (down 2),
  skip 1x1 (down 2, no bias), both paths times sqrt(1/2); epilogue: minibatch std
  (groups of `mbstd_group_size`, strided over the batch as x.reshape(G, -1, ...)), 3x3
  conv, dense, output; class-conditional by projection on the mapped label (cmap).

Channels: min(channel_base // resolution, channel_max) at each resolution.

Deviations from the official code:
* No mixed precision (num_fp16_res = 0): everything runs in float32; the conv_clamp
  clamping is kept. The fp16 pre-normalisation of modulated weights is therefore absent.
* Noise inputs are always fresh draws ("random" noise mode, rng stream "noise"); there are
  no fixed "const" noise buffers (the official grids use noise_mode='const').
* The upsampling convolution's kernel is not flipped (flip_weight); irrelevant when
  training from scratch (weights are not converted from the official checkpoints).
* The fused (grouped) modulated convolution is an option (`fused_modconv`), not chosen
  by train/eval mode: both paths compute the same function.
* The toy MLP networks are gen_jax's (the official code has no vector-data networks).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array
SQRT2 = math.sqrt(2.0)
W_AVG = "w_avg"  # variable collection of the mapping network's tracked average w


# ----------------------------------------------------------------------- primitives


def normalize_2nd_moment(x: Array, eps: float = 1e-8) -> Array:
  """x / sqrt(mean(x^2) + eps) over the last axis."""
  return x * jax.lax.rsqrt(jnp.mean(jnp.square(x), axis=-1, keepdims=True) + eps)


def bias_act(x: Array, b: Array | None, *, activation: str = "linear", gain: float = 1.0,
             clamp: float | None = None) -> Array:
  """act(x + b) * def_gain * gain, clamped to +-clamp (official bias_act: lrelu 0.2 has
  def_gain sqrt 2, linear 1)."""
  if b is not None:
    x = x + b.reshape((1,) * (x.ndim - 1) + (-1,))
  if activation == "lrelu":
    x = jax.nn.leaky_relu(x, 0.2) * (SQRT2 * gain)
  elif activation == "linear":
    x = x * gain if gain != 1.0 else x
  else:
    raise ValueError(f"Unknown activation {activation!r}; use 'lrelu' or 'linear'.")
  if clamp is not None:
    x = jnp.clip(x, -clamp, clamp)
  return x


def fir_kernel(taps: Sequence[float] = (1, 3, 3, 1)) -> np.ndarray:
  """The separable 2-D FIR filter outer(f, f) / sum, [k, k]."""
  f = np.asarray(taps, np.float32)
  k = np.outer(f, f)
  return k / k.sum()


def fir_filter(x: Array, kernel: np.ndarray, pad: tuple[int, int], *, gain: float = 1.0,
               stride: int = 1, lhs_dilation: int = 1) -> Array:
  """Depthwise FIR filtering of x [N, H, W, C] with zero padding (pad before, after).

  lhs_dilation 2 inserts zeros between pixels (2x upsampling); stride 2 keeps every
  other output (2x downsampling): upfirdn2d of the official code.
  """
  c = x.shape[-1]
  k = jnp.asarray(kernel * gain, x.dtype)[:, :, None, None]
  k = jnp.tile(k, (1, 1, 1, c))
  return jax.lax.conv_general_dilated(
      x, k, window_strides=(stride, stride), padding=(pad, pad),
      lhs_dilation=(lhs_dilation, lhs_dilation), feature_group_count=c,
      dimension_numbers=("NHWC", "HWIO", "NHWC"))


def upsample2d(x: Array, kernel: np.ndarray) -> Array:
  """[N, H, W, C] -> [N, 2H, 2W, C]: zero insertion, then the filter with gain 4.

  The official pads the zero-inserted image by (2, 1) for a 4-tap filter; with the
  trailing zero lhs_dilation omits, that is (2, 2) here.
  """
  fw = kernel.shape[0]
  p0 = (fw + 1) // 2
  p1 = (fw - 2) // 2 + 1
  return fir_filter(x, kernel, (p0, p1), gain=4.0, lhs_dilation=2)


def downsample2d(x: Array, kernel: np.ndarray) -> Array:
  """[N, H, W, C] -> [N, H/2, W/2, C]: the filter (padding (1, 1) for 4 taps), stride 2."""
  fw = kernel.shape[0]
  return fir_filter(x, kernel, ((fw - 1) // 2, (fw - 2) // 2), stride=2)


def conv2d(x: Array, w: Array, *, up: bool = False, down: bool = False,
           kernel: np.ndarray | None = None, groups: int = 1) -> Array:
  """Convolution of x [N, H, W, I*groups] with w [k, k, I, O] (HWIO), 'same' size, with
  conv2d_resample's optional 2x up- or downsampling through the FIR `kernel`.

  up:   transposed convolution (stride 2, no padding), then the filter with gain 4 and
        padding ((fw - 2) // 2 + 1 - (k - 1) + ..., as the official): output 2H.
  down: the filter with padding (fw - 2 + k - 1) / 2 each side, then stride 2 (k > 1),
        or downsample2d then the 1x1 convolution (k = 1): output H / 2.
  """
  k = w.shape[0]
  dn = ("NHWC", "HWIO", "NHWC")
  conv = lambda v, pad, stride=1, dil=1: jax.lax.conv_general_dilated(
      v, w, (stride, stride), (pad, pad), lhs_dilation=(dil, dil),
      feature_group_count=groups, dimension_numbers=dn)
  if up:
    fw = kernel.shape[0]
    y = conv(x, (k - 1, k - 1), dil=2)  # transposed conv: [N, 2H + k - 2, ...]
    p0 = (fw + 1) // 2 + k // 2 - (k - 1)
    p1 = (fw - 2) // 2 + k // 2 - (k - 2)
    return fir_filter(y, kernel, (p0, p1), gain=4.0)
  if down:
    if k == 1:
      return conv(downsample2d(x, kernel), (0, 0))
    fw = kernel.shape[0]
    pad = k // 2 + (fw - 1) // 2
    return conv(fir_filter(x, kernel, (pad, pad)), (0, 0), stride=2)
  if k == 1 and groups == 1:  # a matmul: XLA:CPU runs convolutions slowly inside loops
    return jnp.einsum("nhwi,io->nhwo", x, w[0, 0])
  return conv(x, (k // 2, k // 2))


def modulated_conv(x: Array, weight: Array, styles: Array, *, demodulate: bool = True,
                   up: bool = False, kernel: np.ndarray | None = None,
                   fused: bool = False) -> Array:
  """StyleGAN2's modulated (and demodulated) convolution.

  Per sample n: w'[n] = weight * styles[n] on the input axis, and with demodulation
  w''[n] = w'[n] / sqrt(sum_{kh, kw, i} w'[n]^2 + 1e-8) per output channel; the output is
  conv(x[n], w''[n]).

  Args:
    x: [N, H, W, I] activations.
    weight: [k, k, I, O] shared kernel.
    styles: [N, I] per-sample input scales.
    demodulate: normalise each output channel's per-sample weight to unit norm.
    up: 2x upsampling convolution (see conv2d).
    kernel: the FIR filter for `up`.
    fused: one grouped convolution over per-sample kernels (feature_group_count = N);
      otherwise scale x by the styles, run the shared convolution, scale by the
      demodulation coefficients (the same function, cheaper to differentiate).

  Returns:
    [N, H', W', O].
  """
  n, h, wd, i = x.shape
  kh, kw, wi, o = weight.shape
  if wi != i or styles.shape != (n, i):
    raise ValueError(f"modulated_conv: x {x.shape}, weight {weight.shape} and styles "
                     f"{styles.shape} disagree; expected weight [k, k, {i}, O], styles [{n}, {i}].")
  w = weight[None] * styles[:, None, None, :, None]  # [N, k, k, I, O]
  dcoefs = None
  if demodulate:
    dcoefs = jax.lax.rsqrt(jnp.sum(jnp.square(w), axis=(1, 2, 3)) + 1e-8)  # [N, O]
  if fused:
    if demodulate:
      w = w * dcoefs[:, None, None, None, :]
    xg = jnp.transpose(x, (1, 2, 0, 3)).reshape(1, h, wd, n * i)
    wg = jnp.transpose(w, (1, 2, 3, 0, 4)).reshape(kh, kw, i, n * o)
    y = conv2d(xg, wg, up=up, kernel=kernel, groups=n)  # [1, H', W', N * O]
    return jnp.transpose(y.reshape(y.shape[1], y.shape[2], n, o), (2, 0, 1, 3))
  y = conv2d(x * styles[:, None, None, :], weight, up=up, kernel=kernel)
  if demodulate:
    y = y * dcoefs[:, None, None, :]
  return y


def minibatch_std(x: Array, group_size: int, num_channels: int = 1) -> Array:
  """Appends the minibatch standard deviation: x [N, H, W, C] -> [N, H, W, C + F].

  As the official MinibatchStdLayer: groups of G = min(group_size, N) samples, sample i in
  group i mod (N / G); per group the std over its G samples (+1e-8 inside the sqrt),
  averaged over H, W and the C / F channels of each of the F channel groups.
  """
  n, h, w, c = x.shape
  g = min(group_size, n) if group_size else n
  if n % g:
    raise ValueError(f"The minibatch-std group size {g} must divide the batch {n}; set "
                     "model.discriminator.mbstd_group_size to a divisor of the batch.")
  f = num_channels
  y = x.reshape(g, n // g, h, w, f, c // f)
  y = y - jnp.mean(y, axis=0, keepdims=True)
  y = jnp.sqrt(jnp.mean(jnp.square(y), axis=0) + 1e-8)  # [n/G, H, W, F, c]
  y = jnp.mean(y, axis=(1, 2, 4))  # [n/G, F]
  y = jnp.tile(y, (g, 1))[:, None, None, :]  # [N, 1, 1, F]
  return jnp.concatenate([x, jnp.broadcast_to(y, (n, h, w, f))], axis=-1)


# ----------------------------------------------------------------------- layers


def _randn(scale: float = 1.0):
  return lambda key, shape, dtype=jnp.float32: jax.random.normal(key, shape, dtype) * scale


class EqualDense(nn.Module):
  """Dense layer with equalised learning rate (official FullyConnectedLayer)."""

  features: int
  bias_init: float = 0.0
  lr_multiplier: float = 1.0
  activation: str = "linear"
  use_bias: bool = True

  @nn.compact
  def __call__(self, x: Array) -> Array:
    fan_in = x.shape[-1]
    w = self.param("weight", _randn(1.0 / self.lr_multiplier), (fan_in, self.features))
    y = x @ (w * (self.lr_multiplier / math.sqrt(fan_in)))
    b = None
    if self.use_bias:
      b = self.param("bias", nn.initializers.constant(self.bias_init),
                     (self.features,)) * self.lr_multiplier
    return bias_act(y, b, activation=self.activation)


class EqualConv(nn.Module):
  """Conv2dLayer: equalised-lr convolution with optional 2x downsampling, bias, act."""

  features: int
  kernel_size: int = 3
  down: bool = False
  activation: str = "lrelu"
  use_bias: bool = True
  conv_clamp: float | None = None
  resample_filter: tuple[int, ...] = (1, 3, 3, 1)

  @nn.compact
  def __call__(self, x: Array, gain: float = 1.0) -> Array:
    k, i = self.kernel_size, x.shape[-1]
    w = self.param("weight", _randn(), (k, k, i, self.features))
    y = conv2d(x, w * (1.0 / math.sqrt(i * k * k)), down=self.down,
               kernel=fir_kernel(self.resample_filter))
    b = self.param("bias", nn.initializers.zeros, (self.features,)) if self.use_bias else None
    clamp = None if self.conv_clamp is None else self.conv_clamp * gain
    return bias_act(y, b, activation=self.activation, gain=gain, clamp=clamp)


class MappingNetwork(nn.Module):
  """z [B, Z], y [B] | None -> ws [B, num_ws, W] (num_ws None: [B, W]).

  Attributes:
    z_dim, w_dim: latent sizes (z_dim 0: label only, the discriminator's cmap).
    num_classes: > 0 embeds one-hot labels (embedding size w_dim) and concatenates them.
    num_ws: copies of w broadcast for the synthesis layers.
    num_layers: dense lrelu layers (8 in StyleGAN2, 2 in the ADA paper's CIFAR config).
    lr_multiplier: learning-rate multiplier of the dense layers (0.01).
    w_avg_beta: decay of the tracked average w (None: not tracked).
  """

  z_dim: int
  w_dim: int
  num_classes: int = 0
  num_ws: int | None = None
  num_layers: int = 8
  lr_multiplier: float = 0.01
  w_avg_beta: float | None = 0.995

  @nn.compact
  def __call__(self, z: Array | None, y: Array | None = None, *,
               truncation_psi: float = 1.0, update_w_avg: bool = False) -> Array:
    parts = []
    if self.z_dim:
      parts.append(normalize_2nd_moment(z.astype(jnp.float32)))
    if self.num_classes:
      if y is None:
        raise ValueError("This mapping network is class-conditional: pass labels y [B].")
      onehot = jax.nn.one_hot(y, self.num_classes, dtype=jnp.float32)
      parts.append(normalize_2nd_moment(EqualDense(self.w_dim, name="embed")(onehot)))
    x = jnp.concatenate(parts, axis=-1) if len(parts) > 1 else parts[0]
    for idx in range(self.num_layers):
      x = EqualDense(self.w_dim, lr_multiplier=self.lr_multiplier, activation="lrelu",
                     name=f"fc{idx}")(x)
    if self.w_avg_beta is not None:
      w_avg = self.variable(W_AVG, "w_avg", jnp.zeros, (self.w_dim,), jnp.float32)
      if update_w_avg and not self.is_initializing():
        mean = jnp.mean(jax.lax.stop_gradient(x), axis=0)
        w_avg.value = mean + self.w_avg_beta * (w_avg.value - mean)
    if self.num_ws is not None:
      x = jnp.broadcast_to(x[:, None, :], (x.shape[0], self.num_ws, self.w_dim))
    if truncation_psi != 1.0:
      if self.w_avg_beta is None:
        raise ValueError("Truncation needs the tracked average w (w_avg_beta set).")
      avg = w_avg.value.reshape((1,) * (x.ndim - 1) + (-1,))
      x = avg + truncation_psi * (x - avg)
    return x


class SynthesisLayer(nn.Module):
  """Modulated 3x3 conv (optionally up 2), noise, bias, lrelu, clamp."""

  features: int
  up: bool = False
  use_noise: bool = True
  conv_clamp: float | None = None
  fused_modconv: bool = False
  resample_filter: tuple[int, ...] = (1, 3, 3, 1)
  kernel_size: int = 3

  @nn.compact
  def __call__(self, x: Array, w: Array, gain: float = 1.0) -> Array:
    i = x.shape[-1]
    styles = EqualDense(i, bias_init=1.0, name="affine")(w)
    weight = self.param("weight", _randn(), (self.kernel_size, self.kernel_size, i,
                                             self.features))
    y = modulated_conv(x, weight, styles, up=self.up, kernel=fir_kernel(self.resample_filter),
                       fused=self.fused_modconv)
    if self.use_noise:
      strength = self.param("noise_strength", nn.initializers.zeros, ())
      n, h, wd, _ = y.shape
      y = y + jax.random.normal(self.make_rng("noise"), (n, h, wd, 1), y.dtype) * strength
    b = self.param("bias", nn.initializers.zeros, (self.features,))
    clamp = None if self.conv_clamp is None else self.conv_clamp * gain
    return bias_act(y, b, activation="lrelu", gain=gain, clamp=clamp)


class ToRGB(nn.Module):
  """Modulated 1x1 conv without demodulation (styles times 1/sqrt(fan_in)), bias."""

  channels: int
  conv_clamp: float | None = None
  fused_modconv: bool = False

  @nn.compact
  def __call__(self, x: Array, w: Array) -> Array:
    i = x.shape[-1]
    styles = EqualDense(i, bias_init=1.0, name="affine")(w) * (1.0 / math.sqrt(i))
    weight = self.param("weight", _randn(), (1, 1, i, self.channels))
    y = modulated_conv(x, weight, styles, demodulate=False, fused=self.fused_modconv)
    b = self.param("bias", nn.initializers.zeros, (self.channels,))
    return bias_act(y, b, clamp=self.conv_clamp)


def channels_at(resolution: int, channel_base: int, channel_max: int) -> int:
  return min(channel_base // resolution, channel_max)


def _check_resolution(resolution: int) -> int:
  log2 = int(round(math.log2(resolution))) if resolution > 0 else 0
  if resolution < 4 or 2 ** log2 != resolution:
    raise ValueError(f"StyleGAN2 needs a square power-of-two resolution >= 4, got "
                     f"{resolution}; set data.image_size (e.g. 64).")
  return log2


# ----------------------------------------------------------------------- generator


class StyleGAN2Generator(nn.Module):
  """Mapping network + "skip" synthesis network.

  Attributes:
    out_shape: (R, R, C) of the images.
    num_classes: > 0 for a class-conditional mapping network.
    z_dim, w_dim: latent sizes (512, 512 in the paper).
    mapping_layers: dense layers of the mapping network (8; 2 for the CIFAR config).
    mapping_lr_multiplier: 0.01.
    w_avg_beta: decay of the tracked average w (0.995).
    channel_base, channel_max: channels min(channel_base // res, channel_max).
    conv_clamp: clamp of the conv outputs (256 in the ADA configs; None: off).
    fused_modconv: grouped per-sample convolutions (see modulated_conv).
    use_noise: noise inputs.
  """

  out_shape: tuple[int, ...]
  num_classes: int = 0
  z_dim: int = 512
  w_dim: int = 512
  mapping_layers: int = 8
  mapping_lr_multiplier: float = 0.01
  w_avg_beta: float = 0.995
  channel_base: int = 32768
  channel_max: int = 512
  conv_clamp: float | None = 256.0
  fused_modconv: bool = False
  use_noise: bool = True

  def setup(self):
    if len(self.out_shape) != 3 or self.out_shape[0] != self.out_shape[1]:
      raise ValueError(f"stylegan2_generator makes square images; got data shape "
                       f"{self.out_shape}. Use stylegan2_mlp_generator for vectors.")
    log2 = _check_resolution(self.out_shape[0])
    self.resolutions = [2 ** i for i in range(2, log2 + 1)]
    self.mapping_net = MappingNetwork(
        z_dim=self.z_dim, w_dim=self.w_dim, num_classes=self.num_classes,
        num_ws=self.num_ws, num_layers=self.mapping_layers,
        lr_multiplier=self.mapping_lr_multiplier, w_avg_beta=self.w_avg_beta)
    ch = lambda r: channels_at(r, self.channel_base, self.channel_max)
    self.const = self.param("const", _randn(), (4, 4, ch(4)))
    kw = dict(conv_clamp=self.conv_clamp, fused_modconv=self.fused_modconv,
              use_noise=self.use_noise)
    self.conv0 = {str(r): SynthesisLayer(ch(r), up=True, name=f"b{r}_conv0", **kw)
                  for r in self.resolutions[1:]}
    self.conv1 = {str(r): SynthesisLayer(ch(r), name=f"b{r}_conv1", **kw) for r in self.resolutions}
    self.torgb = {str(r): ToRGB(self.out_shape[-1], conv_clamp=self.conv_clamp,
                           fused_modconv=self.fused_modconv, name=f"b{r}_torgb")
                  for r in self.resolutions}

  @property
  def num_ws(self) -> int:
    """Number of w vectors synthesis reads: 2 per block (1 at 4x4) + the last ToRGB."""
    log2 = _check_resolution(self.out_shape[0])
    return 2 * (log2 - 2) + 2

  def mapping(self, z: Array, y: Array | None, *, truncation_psi: float = 1.0,
              update_w_avg: bool = False) -> Array:
    """ws [B, num_ws, W]; update_w_avg=True moves the tracked average (training)."""
    return self.mapping_net(z, y, truncation_psi=truncation_psi, update_w_avg=update_w_avg)

  def synthesis(self, ws: Array) -> Array:
    """ws [B, num_ws, W] -> images [B, R, R, C]; noise from the "noise" rng stream.

    Block at resolution r reads ws[idx] (conv0), ws[idx + 1] (conv1) and ws[idx + 2]
    (ToRGB), then idx advances by its number of convs (ToRGB shares its w with the next
    block's first conv), as the official SynthesisNetwork.
    """
    if ws.shape[1:] != (self.num_ws, self.w_dim):
      raise ValueError(f"synthesis expects ws [B, {self.num_ws}, {self.w_dim}], got {ws.shape}.")
    kernel = fir_kernel()
    x = jnp.broadcast_to(self.const[None], (ws.shape[0], *self.const.shape))
    img, idx = None, 0
    for r in self.resolutions:
      if r > 4:
        x = self.conv0[str(r)](x, ws[:, idx])
        idx += 1
      x = self.conv1[str(r)](x, ws[:, idx])
      idx += 1
      y = self.torgb[str(r)](x, ws[:, idx])
      img = y if img is None else upsample2d(img, kernel) + y
    return img

  def __call__(self, z: Array, y: Array | None = None, *, train: bool = False,
               truncation_psi: float = 1.0) -> Array:
    """images [B, R, R, C] = synthesis(mapping(z, y)); train=True updates w_avg."""
    return self.synthesis(self.mapping(z, y, truncation_psi=truncation_psi, update_w_avg=train))


# ----------------------------------------------------------------------- discriminator


class StyleGAN2Discriminator(nn.Module):
  """"resnet" (default) or "orig" discriminator with a minibatch-std epilogue.

  Attributes:
    num_classes: > 0 projects the output on the mapped label (cmap).
    architecture: "resnet" | "orig" (the ADA CIFAR config uses "orig").
    channel_base, channel_max: as the generator.
    mbstd_group_size, mbstd_num_channels: minibatch std (4 and 1; 32 for CIFAR).
    conv_clamp: clamp of the conv outputs.
    mapping_layers: layers of the label mapping network (8, the official default).
  """

  num_classes: int = 0
  architecture: str = "resnet"
  channel_base: int = 32768
  channel_max: int = 512
  mbstd_group_size: int = 4
  mbstd_num_channels: int = 1
  conv_clamp: float | None = 256.0
  mapping_layers: int = 8

  @nn.compact
  def __call__(self, x: Array, y: Array | None = None, t: Array | None = None, *,
               train: bool = False) -> Array:
    del t, train
    if self.architecture not in ("resnet", "orig"):
      raise ValueError(f"architecture must be 'resnet' or 'orig', got {self.architecture!r}.")
    log2 = _check_resolution(x.shape[1])
    ch = lambda r: channels_at(r, self.channel_base, self.channel_max)
    clamp = dict(conv_clamp=self.conv_clamp)
    h = EqualConv(ch(x.shape[1]), kernel_size=1, name="fromrgb", **clamp)(x)
    for r in [2 ** i for i in range(log2, 2, -1)]:
      if self.architecture == "resnet":
        skip = EqualConv(ch(r // 2), kernel_size=1, down=True, use_bias=False,
                         activation="linear", name=f"b{r}_skip")(h, gain=math.sqrt(0.5))
        h = EqualConv(ch(r), name=f"b{r}_conv0", **clamp)(h)
        h = EqualConv(ch(r // 2), down=True, name=f"b{r}_conv1", **clamp)(h, gain=math.sqrt(0.5))
        h = skip + h
      else:
        h = EqualConv(ch(r), name=f"b{r}_conv0", **clamp)(h)
        h = EqualConv(ch(r // 2), down=True, name=f"b{r}_conv1", **clamp)(h)
    c4 = ch(4)
    if self.mbstd_group_size:
      h = minibatch_std(h, self.mbstd_group_size, self.mbstd_num_channels)
    h = EqualConv(c4, name="b4_conv", **clamp)(h)
    h = EqualDense(c4, activation="lrelu", name="b4_fc")(h.reshape(h.shape[0], -1))
    return _conditional_output(self, h, y, c4)


def _conditional_output(module: nn.Module, h: Array, y: Array | None, cmap_dim: int) -> Array:
  """logits [B]: out(h), or <out(h), cmap(y)> / sqrt(cmap_dim) when class-conditional."""
  if not module.num_classes:
    return EqualDense(1, name="out")(h)[:, 0]
  if y is None:
    raise ValueError("This discriminator is class-conditional: pass labels y [B].")
  cmap = MappingNetwork(z_dim=0, w_dim=cmap_dim, num_classes=module.num_classes,
                        num_layers=module.mapping_layers, w_avg_beta=None, name="mapping")(None, y)
  out = EqualDense(cmap_dim, name="out")(h)
  return jnp.sum(out * cmap, axis=-1) / math.sqrt(cmap_dim)  # [B]


# ----------------------------------------------------------------------- 2-D toy networks


class StyleGAN2MLPGenerator(nn.Module):
  """StyleGAN2's generator on vectors: mapping network, then `num_layers` modulated and
  demodulated dense layers (1x1 modulated convs on [B, 1, 1, C]) from a learned constant,
  each with noise, and a "skip" output: the sum of an unmodulated-demod ToRGB-style dense
  projection after every layer. Layer i reads ws[i], its output projection ws[i + 1].

  Attributes:
    out_shape: (D,) of the data.
    num_classes, z_dim, w_dim, mapping_layers, mapping_lr_multiplier, w_avg_beta: as the
      image generator.
    hidden: width of the modulated layers.
    num_layers: modulated layers.
  """

  out_shape: tuple[int, ...]
  num_classes: int = 0
  z_dim: int = 32
  w_dim: int = 64
  mapping_layers: int = 4
  mapping_lr_multiplier: float = 0.01
  w_avg_beta: float = 0.995
  hidden: int = 128
  num_layers: int = 3
  use_noise: bool = True

  def setup(self):
    if len(self.out_shape) != 1:
      raise ValueError(f"stylegan2_mlp_generator makes vectors; got data shape {self.out_shape}.")
    self.mapping_net = MappingNetwork(
        z_dim=self.z_dim, w_dim=self.w_dim, num_classes=self.num_classes,
        num_ws=self.num_ws, num_layers=self.mapping_layers,
        lr_multiplier=self.mapping_lr_multiplier, w_avg_beta=self.w_avg_beta)
    self.const = self.param("const", _randn(), (1, 1, self.hidden))
    self.layers = [SynthesisLayer(self.hidden, kernel_size=1, use_noise=self.use_noise,
                                  conv_clamp=None, name=f"layer{i}")
                   for i in range(self.num_layers)]
    self.outs = [ToRGB(self.out_shape[0], conv_clamp=None, name=f"out{i}")
                 for i in range(self.num_layers)]

  @property
  def num_ws(self) -> int:
    return self.num_layers + 1

  def mapping(self, z, y, *, truncation_psi: float = 1.0, update_w_avg: bool = False):
    return self.mapping_net(z, y, truncation_psi=truncation_psi, update_w_avg=update_w_avg)

  def synthesis(self, ws: Array) -> Array:
    x = jnp.broadcast_to(self.const[None], (ws.shape[0], 1, 1, self.hidden))
    out = 0.0
    for i, (layer, to_out) in enumerate(zip(self.layers, self.outs)):
      x = layer(x, ws[:, i])
      out = out + to_out(x, ws[:, i + 1])
    return out[:, 0, 0, :]

  def __call__(self, z, y=None, *, train: bool = False, truncation_psi: float = 1.0):
    return self.synthesis(self.mapping(z, y, truncation_psi=truncation_psi, update_w_avg=train))


class StyleGAN2MLPDiscriminator(nn.Module):
  """Equalised-lr lrelu MLP with a minibatch-std feature before its last hidden layer."""

  num_classes: int = 0
  hidden: Sequence[int] = (128, 128, 128)
  mbstd_group_size: int = 4
  mapping_layers: int = 2

  @nn.compact
  def __call__(self, x, y=None, t=None, *, train: bool = False):
    del t, train
    h = x.reshape(x.shape[0], -1)
    for i, width in enumerate(self.hidden):
      if i == len(self.hidden) - 1 and self.mbstd_group_size:
        h = minibatch_std(h[:, None, None, :], self.mbstd_group_size)[:, 0, 0, :]
      h = EqualDense(width, activation="lrelu", name=f"fc{i}")(h)
    return _conditional_output(self, h, y, self.hidden[-1])


def count_params(params: Any) -> int:
  return sum(int(np.prod(p.shape)) for p in jax.tree.leaves(params))
