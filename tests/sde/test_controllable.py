"""Inpainting and colorization with the PC sampler, given the exact score of Gaussian data.

Known coordinates must be reproduced exactly. For data with independent coordinates (in the
imputation basis) the unknown part must follow its exact conditional N(mu, s^2), which the
replacement method gets right; colorization must keep the grey level and impute the colour
around its conditional mean.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from gen_jax.diffusion import VESDE, VPSDE
from gen_jax.diffusion.controllable import COLOR_MATRIX, couple, decouple, pc_colorize, pc_inpaint
from tests.sde.mixture import gaussian_score

B = 2048


def test_color_matrix_is_orthogonal_and_first_axis_is_grey():
  np.testing.assert_allclose(COLOR_MATRIX @ COLOR_MATRIX.T, np.eye(3), atol=1e-12)
  x = jax.random.normal(jax.random.PRNGKey(0), (5, 3))
  np.testing.assert_allclose(couple(decouple(x)), x, atol=1e-5)
  np.testing.assert_allclose(decouple(x)[:, 0], np.sqrt(3) * np.mean(np.asarray(x), 1),
                             rtol=1e-5, atol=1e-6)


def test_inpainting_keeps_known_pixels_and_samples_the_rest():
  """x ~ N(mu, s^2 I) on [B, 4, 4, 1] images; the left half is known.

  Unknown pixels: mean mu and variance s^2 within MC error (sd 0.0014 of the mean over
  16k values; 4 sd) plus the PC sampler's known variance excess (< 4%, see
  test_sde_samplers).
  """
  mu, s = 0.2, 0.4
  sde = VPSDE(N=200)
  data = jnp.full((B, 4, 4, 1), -0.7)
  mask = jnp.zeros((1, 4, 4, 1)).at[:, :, :2].set(1.0)
  out = jax.jit(lambda rng: pc_inpaint(gaussian_score(sde, mu, s), sde, prediction="score",
                                       rng=rng, data=data, mask=mask))(jax.random.PRNGKey(0))
  assert out.nfe == 400
  x = np.asarray(out.samples)
  np.testing.assert_array_equal(x[:, :, :2], np.float32(-0.7))
  free = x[:, :, 2:].ravel()
  print(f"inpainted: mean {free.mean():.4f} (mu {mu}), var ratio {free.var() / s**2:.4f}")
  assert abs(free.mean() - mu) < 4 * s / np.sqrt(free.size) + 0.005
  assert abs(free.var() / s**2 - 1) < 4 * np.sqrt(2 / free.size) + 0.04


def test_colorization_keeps_grey_and_imputes_colour():
  """RGB pixels x ~ N(mu, s^2 I) (independent channels); given the grey level g, the
  decoupled colour channels are independent of it: E[x | g] = couple(sqrt(3) g, (mu U)_1,
  (mu U)_2), checked on the mean within 4 MC sd + the sampler bias 0.005."""
  mu = jnp.asarray([0.4, -0.2, 0.1])
  s = 0.3
  sde = VESDE(sigma_min=0.01, sigma_max=5.0, N=200)
  gray = jnp.full((B, 2, 2, 1), 0.25)
  out = jax.jit(lambda rng: pc_colorize(
      gaussian_score(sde, mu.reshape(1, 1, 1, 3), s), sde, prediction="score", rng=rng,
      gray=gray))(
      jax.random.PRNGKey(1))
  x = np.asarray(out.samples, np.float64)
  np.testing.assert_allclose(x.mean(-1), 0.25, atol=1e-5)  # the grey level is kept exactly
  y_mu = np.asarray(mu, np.float64) @ COLOR_MATRIX
  expected = np.array([np.sqrt(3) * 0.25, y_mu[1], y_mu[2]]) @ COLOR_MATRIX.T
  got = x.reshape(-1, 3).mean(0)
  print(f"colorized mean {got} vs {expected}")
  assert np.max(np.abs(got - expected)) < 4 * s / np.sqrt(x.size / 3) + 0.005
  assert np.std(x.reshape(-1, 3), 0).min() > 0.2  # colour is sampled, not collapsed
