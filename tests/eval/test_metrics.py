"""Metrics checked against closed forms, SciPy in float64, and constructed point clouds."""

import jax
import numpy as np
import pytest
import scipy.linalg

from gen_jax.eval import metrics
from gen_jax.core import sharding


def _random_cov(rng, d, scale=1.0):
  a = rng.normal(size=(d, d + 4)) * scale
  return a @ a.T / (d + 4) + 0.1 * np.eye(d)


def _scipy_fid(mu1, s1, mu2, s2):
  covmean = scipy.linalg.sqrtm(s1.astype(np.float64) @ s2.astype(np.float64))
  covmean = np.real(covmean)
  diff = mu1 - mu2
  return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def test_frechet_distance_closed_forms():
  rng = np.random.default_rng(0)
  d = 16
  mu, s = rng.normal(size=d), _random_cov(rng, d)
  assert metrics.frechet_distance(mu, s, mu, s) == pytest.approx(0.0, abs=1e-8)
  # Isotropic Gaussians: d^2 = |mu1 - mu2|^2 + D (a - b)^2 for S = a^2 I, b^2 I.
  mu2 = rng.normal(size=d)
  value = metrics.frechet_distance(mu, 4.0 * np.eye(d), mu2, 0.25 * np.eye(d))
  np.testing.assert_allclose(value, np.sum((mu - mu2) ** 2) + d * (2.0 - 0.5) ** 2, rtol=1e-12)
  # Commuting (diagonal) covariances: sum (sqrt(a_i) - sqrt(b_i))^2.
  a, b = rng.uniform(0.1, 3, d), rng.uniform(0.1, 3, d)
  value = metrics.frechet_distance(mu, np.diag(a), mu, np.diag(b))
  np.testing.assert_allclose(value, np.sum((np.sqrt(a) - np.sqrt(b)) ** 2), rtol=1e-12)


def test_frechet_distance_agrees_with_scipy_sqrtm_float64():
  rng = np.random.default_rng(1)
  d = 64
  mu1, mu2 = rng.normal(size=d), rng.normal(size=d) * 0.1
  s1, s2 = _random_cov(rng, d), _random_cov(rng, d, 0.7)
  ours = metrics.frechet_distance(mu1, s1, mu2, s2)
  np.testing.assert_allclose(ours, _scipy_fid(mu1, s1, mu2, s2), rtol=1e-6)


def test_feature_statistics_streaming_equals_numpy():
  rng = np.random.default_rng(2)
  x = rng.normal(size=(500, 8)) * 3 + 5
  acc = metrics.StatsAccumulator(8)
  for chunk in np.array_split(x, 7):
    acc.add(chunk)
  mu, sigma = acc.result()
  np.testing.assert_allclose(mu, x.mean(0), rtol=1e-12)
  np.testing.assert_allclose(sigma, np.cov(x, rowvar=False), rtol=1e-10)


def _poly_kernel_expectation(m1, s1, m2, s2, d):
  """E[(X.Y/D + 1)^3] for independent X ~ N(m1, S1), Y ~ N(m2, S2)."""
  mu = m1 @ m2
  e1 = mu
  e2 = np.trace((s1 + np.outer(m1, m1)) @ (s2 + np.outer(m2, m2)))
  var = m1 @ s2 @ m1
  e3 = (mu ** 3 + 3 * mu * var
        + 3 * (mu * (m2 @ s1 @ m2 + np.trace(s1 @ s2)) + 2 * m1 @ s2 @ s1 @ m2))
  return e3 / d ** 3 + 3 * e2 / d ** 2 + 3 * e1 / d + 1


def test_kid_is_unbiased_for_the_population_mmd():
  d = 4
  rng = np.random.default_rng(3)
  m1, m2 = np.zeros(d), np.full(d, 0.5)
  s1, s2 = np.eye(d), _random_cov(rng, d, 0.8)
  population = (_poly_kernel_expectation(m1, s1, m1, s1, d)
                + _poly_kernel_expectation(m2, s2, m2, s2, d)
                - 2 * _poly_kernel_expectation(m1, s1, m2, s2, d))
  # Many independent small draws (m = 10): the unbiased estimator averages to the population
  # value, while the biased V-statistic (diagonal included) is far off at this size.
  n_draws, m = 4000, 10
  key = jax.random.key(0)
  x = np.asarray(jax.random.normal(key, (n_draws, m, d)))
  chol = np.linalg.cholesky(s2)
  y = np.asarray(jax.random.normal(jax.random.fold_in(key, 1), (n_draws, m, d))) @ chol.T + m2
  u = np.asarray(jax.vmap(metrics.mmd2_unbiased)(x, y), np.float64)
  stderr = u.std() / np.sqrt(n_draws)
  assert abs(u.mean() - population) < 4 * stderr, (u.mean(), population, stderr)
  kxx = np.asarray(jax.vmap(metrics.polynomial_kernel)(x, x))
  kyy = np.asarray(jax.vmap(metrics.polynomial_kernel)(y, y))
  kxy = np.asarray(jax.vmap(metrics.polynomial_kernel)(x, y))
  biased = (kxx.mean((1, 2)) + kyy.mean((1, 2)) - 2 * kxy.mean((1, 2))).mean()
  assert abs(biased - population) > 10 * stderr
  # kid() with subsets of one large sample: close to the population value as well.
  big_x = rng.normal(size=(4000, d))
  big_y = rng.normal(size=(4000, d)) @ chol.T + m2
  mean, std = metrics.kid(big_x, big_y, num_subsets=50, subset_size=500)
  assert abs(mean - population) < 0.05 * population + 3 * std / np.sqrt(50)
  same, _ = metrics.kid(big_x, big_x.copy(), num_subsets=20, subset_size=500)
  assert abs(same) < 0.02 * population


def test_inception_score_extremes():
  k = 10
  confident = np.eye(k)[np.arange(200) % k] * 50.0  # one-hot, every class equally often
  mean, std = metrics.inception_score(confident, splits=4)
  np.testing.assert_allclose(mean, k, rtol=1e-6)
  assert std < 1e-6
  same = np.tile(np.random.default_rng(0).normal(size=(1, k)), (200, 1))
  np.testing.assert_allclose(metrics.inception_score(same, splits=4)[0], 1.0, rtol=1e-9)


def test_precision_recall_density_coverage_on_point_clouds():
  rng = np.random.default_rng(4)
  real = rng.normal(size=(300, 8)).astype(np.float32)
  mesh = sharding.make_mesh()
  # Identical clouds: every point lies in its own ball.
  p, r = metrics.precision_recall(real, real.copy(), k=3, block_size=64, mesh=mesh)
  assert (p, r) == (1.0, 1.0)
  d, c = metrics.density_coverage(real, real.copy(), k=5, block_size=64)
  assert c == 1.0 and 0.9 < d < 1.6
  # Disjoint clouds far apart: nothing lies in the other's balls.
  far = real + 100.0
  assert metrics.precision_recall(real, far, k=3, block_size=64) == (0.0, 0.0)
  assert metrics.density_coverage(real, far, k=5, block_size=64) == (0.0, 0.0)
  # Mode dropping: fakes from half of a two-cluster real set keep precision, lose recall.
  two = np.concatenate([real, real + 50.0])
  p, r = metrics.precision_recall(two, real[:200] + 0.01, k=3, block_size=64)
  assert p == 1.0 and 0.3 < r < 0.6
  d, c = metrics.density_coverage(two, real[:200] + 0.01, k=5, block_size=64)
  assert 0.3 < c < 0.6


def test_knn_sharded_equals_unsharded():
  rng = np.random.default_rng(5)
  x = rng.normal(size=(100, 5)).astype(np.float32)
  one = metrics.knn_radii(x, 3, block_size=32)
  eight = metrics.knn_radii(x, 3, block_size=32, mesh=sharding.make_mesh())
  np.testing.assert_allclose(one, eight, rtol=1e-6)
  brute = np.sort(((x[:, None] - x[None]) ** 2).sum(-1), axis=1)[:, 3]
  np.testing.assert_allclose(one, brute, rtol=1e-4, atol=1e-5)
