"""mu-law companding and 8-bit quantisation of audio (ITU-T G.711; WaveNet, Sec. 2.2).

  f(x) = sign(x) ln(1 + mu |x|) / ln(1 + mu),   x in [-1, 1],  mu = 255,

then f(x) in [-1, 1] is quantised to mu + 1 = 256 codes, code = round((f + 1) mu / 2).
Decoding maps a code to the centre value f = 2 code / mu - 1 and inverts f:
x = sign(f) ((1 + mu)^|f| - 1) / mu.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

MU = 255


def compress(x: jax.Array, mu: int = MU) -> jax.Array:
  """f(x) in [-1, 1] of x in [-1, 1] (clipped)."""
  x = jnp.clip(x, -1.0, 1.0)
  return jnp.sign(x) * jnp.log1p(mu * jnp.abs(x)) / jnp.log1p(float(mu))


def expand(f: jax.Array, mu: int = MU) -> jax.Array:
  """The inverse of `compress`: x in [-1, 1] of f in [-1, 1]."""
  return jnp.sign(f) * jnp.expm1(jnp.abs(f) * jnp.log1p(float(mu))) / mu


def encode(x: jax.Array, mu: int = MU) -> jax.Array:
  """int32 codes in 0..mu of a waveform x in [-1, 1]."""
  return jnp.round((compress(x, mu) + 1.0) * (mu / 2.0)).astype(jnp.int32)


def decode(codes: jax.Array, mu: int = MU) -> jax.Array:
  """Waveform values in [-1, 1] of codes in 0..mu."""
  return expand(codes.astype(jnp.float32) * (2.0 / mu) - 1.0, mu)


def codes_to_unit(codes: jax.Array, mu: int = MU) -> jax.Array:
  """Codes 0..mu as the evenly spaced values 2 code / mu - 1 of [-1, 1] (the companded axis)."""
  return codes.astype(jnp.float32) * (2.0 / mu) - 1.0
