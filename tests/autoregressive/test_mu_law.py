"""mu-law companding: the closed form, its inverse, and the 8-bit codes."""

import jax.numpy as jnp
import numpy as np

from gen_jax.autoregressive import mu_law


def test_compress_matches_the_formula_and_expand_inverts_it():
  x = jnp.linspace(-1.0, 1.0, 1001)
  expected = np.sign(x) * np.log1p(255 * np.abs(x)) / np.log(256.0)
  np.testing.assert_allclose(mu_law.compress(x), expected, atol=1e-6)
  np.testing.assert_allclose(mu_law.expand(mu_law.compress(x)), x, atol=1e-5)


def test_codes_cover_0_to_255_and_decode_within_half_a_step():
  x = jnp.linspace(-1.0, 1.0, 100_001)
  codes = mu_law.encode(x)
  assert int(codes.min()) == 0 and int(codes.max()) == 255
  assert np.all(np.diff(np.asarray(codes)) >= 0)
  # decoding lands in the same code, i.e. within half a step on the companded axis
  err = np.abs(np.asarray(mu_law.compress(mu_law.decode(codes)) - mu_law.compress(x)))
  assert err.max() <= 1.0 / 255 + 1e-6
  np.testing.assert_array_equal(mu_law.encode(mu_law.decode(jnp.arange(256))), np.arange(256))
