"""Likelihood bounds of a VAE: the ELBO and the importance-weighted bound (IWAE), and the
statistics of active units.

For an encoder q(z | x), a prior p(z) = N(0, I) and a decoder p(x | z), the importance
weights w_k = p(x | z_k) p(z_k) / q(z_k | x), z_k ~ q(z | x), give (Burda et al. 2016)

  L_K = E[log (1/K) sum_k w_k] <= log p(x),   L_1 = ELBO,   L_K <= L_{K+1} in expectation,

and L_K -> log p(x) as K grows. `iwae_bound` computes log (1/K) sum_k w_k for one draw of
the K samples, in chunks (a running logsumexp) so that K = 5000 fits in memory.

Active units (Burda et al. 2016): dimension u is active when A_u = Cov_x(E_q[z_u | x]) >
0.01; `active_units` takes the split's first and second moments of the posterior means.
"""

from __future__ import annotations

import math
from typing import Callable

import jax
import jax.numpy as jnp

from gen_jax.vae.gaussian import diag_gaussian_log_prob

ACTIVE_UNIT_THRESHOLD = 0.01


def _sum_latent(values: jax.Array) -> jax.Array:
  return jnp.sum(values.reshape(values.shape[0], -1), axis=1)


def log_importance_weights(rng: jax.Array, mean: jax.Array, logvar: jax.Array,
                           log_likelihood_fn: Callable[[jax.Array], jax.Array],
                           num_samples: int) -> jax.Array:
  """log w_k [K, B] for K = num_samples draws z_k ~ q(z | x) = N(mean, exp(logvar)).

  Args:
    rng: key of the draws.
    mean, logvar: [B, ...] the posterior of each example.
    log_likelihood_fn: z [B, ...] -> log p(x | z) [B] (nats).
    num_samples: K.
  """
  keys = jax.random.split(rng, num_samples)
  return jax.vmap(lambda k: _draw_log_weight(k, mean, logvar, log_likelihood_fn))(keys)


def iwae_bound(rng: jax.Array, mean: jax.Array, logvar: jax.Array,
               log_likelihood_fn: Callable[[jax.Array], jax.Array], num_samples: int,
               chunk_size: int = 0) -> jax.Array:
  """log (1/K) sum_k w_k [B] (nats): one estimate of the bound L_K.

  The K samples are drawn in chunks of `chunk_size` (0: all at once) that each run
  batched over the examples; their logsumexps are accumulated with logaddexp, so memory
  grows with the chunk, not with K. `chunk_size` must divide K. The draws are those of
  `log_importance_weights` with the same key, whatever the chunk size.
  """
  chunk = chunk_size or num_samples
  if num_samples < 1 or num_samples % chunk:
    raise ValueError(f"The IWAE chunk size {chunk} must divide the number of samples "
                     f"{num_samples} (>= 1).")
  def body(acc, keys):
    log_w = jax.vmap(lambda k: _draw_log_weight(k, mean, logvar, log_likelihood_fn))(keys)
    return jnp.logaddexp(acc, jax.nn.logsumexp(log_w, axis=0)), None

  # The same K keys as `log_importance_weights`, whatever the chunk size.
  keys = jax.random.split(rng, num_samples).reshape(num_samples // chunk, chunk)
  init = jnp.full((mean.shape[0],), -jnp.inf, mean.dtype)
  total, _ = jax.lax.scan(body, init, keys)
  return total - math.log(num_samples)


def _draw_log_weight(key, mean, logvar, log_likelihood_fn):
  """log w [B] of one draw z ~ q(z | x) per example."""
  eps = jax.random.normal(key, mean.shape, mean.dtype)
  z = mean + jnp.exp(0.5 * logvar) * eps
  log_prior = _sum_latent(diag_gaussian_log_prob(z, 0.0, jnp.zeros_like(z)))
  log_q = _sum_latent(diag_gaussian_log_prob(z, mean, logvar))
  return log_likelihood_fn(z) + log_prior - log_q


def active_units(mean_of_means: jax.Array, mean_of_squares: jax.Array,
                 threshold: float = ACTIVE_UNIT_THRESHOLD) -> jax.Array:
  """Number of latent dimensions u with Var_x(E_q[z_u | x]) > threshold.

  Args:
    mean_of_means: [U] the split's average of the posterior means E_x[mu_u(x)].
    mean_of_squares: [U] the split's average of their squares E_x[mu_u(x)^2].
  """
  variance = mean_of_squares - jnp.square(mean_of_means)
  return jnp.sum(variance > threshold)
