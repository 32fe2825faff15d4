"""Per-example regression losses between a network's output and its training target.

A loss maps (output [B, ...], target [B, ...]) to a per-example loss [B]; the timestep
and schedule are passed too so that time-weighted losses can be added without touching
the method. Register a new loss here (or from your own module) and select it with
`--config.method.loss=NAME`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from gen_jax.core.registry import Registry

DIFFUSION_LOSSES: Registry = Registry("diffusion loss")


def _mean_over_example(x: jax.Array) -> jax.Array:
  return jnp.mean(x.reshape(x.shape[0], -1), axis=1)


@DIFFUSION_LOSSES.register("mse")
def mse(output: jax.Array, target: jax.Array, *, t: jax.Array, schedule) -> jax.Array:
  """Mean squared error per example (DDPM's L_simple when the target is the noise)."""
  del t, schedule
  return _mean_over_example(jnp.square(output.astype(jnp.float32) - target))


@DIFFUSION_LOSSES.register("l1")
def l1(output: jax.Array, target: jax.Array, *, t: jax.Array, schedule) -> jax.Array:
  """Mean absolute error per example."""
  del t, schedule
  return _mean_over_example(jnp.abs(output.astype(jnp.float32) - target))
