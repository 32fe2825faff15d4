"""WaveNet (van den Oord et al. 2016, arXiv:1609.03499) with a cached one-step interface.

x [B, T, C_in] -> [B, T, num_outputs]; the output at time t depends only on x[:, :t]
(strictly earlier samples): the input is shifted right by one step, then

  h = causal_conv_{k0}(shift(x))                              (the input layer)
  for each dilation d:  z = tanh(W_f *_d h + V_f y) * sigmoid(W_g *_d h + V_g y)
                        skip += 1x1(z),   h = h + 1x1(z)       (residual and skip)
  out = 1x1(relu(1x1(relu(skip))))

with dilated causal convolutions *_d of kernel k (taps t, t - d, ..., t - (k-1) d; zero
before the start) and y a learned label embedding (global conditioning). The inputs C_in
are chosen by the method: a one-hot mu-law code (256-way softmax output) or the value
itself (discretized logistic mixture output).

`step` runs one time step from a cache of each layer's past inputs (Paine et al. 2016,
"Fast Wavenet Generation"): layer l keeps its last (k-1) d_l inputs in a ring buffer, so a
step costs O(number of layers), not O(receptive field). Feeding `step` the shifted inputs
shift(x)[:, t] for t = 0, 1, ... reproduces `__call__(x)[:, t]` exactly.

Deviations from the paper: it does not state channel sizes or the output stack's width;
ours are arguments (defaults after the paper's TTS setting: 30 layers, dilations 1..512
three times).
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp


class CausalConv1D(nn.Module):
  """Causal dilated conv: out[t] = b + sum_j W[k-1-j] x[t - j d], zero before t = 0.

  `__call__(x [B, T, C])` is the whole sequence; `__call__(taps [B, k, C], taps=True)` is one
  output from the inputs at t - (k-1) d, ..., t - d, t (oldest first).
  """

  features: int
  kernel_size: int = 2
  dilation: int = 1

  @nn.compact
  def __call__(self, x: jax.Array, taps: bool = False) -> jax.Array:
    k = self.kernel_size
    kernel = self.param("kernel", nn.initializers.lecun_normal(),
                        (k, x.shape[-1], self.features))
    bias = self.param("bias", nn.initializers.zeros, (self.features,))
    if taps:
      return jnp.einsum("bki,kio->bo", x, kernel) + bias[None, :]
    y = jax.lax.conv_general_dilated(
        x, kernel, (1,), [((k - 1) * self.dilation, 0)], rhs_dilation=(self.dilation,),
        dimension_numbers=("NWC", "WIO", "NWC"))
    return y + bias[None, None, :]


class WaveNet(nn.Module):
  """Attributes:
    num_outputs: outputs per time step (256 logits, or 3 K mixture parameters).
    dilations: dilation of each residual layer.
    kernel_size: k of the dilated convs (2 in the paper).
    initial_kernel: kernel of the input causal conv.
    residual_channels, dilation_channels, skip_channels: widths.
    num_classes: > 0 adds a label embedding to every gate (global conditioning).
  """

  num_outputs: int = 256
  dilations: Sequence[int] = tuple(2 ** i for i in range(10)) * 3
  kernel_size: int = 2
  initial_kernel: int = 2
  residual_channels: int = 64
  dilation_channels: int = 64
  skip_channels: int = 256
  num_classes: int = 0

  def setup(self):
    self.input_conv = CausalConv1D(self.residual_channels, self.initial_kernel)
    self.dilated = [CausalConv1D(2 * self.dilation_channels, self.kernel_size, d)
                    for d in self.dilations]
    self.residual = [nn.Dense(self.residual_channels) for _ in self.dilations]
    self.skip = [nn.Dense(self.skip_channels) for _ in self.dilations]
    if self.num_classes:
      self.label_embed = [nn.Embed(self.num_classes, 2 * self.dilation_channels)
                          for _ in self.dilations]
    self.out_hidden = nn.Dense(self.skip_channels)
    self.out = nn.Dense(self.num_outputs)

  @property
  def receptive_field(self) -> int:
    """R: the output at t depends on x[t - R .. t - 1]."""
    return 1 + (self.initial_kernel - 1) + sum((self.kernel_size - 1) * d
                                               for d in self.dilations)

  def _cond(self, layer: int, labels):
    if not self.num_classes:
      return 0.0
    if labels is None:
      raise ValueError(f"This WaveNet is conditioned on labels (num_classes="
                       f"{self.num_classes}); pass labels [B].")
    return self.label_embed[layer](labels)

  def _layer(self, i: int, h, pre, labels, time_axis: bool):
    cond = self._cond(i, labels)
    if time_axis and self.num_classes:
      cond = cond[:, None, :]
    f, g = jnp.split(pre + cond, 2, axis=-1)
    z = jnp.tanh(f) * jax.nn.sigmoid(g)
    return h + self.residual[i](z), self.skip[i](z)

  def _head(self, skip):
    return self.out(nn.relu(self.out_hidden(nn.relu(skip))))

  def __call__(self, x: jax.Array, labels: jax.Array | None = None,
               train: bool = False) -> jax.Array:
    """x [B, T, C_in] -> [B, T, num_outputs]; output t sees x[:, :t] only."""
    del train
    shifted = jnp.pad(x, ((0, 0), (1, 0), (0, 0)))[:, :-1]
    h = self.input_conv(shifted)
    skip = 0.0
    for i, conv in enumerate(self.dilated):
      h, s = self._layer(i, h, conv(h), labels, time_axis=True)
      skip = skip + s
    return self._head(skip)

  # ------------------------------------------------------------------ cached steps

  def init_cache(self, batch_size: int, in_features: int) -> dict:
    """Zero ring buffers: input [B, k0 - 1, C_in] and per layer [B, (k-1) d, residual]."""
    return {
        "t": jnp.zeros((), jnp.int32),
        "input": jnp.zeros((batch_size, max(self.initial_kernel - 1, 1), in_features)),
        "layers": [jnp.zeros((batch_size, (self.kernel_size - 1) * d, self.residual_channels))
                   for d in self.dilations],
    }

  @staticmethod
  def _taps(buffer, current, t, dilation: int, kernel: int):
    """Inputs at t-(k-1)d, ..., t-d, t from a ring buffer (time s at s mod len) + current."""
    length = buffer.shape[1]
    past = [jax.lax.dynamic_index_in_dim(buffer, (t - j * dilation) % length, 1, False)
            for j in range(kernel - 1, 0, -1)]
    return jnp.stack(past + [current], axis=1)

  @staticmethod
  def _push(buffer, current, t):
    return jax.lax.dynamic_update_index_in_dim(buffer, current, t % buffer.shape[1], 1)

  def step(self, x_shifted: jax.Array, cache: dict, labels: jax.Array | None = None):
    """One step: x_shifted [B, C_in] = x[:, t - 1] (zeros at t = 0) -> (out [B, P], cache)."""
    t = cache["t"]
    k0 = self.initial_kernel
    if k0 > 1:
      taps = self._taps(cache["input"], x_shifted, t, 1, k0)
      new_input = self._push(cache["input"], x_shifted, t)
    else:
      taps, new_input = x_shifted[:, None], cache["input"]
    h = self.input_conv(taps, taps=True)
    skip = 0.0
    new_layers = []
    for i, (conv, d) in enumerate(zip(self.dilated, self.dilations)):
      buffer = cache["layers"][i]
      pre = conv(self._taps(buffer, h, t, d, self.kernel_size), taps=True)
      new_layers.append(self._push(buffer, h, t))
      h, s = self._layer(i, h, pre, labels, time_axis=False)
      skip = skip + s
    return self._head(skip), {"t": t + 1, "input": new_input, "layers": new_layers}
