"""EDM's samplers and DPM-Solver++ against exact denoisers (Gaussian and Gaussian-mixture data).

* Accuracy: the 3-component 2-D mixture of tests/sde/test_sde_samplers.py, its exact denoiser
  in closed form (`GaussianMixtureScore.denoiser`), the same tolerances (0.04 on each mean
  coordinate, 0.05 + 6% on each covariance entry), and the comparison with DDIM at the same
  number of network evaluations: each sampler's distance to the converged flow from the same
  x_T (a 399-evaluation Heun solution), per sample (RMS) and in the covariance.
* Order: on Gaussian data the probability-flow ODE is linear and its flow map is known in
  closed form; on a process whose time is -lambda (so the grid is uniform in lambda and the
  single-step intermediate ratios are exactly 1/2 and 1/3, 2/3) the error must fall at the
  method's order as the step count doubles.
* v and eps networks of the same exact model give the same samples, for every registered
  sampler.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gen_jax.diffusion import VPSDE, make_schedule
from gen_jax.diffusion.edm import EDMProcess
from gen_jax.samplers import SAMPLERS
from gen_jax.samplers.dpm_solver import FIRST, M2, S2_END, S3_END, S3_MID, step_plan
from tests.sde.mixture import GaussianMixtureScore

MIX = GaussianMixtureScore(means=((-1.0, 0.0), (1.0, 0.5), (0.0, -1.0)), std=0.3,
                           weights=(0.5, 0.3, 0.2))
MIX_BATCH = 8192


def _sample(name, process, x_T, prediction="x0", **kw):
  fn = jax.jit(lambda x: SAMPLERS.get(name)(
      MIX.denoiser(process, prediction), process, rng=jax.random.key(0), init_noise=x,
      prediction=prediction, **kw))
  out = fn(x_T)
  return np.asarray(out.samples, np.float64), out.nfe


def _within_tolerance(x):
  """The mixture test's tolerances (tests/sde/test_sde_samplers.py)."""
  mean_err = np.max(np.abs(x.mean(0) - MIX.mean()))
  cov_err = np.max(np.abs(np.cov(x.T) - MIX.cov()) / (0.05 + 0.06 * np.abs(MIX.cov())))
  return mean_err, cov_err


def _errors_to(x, ref):
  """(RMS distance per sample, max |cov - cov_ref|) to the converged flow's samples."""
  return (np.sqrt(np.mean(np.sum((x - ref) ** 2, -1))),
          np.max(np.abs(np.cov(x.T) - np.cov(ref.T))))


def test_edm_heun_35_nfe_reproduces_mixture_and_beats_ddim():
  """EDM Heun, 18 steps (35 NFE), on EDM's process (sigma in [0.002, 80], rho = 7): within the
  tolerances (measured: max mean error 0.0074, cov error 0.60 of the tolerance), and closer
  to the converged flow than DDIM with 35 steps on the same grid (EDM's Euler sampler):
  RMS 0.040 vs 0.069, covariance 0.056 vs 0.078 (DDIM: mean error 0.0144, cov 0.72 of tol).
  """
  process = EDMProcess()
  x_T = process.prior_sampling(jax.random.key(11), (MIX_BATCH, 2))
  ref, _ = _sample("edm_heun", process, x_T, num_steps=200)
  heun, nfe = _sample("edm_heun", process, x_T, num_steps=18)
  ddim, ddim_nfe = _sample("ddim", process, x_T, num_steps=35, clip_x0=False)
  assert nfe == ddim_nfe == 35
  mean_err, cov_err = _within_tolerance(heun)
  heun_rms, heun_cov = _errors_to(heun, ref)
  ddim_rms, ddim_cov = _errors_to(ddim, ref)
  print(f"edm heun 35: mean {mean_err:.4f} cov/tol {cov_err:.3f} rms {heun_rms:.4f} "
        f"cov {heun_cov:.4f}; ddim 35: rms {ddim_rms:.4f} cov {ddim_cov:.4f}")
  assert mean_err < 0.04 and cov_err < 1.0
  assert heun_rms < 0.75 * ddim_rms and heun_cov < ddim_cov


def test_edm_heun_on_a_cosine_chain_with_near_zero_terminal_snr():
  """On a 1024-step cosine chain the grid starts at s = sigma / alpha ~ 2e4 and jumps to ~11:
  Heun's correction on that first step saturated every sample (found by the NFE benchmark);
  with the Euler first step the 18-step sampler reproduces the mixture."""
  process = make_schedule("cosine", 1024)
  x_T = process.prior_sampling(jax.random.key(12), (MIX_BATCH, 2))
  heun, nfe = _sample("edm_heun", process, x_T, num_steps=18)
  assert nfe == 35
  mean_err, cov_err = _within_tolerance(heun)
  assert mean_err < 0.04 and cov_err < 1.0, (mean_err, cov_err)


@pytest.mark.parametrize("process_name", ["chain", "vpsde"])
def test_dpm_solver_2m_20_nfe_reproduces_mixture_and_beats_ddim(process_name):
  """DPM-Solver++(2M), 20 NFE, eps-network, on DDPM's linear chain (T = 1000, diffusers'
  "linspace" spacing) and the VP SDE (times from 1 to 1e-3): within the tolerances (measured:
  mean 0.0095, cov 0.21 of tol), closer to the converged flow than DDIM with 20 steps:
  RMS 0.064 vs 0.094 and covariance 0.016 vs 0.099 (DDIM: mean 0.0164, cov 0.93 of tol).
  """
  process = make_schedule("linear", 1000) if process_name == "chain" else VPSDE()
  x_T = process.prior_sampling(jax.random.key(11), (MIX_BATCH, 2))
  chain = process_name == "chain"
  ref, _ = _sample("edm_heun", process, x_T, "eps", num_steps=200)
  dpm, nfe = _sample("dpm_solver_2m", process, x_T, "eps", num_steps=20,
                     **({"spacing": "linspace"} if chain else {}))
  ddim, ddim_nfe = _sample("ddim", process, x_T, "eps", num_steps=20, clip_x0=False)
  assert nfe == ddim_nfe == 20
  mean_err, cov_err = _within_tolerance(dpm)
  dpm_rms, dpm_cov = _errors_to(dpm, ref)
  ddim_rms, ddim_cov = _errors_to(ddim, ref)
  print(f"{process_name} dpm++2m 20: mean {mean_err:.4f} cov/tol {cov_err:.3f} rms "
        f"{dpm_rms:.4f} cov {dpm_cov:.4f}; ddim 20: rms {ddim_rms:.4f} cov {ddim_cov:.4f}")
  assert mean_err < 0.04 and cov_err < 1.0
  assert dpm_rms < 0.8 * ddim_rms and dpm_cov < 0.5 * ddim_cov


# ------------------------------------------------------------------ order on a linear ODE
MU, S = 0.5, 0.3


@dataclasses.dataclass(frozen=True)
class LogSNRProcess:
  """A VP process in t = -lambda: alpha^2 = sigmoid(-t), sigma^2 = sigmoid(t); its sampling
  grid linspace(t_max, t_min, n) is uniform in lambda."""

  t_max: float = 3.0
  t_min: float = -3.0

  def marginal_coef(self, t):
    t = jnp.asarray(t, jnp.float32)
    return jnp.sqrt(jax.nn.sigmoid(-t)), jnp.sqrt(jax.nn.sigmoid(t))

  def prior_sampling(self, rng, shape):
    return jax.random.normal(rng, tuple(shape), jnp.float32)

  def sampling_grid(self, num_steps=None, **unused):
    return jnp.linspace(self.t_max, self.t_min, num_steps, dtype=jnp.float32)


def _gaussian_x0(process):
  """E[x0 | x_t] for x0 ~ N(MU, S^2): linear in x_t, so the probability-flow ODE is linear."""

  def fn(x, t):
    a, s = (v[:, None] for v in process.marginal_coef(t))
    return MU + a * S**2 * (x - a * MU) / (a**2 * S**2 + s**2)

  return fn


def _exact_output(process, x_T, t_last):
  """The exact flow from t_max to t_last (x_t = a MU + sqrt(V_t / V_T) (x_T - a_T MU)) followed
  by the exact denoiser at t_last: what a sampler that evaluates last at t_last returns."""
  (a_T, a), (s_T, s) = (np.asarray(v, np.float64) for v in
                        process.marginal_coef(jnp.asarray([process.t_max, t_last])))
  v_T, v = a_T**2 * S**2 + s_T**2, a**2 * S**2 + s**2
  x = a * MU + np.sqrt(v / v_T) * (x_T - a_T * MU)
  return MU + a * S**2 * (x - a * MU) / v


# (sampler, step counts whose step in lambda halves each time, expected order). For DPM-Solver
# the S evaluations are the first S of an (S + 1)-point grid; EDM Heun evaluates on all S.
# Measured rates: 2M 1.93, 2.12; 2S 1.71, 1.85 (approaching 2 from below: an h^3 term of the
# opposite sign); 3S 3.54, 3.81; Heun 2.18, 2.09. A first-order method (DDIM) gives ~1.
ORDER_CASES = [
    ("dpm_solver_2m", [9, 17, 33], 2),
    ("dpm_solver_2s", [17, 33, 65], 2),
    ("dpm_solver_3s", [7, 13, 25], 3),
    ("edm_heun", [5, 9, 17], 2),
]


@pytest.mark.parametrize("name,steps,order", ORDER_CASES, ids=[c[0] for c in ORDER_CASES])
def test_order_on_linear_ode(name, steps, order):
  """Errors against the exact flow fall by ~2^order per halving of the step in lambda."""
  process = LogSNRProcess()
  x_T = jax.random.normal(jax.random.key(0), (16, 4))
  errors = []
  for n in steps:
    out = SAMPLERS.get(name)(_gaussian_x0(process), process, rng=jax.random.key(1),
                             init_noise=x_T, prediction="x0", num_steps=n)
    grid = np.linspace(process.t_max, process.t_min, n if name == "edm_heun" else n + 1)
    exact = _exact_output(process, np.asarray(x_T, np.float64), grid[n - 1])
    errors.append(np.max(np.abs(np.asarray(out.samples, np.float64) - exact)))
  rates = np.log2(np.asarray(errors[:-1]) / np.asarray(errors[1:]))
  print(name, np.asarray(errors), rates)
  assert np.all(rates > order - 0.35), (errors, rates)
  assert np.all(rates < order + 1.0), (errors, rates)  # no faster: the order is not higher


def test_step_plans():
  assert step_plan("2m", 5) == ([FIRST, M2, M2, M2, FIRST], [0, 1, 2, 3, 4])
  assert step_plan("2m", 1) == ([FIRST], [0])
  assert step_plan("2s", 6) == ([FIRST, S2_END, FIRST, S2_END, FIRST, FIRST],
                                [0, 0, 2, 2, 4, 5])
  assert step_plan("3s", 7) == ([FIRST, S3_MID, S3_END, FIRST, S3_MID, S3_END, FIRST],
                                [0, 0, 0, 3, 3, 3, 6])
  assert step_plan("3s", 6) == ([FIRST, S3_MID, S3_END, FIRST, S2_END, FIRST],
                                [0, 0, 0, 3, 3, 5])
  with pytest.raises(ValueError, match="2m, 2s or 3s"):
    step_plan("4m", 5)


# ------------------------------------------------------------------ v and eps agree
def _process_for(name):
  """A process each sampler supports, small enough to run in a blink."""
  if name in ("pc", "euler_maruyama", "ode", "reverse_diffusion"):
    return VPSDE(N=20)
  if name == "edm_stochastic":
    return EDMProcess(N=8)
  return make_schedule("linear", 20)


SAMPLER_OPTIONS = {"ode": {"method": "heun"}, "edm_stochastic": {"S_churn": 10.0}}


@pytest.mark.parametrize("name", SAMPLERS.names())
def test_v_and_eps_networks_give_the_same_samples(name):
  """The exact eps and v outputs of one model (Gaussian data) give the same samples with the
  same key, for every registered sampler (stochastic ones included)."""
  process = _process_for(name)
  outs = []
  for prediction in ("eps", "v"):
    fn = MIX.denoiser(process, prediction)
    if name == "learned_variance":  # a 2C output: the prediction and v_var = 0 (the middle)
      fn = (lambda f: lambda x, t: jnp.concatenate([f(x, t), jnp.zeros_like(x)], -1))(fn)
    out = SAMPLERS.get(name)(fn, process, rng=jax.random.key(3), shape=(64, 2),
                             prediction=prediction, **SAMPLER_OPTIONS.get(name, {}))
    outs.append(np.asarray(out.samples))
  assert np.all(np.isfinite(outs[0]))
  np.testing.assert_allclose(outs[0], outs[1], atol=2e-4, rtol=1e-4)


def test_v_prediction_on_a_variance_exploding_process():
  """v = alpha eps - sigma x0 inverts on EDM's process (alpha^2 + sigma^2 != 1) too."""
  process = EDMProcess(N=6)
  outs = [np.asarray(SAMPLERS.get("edm_heun")(MIX.denoiser(process, p), process,
                                              rng=jax.random.key(0), shape=(32, 2),
                                              prediction=p).samples) for p in ("x0", "v")]
  np.testing.assert_allclose(outs[0], outs[1], atol=1e-4)


def test_edm_sampler_nfe_churn_and_errors():
  process = EDMProcess()
  calls = []

  def fn(x, t):
    jax.debug.callback(lambda: calls.append(1))
    return MIX.denoiser(process)(x, t)

  out = SAMPLERS.get("edm_heun")(fn, process, rng=jax.random.key(0), shape=(4, 2))
  jax.effects_barrier()
  assert out.nfe == len(calls) == 35
  x_T = process.prior_sampling(jax.random.key(1), (64, 2))
  run = lambda key, **kw: np.asarray(SAMPLERS.get("edm_heun")(
      MIX.denoiser(process), process, rng=key, init_noise=x_T, num_steps=10, **kw).samples)
  np.testing.assert_array_equal(run(jax.random.key(2)), run(jax.random.key(3)))
  a, b = (run(jax.random.key(k), S_churn=20.0) for k in (2, 3))
  assert np.max(np.abs(a - b)) > 1e-3  # churn draws fresh noise
  # Steps outside [S_tmin, S_tmax] take no churn: exactly no noise, not the square root of a
  # rounded s^^2 - s^2 < 0 (that was NaN for every sample where XLA fuses it into an FMA: it
  # fails on the old code with GEN_JAX_TEST_XLA_OPTIMIZE=1, as the GPU suite runs).
  c = run(jax.random.key(2), S_churn=20.0, S_tmin=0.05, S_tmax=10.0)
  assert np.all(np.isfinite(c))
  with pytest.raises(ValueError, match="sigma_to_t"):
    SAMPLERS.get("edm_stochastic")(MIX.denoiser(VPSDE()), VPSDE(), rng=jax.random.key(0),
                                   shape=(2, 2))
  zt = make_schedule("linear", 20, zero_terminal_snr=True)
  with pytest.raises(ValueError, match="alpha > 0"):
    SAMPLERS.get("edm_heun")(MIX.denoiser(zt, "v"), zt, rng=jax.random.key(0), shape=(2, 2),
                             prediction="v")
