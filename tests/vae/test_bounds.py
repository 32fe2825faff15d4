"""The IWAE bound on a linear-Gaussian model whose log p(x) and ELBO are known exactly.

Model: p(z) = N(0, I_2), p(x | z) = N(W z + b, s^2 I_3), so p(x) = N(b, W W^T + s^2 I).
The encoder is a deliberately imperfect diagonal Gaussian (the true posterior is
correlated), so the ELBO is strictly below log p(x) and the bound has room to tighten.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from gen_jax.vae import bounds

W = np.array([[1.0, 0.5], [-0.7, 1.2], [0.3, -0.8]], np.float32)
B = np.array([0.1, -0.2, 0.3], np.float32)
S = 0.6
X = np.array([1.0, -0.5, 0.8], np.float32)
Q_MEAN = np.array([0.2, -0.3], np.float32)  # an encoder that is close, not exact
Q_LOGVAR = np.array([-1.2, -1.5], np.float32)


def _log_likelihood(z):
  """log N(X; W z + b, s^2 I) [R] for z [R, 2]."""
  mean = z @ W.T + B[None]
  return jnp.sum(-0.5 * jnp.log(2 * jnp.pi * S**2) - 0.5 * jnp.square((X[None] - mean) / S),
                 -1)


def _exact_log_px():
  return stats.multivariate_normal.logpdf(X, B, W @ W.T + S**2 * np.eye(3))


def _exact_elbo():
  """E_q log p(x | z) - KL(q || p) in closed form for the linear-Gaussian model."""
  v = np.exp(Q_LOGVAR)
  resid = X - W @ Q_MEAN - B
  expected_ll = (-1.5 * np.log(2 * np.pi * S**2)
                 - (resid @ resid + np.trace(W @ np.diag(v) @ W.T)) / (2 * S**2))
  kl = 0.5 * np.sum(Q_MEAN**2 + v - Q_LOGVAR - 1.0)
  return expected_ll - kl


def _bound(k, repeats, seed=0, chunk=0):
  """`repeats` independent draws of the K-sample bound [repeats] (one per batch row)."""
  mean = jnp.broadcast_to(Q_MEAN, (repeats, 2))
  logvar = jnp.broadcast_to(Q_LOGVAR, (repeats, 2))
  fn = jax.jit(lambda rng: bounds.iwae_bound(rng, mean, logvar, _log_likelihood, k, chunk))
  return np.asarray(fn(jax.random.key(seed)))


def test_chunked_bound_equals_the_logsumexp_of_the_importance_weights():
  mean = jnp.broadcast_to(Q_MEAN, (4, 2))
  logvar = jnp.broadcast_to(Q_LOGVAR, (4, 2))
  rng = jax.random.key(3)
  log_w = bounds.log_importance_weights(rng, mean, logvar, _log_likelihood, 12)
  ref = jax.nn.logsumexp(log_w, axis=0) - np.log(12)
  for chunk in (0, 4):
    np.testing.assert_allclose(bounds.iwae_bound(rng, mean, logvar, _log_likelihood, 12, chunk),
                               ref, rtol=1e-6)
  with pytest.raises(ValueError, match="divide"):
    bounds.iwae_bound(rng, mean, logvar, _log_likelihood, 12, 5)


def test_iwae_with_one_sample_is_the_elbo():
  # Averaged over 100k draws: its standard error (printed) is ~0.005 nats; 5 SE allowed.
  draws = _bound(1, 100_000)
  se = draws.std() / np.sqrt(draws.size)
  print(f"L_1 = {draws.mean():.4f} +- {se:.4f}, exact ELBO {_exact_elbo():.4f}")
  assert abs(draws.mean() - _exact_elbo()) < 5 * se


def test_iwae_increases_with_k_towards_log_px():
  """E[L_K] for K = 1, 5, 50, 500 on 2,000 repeats each: each step's increase exceeds
  4 standard errors of the difference (independent repeats), and L_500 is within 0.01
  nats of log p(x) (the gap at K = 500 is O(Var(w) / K); measured 0.004)."""
  exact = _exact_log_px()
  means, ses = [], []
  for k in (1, 5, 50, 500):
    draws = _bound(k, 2000, seed=k)
    means.append(draws.mean())
    ses.append(draws.std() / np.sqrt(draws.size))
  print("E[L_K], K = 1, 5, 50, 500:", np.round(means, 4), "log p(x) =", round(exact, 4),
        "SE:", np.round(ses, 4))
  for i in range(3):
    assert means[i + 1] - means[i] > 4 * np.hypot(ses[i], ses[i + 1])
  assert means[-1] <= exact + 4 * ses[-1]
  assert abs(means[-1] - exact) < 0.01


def test_active_units_counts_dimensions_whose_posterior_mean_varies():
  mu = np.stack([np.linspace(-1, 1, 100), np.full(100, 3.0), 0.05 * np.sin(np.arange(100))], 1)
  # variances: 0.34 (active), 0 (constant), ~0.00125 (below 0.01)
  assert int(bounds.active_units(mu.mean(0), (mu**2).mean(0))) == 1
