"""Forward SDEs (Song et al., ICLR 2021): marginals, discretisations, priors, reverse SDEs."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from gen_jax.diffusion import make_schedule
from gen_jax.diffusion import SDES, VESDE, VPSDE, subVPSDE

ALL = {"vesde": VESDE(), "vpsde": VPSDE(), "subvpsde": subVPSDE()}


def test_registry():
  assert SDES.names() == ["subvpsde", "vesde", "vpsde"]
  assert SDES.get("vpsde") is VPSDE
  sde = SDES.get("vesde")()
  assert (sde.sigma_min, sde.sigma_max, sde.N, sde.T) == (0.01, 50.0, 1000, 1.0)
  assert hash(VPSDE()) == hash(VPSDE())  # frozen: usable as a static jit argument
  with pytest.raises(dataclasses.FrozenInstanceError):
    VPSDE().N = 5


def _moments_by_integration(sde, t_end, num=20000):
  """m(t_end), std(t_end) from the moment ODEs of the SDE itself, in float64.

  For dx = a(t) x dt + g(t) dw (a read off sde.sde at x = 1): d log m / dt = a and
  dV / dt = 2 a V + g^2, stepped exactly for a, g frozen at each midpoint. VE starts at
  V(0) = sigma_min^2 (the convention p_0 = data perturbed at sigma_min); the others at 0.
  """
  edges = np.linspace(0.0, t_end, num + 1)
  mid = 0.5 * (edges[1:] + edges[:-1])
  dt = t_end / num
  ones = jnp.ones((num, 1), jnp.float32)
  drift, g = sde.sde(ones, jnp.asarray(mid, jnp.float32))
  a = np.asarray(drift, np.float64)[:, 0]
  g2 = np.asarray(g, np.float64) ** 2
  var = sde.sigma_min**2 if isinstance(sde, VESDE) else 0.0
  for ak, gk in zip(a, g2):
    decay = np.exp(2 * ak * dt)
    var = var * decay + gk * (np.expm1(2 * ak * dt) / (2 * ak) if ak != 0 else dt)
  return np.exp(np.sum(a) * dt), np.sqrt(var)


@pytest.mark.parametrize("name", sorted(ALL))
def test_marginal_matches_moment_odes(name):
  sde = ALL[name]
  ts = [0.05, 0.3, 0.7, 1.0]
  x0 = jnp.full((len(ts), 3), 2.0)
  mean, std = sde.marginal_prob(x0, jnp.asarray(ts))
  assert mean.shape == (len(ts), 3) and std.shape == (len(ts),)
  for k, t in enumerate(ts):
    m_num, std_num = _moments_by_integration(sde, t, num=4000)
    np.testing.assert_allclose(float(mean[k, 0]) / 2.0, m_num, rtol=1e-4)
    np.testing.assert_allclose(float(std[k]), std_num, rtol=1e-3)


def test_marginal_closed_forms():
  t = np.array([0.0, 0.1, 0.5, 1.0])
  b0, b1 = 0.1, 20.0
  log_m = -0.25 * t**2 * (b1 - b0) - 0.5 * t * b0
  ones = jnp.ones((4, 2))
  mean, std = VPSDE().marginal_prob(ones, jnp.asarray(t))
  np.testing.assert_allclose(mean[:, 0], np.exp(log_m), rtol=1e-5)
  np.testing.assert_allclose(std, np.sqrt(1 - np.exp(2 * log_m)), rtol=1e-5, atol=1e-7)
  mean, std = subVPSDE().marginal_prob(ones, jnp.asarray(t))
  np.testing.assert_allclose(mean[:, 0], np.exp(log_m), rtol=1e-5)
  np.testing.assert_allclose(std, 1 - np.exp(2 * log_m), rtol=1e-5, atol=1e-7)
  mean, std = VESDE().marginal_prob(ones, jnp.asarray(t))
  np.testing.assert_allclose(mean, ones)
  np.testing.assert_allclose(std, 0.01 * 5000.0**t, rtol=1e-5)
  # sub-VP variance never exceeds VP's
  assert np.all(np.asarray(subVPSDE().marginal_coef(jnp.asarray(t))[1]) <=
                np.asarray(VPSDE().marginal_coef(jnp.asarray(t))[1]) + 1e-7)


def test_vp_discretisation_is_ddpm_linear():
  sde = VPSDE()
  sched = make_schedule("linear", 1000)
  np.testing.assert_allclose(sde.discrete_betas, sched.betas, rtol=1e-6)
  np.testing.assert_allclose(sde.alphas_cumprod, sched.alphas_cumprod, rtol=1e-6)
  np.testing.assert_allclose(np.asarray(sde.discrete_betas)[[0, -1]], [1e-4, 0.02], rtol=1e-6)
  # one step: x_{i+1} = sqrt(1 - beta_i) x_i + sqrt(beta_i) z
  x = jnp.ones((3, 2))
  t = jnp.asarray([0.0, 0.5, 1.0])
  f, g = sde.discretize(x, t)
  idx = np.array([0, 499, 999])
  beta = np.asarray(sched.betas)[idx]
  np.testing.assert_allclose(x + f, np.broadcast_to(np.sqrt(1 - beta)[:, None], (3, 2)), rtol=1e-6)
  np.testing.assert_allclose(g, np.sqrt(beta), rtol=1e-6)
  # and -log abar_{N-1} = sum_i -log(1 - beta_i) matches int_0^1 beta = -2 log m(1) up to the
  # second-order term 1/2 sum beta_i^2 ~ 0.067 (0.7% of 10.05)
  m1 = float(sde.marginal_coef(jnp.ones(1))[0][0])
  np.testing.assert_allclose(-np.log(float(sde.alphas_cumprod[-1])), -2 * np.log(m1), rtol=0.01)


def test_ve_discrete_sigmas_geometric():
  sde = VESDE()
  s = np.asarray(sde.discrete_sigmas, np.float64)
  assert s.shape == (1000,)
  np.testing.assert_allclose(s[[0, -1]], [0.01, 50.0], rtol=1e-6)
  ratios = s[1:] / s[:-1]
  np.testing.assert_allclose(ratios, 5000.0 ** (1 / 999), rtol=1e-5)
  x = jnp.zeros((3, 4))
  f, g = sde.discretize(x, jnp.asarray([0.0, 0.5, 1.0]))
  np.testing.assert_array_equal(f, 0.0)
  expect = [s[0], np.sqrt(s[499] ** 2 - s[498] ** 2), np.sqrt(s[999] ** 2 - s[998] ** 2)]
  np.testing.assert_allclose(g, expect, rtol=1e-4)


def test_subvp_discretize_is_euler_maruyama():
  sde = subVPSDE(N=100)
  x = jnp.full((2, 3), 0.7)
  t = jnp.asarray([0.2, 0.9])
  drift, g = sde.sde(x, t)
  f, big_g = sde.discretize(x, t)
  np.testing.assert_allclose(f, drift * 0.01, rtol=1e-6)
  np.testing.assert_allclose(big_g, g * 0.1, rtol=1e-6)


@pytest.mark.parametrize("name", sorted(ALL))
def test_prior(name):
  sde = ALL[name]
  scale = 50.0 if name == "vesde" else 1.0
  z = sde.prior_sampling(jax.random.PRNGKey(0), (4096, 8))
  assert z.shape == (4096, 8) and z.dtype == jnp.float32
  z64 = np.asarray(z, np.float64)
  # 32768 N(0, scale^2) draws: sd of the mean scale/181, of the variance ratio 0.008
  assert abs(z64.mean()) < 5 * scale / np.sqrt(z64.size)
  assert abs(z64.var() / scale**2 - 1) < 5 * np.sqrt(2 / z64.size)
  pts = np.asarray(jax.random.normal(jax.random.PRNGKey(1), (5, 2, 3)), np.float64) * scale
  logp = sde.prior_logp(jnp.asarray(pts, jnp.float32))
  expect = stats.norm.logpdf(pts, scale=scale).reshape(5, -1).sum(-1)
  assert logp.shape == (5,)
  np.testing.assert_allclose(logp, expect, rtol=1e-5)


@pytest.mark.parametrize("name", sorted(ALL))
def test_reverse_drift_and_diffusion(name):
  sde = ALL[name]
  score_fn = lambda x, t: -x * (1.0 + t[:, None, None])
  x = jax.random.normal(jax.random.PRNGKey(2), (3, 2, 2))
  t = jnp.asarray([0.1, 0.5, 0.9])
  drift, g = sde.sde(x, t)
  score = score_fn(x, t)
  rev_drift, rev_g = sde.reverse(score_fn).sde(x, t)
  np.testing.assert_allclose(rev_drift, drift - (g**2)[:, None, None] * score, rtol=1e-5)
  np.testing.assert_allclose(rev_g, g)
  ode_drift, ode_g = sde.reverse(score_fn, probability_flow=True).sde(x, t)
  np.testing.assert_allclose(ode_drift, drift - 0.5 * (g**2)[:, None, None] * score, rtol=1e-5)
  np.testing.assert_array_equal(ode_g, 0.0)
  f, big_g = sde.discretize(x, t)
  rev_f, rev_big_g = sde.reverse(score_fn).discretize(x, t)
  np.testing.assert_allclose(rev_f, f - (big_g**2)[:, None, None] * score, rtol=1e-5, atol=1e-7)
  np.testing.assert_allclose(rev_big_g, big_g)
  rev_f, rev_big_g = sde.reverse(score_fn, probability_flow=True).discretize(x, t)
  np.testing.assert_allclose(rev_f, f - 0.5 * (big_g**2)[:, None, None] * score, rtol=1e-5,
                             atol=1e-7)
  np.testing.assert_array_equal(rev_big_g, 0.0)


def test_discrete_index_visits_every_step():
  sde = VPSDE()
  ts = jnp.linspace(1.0, 1e-3, 1000, dtype=jnp.float32)
  np.testing.assert_array_equal(sde.discrete_index(ts), np.arange(999, -1, -1))
