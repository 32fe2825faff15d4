"""DPM-Solver++: Lu, Zhou, Bao, Chen, Li & Zhu, "DPM-Solver++: Fast Solver for Guided Sampling
of Diffusion Probabilistic Models" (2022); github:LuChengTHU/dpm-solver (`dpm_solver_pp`,
`DPM_Solver` with algorithm_type="dpmsolver++") and diffusers' DPMSolverMultistepScheduler /
DPMSolverSinglestepScheduler.

Exponential integrators of the probability-flow ODE in the data prediction x0_hat (any
prediction type is converted, `PREDICTIONS`) and the half log-SNR lambda = log(alpha / sigma),
for any process x_t = alpha x0 + sigma eps (DDPM chains, the VP / sub-VP / VE SDEs, EDM). With
h = lambda_t - lambda_s and phi_1 = expm1(-h), one step from s to t is

    first order (DDIM):  x_t = (sigma_t / sigma_s) x_s - alpha_t phi_1 D_s;
    2M (multistep, the previous output D_p at lambda_p, r0 = (lambda_s - lambda_p) / h):
                         x_t = [first order] - 1/2 alpha_t phi_1 (D_s - D_p) / r0;
    2S (single-step, intermediate s1, r1 = (lambda_s1 - lambda_s) / h):
                         x_t = [first order] - 1/(2 r1) alpha_t phi_1 (D_s1 - D_s);
    3S (intermediates s1, s2, r_k = (lambda_sk - lambda_s) / h, phi_2 = phi_1 / h + 1):
      x_s2 = (sigma_s2 / sigma_s) x_s - alpha_s2 expm1(-r2 h) D_s
             + (r2 / r1) alpha_s2 (expm1(-r2 h) / (r2 h) + 1) (D_s1 - D_s),
      x_t  = (sigma_t / sigma_s) x_s - alpha_t phi_1 D_s + (1 / r2) alpha_t phi_2 (D_s2 - D_s)

(the official `multistep_dpm_solver_second_update`, `singlestep_dpm_solver_second_update`
and `singlestep_dpm_solver_third_update` with solver_type="dpmsolver"; x_s1 is a first-order
step). The network is evaluated once at each of S times, nfe = S, and the last step goes to
the clean data (sigma = 0, lambda = inf), where every formula above reduces to the first
order one, x_0 = D at the last evaluated time. The S times are the first S of the process's
(S + 1)-point grid (`process.sampling_grid`: DDPM steps with a spacing, SDE times from T to
eps, EDM's sigmas), as the official code's "time_uniform" S steps from T to eps (which
evaluate at the first S) and diffusers' "linspace" / "leading" spacings of
DPMSolverMultistepScheduler (S + 1 points, the last dropped); diffusers' "trailing" spacing is
its S-point grid (`_evaluation_times`). Evaluating at t ~ 0 as well would make the step before
the last a long second-order extrapolation in lambda (lambda(0) is large on VP), worse than
DDIM at 20 steps on the Gaussian-mixture test.

Single-step solvers take their intermediate points from the grid itself, as diffusers'
DPMSolverSinglestepScheduler: a k-th order step uses k consecutive grid times and lands on
the next, so r1 = 1/2 (2S) and r1, r2 = 1/3, 2/3 (3S, the official defaults) when the grid is
uniform in lambda, and tend to them on any smooth grid (the 3S update is third order only
there). The last evaluated time always takes a first-order step to the data (diffusers'
lower_order_final with final_sigmas_type="zero"); 2M also starts with one.

Deviations from the official code: no intermediate times off the grid (so no
interpolation of a discrete chain's log-alpha, and DDPM chains sample at integer steps only);
the final step returns the denoised x0 estimate rather than x at t = eps; `clip_x0` is a plain
clip of D to [-1, 1] rather than dynamic thresholding; on EDM's sigmas the grid has S + 1
points with the last skipped (k-diffusion's dpmpp_2m evaluates at all S of an S-point grid).
A grid point with alpha = 0 (zero terminal SNR) makes lambda = -inf; the higher-order
corrections that would divide by it are dropped there (first order, which is exact in that
limit).
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from gen_jax.diffusion.gaussian import PREDICTIONS
from gen_jax.samplers.base import SAMPLERS, DenoiseFn, SampleOutput, initial_noise

Array = jax.Array

# What each step does (the update rules of the module docstring).
FIRST, S2_END, S3_MID, S3_END, M2 = range(5)


def step_plan(kind: str, num_steps: int) -> tuple[list[int], list[int]]:
  """(rule [S], group start [S]) of each of the S steps: the update rule it takes and the grid
  index of the single-step group it belongs to (itself for first order and multistep).

  kind: "2m", "2s" or "3s".
  """
  n = int(num_steps)
  if n < 1:
    raise ValueError(f"num_steps must be >= 1, got {num_steps}.")
  if kind == "2m":
    rules = [FIRST] + [M2] * (n - 2) + [FIRST] if n >= 2 else [FIRST]
    return rules, list(range(n))
  order = {"2s": 2, "3s": 3}.get(kind)
  if order is None:
    raise ValueError(f"Unknown DPM-Solver++ kind {kind!r}; choose 2m, 2s or 3s.")
  rest = n - 1  # the last grid time steps to the data on its own
  sizes = [order] * (rest // order) + ([rest % order] if rest % order else []) + [1]
  rules, starts = [], []
  for size in sizes:
    start = len(rules)
    rules += {1: [FIRST], 2: [FIRST, S2_END], 3: [FIRST, S3_MID, S3_END]}[size]
    starts += [start] * size
  return rules, starts


def _evaluation_times(process, num_steps: int, grid_options) -> Array:
  """The S evaluation times (module docstring): the first S of the (S + 1)-point grid, or the
  S-point grid for diffusers' "trailing" spacing and on a chain of only S steps."""
  if (isinstance(num_steps, bool) or not isinstance(num_steps, (int, np.integer))
      or num_steps < 1):
    raise ValueError(f"num_steps must be a positive int, got {num_steps!r}.")
  num_steps = int(num_steps)
  chain_steps = getattr(process, "num_timesteps", None)
  if grid_options.get("spacing") == "trailing" or (
      chain_steps is not None and num_steps >= chain_steps):
    return process.sampling_grid(num_steps, **grid_options)
  return process.sampling_grid(num_steps + 1, **grid_options)[:-1]


def dpm_solver_pp_sample(
    denoise_fn: DenoiseFn,
    process,
    *,
    kind: str,
    rng: Array,
    shape: Sequence[int] | None = None,
    prediction: str = "eps",
    num_steps: int = 20,
    clip_x0: bool = False,
    init_noise: Array | None = None,
    **grid_options,
) -> SampleOutput:
  """DPM-Solver++ of `kind` ("2m", "2s", "3s") on the process's grid; nfe = S.

  Args:
    denoise_fn, process, rng, shape, prediction, init_noise: as every sampler
      (`gen_jax.samplers.base`); rng only draws x_T.
    num_steps: S, the number of evaluations (on a DDPM chain 1 <= S <= T).
    clip_x0: clip the data prediction to [-1, 1].
    grid_options: of `process.sampling_grid`: spacing (DDPM chain: uniform, quadratic,
      leading, linspace, trailing), eps (SDEs: the last time), rho (EDM).

  Returns:
    SampleOutput with samples of x_T's shape and nfe = S.
  """
  predictor = PREDICTIONS.get(prediction)
  times = _evaluation_times(process, num_steps, grid_options)
  n = int(times.shape[0])
  rules, starts = step_plan(kind, n)
  alpha, sigma = process.marginal_coef(times)
  alpha = jnp.append(alpha.astype(jnp.float32), 1.0)  # index n: the clean data
  sigma = jnp.append(sigma.astype(jnp.float32), 0.0)
  lam = jnp.log(alpha) - jnp.log(sigma)  # -inf where alpha = 0, +inf at index n
  x_init = initial_noise(process, rng, shape, init_noise)
  batch = x_init.shape[0]

  def data_prediction(x, t):
    tb = jnp.full((batch,), t, times.dtype)
    x0 = predictor.to_x0_eps(process, denoise_fn(x, tb), x, tb)[0].astype(x.dtype)
    return jnp.clip(x0, -1.0, 1.0) if clip_x0 else x0

  def finite(coef, *lams):
    ok = jnp.all(jnp.isfinite(jnp.stack(lams)))
    return jnp.where(ok, coef, 0.0)

  def first_order(x, d, s, t):
    phi_1 = jnp.expm1(-(lam[t] - lam[s]))
    return sigma[t] / sigma[s] * x - alpha[t] * phi_1 * d

  def first(args):
    x, x_g, d, d_g, d_prev, i, g = args
    return first_order(x, d, i, i + 1)

  def s2_end(args):  # from the group start g (= s) over s1 = i to t = i + 1
    x, x_g, d, d_g, d_prev, i, g = args
    h = lam[i + 1] - lam[g]
    coef = finite(0.5 * h / (lam[i] - lam[g]), lam[g])
    return first_order(x_g, d_g, g, i + 1) - coef * alpha[i + 1] * jnp.expm1(-h) * (d - d_g)

  def s3_mid(args):  # x_s2 at i + 1 from s = g and s1 = i
    x, x_g, d, d_g, d_prev, i, g = args
    h2, h1 = lam[i + 1] - lam[g], lam[i] - lam[g]
    phi_22 = jnp.expm1(-h2) / h2 + 1.0
    coef = finite(h2 / h1 * phi_22, lam[g])
    return first_order(x_g, d_g, g, i + 1) + coef * alpha[i + 1] * (d - d_g)

  def s3_end(args):  # from s = g over s1 = g + 1, s2 = i to t = i + 1
    x, x_g, d, d_g, d_prev, i, g = args
    h = lam[i + 1] - lam[g]
    phi_2 = jnp.expm1(-h) / h + 1.0
    coef = finite(h / (lam[i] - lam[g]) * phi_2, lam[g])
    return first_order(x_g, d_g, g, i + 1) + coef * alpha[i + 1] * (d - d_g)

  def m2(args):  # from s = i with the previous output at i - 1
    x, x_g, d, d_g, d_prev, i, g = args
    h = lam[i + 1] - lam[i]
    coef = finite(0.5 * h / (lam[i] - lam[i - 1]), lam[i - 1], lam[i])
    return first_order(x, d, i, i + 1) - coef * alpha[i + 1] * jnp.expm1(-h) * (d - d_prev)

  branches = (first, s2_end, s3_mid, s3_end, m2)

  def step(carry, inputs):
    x, x_g, d_g, d_prev = carry
    i, t, rule, g = inputs
    d = data_prediction(x, t)
    is_start = g == i  # the group's first time: remember x_s and D_s
    x_g = jnp.where(is_start, x, x_g)
    d_g = jnp.where(is_start, d, d_g)
    x_next = jax.lax.switch(rule, branches, (x, x_g, d, d_g, d_prev, i, g))
    return (x_next.astype(x.dtype), x_g, d_g, d), None

  zeros = jnp.zeros_like(x_init)
  inputs = (jnp.arange(n, dtype=jnp.int32), times, jnp.asarray(rules, jnp.int32),
            jnp.asarray(starts, jnp.int32))
  (x, *_), _ = jax.lax.scan(step, (x_init, x_init, zeros, zeros), inputs)
  return SampleOutput(samples=x, nfe=n)


def _register(kind: str, doc: str):
  def sample(denoise_fn: DenoiseFn, process, *, rng: Array,
             shape: Sequence[int] | None = None, prediction: str = "eps",
             num_steps: int = 20, clip_x0: bool = False,
             init_noise: Array | None = None, **grid_options) -> SampleOutput:
    return dpm_solver_pp_sample(denoise_fn, process, kind=kind, rng=rng, shape=shape,
                                prediction=prediction, num_steps=num_steps, clip_x0=clip_x0,
                                init_noise=init_noise, **grid_options)

  sample.__name__ = f"dpm_solver_{kind}_sample"
  sample.__doc__ = doc + "\n\nArguments: those of `dpm_solver_pp_sample`; nfe = num_steps."
  SAMPLERS.add(f"dpm_solver_{kind}", sample)
  return sample


dpm_solver_2m_sample = _register("2m", "DPM-Solver++(2M): second-order multistep (module "
                                 "docstring), the paper's Algorithm 2.")
dpm_solver_2s_sample = _register("2s", "DPM-Solver++(2S): second-order single-step on pairs "
                                 "of grid times (module docstring), the paper's Algorithm 1.")
dpm_solver_3s_sample = _register("3s", "DPM-Solver++(3S): third-order single-step on triples "
                                 "of grid times (module docstring).")
