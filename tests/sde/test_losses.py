"""Score-matching losses with the exact score of Gaussian data, against quadrature.

For x0 ~ N(MU, S^2 I) and the exact score of p_t = N(m MU, V I), V = m^2 S^2 + std^2,
E_{x0, z} || std s(x_t) + z ||^2 = D m^2 S^2 / V  (per example, D dimensions), so each loss's
mean is a one-dimensional integral (continuous t) or sum (discrete steps) that numpy computes
independently. The importance-sampled likelihood loss must have the same mean as the
uniform one, with a smaller variance, and its normaliser Z must equal int g^2 / std^2.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gen_jax.diffusion import LOSSES, VESDE, VPSDE, DiscreteVP, importance_sample_t, subVPSDE
from gen_jax.diffusion.losses import discrete_times
from tests.sde.mixture import gaussian_score

MU, S, D, B = 0.3, 0.5, 4, 200_000
EPS = 1e-3
SDES = {"ve": VESDE(sigma_min=0.01, sigma_max=10.0), "vp": VPSDE(), "subvp": subVPSDE()}


def _coefs(sde, t):
  t = jnp.asarray(t, jnp.float32)
  m, std = sde.marginal_coef(t)
  _, g = sde.sde(jnp.zeros((t.shape[0], 1)), t)
  return [np.asarray(a, np.float64) for a in (m, std, g)]


def _quad(f, a, b, n=200_001):
  t = np.linspace(a, b, n)
  return np.trapezoid(f(t), t)


def _run(loss, sde, score_fn=None, **kw):
  x0 = MU + S * jax.random.normal(jax.random.PRNGKey(0), (B, D))
  score_fn = score_fn or gaussian_score(sde, MU, S)
  fn = jax.jit(lambda x, rng: LOSSES.get(loss)(score_fn, sde, x, rng, prediction="score", **kw))
  return np.asarray(fn(x0, jax.random.PRNGKey(1)), np.float64)


def _check_mean(values, expected, name):
  sd = values.std() / np.sqrt(values.size)
  print(f"{name}: mean {values.mean():.5f}, expected {expected:.5f}, MC sd {sd:.5f}")
  assert abs(values.mean() - expected) < 5 * sd + 1e-4 * abs(expected)


@pytest.mark.parametrize("name", sorted(SDES))
def test_continuous_losses_match_quadrature(name):
  sde = SDES[name]

  def ratio(t):  # m^2 S^2 / V per dimension
    m, std, _ = _coefs(sde, t)
    return m**2 * S**2 / (m**2 * S**2 + std**2)

  def lik(t):  # g^2 / std^2 * m^2 S^2 / V
    m, std, g = _coefs(sde, t)
    return g**2 / std**2 * m**2 * S**2 / (m**2 * S**2 + std**2)

  dsm_mean = 0.5 * D * _quad(ratio, EPS, 1.0) / (1.0 - EPS)
  lik_mean = 0.5 * D * _quad(lik, EPS, 1.0)
  _check_mean(_run("dsm", sde, eps=EPS), dsm_mean, f"{name} dsm")
  _check_mean(_run("dsm", sde, eps=EPS, antithetic=True), dsm_mean, f"{name} dsm antithetic")
  uniform = _run("dsm_likelihood", sde, eps=EPS)
  weighted = _run("dsm_likelihood", sde, eps=EPS, importance_sampling=True)
  _check_mean(uniform, lik_mean, f"{name} likelihood")
  _check_mean(weighted, lik_mean, f"{name} likelihood IS")
  if name == "ve":  # g^2 / sigma^2 is constant: importance sampling is uniform sampling
    np.testing.assert_allclose(weighted, uniform, rtol=1e-4)
  else:  # what importance sampling is for
    assert weighted.std() < 0.5 * uniform.std()


@pytest.mark.parametrize("name", sorted(SDES))
def test_importance_sampling_distribution(name):
  sde = SDES[name]
  u = jnp.linspace(0.0, 1.0, 11)
  t, z = importance_sample_t(sde, u, EPS)
  t, z = np.asarray(t, np.float64), float(z)

  def density(s):
    _, std, g = _coefs(sde, s)
    return g**2 / std**2

  np.testing.assert_allclose(z, _quad(density, EPS, 1.0), rtol=2e-3)
  np.testing.assert_allclose(t[[0, -1]], [EPS, 1.0], rtol=1e-3)
  # the CDF at t_k is u_k
  cdf = [_quad(density, EPS, tk, 20_001) / z for tk in t[1:-1]]
  np.testing.assert_allclose(cdf, np.asarray(u)[1:-1], atol=3e-3)


def test_smld_loss_matches_sum_over_noise_levels():
  sde = VESDE(sigma_min=0.01, sigma_max=10.0, N=100)
  sigmas = np.asarray(sde.discrete_sigmas, np.float64)
  expected = 0.5 * D * np.mean(S**2 / (S**2 + sigmas**2))
  _check_mean(_run("smld", sde), expected, "smld")


def test_ddpm_loss_matches_sum_over_steps():
  """The discrete VP loss on the chain (`DiscreteVP`), the model's score that of the step
  the samplers take at t (floor), as a discrete score_sde network's is."""
  sde = VPSDE(N=100)
  abar = np.asarray(sde.alphas_cumprod, np.float64)

  def discrete_score(x, t):  # exact score of the discrete marginal at step floor(t (N-1))
    a = sde.alphas_cumprod[sde.discrete_index(t)][:, None]
    return -(x - jnp.sqrt(a) * MU) / (a * S**2 + 1.0 - a)

  expected = D * np.mean(abar * S**2 / (abar * S**2 + 1 - abar))
  _check_mean(_run("ddpm", DiscreteVP(sde), discrete_score), expected, "ddpm")


@pytest.mark.parametrize("n", [50, 100, 1000])
def test_discrete_times_are_the_steps_themselves(n):
  """t_i = i / (N - 1) in float32 falls one ulp short of step i for 170 of N = 1000 steps;
  the discrete losses must still train every step i (and feed the network 999 t ~ i)."""
  sde = VPSDE(N=n)
  t = discrete_times(sde, jax.random.PRNGKey(0), 50 * n)
  steps = np.asarray(sde.discrete_index(t))
  assert set(steps) == set(range(n))
  np.testing.assert_allclose(np.asarray(t) * (n - 1), steps, rtol=1e-6, atol=1e-6)


def test_registry():
  assert LOSSES.names() == ["ddpm", "dsm", "dsm_likelihood", "edm", "hybrid", "l1", "mse",
                            "smld", "vlb"]
