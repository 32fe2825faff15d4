"""PixelCNN (van den Oord et al. 2016a) and gated PixelCNN (van den Oord et al. 2016b).

Both model images x [B, H, W, C] in raster order. The network output at pixel (i, j) may
depend only on pixels before it (rows above, and the same row to the left); with
`channel_conditional=True` the output for channel c of (i, j) may also see channels < c of
(i, j) (R -> G -> B), which a categorical (256-way softmax) likelihood needs.

Outputs:
  channel_conditional=True:   [B, H, W, C, num_outputs]   e.g. 256 logits per channel
  channel_conditional=False:  [B, H, W, num_outputs]      e.g. mixture parameters of the
                                                          whole pixel (its own channel order)

Masked convolutions (`MaskedConv2D`): taps after the centre in raster order are zero. At
the centre, features are split into `num_groups` contiguous groups (group g carries what
channels <= g may see); mask 'A' connects input group gi to output group go when gi < go,
mask 'B' when gi <= go. The first layer is 'A' (the pixel itself is unseen), later ones 'B'.
With num_groups = C the channels are ordered R -> G -> B; with num_groups = 1 mask 'A'
excludes the whole current pixel.

PixelCNN: a 7x7 'A' conv, residual blocks (ReLU, 1x1, ReLU, 3x3 'B', ReLU, 1x1, all masked
'B', h -> h/2 -> h/2 -> h), then ReLU, 1x1 'B' and ReLU, 1x1 'B' to the outputs (paper,
Table 1). It has the known blind spot above-right of each pixel.

Gated PixelCNN: a vertical stack (rows strictly above, as a (k//2 + 1) x k conv on rows up
to i applied to a stack that is shifted down one row first) and a horizontal stack (a 1 x
(k//2 + 1) masked conv over the current row up to the pixel), so there is no blind spot.
Each layer computes tanh(W_f * x + V_f y) * sigmoid(W_g * x + V_g y) in both stacks, feeds
the vertical pre-activation into the horizontal one through a 1x1 conv, and has a residual
1x1 connection in the horizontal stack; y is a learned class embedding (conditional
PixelCNN). Deviations from the papers: no skip connections are summed from every layer; the
first gated layer's vertical input is the image itself (shifted), not a separate stack.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np


def down_shift(x: jax.Array) -> jax.Array:
  """[B, H, W, F]: row i takes row i - 1 (row 0 zeros)."""
  return jnp.pad(x, ((0, 0), (1, 0), (0, 0), (0, 0)))[:, :-1]


def right_shift(x: jax.Array) -> jax.Array:
  """[B, H, W, F]: column j takes column j - 1 (column 0 zeros)."""
  return jnp.pad(x, ((0, 0), (0, 0), (1, 0), (0, 0)))[:, :, :-1]


def feature_groups(num_features: int, num_groups: int, num_blocks: int = 1) -> np.ndarray:
  """Group index of each feature: `num_blocks` equal blocks, each split in contiguous groups."""
  if num_features % (num_groups * num_blocks):
    raise ValueError(f"{num_features} features cannot be split into {num_blocks} block(s) of "
                     f"{num_groups} channel groups; use a multiple of {num_groups * num_blocks}.")
  per_block = num_features // num_blocks
  f = np.arange(num_features) % per_block
  return f * num_groups // per_block


def causal_mask(kernel_size: tuple[int, int], center: tuple[int, int], in_groups: np.ndarray,
                out_groups: np.ndarray, mask_type: str) -> np.ndarray:
  """float32 [kh, kw, in, out] mask: taps before `center` in raster order, grouped centre."""
  if mask_type not in ("A", "B"):
    raise ValueError(f"mask_type must be 'A' or 'B', not {mask_type!r}.")
  kh, kw = kernel_size
  mask = np.zeros((kh, kw, len(in_groups), len(out_groups)), np.float32)
  ci, cj = center
  for a in range(kh):
    for b in range(kw):
      if a < ci or (a == ci and b < cj):
        mask[a, b] = 1.0
  allowed = (in_groups[:, None] < out_groups[None, :]) if mask_type == "A" else (
      in_groups[:, None] <= out_groups[None, :])
  mask[ci, cj] = allowed.astype(np.float32)
  return mask


class MaskedConv2D(nn.Module):
  """A convolution whose kernel sees only the pixels before the centre (and, at the centre,
  the channel groups the mask type allows). See the module docstring.

  Attributes:
    features: output features (a multiple of num_groups * num_blocks).
    kernel_size: (kh, kw).
    mask_type: 'A' or 'B'.
    num_groups: channel groups at the centre (C for R -> G -> B, 1 for whole pixels).
    num_blocks: output features come in this many blocks with the same group layout (2 for
      the two halves of a gate).
    row: a 1 x kw kernel over the current row ending at the pixel (horizontal stack) instead
      of a kh x kw kernel centred on it.
  """

  features: int
  kernel_size: tuple[int, int] = (3, 3)
  mask_type: str = "B"
  num_groups: int = 1
  num_blocks: int = 1
  row: bool = False

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    kh, kw = (1, self.kernel_size[1]) if self.row else tuple(self.kernel_size)
    in_features = x.shape[-1]
    in_groups = feature_groups(in_features, self.num_groups)
    out_groups = feature_groups(self.features, self.num_groups, self.num_blocks)
    center = (0, kw - 1) if self.row else (kh // 2, kw // 2)
    mask = causal_mask((kh, kw), center, in_groups, out_groups, self.mask_type)
    kernel = self.param("kernel", nn.initializers.lecun_normal(),
                        (kh, kw, in_features, self.features))
    bias = self.param("bias", nn.initializers.zeros, (self.features,))
    padding = ((0, 0), (kw - 1, 0)) if self.row else ((kh // 2, kh // 2), (kw // 2, kw // 2))
    y = jax.lax.conv_general_dilated(x, kernel * mask, (1, 1), padding,
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return y + bias[None, None, None, :]


class DownShiftedConv(nn.Module):
  """Conv over rows <= i (kernel (kh, kw): rows i-kh+1..i, columns centred); PixelCNN++."""

  features: int
  kernel_size: tuple[int, int] = (2, 3)
  strides: tuple[int, int] = (1, 1)
  kernel_init: Any = nn.initializers.lecun_normal()

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    kh, kw = self.kernel_size
    x = jnp.pad(x, ((0, 0), (kh - 1, 0), ((kw - 1) // 2, (kw - 1) // 2), (0, 0)))
    return nn.Conv(self.features, (kh, kw), self.strides, padding="VALID",
                   kernel_init=self.kernel_init)(x)


class DownRightShiftedConv(nn.Module):
  """Conv over rows <= i and columns <= j (kernel (kh, kw) ending at the pixel); PixelCNN++."""

  features: int
  kernel_size: tuple[int, int] = (2, 2)
  strides: tuple[int, int] = (1, 1)
  kernel_init: Any = nn.initializers.lecun_normal()

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    kh, kw = self.kernel_size
    x = jnp.pad(x, ((0, 0), (kh - 1, 0), (kw - 1, 0), (0, 0)))
    return nn.Conv(self.features, (kh, kw), self.strides, padding="VALID",
                   kernel_init=self.kernel_init)(x)


def _embed(num_classes: int, features: int, labels, name: str):
  """Class embedding [B, 1, 1, features], or 0 for an unconditional model."""
  if not num_classes:
    return 0.0
  if labels is None:
    raise ValueError(f"This network is class-conditional (num_classes={num_classes}); pass "
                     "labels [B].")
  return nn.Embed(num_classes, features, name=name)(labels)[:, None, None, :]


def _output(out: jax.Array, channels: int, channel_conditional: bool, num_outputs: int):
  if not channel_conditional:
    return out
  b, h, w, _ = out.shape
  return out.reshape(b, h, w, channels, num_outputs)


class PixelCNN(nn.Module):
  """The original PixelCNN with masked convolutions (see the module docstring).

  Attributes:
    data_channels: C of the images.
    num_outputs: outputs per channel (channel_conditional) or per pixel.
    channel_conditional: order the channels of a pixel (see the module docstring).
    hidden: h, features of the residual stream (2h in the paper's notation is `hidden`).
    num_layers: residual blocks.
    output_hidden: features of the two 1x1 output layers.
    first_kernel: size of the first ('A') convolution (7 in the paper).
    num_classes: > 0 adds a class embedding to every block (conditional PixelCNN).
  """

  data_channels: int
  num_outputs: int
  channel_conditional: bool = True
  hidden: int = 128
  num_layers: int = 12
  output_hidden: int = 1024
  first_kernel: int = 7
  num_classes: int = 0

  @nn.compact
  def __call__(self, x: jax.Array, labels: jax.Array | None = None,
               train: bool = False) -> jax.Array:
    del train
    g = self.data_channels if self.channel_conditional else 1
    k = self.first_kernel
    h = MaskedConv2D(self.hidden, (k, k), "A", g, name="conv_in")(x)
    for i in range(self.num_layers):
      y = MaskedConv2D(self.hidden // 2, (1, 1), "B", g, name=f"block{i}_in")(nn.relu(h))
      y = y + _embed(self.num_classes, self.hidden // 2, labels, f"block{i}_label")
      y = MaskedConv2D(self.hidden // 2, (3, 3), "B", g, name=f"block{i}_conv")(nn.relu(y))
      h = h + MaskedConv2D(self.hidden, (1, 1), "B", g, name=f"block{i}_out")(nn.relu(y))
    h = MaskedConv2D(self.output_hidden, (1, 1), "B", g, name="out_hidden")(nn.relu(h))
    per = self.data_channels if self.channel_conditional else 1
    out = MaskedConv2D(self.num_outputs * per, (1, 1), "B", g, name="out")(nn.relu(h))
    return _output(out, self.data_channels, self.channel_conditional, self.num_outputs)


def _gate(x: jax.Array) -> jax.Array:
  a, b = jnp.split(x, 2, axis=-1)
  return jnp.tanh(a) * jax.nn.sigmoid(b)


class GatedPixelCNN(nn.Module):
  """Gated PixelCNN with vertical and horizontal stacks (see the module docstring).

  Attributes:
    data_channels, num_outputs, channel_conditional, num_classes: as for PixelCNN.
    hidden: features of both stacks (a multiple of C when channel_conditional).
    num_layers: gated layers.
    kernel_size: k (the vertical stack is (k//2 + 1) x k, the horizontal 1 x (k//2 + 1)).
    output_hidden: features of the 1x1 output layer.
  """

  data_channels: int
  num_outputs: int
  channel_conditional: bool = True
  hidden: int = 128
  num_layers: int = 15
  kernel_size: int = 5
  output_hidden: int = 1024
  num_classes: int = 0

  @nn.compact
  def __call__(self, x: jax.Array, labels: jax.Array | None = None,
               train: bool = False) -> jax.Array:
    del train
    g = self.data_channels if self.channel_conditional else 1
    k, f = self.kernel_size, self.hidden
    v = down_shift(DownShiftedConv(f, (k // 2 + 1, k), name="v_in")(x))
    h = MaskedConv2D(f, (1, k // 2 + 1), "A", g, row=True, name="h_in")(x)
    for i in range(self.num_layers):
      cond = _embed(self.num_classes, 2 * f, labels, f"layer{i}_label")
      v_pre = DownShiftedConv(2 * f, (k // 2 + 1, k), name=f"layer{i}_v")(v)
      link = nn.Conv(2 * f, (1, 1), name=f"layer{i}_v_to_h")(v_pre)
      h_pre = MaskedConv2D(2 * f, (1, k // 2 + 1), "B", g, num_blocks=2, row=True,
                           name=f"layer{i}_h")(h)
      v = _gate(v_pre + cond)
      h = h + MaskedConv2D(f, (1, 1), "B", g, name=f"layer{i}_h_res")(_gate(h_pre + link + cond))
    per = self.data_channels if self.channel_conditional else 1
    out = MaskedConv2D(self.output_hidden, (1, 1), "B", g, name="out_hidden")(nn.relu(h))
    out = MaskedConv2D(self.num_outputs * per, (1, 1), "B", g, name="out")(nn.relu(out))
    return _output(out, self.data_channels, self.channel_conditional, self.num_outputs)
