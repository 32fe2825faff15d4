"""Diagonal Gaussians: the posterior q(z | x) = N(mean, diag(exp(logvar))) of a VAE.

All functions are elementwise over broadcastable arrays; callers sum over latent axes.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

_LOG_2PI = math.log(2.0 * math.pi)


def diag_gaussian_kl(mean_q: jax.Array, logvar_q: jax.Array, mean_p: jax.Array,
                     logvar_p: jax.Array) -> jax.Array:
  """Elementwise KL(N(mean_q, exp(logvar_q)) || N(mean_p, exp(logvar_p))) in nats.

    KL = 1/2 [logvar_p - logvar_q + (exp(logvar_q) + (mean_q - mean_p)^2) / exp(logvar_p) - 1]
  """
  return 0.5 * (logvar_p - logvar_q
                + (jnp.exp(logvar_q) + jnp.square(mean_q - mean_p)) * jnp.exp(-logvar_p)
                - 1.0)


def standard_normal_kl(mean: jax.Array, logvar: jax.Array) -> jax.Array:
  """Elementwise KL(N(mean, exp(logvar)) || N(0, 1)) = 1/2 (mean^2 + exp(logvar) - logvar - 1)."""
  return 0.5 * (jnp.square(mean) + jnp.exp(logvar) - logvar - 1.0)


def diag_gaussian_log_prob(z: jax.Array, mean: jax.Array, logvar: jax.Array) -> jax.Array:
  """Elementwise log N(z; mean, exp(logvar)) in nats."""
  return -0.5 * (_LOG_2PI + logvar + jnp.square(z - mean) * jnp.exp(-logvar))


def reparameterize(rng: jax.Array, mean: jax.Array, logvar: jax.Array) -> jax.Array:
  """z = mean + exp(logvar / 2) * eps, eps ~ N(0, I): a differentiable draw of q(z | x)."""
  eps = jax.random.normal(rng, mean.shape, mean.dtype)
  return mean + jnp.exp(0.5 * logvar) * eps
