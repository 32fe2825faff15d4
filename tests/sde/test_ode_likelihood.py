"""The adaptive ODE solver, the adaptive probability-flow sampler and exact likelihoods.

* `odeint_adaptive` against closed-form solutions (forwards and backwards, pytrees) and the
  number of evaluations of scipy's RK45 with the same tolerances;
* the rk45 probability-flow sampler against the exact (affine) flow map of Gaussian data;
* `ode_likelihood` against the analytic log-density log p_eps for Gaussian data (Hutchinson:
  exact here since the drift's Jacobian is a multiple of I) and for a 2-D Gaussian mixture
  (exact trace), for VE, VP and sub-VP;
* `bits_per_dim`'s change of variables on a uniform density (8 bits exactly).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gen_jax.diffusion import (VESDE, VPSDE, bits_per_dim, ode_likelihood, odeint_adaptive,
                               subVPSDE)
from gen_jax.samplers import AdaptiveSampleOutput, ode_sample
from tests.sde.mixture import GaussianMixtureScore, gaussian_score

SDES = {"ve": VESDE(sigma_max=10.0), "vp": VPSDE(), "subvp": subVPSDE()}
MU, S = 0.5, 0.3


def test_odeint_adaptive_matches_closed_form_and_scipy_cost():
  f = lambda t, y: {"a": -2.0 * y["a"], "b": jnp.stack([y["b"][1], -y["b"][0]])}
  y0 = {"a": jnp.ones((3,)), "b": jnp.array([1.0, 0.0])}
  solve = jax.jit(lambda y, t0, t1: odeint_adaptive(f, y, t0, t1, rtol=1e-6, atol=1e-8))
  sol = solve(y0, 0.0, 3.0)
  assert bool(sol.success)
  np.testing.assert_allclose(sol.y["a"], np.exp(-6.0), rtol=1e-4)
  np.testing.assert_allclose(sol.y["b"], [np.cos(3.0), -np.sin(3.0)], atol=2e-6)
  # scipy.integrate.solve_ivp(method="RK45", rtol=1e-6, atol=1e-8) takes 152 evaluations
  # on this problem (measured); the same algorithm must not cost more.
  assert int(sol.nfe) == 2 + 6 * int(sol.num_steps) and int(sol.nfe) <= 152
  back = solve(sol.y, 3.0, 0.0)  # backwards in time returns to the start
  np.testing.assert_allclose(back.y["a"], 1.0, rtol=1e-4)
  np.testing.assert_allclose(back.y["b"], [1.0, 0.0], atol=2e-5)
  capped = odeint_adaptive(f, y0, 0.0, 3.0, rtol=1e-6, atol=1e-8, max_steps=3)
  assert not bool(capped.success) and int(capped.num_steps) == 3
  with pytest.raises(ValueError, match="rtol"):
    odeint_adaptive(f, y0, 0.0, 1.0, rtol=0.0)


def _exact_flow(sde, x_t, eps):
  """Exact probability-flow map T -> eps of N(MU, S^2) data then Tweedie (float64)."""
  (m_t, m_e), (std_t, std_e) = [np.asarray(a, np.float64) for a in
                                sde.marginal_coef(jnp.asarray([sde.T, eps]))]
  v_t, v_e = m_t**2 * S**2 + std_t**2, m_e**2 * S**2 + std_e**2
  x_eps = m_e * MU + np.sqrt(v_e / v_t) * (x_t - m_t * MU)
  return MU + m_e * S**2 * (x_eps - m_e * MU) / v_e


@pytest.mark.parametrize("name", sorted(SDES))
def test_rk45_sampler_matches_exact_flow(name):
  sde = SDES[name]
  x_t = sde.prior_sampling(jax.random.PRNGKey(3), (1024, 16))
  run = jax.jit(lambda x: ode_sample(gaussian_score(sde, MU, S), sde, prediction="score",
                                     rng=jax.random.PRNGKey(0),
                                     method="rk45", init_noise=x, eps=1e-3))
  out = run(x_t)
  assert isinstance(out, AdaptiveSampleOutput) and bool(np.all(out.success))
  err = np.max(np.abs(np.asarray(out.samples, np.float64) -
                      _exact_flow(sde, np.asarray(x_t, np.float64), 1e-3)))
  print(f"{name} rk45: nfe {int(out.nfe)}, max |x - exact| = {err:.2e}")
  # rtol = atol = 1e-5 local tolerances; measured global max errors 6e-6 (VP), 8e-6 (VE),
  # 5e-5 (sub-VP), with 75-81 evaluations.
  assert err < 5e-4
  assert 20 < int(out.nfe) < 1000  # the paper reports ~100-300 for CIFAR-10 models


def _gaussian_logp_eps(sde, x, eps):
  m, std = [float(a) for a in sde.marginal_coef(jnp.asarray(eps))]
  v = m**2 * S**2 + std**2
  d = x.shape[1]
  return -0.5 * d * np.log(2 * np.pi * v) - 0.5 * np.sum((x - m * MU) ** 2, axis=1) / v


def _prior_mismatch_logp(sde, x, eps):
  """log p_eps(x) that the ODE computes with the exact score but the *prior* at T (float64).

  The flow map is affine: z = m_T MU + sqrt(V_T / V_eps) (x - m_eps MU), so
  log p = prior_logp(z) + D/2 log(V_T / V_eps).
  """
  (m_t, m_e), (std_t, std_e) = [np.asarray(a, np.float64) for a in
                                sde.marginal_coef(jnp.asarray([sde.T, eps]))]
  v_t, v_e = m_t**2 * S**2 + std_t**2, m_e**2 * S**2 + std_e**2
  z = m_t * MU + np.sqrt(v_t / v_e) * (x - m_e * MU)
  prior_var = float(sde.sigma_max) ** 2 if isinstance(sde, VESDE) else 1.0
  d = x.shape[1]
  prior = -0.5 * d * np.log(2 * np.pi * prior_var) - 0.5 * np.sum(z**2, axis=1) / prior_var
  return prior + 0.5 * d * np.log(v_t / v_e)


@pytest.mark.parametrize("name", sorted(SDES))
def test_ode_likelihood_of_gaussian_data(name):
  sde = {"ve": VESDE(sigma_max=50.0)}.get(name, SDES[name])
  eps = 1e-5
  x = MU + S * np.random.default_rng(0).standard_normal((64, 16))
  run = jax.jit(lambda x, rng: ode_likelihood(gaussian_score(sde, MU, S), sde, x, rng=rng,
                                              prediction="score",
                                              eps=eps))
  out = run(jnp.asarray(x, jnp.float32), jax.random.PRNGKey(1))
  assert bool(out.success)
  logp = np.asarray(out.logp, np.float64)
  model = _prior_mismatch_logp(sde, x, eps)
  exact = _gaussian_logp_eps(sde, x, eps)
  err_model, err_exact = np.max(np.abs(logp - model)), np.max(np.abs(logp - exact))
  print(f"{name}: nfe {int(out.nfe)}, |logp - flow formula| {err_model:.2e}, "
        f"|logp - log p_eps| {err_exact:.2e}, logp ~ {logp.mean():.2f}")
  # The divergence is integrated to ~1e-5 relative accuracy of a total of |D/2 log(V_T/V_eps)|
  # (~85 nats for VE); measured max errors 1.7e-4 (VP, sub-VP) and 5.8e-4 (VE).
  assert err_model < 5e-3
  # Against the true log p_eps, the prior mismatch p_T != prior (mean m_T MU vs 0, variance
  # V_T vs prior) adds its own, known, difference: max 0.03 nats (VP, sub-VP: the prior's
  # variance 1 vs V_T) and 0.1 nats (VE, sigma_max = 50) over the 16 dimensions.
  mismatch = np.max(np.abs(model - exact))
  assert mismatch < 0.2
  assert err_exact < mismatch + 0.02
  # Hutchinson with a Gaussian probe is unbiased but not exact: compare the batch mean.
  gauss = jax.jit(lambda x, rng: ode_likelihood(gaussian_score(sde, MU, S), sde, x, rng=rng,
                                                prediction="score",
                                                eps=eps, trace="gaussian"))(
      jnp.asarray(x, jnp.float32), jax.random.PRNGKey(2))
  # The drift's Jacobian is c(t) I, so the Gaussian-probe estimate of the integrated
  # divergence is delta ||probe||^2 / D: per-example sd |delta| sqrt(2 / D).
  delta = float(np.mean(np.asarray(out.delta_logp)))
  sd_mean = abs(delta) * math.sqrt(2 / 16) / math.sqrt(64)
  assert abs(np.mean(np.asarray(gauss.logp) - model)) < 5 * sd_mean + 0.02
  assert np.std(np.asarray(gauss.logp) - model) > 0.1 * abs(delta) * math.sqrt(2 / 16)


@pytest.mark.parametrize("name", sorted(SDES))
def test_ode_likelihood_of_gaussian_mixture(name):
  sde = {"ve": VESDE(sigma_max=50.0)}.get(name, SDES[name])
  mix = GaussianMixtureScore(means=((-1.0, 0.0), (1.0, 0.5), (0.0, -1.0)), std=0.3,
                             weights=(0.5, 0.3, 0.2))
  eps = 1e-5
  x = mix.sample(np.random.default_rng(0), 32)
  run = jax.jit(lambda x: ode_likelihood(mix.score_fn(sde), sde, x, prediction="score",
                                         trace="exact", eps=eps))
  out = run(jnp.asarray(x, jnp.float32))
  assert bool(out.success)
  exact = np.asarray(mix.log_prob_t(sde, jnp.asarray(x, jnp.float32), eps), np.float64)
  err = np.max(np.abs(np.asarray(out.logp, np.float64) - exact))
  print(f"{name} mixture: nfe {int(out.nfe)}, max |logp - log p_eps| = {err:.2e}")
  # solver error ~1e-3; prior mismatch: VP/sub-VP m(1)^2 ~ 4e-5, VE |mean|/sigma_max^2 ~ 4e-4
  assert err < 0.02


def test_bits_per_dim_change_of_variables():
  d = 3 * 4 * 4
  # The uniform density on [-1, 1)^D (2^-D) is 256 equiprobable levels: 8 bits per dimension.
  np.testing.assert_allclose(bits_per_dim(jnp.full((2,), -d * math.log(2.0)), d), 8.0,
                             rtol=1e-6)
  # A density twice as high on every axis saves one bit per dimension.
  np.testing.assert_allclose(bits_per_dim(jnp.asarray([0.0]), d), 7.0, rtol=1e-6)
  # Data in [0, 1) (bin width 1/256): offset 8, as the paper's code for uncentred data.
  np.testing.assert_allclose(bits_per_dim(jnp.asarray([0.0]), d, bin_width=1 / 256), 8.0)


def test_likelihood_bad_arguments():
  sde = VPSDE(N=10)
  x = jnp.zeros((2, 3))
  with pytest.raises(ValueError, match="trace"):
    ode_likelihood(gaussian_score(sde, MU, S), sde, x, prediction="score",
                   trace="skilling")
  with pytest.raises(ValueError, match="PRNG"):
    ode_likelihood(gaussian_score(sde, MU, S), sde, x, prediction="score")
