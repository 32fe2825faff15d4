"""Training losses of every diffusion model, registered by name in `LOSSES`, one signature:

    loss(model_fn, process, x0 [B, ...], rng, *, prediction, **options) -> [B]

with model_fn(x_t [B, ...], t [B]) -> the network's output in its own parameterisation
`prediction` (`gaussian.PREDICTIONS`: eps, x0, v, score, scaled_score), its parameters, labels
and dropout key closed over, and `process` the noise process x_t = alpha(t) x0 + sigma(t) z
(a DDPM chain, an SDE, or `processes.DiscreteVP`). Every loss draws t, perturbs x0 and
compares the output with the truth; they differ in the distribution of t and the weight.

Weightings (`WEIGHTINGS`, `--config.method.weighting=NAME`): w(process, t [B]) -> [B], the
weight of the error in eps space ||eps_hat - z||^2, i.e. lambda(t) / sigma(t)^2 in Song et
al.'s eq. 7. "simple" is DDPM's L_simple: the unweighted error in the network's own
parameterisation (the x0 error for an x0-network), which no eps-space weight can express
exactly; it returns None, and the loss then compares the output with its target directly.

Registered losses:

* "mse", "l1": DDPM's loss (Ho et al. 2020): t uniform over the discrete steps (the T steps
  of a chain, or t_i = i T / (N - 1) of an SDE's N steps), squared or absolute error,
  weighting "simple" by default;
* "ddpm": the same with weighting sigma2 (the eps-space error; score_sde's discrete VP loss);
* "smld": 1/2 of it (NCSN, Song & Ermon 2019: lambda = sigma_i^2 at the discrete levels);
* "dsm": denoising score matching in continuous time, t ~ U(eps, T) (optionally antithetic),
  1/2 w(t) ||eps_hat - z||^2 (Song et al. 2021, eq. 7; sigma2 = their default lambda = std^2);
* "dsm_likelihood": the likelihood weighting lambda = g^2 (Song, Durkan, Murray & Ermon 2021,
  Thm 1) as an estimate of the time integral: (T - eps) w(t) with t uniform, or, with
  `importance_sampling=True`, t ~ p(t) proportional to g^2 / std^2 and the weight Z =
  int_eps^T g^2 / std^2 dt (same mean, much less variance);
* "vlb": DDPM's variational bound, a one-sample estimate in nats (`likelihood.vlb`).

`reduce_mean` averages over the dimensions instead of summing (score_sde's option: its VE
configs sum, its VP ones average; DDPM averages). Add a loss with `@LOSSES.register("name")`
(`--config.method.loss=name`) and a weighting with `@WEIGHTINGS.register("name")`.
"""

from __future__ import annotations

import math
from typing import Callable

import jax
import jax.numpy as jnp

from gen_jax.core.registry import Registry
from gen_jax.diffusion import likelihood
from gen_jax.diffusion.gaussian import PREDICTIONS, coefs
from gen_jax.diffusion.processes import SDE, VESDE, VPSDE, _VPFamily, subVPSDE

Array = jax.Array

LOSSES: Registry[Callable[..., Array]] = Registry("diffusion loss")
WEIGHTINGS: Registry[Callable[..., Array | None]] = Registry("loss weighting")


# ------------------------------------------------------------------ weightings
@WEIGHTINGS.register("simple")
def simple_weighting(process, t: Array) -> None:
  """L_simple: the unweighted error in the network's own parameterisation (no eps weight)."""
  del process, t


@WEIGHTINGS.register("sigma2")
def sigma2_weighting(process, t: Array) -> Array:
  """lambda = std^2: the eps-space error unweighted (L_simple of an eps-network)."""
  del process
  return jnp.ones(jnp.shape(t), jnp.float32)


@WEIGHTINGS.register("snr")
def snr_weighting(process, t: Array) -> Array:
  """lambda = alpha^2: the x0-space error ||x0_hat - x0||^2 (weight SNR = alpha^2 / std^2)."""
  alpha, std = process.marginal_coef(t)
  return jnp.square(alpha / std)


@WEIGHTINGS.register("likelihood")
def likelihood_weighting(process, t: Array) -> Array:
  """lambda = g(t)^2: the weight g^2 / std^2 that makes the loss a bound on -log p."""
  if not isinstance(process, SDE):
    raise ValueError(f"The likelihood weighting needs an SDE (its diffusion g), got a "
                     f"{type(process).__name__}; use a score_sde process.")
  _, g = process.sde(jnp.zeros((jnp.shape(t)[0], 1)), t)
  return jnp.square(g / process.marginal_coef(t)[1])


# ------------------------------------------------------------------ the shared body
def _reduce(x: Array, reduce_mean: bool) -> Array:
  x = x.reshape(x.shape[0], -1)
  return jnp.mean(x, axis=-1) if reduce_mean else jnp.sum(x, axis=-1)


def denoising_error(model_fn, process, x0: Array, t: Array, z: Array, *, prediction: str,
                    weighting: str = "simple", reduce_mean: bool = True,
                    norm: str = "l2", weighting_options=None) -> Array:
  """w(t) * reduce(|error|^p) [B] at x_t = alpha x0 + sigma z: the error of the output
  against its target (weighting "simple"), else of eps_hat against z times the weight
  (`weighting_options`: keyword options of the weighting, e.g. gamma of min_snr)."""
  alpha, sigma = coefs(process, t, x0.ndim)
  x_t = alpha * x0 + sigma * z
  out = model_fn(x_t, t).astype(jnp.float32)
  predictor = PREDICTIONS.get(prediction)
  weight = WEIGHTINGS.get(weighting)(process, t, **(weighting_options or {}))
  if weight is None:
    err = out - predictor.target(process, x0, z, t)
  else:
    err = predictor.to_x0_eps(process, out, x_t, t)[1] - z
  per_example = _reduce(jnp.square(err) if norm == "l2" else jnp.abs(err), reduce_mean)
  return per_example if weight is None else weight * per_example


def discrete_times(process, rng: Array, batch: int) -> Array:
  """t [B] uniform over the discrete steps: int 0..T-1 of a DDPM chain, else the N times
  t_i = i T / (N - 1) of an SDE's discretisation (float), each in the step i itself."""
  if hasattr(process, "num_timesteps"):
    return jax.random.randint(rng, (batch,), 0, process.num_timesteps)
  i = jax.random.randint(rng, (batch,), 0, process.N)
  t = i.astype(jnp.float32) * (process.T / (process.N - 1))
  # The float32 product can fall one ulp short of step i (170 of N = 1000 steps would then
  # be taken as i - 1 by `discrete_index`, as the samplers do); the next float up is step i.
  return jnp.where(process.discrete_index(t) < i, jnp.nextafter(t, 2.0 * process.T), t)


def _uniform(rng: Array, batch: int, antithetic: bool) -> Array:
  """u ~ U(0, 1) [B]; antithetic: the second half is 1 - (first half)."""
  if not antithetic:
    return jax.random.uniform(rng, (batch,), jnp.float32)
  half = (batch + 1) // 2
  u = jax.random.uniform(rng, (half,), jnp.float32)
  return jnp.concatenate([u, 1.0 - u])[:batch]


# ------------------------------------------------------------------ discrete time
@LOSSES.register("mse")
def mse(model_fn, process, x0: Array, rng: Array, *, prediction: str = "eps",
        weighting: str = "simple", reduce_mean: bool = True, scale: float = 1.0,
        norm: str = "l2", weighting_options=None, **unused) -> Array:
  """DDPM's loss at t uniform over the discrete steps; weighting "simple" is L_simple."""
  del unused
  rng_t, rng_z = jax.random.split(rng)
  t = discrete_times(process, rng_t, x0.shape[0])
  z = jax.random.normal(rng_z, x0.shape, x0.dtype)
  return scale * denoising_error(model_fn, process, x0, t, z, prediction=prediction,
                                 weighting=weighting, reduce_mean=reduce_mean, norm=norm,
                                 weighting_options=weighting_options)


LOSSES.add("l1", lambda *args, **kwargs: mse(*args, **kwargs, norm="l1"))
LOSSES.add("ddpm", lambda *args, reduce_mean=False, **kwargs: mse(
    *args, **{**kwargs, "weighting": "sigma2", "reduce_mean": reduce_mean}))
LOSSES.add("smld", lambda *args, reduce_mean=False, **kwargs: mse(
    *args, **{**kwargs, "weighting": "sigma2", "reduce_mean": reduce_mean, "scale": 0.5}))


# ------------------------------------------------------------------ continuous time
@LOSSES.register("dsm")
def dsm(model_fn, process: SDE, x0: Array, rng: Array, *, prediction: str = "eps",
        weighting: str = "sigma2", eps: float = 1e-5, reduce_mean: bool = False,
        antithetic: bool = False, weighting_options=None, **unused) -> Array:
  """Denoising score matching, 1/2 w(t) ||eps_hat - z||^2 [B], t ~ U(eps, T)."""
  del unused
  rng_t, rng_z = jax.random.split(rng)
  t = eps + (process.T - eps) * _uniform(rng_t, x0.shape[0], antithetic)
  z = jax.random.normal(rng_z, x0.shape, x0.dtype)
  return 0.5 * denoising_error(model_fn, process, x0, t, z, prediction=prediction,
                               weighting=weighting, reduce_mean=reduce_mean,
                               weighting_options=weighting_options)


@LOSSES.register("dsm_likelihood")
def dsm_likelihood(model_fn, process: SDE, x0: Array, rng: Array, *, prediction: str = "eps",
                   eps: float = 1e-5, reduce_mean: bool = False, antithetic: bool = False,
                   importance_sampling: bool = False, **unused) -> Array:
  """Likelihood-weighted DSM [B]: int_eps^T g^2/std^2 1/2 ||eps_hat - z||^2 dt estimated with
  a uniform t (times T - eps) or an importance-sampled one (times Z)."""
  del unused
  rng_t, rng_z = jax.random.split(rng)
  u = _uniform(rng_t, x0.shape[0], antithetic)
  z = jax.random.normal(rng_z, x0.shape, x0.dtype)
  if importance_sampling:
    t, weight = importance_sample_t(process, u, eps)
    weighting = "sigma2"
  else:
    t, weight, weighting = eps + (process.T - eps) * u, process.T - eps, "likelihood"
  return 0.5 * weight * denoising_error(model_fn, process, x0, t, z, prediction=prediction,
                                        weighting=weighting, reduce_mean=reduce_mean)


LOSSES.add("vlb", likelihood.vlb)


# ------------------------------------------------------------------ importance sampling of t
def _vp_time_from_integral(sde: _VPFamily, b: Array) -> Array:
  """Inverts B(t) = beta_min t + (beta_max - beta_min) t^2 / 2 (T = 1 units) for t."""
  b0, b1 = sde.beta_min, sde.beta_max
  tt = b / sde.T
  d = b1 - b0
  if d == 0:
    return sde.T * tt / b0
  return sde.T * (-b0 + jnp.sqrt(b0**2 + 2.0 * d * tt)) / d


def _is_cdf(sde: SDE, t: Array) -> Array:
  """F(t) with dF/dt = g(t)^2 / std(t)^2 (an antiderivative, up to a constant).

  VE: g^2 / sigma^2 = 2 log(sigma_max / sigma_min) / T, constant.
  VP: beta / (1 - e^{-B}), F = log(e^B - 1), B(t) = int_0^t beta = -2 log m(t).
  sub-VP: beta (1 + e^{-B}) / (1 - e^{-B}), F = 2 log(e^B - 1) - B.
  """
  if isinstance(sde, VESDE):
    return t * 2.0 * math.log(sde.sigma_max / sde.sigma_min) / sde.T
  if isinstance(sde, (VPSDE, subVPSDE)):
    b = -2.0 * sde.log_mean_coeff(t)
    return jnp.log(jnp.expm1(b)) if isinstance(sde, VPSDE) else 2.0 * jnp.log(jnp.expm1(b)) - b
  raise ValueError(f"No importance-sampling distribution for {type(sde).__name__}; set "
                   "method.importance_sampling=False or add one in gen_jax/diffusion/losses.py.")


def _is_inverse_cdf(sde: SDE, f: Array) -> Array:
  if isinstance(sde, VESDE):
    return f * sde.T / (2.0 * math.log(sde.sigma_max / sde.sigma_min))
  if isinstance(sde, VPSDE):
    b = jax.nn.softplus(f)  # log(1 + e^F)
  else:  # sub-VP: (y - 1)^2 / y = c = e^F with y = e^B > 1, so y - 1 = (c + sqrt(c^2 + 4c)) / 2
    c = jnp.exp(f)  # written without 2 + c, which rounds to 2 in float32 for small t
    b = jnp.log1p(0.5 * (c + jnp.sqrt(jnp.square(c) + 4.0 * c)))
  return _vp_time_from_integral(sde, b)


def importance_sample_t(sde: SDE, u: Array, eps: float) -> tuple[Array, Array]:
  """t ~ p(t) = g^2 / (std^2 Z) on [eps, T] from u ~ U(0, 1), by inverting the CDF.

  Returns:
    (t [B], Z) with Z = int_eps^T g(t)^2 / std(t)^2 dt.
  """
  lo = _is_cdf(sde, jnp.asarray(eps, jnp.float32))
  hi = _is_cdf(sde, jnp.asarray(sde.T, jnp.float32))
  t = _is_inverse_cdf(sde, lo + u * (hi - lo))
  return jnp.clip(t, eps, sde.T), hi - lo
