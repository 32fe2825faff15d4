"""Discretized logistic mixture likelihood (Salimans et al., PixelCNN++, ICLR 2017).

A value v on the grid of `num_bins` evenly spaced points of [-1, 1] (8-bit pixels:
v = 2 u / 255 - 1, u = 0..255) has bins of half-width delta = 1 / (num_bins - 1). Under one
logistic component with mean m and scale s = exp(log_s),

  P(v) = sigma((v + delta - m) / s) - sigma((v - delta - m) / s),

with the first bin extended to -inf and the last to +inf, so the probabilities of the
num_bins values sum to exactly 1. A mixture weights K components with softmax(logits).

RGB pixels (C = 3) are autoregressive over the channels inside one component k:

  r ~ L(mu_r),  g | r ~ L(mu_g + a r),  b | r, g ~ L(mu_b + b r + c g),

with (a, b, c) = tanh(coefficients): the mixture indicator is shared by the three channels
and p(x) = sum_k pi_k p_k(r) p_k(g | r) p_k(b | r, g), a proper distribution over the 256^3
colours. One channel (C = 1; grayscale images, or audio) is the plain mixture.

Parameter layout of the last axis (P = num_params(C, K)); for C = 3 it is exactly the
official code's `l` (openai/pixel-cnn, pixel_cnn_pp/nn.py):

  C = 3:  [K logits | reshape to [3, 3K]: means (K), log scales (K), coefficients (K)]
          the coefficients of row 0 multiply r in g's mean, rows 1 and 2 multiply r and g in
          b's mean (P = 10 K);
  C = 1:  [K logits | means (K) | log scales (K)]  (P = 3 K).

As in the official code, log scales are clamped at -7 and a bin whose probability falls
below 1e-5 uses the density at its centre times the bin width (a guard for extreme
parameters; with ordinary parameters it never triggers). Sampling (`sample`) draws a
component, then each channel from its logistic, clipped to [-1, 1] and rounded to the grid;
rounding makes it an exact sampler of the discrete distribution (the official sampler does
not round), and later channels' means use the rounded earlier channels, as the likelihood
does.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

LOG_SCALE_MIN = -7.0
_MIN_BIN_PROB = 1e-5


def num_params(num_channels: int, num_mix: int) -> int:
  """Size P of the parameter axis for `num_channels` (1 or 3) and `num_mix` components."""
  _check_channels(num_channels)
  return (10 if num_channels == 3 else 3) * num_mix


def _check_channels(num_channels: int) -> None:
  if num_channels not in (1, 3):
    raise ValueError(f"The discretized logistic mixture supports 1 or 3 channels (grayscale "
                     f"or RGB, channel-conditional); got {num_channels}.")


def unpack(params: jax.Array, num_channels: int, num_mix: int):
  """Splits params [..., P] into (logits [..., K], means, log_scales, coeffs [..., C, K]).

  `coeffs` are tanh-squashed; for C = 1 they are an empty [..., 0, K] array.
  """
  expected = num_params(num_channels, num_mix)
  if params.shape[-1] != expected:
    raise ValueError(f"Expected {expected} mixture parameters on the last axis for "
                     f"{num_channels} channel(s) and {num_mix} components; got {params.shape}.")
  k = num_mix
  logits = params[..., :k]
  if num_channels == 3:
    rest = params[..., k:].reshape(*params.shape[:-1], 3, 3 * k)
    means, log_scales, coeffs = rest[..., :k], rest[..., k:2 * k], jnp.tanh(rest[..., 2 * k:])
  else:
    means = params[..., k:2 * k][..., None, :]
    log_scales = params[..., 2 * k:3 * k][..., None, :]
    coeffs = jnp.zeros((*params.shape[:-1], 0, k), params.dtype)
  return logits, means, jnp.maximum(log_scales, LOG_SCALE_MIN), coeffs


def conditional_means(means: jax.Array, coeffs: jax.Array, x: jax.Array) -> jax.Array:
  """Channel-conditional means [..., C, K] given the values x [..., C] of the pixel.

  Channel c's mean depends only on channels < c (C = 3: g on r, b on r and g).
  """
  if means.shape[-2] == 1:
    return means
  r, g = x[..., 0, None], x[..., 1, None]
  m_g = means[..., 1, :] + coeffs[..., 0, :] * r
  m_b = means[..., 2, :] + coeffs[..., 1, :] * r + coeffs[..., 2, :] * g
  return jnp.stack([means[..., 0, :], m_g, m_b], axis=-2)


def _bin_log_prob(x: jax.Array, mean: jax.Array, log_scale: jax.Array,
                  num_bins: int) -> jax.Array:
  """log P(x) of discretized logistics; x, mean, log_scale broadcast elementwise."""
  delta = 1.0 / (num_bins - 1)
  centered = x - mean
  inv_s = jnp.exp(-log_scale)
  plus_in = inv_s * (centered + delta)
  min_in = inv_s * (centered - delta)
  log_cdf_plus = plus_in - jax.nn.softplus(plus_in)  # log sigma(plus_in): first bin
  log_one_minus_cdf_min = -jax.nn.softplus(min_in)  # log(1 - sigma(min_in)): last bin
  cdf_delta = jax.nn.sigmoid(plus_in) - jax.nn.sigmoid(min_in)
  mid_in = inv_s * centered
  log_pdf_mid = mid_in - log_scale - 2.0 * jax.nn.softplus(mid_in)
  inner = jnp.where(cdf_delta > _MIN_BIN_PROB, jnp.log(jnp.maximum(cdf_delta, 1e-12)),
                    log_pdf_mid + jnp.log(2.0 * delta))
  edge = 1.0 - 0.5 * delta  # between the last two grid points (official: 0.999 for 8 bits)
  return jnp.where(x < -edge, log_cdf_plus, jnp.where(x > edge, log_one_minus_cdf_min, inner))


def log_prob(x: jax.Array, params: jax.Array, *, num_mix: int,
             num_bins: int = 256) -> jax.Array:
  """log p(x) [...] (nats) of grid values x [..., C] in [-1, 1] under params [..., P].

  The joint over the C channels of each position (C = 3: channel-conditional means).
  """
  num_channels = x.shape[-1]
  logits, means, log_scales, coeffs = unpack(params, num_channels, num_mix)
  m = conditional_means(means, coeffs, x)
  per_channel = _bin_log_prob(x[..., None], m, log_scales, num_bins)  # [..., C, K]
  return jax.nn.logsumexp(jnp.sum(per_channel, axis=-2) + jax.nn.log_softmax(logits), axis=-1)


def to_grid(x: jax.Array, num_bins: int = 256) -> jax.Array:
  """Rounds x (clipped to [-1, 1]) to the nearest of the `num_bins` grid values."""
  n = num_bins - 1
  return jnp.round((jnp.clip(x, -1.0, 1.0) + 1.0) * (n / 2.0)) * (2.0 / n) - 1.0


def sample(rng: jax.Array, params: jax.Array, *, num_channels: int, num_mix: int,
           num_bins: int = 256) -> jax.Array:
  """Exact draws x [..., C] on the grid from the mixture with params [..., P]."""
  logits, means, log_scales, coeffs = unpack(params, num_channels, num_mix)
  rng_k, rng_u = jax.random.split(rng)
  k = jax.random.categorical(rng_k, logits, axis=-1)
  onehot = jax.nn.one_hot(k, num_mix, dtype=means.dtype)[..., None, :]  # [..., 1, K]
  mu = jnp.sum(means * onehot, -1)  # [..., C]
  scale = jnp.exp(jnp.sum(log_scales * onehot, -1))
  co = jnp.sum(coeffs * onehot, -1)
  u = jax.random.uniform(rng_u, mu.shape, mu.dtype, 1e-5, 1.0 - 1e-5)
  noise = scale * (jnp.log(u) - jnp.log1p(-u))
  if num_channels == 1:
    return to_grid(mu + noise, num_bins)
  r = to_grid(mu[..., 0] + noise[..., 0], num_bins)
  g = to_grid(mu[..., 1] + co[..., 0] * r + noise[..., 1], num_bins)
  b = to_grid(mu[..., 2] + co[..., 1] * r + co[..., 2] * g + noise[..., 2], num_bins)
  return jnp.stack([r, g, b], axis=-1)
