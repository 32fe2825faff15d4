"""Coupling layers: NICE's additive, RealNVP's affine and Glow's affine coupling.

With a binary mask m over the non-batch shape (checkerboard over space, or halves of the
channels) and a conditioner h = NN(m * x) whose last layer is zero-initialised:

  Forward:  y = m * x + (1 - m) * (x * s(h) + t(h))
  Inverse:  x = m * y + (1 - m) * (y - t(h)) / s(h)        (h = NN(m * y) = NN(m * x))
  log-det:  sum over the (1 - m) elements of log s(h)

Scale functions (`scale`):
  additive   s = 1 (NICE; Dinh, Krueger & Bengio 2015): volume preserving, log-det 0.
  exp_tanh   log s = w_c * tanh(h_s), w_c a learned per-channel scale initialised to 1
             (RealNVP; Dinh, Sohl-Dickstein & Bengio 2017).
  sigmoid    s = sigmoid(h_s + 2) / sigmoid(2) (Glow's released code uses sigmoid(h + 2);
             dividing by sigmoid(2) makes the layer exactly the identity at initialisation).
             s < 1.14 always: a step can never blow activations up, which is what made
             early Glow training fail with "input is not invertible" / NaNs.
With a zero-initialised last layer every coupling is the identity at initialisation.
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from gen_jax.flows.bijectors import Bijector, sum_except_batch
from gen_jax.flows.bijectors import channel_vector

MASKS = ("checkerboard", "channel")
SCALES = ("additive", "exp_tanh", "sigmoid")
_LOG_SIGMOID_2 = -math.log1p(math.exp(-2.0))  # log sigmoid(2)


def make_mask(shape: tuple[int, ...], kind: str, parity: int) -> jax.Array:
  """Binary float mask of `shape` (no batch axis); 1 marks the elements passed unchanged.

  checkerboard: (h + w + parity) even for images [H, W, C], (d + parity) even for vectors [D].
  channel: the first half of the last axis (parity 0) or the second half (parity 1).
  """
  if kind == "checkerboard":
    if len(shape) == 3:
      h, w, c = shape
      grid = (jnp.arange(h)[:, None] + jnp.arange(w)[None, :] + parity) % 2 == 0
      return jnp.broadcast_to(grid[:, :, None], shape).astype(jnp.float32)
    if len(shape) == 1:
      return ((jnp.arange(shape[0]) + parity) % 2 == 0).astype(jnp.float32)
    raise ValueError(f"A checkerboard mask needs [H, W, C] or [D] inputs, got {shape}.")
  if kind == "channel":
    c = shape[-1]
    if c < 2:
      raise ValueError(f"A channel mask needs at least 2 channels, got shape {shape}; squeeze "
                       "first or use mask='checkerboard'.")
    first = jnp.arange(c) < (c + 1) // 2
    keep = first if parity == 0 else ~first
    return jnp.broadcast_to(keep, shape).astype(jnp.float32)
  raise ValueError(f"Unknown coupling mask {kind!r}; choose one of {MASKS}.")


class Coupling(Bijector):
  """Masked coupling layer (see the module docstring).

  Attributes:
    net: conditioner module, called as `net(x_masked, out_features)`.
    mask: "checkerboard" or "channel".
    parity: 0 or 1, which half of the mask is passed unchanged.
    scale: "additive", "exp_tanh" or "sigmoid".
  """

  net: nn.Module
  mask: str = "channel"
  parity: int = 0
  scale: str = "sigmoid"

  @nn.compact
  def __call__(self, x, cond=None, inverse=False):
    if self.scale not in SCALES:
      raise ValueError(f"Unknown coupling scale {self.scale!r}; choose one of {SCALES}.")
    m = make_mask(x.shape[1:], self.mask, self.parity)[None]
    c = x.shape[-1]
    if self.scale == "additive":
      shift, log_s = self.net(x * m, c), None
    else:
      h = self.net(x * m, 2 * c)
      shift, raw = h[..., :c], h[..., c:]
      if self.scale == "exp_tanh":
        w = self.param("scale_factor", nn.initializers.ones, (c,))
        log_s = channel_vector(w, raw) * jnp.tanh(raw)
      else:
        log_s = jax.nn.log_sigmoid(raw + 2.0) - _LOG_SIGMOID_2
    free = 1.0 - m
    if log_s is None:
      y = x - free * shift if inverse else x + free * shift
      return y, jnp.zeros((x.shape[0],), jnp.float32)
    log_s = free * log_s
    if inverse:
      y = m * x + free * (x - shift) * jnp.exp(-log_s)
      return y, -sum_except_batch(log_s)
    y = m * x + free * (x * jnp.exp(log_s) + shift)
    return y, sum_except_batch(log_s)
