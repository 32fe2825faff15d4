"""PixelCNN++ (Salimans, Karpathy, Chen & Kingma, ICLR 2017), after openai/pixel-cnn.

Two streams over x [B, H, W, C] in [-1, 1]: `u` sees the rows strictly above a pixel
(down-shifted convs), `ul` the rows above and the pixels to the left (down-right-shifted
convs), so the output at (i, j) depends only on pixels before (i, j) in raster order —
with no blind spot. Gated ResNet blocks

  c1 = conv(concat_elu(x)) [+ nin(concat_elu(a))],  c2 = conv(dropout(concat_elu(c1)))
  x + c2[:F] * sigmoid(c2[F:] [+ class embedding])

run `nr_resnet` times per scale on the way down (32 -> 16 -> 8 with stride-2 shifted convs)
and nr_resnet (+1) times per scale on the way up (stride-2 shifted transposed convs), every
up-pass block taking the matching down-pass activation as its shortcut `a` (`ul` takes
[u, ul_shortcut]). The output `nin(elu(ul))` has `num_outputs` per pixel (10 K for a
K-component RGB discretized logistic mixture, 3 K for one channel): the channels of a
pixel are ordered by the likelihood (`gen_jax.distributions.discretized_logistic`), not by
the network.

Deviations from the official code (pixel_cnn_pp/model.py, nn.py):
  * plain convolutions (lecun-normal init; the last conv of each block scaled to 0.1 of
    it) instead of weight normalisation with data-dependent initialisation;
  * `num_scales` (official: 3) may be changed, for small images or small tests;
  * one channel (grayscale) is supported through the likelihood's 1-channel layout (the
    official loss assumes RGB);
  * the class embedding replaces `h @ hw` with a one-hot h (the same function);
  * the energy-distance variant is not implemented.
"""

from __future__ import annotations

from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from gen_jax.nets.pixelcnn import (DownRightShiftedConv, DownShiftedConv, down_shift,
                                   right_shift)


def concat_elu(x: jax.Array) -> jax.Array:
  return jax.nn.elu(jnp.concatenate([x, -x], axis=-1))


_SMALL_INIT = nn.initializers.variance_scaling(0.01, "fan_in", "truncated_normal")


class GatedResnet(nn.Module):
  """x + gated(conv(...)) with an optional shortcut input `a` and class embedding."""

  conv: Callable[..., nn.Module]
  dropout: float = 0.0
  num_classes: int = 0

  @nn.compact
  def __call__(self, x, a=None, labels=None, *, train: bool = False):
    f = x.shape[-1]
    c1 = self.conv(f)(concat_elu(x))
    if a is not None:
      c1 = c1 + nn.Dense(f, name="shortcut")(concat_elu(a))
    c1 = nn.Dropout(self.dropout, deterministic=not train)(concat_elu(c1))
    c2 = self.conv(2 * f, kernel_init=_SMALL_INIT)(c1)
    if self.num_classes:
      c2 = c2 + nn.Embed(self.num_classes, 2 * f, name="label")(labels)[:, None, None, :]
    y, gate = jnp.split(c2, 2, axis=-1)
    return x + y * jax.nn.sigmoid(gate)


class _ShiftedConvTranspose(nn.Module):
  """Stride-2 transposed conv cropped to keep the shift: (2, 3) down, (2, 2) down-right."""

  features: int
  kernel_size: tuple[int, int]
  right: bool

  @nn.compact
  def __call__(self, x):
    b, h, w, _ = x.shape
    y = nn.ConvTranspose(self.features, self.kernel_size, (2, 2), padding="VALID")(x)
    left = 0 if self.right else (self.kernel_size[1] - 1) // 2
    return y[:, :2 * h, left:left + 2 * w]


class PixelCNNpp(nn.Module):
  """PixelCNN++ network: x [B, H, W, C] in [-1, 1] -> [B, H, W, num_outputs].

  Attributes:
    data_channels: C (1 or 3).
    num_outputs: outputs per pixel (the likelihood's parameters).
    channel_conditional: must be False (the likelihood orders a pixel's channels); present
      so that every image network shares one constructor.
    nr_filters: F, features of both streams (160 in the paper).
    nr_resnet: gated ResNet blocks per scale on the way down (5).
    num_scales: resolutions (3: H, H/2, H/4); H and W must divide by 2^(num_scales-1).
    dropout: dropout rate inside the blocks (0.5).
    num_classes: > 0 conditions every block on a class label.
  """

  data_channels: int
  num_outputs: int
  channel_conditional: bool = False
  nr_filters: int = 160
  nr_resnet: int = 5
  num_scales: int = 3
  dropout: float = 0.5
  num_classes: int = 0

  @nn.compact
  def __call__(self, x: jax.Array, labels: jax.Array | None = None,
               train: bool = False) -> jax.Array:
    if self.channel_conditional:
      raise ValueError("PixelCNN++ predicts whole pixels (channel_conditional=False); its "
                       "discretized logistic mixture orders the channels.")
    factor = 2 ** (self.num_scales - 1)
    if x.shape[1] % factor or x.shape[2] % factor:
      raise ValueError(f"PixelCNN++ with num_scales={self.num_scales} needs H and W divisible "
                       f"by {factor}; got images of shape {x.shape[1:]}.")
    if self.num_classes and labels is None:
      raise ValueError("This PixelCNN++ is class-conditional; pass labels [B].")
    f = self.nr_filters
    block = lambda conv: GatedResnet(conv, self.dropout, self.num_classes)  # noqa: E731
    down_conv = lambda feat, **kw: DownShiftedConv(feat, (2, 3), **kw)  # noqa: E731
    right_conv = lambda feat, **kw: DownRightShiftedConv(feat, (2, 2), **kw)  # noqa: E731

    # A channel of ones tells the image from the zero padding of the shifted convs.
    x = jnp.concatenate([x, jnp.ones((*x.shape[:-1], 1), x.dtype)], axis=-1)
    us = [down_shift(DownShiftedConv(f, (2, 3), name="u_in")(x))]
    uls = [down_shift(DownShiftedConv(f, (1, 3), name="ul_in_above")(x))
           + right_shift(DownRightShiftedConv(f, (2, 1), name="ul_in_left")(x))]
    for scale in range(self.num_scales):
      if scale:
        us.append(DownShiftedConv(f, (2, 3), (2, 2), name=f"u_down{scale}")(us[-1]))
        uls.append(DownRightShiftedConv(f, (2, 2), (2, 2), name=f"ul_down{scale}")(uls[-1]))
      for _ in range(self.nr_resnet):
        us.append(block(down_conv)(us[-1], labels=labels, train=train))
        uls.append(block(right_conv)(uls[-1], us[-1], labels=labels, train=train))

    u, ul = us.pop(), uls.pop()
    for scale in reversed(range(self.num_scales)):
      for _ in range(self.nr_resnet + (scale < self.num_scales - 1)):
        u = block(down_conv)(u, us.pop(), labels=labels, train=train)
        ul = block(right_conv)(ul, jnp.concatenate([u, uls.pop()], -1), labels=labels,
                               train=train)
      if scale:
        u = _ShiftedConvTranspose(f, (2, 3), right=False, name=f"u_up{scale}")(u)
        ul = _ShiftedConvTranspose(f, (2, 2), right=True, name=f"ul_up{scale}")(ul)
    assert not us and not uls
    return nn.Dense(self.num_outputs, name="out")(jax.nn.elu(ul))
