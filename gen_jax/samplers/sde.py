"""Samplers of score-based SDE models, and ancestral sampling of every noise process.

Song et al., "Score-Based Generative Modeling through Stochastic Differential Equations" (ICLR
2021), section 4 and appendices D, F, G. Every sampler has the signature of `SAMPLERS`
(`gen_jax.samplers.base`): the score they integrate is derived from the denoiser's output
through `PREDICTIONS` (`score_fn_of`), so a DDPM eps-network and a score network both work.

The SDE samplers integrate the reverse-time SDE (or the probability-flow ODE) of `process`
(an SDE) from T down to eps > 0 on the grid

    t_k = T + k (eps - T) / (n - 1),   k = 0, ..., n - 1   (t_0 = T, t_{n-1} = eps),

with n = num_steps (default sde.N). They are pure functions built on `jax.lax.fori_loop`, so
`jax.jit` traces the network a fixed number of times whatever n. The scheme of the SDE
samplers is

    x ~ p_T (sde.prior_sampling) or init_noise
    for k = 0, ..., n - 2:   [corrector at t_k], predictor step t_k -> t_{k+1}
    at t_{n-1} = eps:        [corrector], then
        denoise=True:  x = E[x0 | x_eps] by Tweedie's formula (x + std^2 score) / m  (1 nfe);
        denoise=False: one last predictor step (Euler-Maruyama: eps -> 0; reverse diffusion:
                       discrete step 0, which adds the smallest noise level).

Either way the predictor/denoiser costs n score evaluations, so nfe = n (1 + n_corrector_steps)
for the SDE samplers. The discrete-time predictors (reverse diffusion, ancestral) need the grid
to visit the discrete steps N-1, ..., 0 once each: n = sde.N and eps < T / (N - 1) (checked).

Ancestral sampling (`ancestral_sample`) draws x_s ~ q(x_s | x_t, x0_hat) on every step of a
discrete chain, written once (`ddim.posterior_step`): on a DDPM chain it is DDIM with eta = 1
over all T steps (DDPM Algorithm 2); on an SDE it is the PC predictor on the SDE's N-step
chain (`discrete_chain`: DDPM's betas for VP, NCSN's sigmas for VE), where the step in score
form is the paper's eq. (48) / (49), x_{i-1} = (x_i + sigma_{i|i-1}^2 s) / alpha_{i|i-1} + std z,
with std^2 = beta_i for VP ("fixed_large") and the posterior variance for VE ("fixed_small").
Deviation from the paper's code: VP adds no noise at the last chain step (i = 0), as DDPM;
this only matters with denoise=False.

The Langevin corrector (paper Algorithms 4 and 5) takes, per example,

    z ~ N(0, I),  s = score(x, t),  step = 2 alpha (snr ||z|| / ||s||)^2,
    x <- x + step s + sqrt(2 step) z,

with alpha = 1 - beta_i for the VP family and 1 for VE (`sde.langevin_alpha`). As in the
paper's code, ||z|| and ||s|| are averaged over the batch, so the step size is one number per
step: a per-example step size correlates with that example's z and x and breaks the
stationarity of p_t (for 16-dimensional Gaussian data it inflated the sample variance by
~30%); the averaged one only has ULA's O(step) bias.
"""

from __future__ import annotations

import functools
from typing import Callable, Sequence

import flax
import jax
import jax.numpy as jnp

from gen_jax.diffusion.ode import odeint_adaptive
from gen_jax.diffusion.processes import SDE, ScoreFn, batch_bcast
from gen_jax.diffusion.gaussian import score_fn_of
from gen_jax.samplers.base import SAMPLERS, DenoiseFn, SampleOutput, initial_noise
from gen_jax.samplers.ddim import ddim_sample, posterior_step

Array = jax.Array

PREDICTORS = ("euler_maruyama", "reverse_diffusion", "ancestral")
CORRECTORS = ("langevin", "none")
ODE_METHODS = ("euler", "heun", "rk45")


@flax.struct.dataclass
class AdaptiveSampleOutput:
  """Samples of an adaptive sampler, whose cost is only known after running.

  Every field is batched ([B, ...]) so that the whole output can be sharded over the batch
  like the samples (the trainer's jitted sample function does that).

  Attributes:
    samples: [B, ...] draws of x_0.
    nfe_per_sample: int32 [B], network evaluations spent on each sample (one shared step
      size: the same number for the whole batch).
    success: bool [B], the solver reached eps within its step cap.
  """

  samples: Array
  nfe_per_sample: Array
  success: Array

  @property
  def nfe(self) -> int:
    """Network evaluations per sample, as a Python int (only outside `jit`: it reads the
    device value; inside `jit` use `nfe_per_sample`)."""
    return int(jnp.max(self.nfe_per_sample))

  def scale_nfe(self, factor: int) -> "AdaptiveSampleOutput":
    return self.replace(nfe_per_sample=self.nfe_per_sample * factor)


def _check_discrete(sde: SDE, n: int, eps: float) -> None:
  if n != sde.N:
    raise ValueError(
        f"the reverse-diffusion predictor takes exactly sde.N = {sde.N} steps, got {n}; "
        "use dataclasses.replace(sde, N=...) for another number of steps.")
  if not eps * (sde.N - 1) < sde.T:
    raise ValueError(
        f"reverse diffusion needs eps < T / (N - 1) = {sde.T / (sde.N - 1)}, got {eps}.")


def tweedie_denoise(sde: SDE, score_fn: ScoreFn, x: Array, t: float) -> Array:
  """E[x0 | x_t] = (x + std(t)^2 score(x, t)) / m(t) (Tweedie's formula), x [B, ...] -> [B, ...]."""
  tt = jnp.full((x.shape[0],), t, jnp.float32)
  m, std = sde.marginal_coef(tt)
  return (x + batch_bcast(jnp.square(std), x) * score_fn(x, tt)) / batch_bcast(m, x)


def _em_step(rsde, x: Array, t: Array, dt: Array, key: Array) -> Array:
  """Euler-Maruyama: x + drift dt + g sqrt(|dt|) z, with dt < 0 (time runs backwards)."""
  drift, diffusion = rsde.sde(x, t)
  z = jax.random.normal(key, x.shape, x.dtype)
  return x + drift * dt + batch_bcast(diffusion * jnp.sqrt(-dt), x) * z


def _rd_step(rsde, x: Array, t: Array, key: Array) -> Array:
  """Reverse diffusion (paper eq. 47): x_{i-1} = x_i - rev_f + rev_G z."""
  rev_f, rev_g = rsde.discretize(x, t)
  z = jax.random.normal(key, x.shape, x.dtype)
  return x - rev_f + batch_bcast(rev_g, x) * z


def _ancestral_step(sde: SDE, score_fn: ScoreFn, x: Array, t: Array, key: Array) -> Array:
  """One ancestral step on the SDE's discrete chain from step i of t (module docstring)."""
  alphas, sigmas = sde.discrete_chain()
  i = sde.discrete_index(t[0])
  a, s = alphas[i], sigmas[i]
  a_next, s_next = jnp.where(i > 0, alphas[i - 1], 1.0), jnp.where(i > 0, sigmas[i - 1], 0.0)
  score = score_fn(x, t)
  x0_hat, eps_hat = (x + jnp.square(s) * score) / a, -s * score
  z = jax.random.normal(key, x.shape, x.dtype)
  return posterior_step(x0_hat, eps_hat, z, a, s, a_next, s_next, variance=sde.ancestral_variance)


def langevin_step(sde: SDE, score_fn: ScoreFn, x: Array, t: Array, key: Array,
                  snr: float) -> Array:
  """One Langevin corrector step with the SNR step-size rule (see module docstring); t [B]."""
  s = score_fn(x, t)
  z = jax.random.normal(key, x.shape, x.dtype)
  flat = lambda a: a.reshape(a.shape[0], -1)
  s_norm = jnp.mean(jnp.linalg.norm(flat(s), axis=-1))
  z_norm = jnp.mean(jnp.linalg.norm(flat(z), axis=-1))
  step = 2.0 * sde.langevin_alpha(t) * jnp.square(snr * z_norm / s_norm)  # [B]
  return x + batch_bcast(step, x) * s + batch_bcast(jnp.sqrt(2.0 * step), x) * z


def _predictor_corrector(sde, score_fn, *, rng, shape, init_noise, predictor, corrector, snr,
                         n_corrector_steps, num_steps, eps, denoise,
                         project=None) -> SampleOutput:
  """The PC loop of every SDE sampler; `project(x, t [B], key) -> x`, if given, runs after the
  prior draw and after every predictor and corrector update (imputation, `controllable`)."""
  if predictor not in PREDICTORS:
    raise ValueError(f"Unknown predictor {predictor!r}; choose one of: {', '.join(PREDICTORS)}.")
  if corrector not in CORRECTORS:
    raise ValueError(f"Unknown corrector {corrector!r}; choose one of: {', '.join(CORRECTORS)}.")
  n_corr = 0 if corrector == "none" else int(n_corrector_steps)
  if n_corr < 0:
    raise ValueError(f"n_corrector_steps must be >= 0, got {n_corrector_steps}.")
  n = sde.N if num_steps is None else int(num_steps)
  ts = sde.sampling_grid(n, eps=eps)
  if predictor in ("reverse_diffusion", "ancestral"):
    _check_discrete(sde, n, eps)
  if predictor == "ancestral" and not hasattr(sde, "discrete_chain"):
    raise ValueError(f"The ancestral predictor is defined for VESDE and VPSDE only (as in the "
                     f"paper), not {type(sde).__name__}; use reverse_diffusion instead.")
  init_key, step_key = jax.random.split(rng)
  x = initial_noise(sde, init_key, shape, init_noise)
  batch = x.shape[0]
  rsde = sde.reverse(score_fn, probability_flow=False)
  full = lambda t: jnp.full((batch,), t, jnp.float32)
  if project is not None:
    x = project(x, full(ts[0]), jax.random.fold_in(step_key, n + 1))

  def correct(k, x):
    t = jnp.full((batch,), ts[k], jnp.float32)
    key = jax.random.fold_in(jax.random.fold_in(step_key, k), 1)

    def body(j, x):
      x = langevin_step(sde, score_fn, x, t, jax.random.fold_in(key, j), snr)
      if project is not None:
        x = project(x, t, jax.random.fold_in(jax.random.fold_in(key, j), 1))
      return x

    return jax.lax.fori_loop(0, n_corr, body, x) if n_corr else x

  def predict(k, x, dt):
    t = jnp.full((batch,), ts[k], jnp.float32)
    key = jax.random.fold_in(jax.random.fold_in(step_key, k), 0)
    if predictor == "reverse_diffusion":
      x = _rd_step(rsde, x, t, key)
    elif predictor == "ancestral":
      x = _ancestral_step(sde, score_fn, x, t, key)
    else:
      x = _em_step(rsde, x, t, dt, key)
    if project is not None:
      x = project(x, full(jnp.maximum(ts[k] + dt, 0.0)), jax.random.fold_in(key, 7))
    return x

  def step(k, x):
    x = correct(k, x)
    return predict(k, x, ts[k + 1] - ts[k])

  x = jax.lax.fori_loop(0, n - 1, step, x)
  x = correct(n - 1, x)
  if denoise:
    x = tweedie_denoise(sde, score_fn, x, eps)
  else:
    x = predict(n - 1, x, -ts[n - 1])  # Euler-Maruyama: eps -> 0; reverse diffusion: step 0
  return SampleOutput(samples=x, nfe=n * (1 + n_corr))


def _sde_of(process, sampler: str) -> SDE:
  if not isinstance(process, SDE):
    raise ValueError(f"The {sampler} sampler integrates an SDE, got a {type(process).__name__}; "
                     "sample a DDPM chain with ancestral or ddim, or train a score_sde model.")
  return process


@SAMPLERS.register("pc")
def pc_sample(
    denoise_fn: DenoiseFn,
    process: SDE,
    *,
    rng: Array,
    shape: Sequence[int] | None = None,
    prediction: str = "eps",
    predictor: str = "reverse_diffusion",
    corrector: str = "langevin",
    snr: float = 0.16,
    n_corrector_steps: int = 1,
    num_steps: int | None = None,
    eps: float = 1e-3,
    denoise: bool = True,
    init_noise: Array | None = None,
    project: Callable[[SDE, Array, Array, Array], Array] | None = None,
) -> SampleOutput:
  """Predictor-corrector sampling (paper Algorithm 1, 2, 3); nfe = n (1 + n_corrector_steps).

  At every grid time, `n_corrector_steps` Langevin steps (signal-to-noise ratio `snr`), then a
  predictor step ("reverse_diffusion", "ancestral" or "euler_maruyama"). num_steps must be
  sde.N (the default) for the reverse-diffusion and ancestral predictors. denoise_fn, process,
  rng, shape, prediction, init_noise: as every sampler (`gen_jax.samplers.base`).
  project(sde, x, t [B], key) -> x, if given, runs after the prior draw and after every
  predictor and corrector update (imputation: `diffusion.controllable.Imputation.project`).
  """
  sde = _sde_of(process, predictor if corrector == "none" else "pc")
  return _predictor_corrector(
      sde, score_fn_of(denoise_fn, sde, prediction), rng=rng, shape=shape,
      init_noise=init_noise, predictor=predictor, corrector=corrector, snr=snr,
      n_corrector_steps=n_corrector_steps, num_steps=num_steps, eps=eps, denoise=denoise,
      project=None if project is None else functools.partial(project, sde))


def _predictor_only(predictor: str, doc: str):
  """pc_sample with one predictor and no corrector, registered under the predictor's name."""
  fn = functools.partial(pc_sample, predictor=predictor, corrector="none")
  fn.__doc__ = doc
  SAMPLERS.add(predictor, fn)
  return fn


euler_maruyama_sample = _predictor_only("euler_maruyama", """Euler-Maruyama on the reverse SDE
(paper appendix D.1); nfe = num_steps (default sde.N):
x <- x + [f - g^2 score](x, t_k) dt_k + g(t_k) sqrt(-dt_k) z, dt_k = t_{k+1} - t_k < 0.""")
reverse_diffusion_sample = _predictor_only("reverse_diffusion", """The reverse-diffusion
predictor (paper eq. 47) over the N discrete steps; nfe = N: x_{i-1} = x_i - f_i(x_i) +
G_i^2 score(x_i, t_i) + G_i z, to first order DDPM's ancestral step for VP, NCSN's for VE.""")


@SAMPLERS.register("ancestral")
def ancestral_sample(denoise_fn: DenoiseFn, process, *, rng: Array,
                     shape: Sequence[int] | None = None, prediction: str = "eps",
                     variance: str = "fixed_small", clip_x0: bool = True,
                     init_noise: Array | None = None, **sde_options) -> SampleOutput:
  """Ancestral sampling over every step of the process's discrete chain (module docstring).

  A DDPM chain: DDIM with eta = 1 and all T steps; nfe = T. variance: "fixed_small"
  (beta_tilde_t) or "fixed_large" (beta_t), DDPM section 3.2; clip_x0 clips x0_hat to [-1, 1].
  An SDE (VE or VP): the ancestral predictor of `pc_sample` without corrector, nfe = N;
  variance and clip_x0 are the paper's (see the module docstring) and `sde_options` (eps,
  denoise) those of `pc_sample`.
  """
  if isinstance(process, SDE):
    return pc_sample(denoise_fn, process, rng=rng, shape=shape, prediction=prediction,
                     predictor="ancestral", corrector="none", init_noise=init_noise,
                     **sde_options)
  return ddim_sample(denoise_fn, process, rng=rng, shape=shape, prediction=prediction, eta=1.0,
                     variance=variance, clip_x0=clip_x0, init_noise=init_noise, **sde_options)


@SAMPLERS.register("ode")
def ode_sample(
    denoise_fn: DenoiseFn,
    process: SDE,
    *,
    rng: Array,
    shape: Sequence[int] | None = None,
    prediction: str = "eps",
    method: str = "heun",
    num_steps: int | None = None,
    eps: float = 1e-3,
    denoise: bool = True,
    init_noise: Array | None = None,
    rtol: float = 1e-5,
    atol: float = 1e-5,
    max_steps: int = 4096,
) -> SampleOutput | AdaptiveSampleOutput:
  """Integrates the probability-flow ODE dx/dt = f - 1/2 g^2 score (paper eq. 13) from T to eps.

  Fixed-step solvers on the grid t_k (n - 1 steps):

  * "euler": x <- x + d(x, t_k) dt_k;                                   nfe = n - 1;
  * "heun":  x' = x + d(x, t_k) dt_k,
             x <- x + (d(x, t_k) + d(x', t_{k+1})) dt_k / 2;           nfe = 2 (n - 1);

  * "rk45":  adaptive Dormand-Prince 5(4) (`gen_jax.diffusion.ode.odeint_adaptive`, the paper's
             scipy RK45 on device) with tolerances rtol/atol and at most max_steps
             attempted steps; returns an `AdaptiveSampleOutput` whose nfe is known after
             running (2 + 6 per attempted step, +1 for denoising); num_steps is ignored.

  plus 1 for the Tweedie denoising at eps when denoise=True. Given x_T the result is
  deterministic; `rng` only draws x_T (unused when init_noise is given). Other arguments as in
  every sampler (`gen_jax.samplers.base`).
  """
  sde = _sde_of(process, "ode")
  score_fn = score_fn_of(denoise_fn, sde, prediction)
  if method not in ODE_METHODS:
    raise ValueError(f"Unknown ODE method {method!r}; choose one of: {', '.join(ODE_METHODS)}.")
  x = initial_noise(sde, rng, shape, init_noise)
  batch = x.shape[0]
  rsde = sde.reverse(score_fn, probability_flow=True)

  def drift(x, t):
    return rsde.sde(x, jnp.full((batch,), t, jnp.float32))[0]

  if method == "rk45":
    sde.sampling_grid(2, eps=eps)  # validates eps
    sol = odeint_adaptive(lambda t, y: drift(y, t), x, sde.T, eps, rtol=rtol, atol=atol,
                          max_steps=max_steps)
    x, nfe = sol.y, sol.nfe
    if denoise:
      x = tweedie_denoise(sde, score_fn, x, eps)
      nfe = nfe + 1
    return AdaptiveSampleOutput(samples=x, nfe_per_sample=jnp.full((batch,), nfe, jnp.int32),
                                success=jnp.full((batch,), sol.success))

  n = sde.N if num_steps is None else int(num_steps)
  ts = sde.sampling_grid(n, eps=eps)

  def step(k, x):
    t, t_next = ts[k], ts[k + 1]
    dt = t_next - t
    d = drift(x, t)
    if method == "euler":
      return x + d * dt
    x_euler = x + d * dt
    return x + 0.5 * dt * (d + drift(x_euler, t_next))

  x = jax.lax.fori_loop(0, n - 1, step, x)
  nfe = (n - 1) * (1 if method == "euler" else 2)
  if denoise:
    x = tweedie_denoise(sde, score_fn, x, eps)
    nfe += 1
  return SampleOutput(samples=x, nfe=nfe)
