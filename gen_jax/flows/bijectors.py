"""The bijector protocol, composition, inversion and the flow density over a base.

A bijector is a Flax linen module with two methods over a batch,

  forward(x, cond=None) -> (y, log_det)    log_det[b] = log |det d y_b / d x_b|
  inverse(y, cond=None) -> (x, log_det)    log_det[b] = log |det d x_b / d y_b|

where x, y have the same shape [B, ...] (every bijector here is shape-preserving, so a
multi-scale flow maps an image to a latent image of the same shape, see `multiscale.py`)
and log_det has shape [B]. forward(inverse(y)) == y and the two log-dets are negatives of
each other. `forward` is the data -> noise direction (the one the likelihood needs);
`inverse` is noise -> data (sampling).

Leaf bijectors implement one compact `__call__(x, cond, inverse)` (so their parameters are
created once, by whichever direction runs first at `init`) and inherit `forward`/`inverse`
from `Bijector`. `cond` is threaded through every composite; the layers of this package
ignore it (it is the hook for class-conditional conditioners).

Data-dependent initialisation (actnorm) happens in the parameter initialisers, which see the
activations of the batch given to `Flow.init(..., method=Flow.log_prob)`: inside `jax.jit`
with a batch sharded over devices, their reductions over the batch axis are global.

The density of a `Flow` is the change of variables

  log p(x) = log N(f(x); 0, I) + log |det df/dx|.
"""

from __future__ import annotations

import math
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

Array = jax.Array


def sum_except_batch(x: Array) -> Array:
  """[B, ...] -> [B]: the sum over every axis but the first."""
  return jnp.sum(x.reshape(x.shape[0], -1), axis=1)


class Bijector(nn.Module):
  """Base class: subclasses implement `__call__(x, cond=None, inverse=False)`."""

  def forward(self, x: Array, cond: Array | None = None) -> tuple[Array, Array]:
    """Data -> latent: (y [B, ...], log|det dy/dx| [B])."""
    return self(x, cond, inverse=False)

  def inverse(self, y: Array, cond: Array | None = None) -> tuple[Array, Array]:
    """Latent -> data: (x [B, ...], log|det dx/dy| [B])."""
    return self(y, cond, inverse=True)

  def __call__(self, x: Array, cond: Array | None = None, inverse: bool = False):
    raise NotImplementedError


class Chain(Bijector):
  """Composition: forward applies `layers` in order, inverse in reverse order.

  Forward:  y = f_n(... f_1(x)),  log_det = sum_i log_det_i.
  Inverse:  x = f_1^{-1}(... f_n^{-1}(y)), log_det = sum_i inverse log_det_i.
  """

  layers: Sequence[Bijector]

  def __call__(self, x, cond=None, inverse=False):
    log_det = jnp.zeros((x.shape[0],), jnp.float32)
    for layer in (reversed(self.layers) if inverse else self.layers):
      x, ld = layer(x, cond, inverse=inverse)
      log_det = log_det + ld
    return x, log_det


class Inverse(Bijector):
  """The inverse of `bijector`: forward is its inverse and vice versa."""

  bijector: Bijector

  def __call__(self, x, cond=None, inverse=False):
    return self.bijector(x, cond, inverse=not inverse)


def standard_normal_log_prob(z: Array) -> Array:
  """Sum over all but the batch axis of log N(z; 0, 1): [B, ...] -> [B]."""
  return sum_except_batch(-0.5 * jnp.square(z) - 0.5 * math.log(2.0 * math.pi))


class Flow(nn.Module):
  """A transformed distribution: x = f^{-1}(z), z ~ N(0, I) of the data's shape.

  `bijector.forward` maps data to the latent. Any learned prior (Glow's split priors, the
  learned top prior) is itself a conditional affine bijector to a standard normal, so the
  base is always N(0, I) and sampling at temperature T draws z ~ N(0, T^2 I) — the same as
  scaling every prior's standard deviation by T, as in Glow.
  """

  bijector: Bijector

  def log_prob(self, x: Array, cond: Array | None = None) -> Array:
    """Exact log-density [B] of x [B, ...] (nats, in the model's coordinates)."""
    z, log_det = self.bijector.forward(x, cond)
    return standard_normal_log_prob(z) + log_det

  def forward(self, x: Array, cond: Array | None = None) -> tuple[Array, Array]:
    return self.bijector.forward(x, cond)

  def inverse(self, z: Array, cond: Array | None = None) -> tuple[Array, Array]:
    return self.bijector.inverse(z, cond)

  def sample_from_noise(self, noise: Array, temperature: float | Array = 1.0,
                        cond: Array | None = None) -> Array:
    """x = f^{-1}(T * noise) for standard normal `noise` [B, ...]."""
    x, _ = self.bijector.inverse(noise * temperature, cond)
    return x

  def __call__(self, x: Array, cond: Array | None = None) -> Array:
    return self.log_prob(x, cond)


def channel_vector(v: jax.Array, x: jax.Array) -> jax.Array:
  """Reshapes a per-channel [C] vector to broadcast against x [B, ..., C] (explicit ranks)."""
  return jnp.reshape(v, (1,) * (x.ndim - 1) + (v.shape[-1],))
