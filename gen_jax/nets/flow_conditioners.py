"""Conditioner networks of coupling layers: x_masked -> per-element parameters.

Registered in `gen_jax.nets.NETS` as "flow_conv", "flow_resnet" and "flow_mlp"; a flow
config names them without the prefix (`gen_jax.flows.architectures.build_conditioner`).

A conditioner is called as `net(x, out_features)` on [B, H, W, C] images or [B, D] vectors
and returns [..., out_features] over the same leading shape (images: [B, H, W, out];
vectors: [B, out]). Its last layer is zero-initialised, so a coupling starts as the
identity (shift 0, scale 1): Kingma & Dhariwal, "Glow" (NeurIPS 2018), Sec. 3.3.

  conv    Glow's NN(): conv3x3(width) - ReLU - conv1x1(width) - ReLU - zero conv3x3.
  resnet  RealNVP's conditioner (Dinh et al., ICLR 2017): conv3x3 then `num_blocks` residual
          blocks (ReLU-conv3x3-ReLU-conv3x3) and a zero conv3x3; the paper's batch norm and
          weight normalisation are left out (actnorm-free RealNVP trains with warm-up).
  mlp     NICE's coupling function (Dinh et al., ICLR 2015 workshop): flatten,
          `depth` x (Dense(width) - ReLU), zero Dense; works on images and vectors.

Each has a computation `dtype` (parameters float32); the output is float32, so the
coupling's shift, scale and log-determinant are computed in float32.
"""

from __future__ import annotations

import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp


zeros = nn.initializers.zeros


class ConvConditioner(nn.Module):
  """Glow's 3-layer CNN; [B, H, W, C] -> [B, H, W, out_features]."""

  width: int = 512
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, out_features: int) -> jax.Array:
    h = nn.relu(nn.Conv(self.width, (3, 3), dtype=self.dtype)(x.astype(self.dtype)))
    h = nn.relu(nn.Conv(self.width, (1, 1), dtype=self.dtype)(h))
    h = nn.Conv(out_features, (3, 3), kernel_init=zeros, bias_init=zeros, dtype=self.dtype,
                name="zero_conv")(h)
    return h.astype(jnp.float32)


class ResNetConditioner(nn.Module):
  """RealNVP's residual CNN; [B, H, W, C] -> [B, H, W, out_features]."""

  width: int = 64
  num_blocks: int = 8
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, out_features: int) -> jax.Array:
    conv = lambda: nn.Conv(self.width, (3, 3), dtype=self.dtype)
    h = conv()(x.astype(self.dtype))
    for _ in range(self.num_blocks):
      r = conv()(nn.relu(h))
      h = h + conv()(nn.relu(r))
    h = nn.Conv(out_features, (3, 3), kernel_init=zeros, bias_init=zeros, dtype=self.dtype,
                name="zero_conv")(nn.relu(h))
    return h.astype(jnp.float32)


class MLPConditioner(nn.Module):
  """NICE's MLP over the flattened input; [B, ..., C] -> [B, ..., out_features]."""

  width: int = 1000
  depth: int = 5
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, out_features: int) -> jax.Array:
    b = x.shape[0]
    h = x.reshape(b, -1).astype(self.dtype)
    for _ in range(self.depth):
      h = nn.relu(nn.Dense(self.width, dtype=self.dtype)(h))
    positions = math.prod(x.shape[1:-1])
    out = nn.Dense(positions * out_features, kernel_init=zeros, bias_init=zeros,
                   dtype=self.dtype, name="zero_dense")(h)
    return out.reshape(*x.shape[:-1], out_features).astype(jnp.float32)

