"""Glow's activation normalisation with data-dependent initialisation.

Kingma & Dhariwal, "Glow: Generative Flow with Invertible 1x1 Convolutions" (NeurIPS 2018).

  Forward:  y = (x + b) * exp(s)          per channel (last axis)
  Inverse:  x = y * exp(-s) - b
  log-det:  (number of positions) * sum_c s_c, positions = prod(shape[1:-1]) (1 for vectors)

Initialisation (`data_init=True`): b = -mean(x), s = -log(std(x) + eps), the mean and
standard deviation over every axis but the channel one of the activations that reach this
layer in the `init` pass, so its outputs have zero mean and unit variance per channel.

Why this is safe here (the failure modes reported for Glow ports):
  * global batch: `init` runs inside `jax.jit` on the global batch sharded over the devices;
    `jnp.mean` over the batch axis is then a global reduction inserted by the compiler, so 8
    devices initialise exactly as 1 device with the same batch (no per-device statistics);
  * checkpoint: b and s are ordinary parameters in `params`, saved in every checkpoint; the
    trainer calls `init` only when no checkpoint exists and restores otherwise, so a resumed
    run never re-initialises from a new batch (there is no "initialised" flag to forget).
With `data_init=False` the layer starts as the identity (NICE's diagonal scaling layer).
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax.numpy as jnp

from gen_jax.flows.bijectors import Bijector
from gen_jax.flows.bijectors import channel_vector


class ActNorm(Bijector):
  """Per-channel affine layer; see the module docstring.

  Attributes:
    data_init: initialise from the batch statistics (True) or as the identity (False).
    eps: added to the standard deviation at initialisation.
  """

  data_init: bool = True
  eps: float = 1e-6

  @nn.compact
  def __call__(self, x, cond=None, inverse=False):
    c = x.shape[-1]
    axes = tuple(range(x.ndim - 1))
    data_init = self.data_init and not inverse

    def init_loc(rng, shape):
      del rng
      return -jnp.mean(x, axis=axes) if data_init else jnp.zeros(shape, jnp.float32)

    def init_log_scale(rng, shape):
      del rng
      return (-jnp.log(jnp.std(x, axis=axes) + self.eps) if data_init
              else jnp.zeros(shape, jnp.float32))

    loc = self.param("loc", init_loc, (c,))
    log_scale = self.param("log_scale", init_log_scale, (c,))
    positions = math.prod(x.shape[1:-1])
    log_det = positions * jnp.sum(log_scale) * jnp.ones((x.shape[0],), jnp.float32)
    if inverse:
      return x * jnp.exp(-channel_vector(log_scale, x)) - channel_vector(loc, x), -log_det
    return (x + channel_vector(loc, x)) * jnp.exp(channel_vector(log_scale, x)), log_det
