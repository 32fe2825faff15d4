"""Score-matching losses of score-based SDE models, registered by name in `SDE_LOSSES`.

Song et al., "Score-Based Generative Modeling through SDEs" (ICLR 2021), eq. 7; Song, Durkan,
Murray & Ermon, "Maximum Likelihood Training of Score-Based Diffusion Models" (NeurIPS 2021)
for likelihood weighting and importance sampling; Song & Ermon 2019 (NCSN) and Ho et al. 2020
(DDPM) for the discrete losses.

Every loss has the signature

    loss(score_fn, sde, x0 [B, ...], rng, *, eps, reduce_mean, antithetic, **options) -> [B]

with score_fn(x [B, ...], t float [B]) -> score [B, ...] the model (its parameters closed
over), and returns the per-example loss (the method averages it). Continuous time draws
t ~ U(eps, T); perturbation x_t = m(t) x0 + std(t) z with z ~ N(0, I). Registered:

* "dsm": lambda(t) = std(t)^2 (the paper's default), per example
      1/2 || std(t) s(x_t, t) + z ||^2;
* "dsm_likelihood": lambda(t) = g(t)^2, which makes the loss (up to a constant) an upper
  bound on the negative log-likelihood (Song et al. 2021b, Thm 1):
      1/2 g(t)^2 || s(x_t, t) + z / std(t) ||^2;
  with `importance_sampling=True`, t is drawn from p(t) proportional to g(t)^2 / std(t)^2
  and the loss divided by p(t), which leaves its mean unchanged and removes most of its
  variance: 1/2 Z || std s + z ||^2, Z = int_eps^T g^2 / std^2 dt (closed forms below);
* "smld": NCSN's discrete loss for the VE SDE, a noise level i ~ U{0..N-1} at t_i = i/(N-1) T
  (so std(t_i) = sigma_i exactly): 1/2 sigma_i^2 || s(x + sigma_i z, t_i) + z / sigma_i ||^2;
* "ddpm": DDPM's L_simple for the VP SDE: i ~ U{0..N-1}, x_i = sqrt(abar_i) x0 +
  sqrt(1 - abar_i) z, and || -sqrt(1 - abar_i) s(x_i, t_i) - z ||^2 (the score is the
  eps-prediction divided by -sqrt(1 - abar_i); see `score_sde.ScoreModel`).

`reduce_mean` averages over the dimensions instead of summing (the paper's
`reduce_mean` option: its VE configs sum, its VP / sub-VP configs average; the score_sde
configs here follow that per SDE); `antithetic` draws
half the batch's times u and the other half 1 - u (in the uniform variable of the sampler),
which lowers the variance of the batch mean (continuous losses only).

Add a loss with `@SDE_LOSSES.register("name")` and select it with
`--config.method.loss=name`; add a weighting of "dsm" with `@WEIGHTINGS.register("name")`
and select it with `--config.method.weighting=name`.
"""

from __future__ import annotations

import math
from typing import Callable

import jax
import jax.numpy as jnp

from gen_jax.core.registry import Registry
from gen_jax.diffusion.processes import SDE, VESDE, VPSDE, ScoreFn, _VPFamily, batch_bcast, subVPSDE

Array = jax.Array

SDE_LOSSES: Registry[Callable[..., Array]] = Registry("SDE loss")


def _reduce(x: Array, reduce_mean: bool) -> Array:
  x = x.reshape(x.shape[0], -1)
  return jnp.mean(x, axis=-1) if reduce_mean else jnp.sum(x, axis=-1)


def _uniform(rng: Array, batch: int, antithetic: bool) -> Array:
  """u ~ U(0, 1) [B]; antithetic: the second half is 1 - (first half)."""
  if not antithetic:
    return jax.random.uniform(rng, (batch,), jnp.float32)
  half = (batch + 1) // 2
  u = jax.random.uniform(rng, (half,), jnp.float32)
  return jnp.concatenate([u, 1.0 - u])[:batch]


def _perturb(sde: SDE, x0: Array, t: Array, z: Array) -> tuple[Array, Array]:
  mean, std = sde.marginal_prob(x0, t)
  return mean + batch_bcast(std, x0) * z, std


# ------------------------------------------------------------------ importance sampling of t
def _vp_integral(sde: _VPFamily, t: Array) -> Array:
  """B(t) = int_0^t beta(s) ds = -2 log m(t)."""
  return -2.0 * sde.log_mean_coeff(t)


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
  VP: beta / (1 - e^{-B}), F = log(e^B - 1).
  sub-VP: beta (1 + e^{-B}) / (1 - e^{-B}), F = 2 log(e^B - 1) - B.
  """
  if isinstance(sde, VESDE):
    return t * 2.0 * math.log(sde.sigma_max / sde.sigma_min) / sde.T
  b = _vp_integral(sde, t)
  if isinstance(sde, VPSDE):
    return jnp.log(jnp.expm1(b))
  if isinstance(sde, subVPSDE):
    return 2.0 * jnp.log(jnp.expm1(b)) - b
  raise ValueError(f"No importance-sampling distribution for {type(sde).__name__}; set "
                   "method.importance_sampling=False or add one in gen_jax/diffusion/sde_losses.py.")


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
  lo, hi = _is_cdf(sde, jnp.asarray(eps, jnp.float32)), _is_cdf(sde, jnp.asarray(sde.T, jnp.float32))
  t = _is_inverse_cdf(sde, lo + u * (hi - lo))
  return jnp.clip(t, eps, sde.T), hi - lo


# ------------------------------------------------------------------ weightings of "dsm"
# w(sde, t [B]) -> [B], the weight of 1/2 ||std s + z||^2 (the eps-space error), i.e.
# lambda(t) / std(t)^2 in the paper's eq. 7; chosen with --config.method.weighting=NAME.
WEIGHTINGS: Registry[Callable[[SDE, Array], Array]] = Registry("loss weighting")


@WEIGHTINGS.register("sigma2")
def sigma2_weighting(sde: SDE, t: Array) -> Array:
  """lambda = std^2, the paper's default (DDPM's L_simple in eps space)."""
  del sde
  return jnp.ones_like(t)


@WEIGHTINGS.register("snr")
def snr_weighting(sde: SDE, t: Array) -> Array:
  """lambda = alpha^2: the x0-space error ||x0_hat - x0||^2 (weight SNR = alpha^2 / std^2)."""
  alpha, std = sde.marginal_coef(t)
  return jnp.square(alpha / std)


# ------------------------------------------------------------------ continuous losses
@SDE_LOSSES.register("dsm")
def dsm_loss(score_fn: ScoreFn, sde: SDE, x0: Array, rng: Array, *, eps: float = 1e-5,
             reduce_mean: bool = False, antithetic: bool = False, weighting: str = "sigma2",
             **unused) -> Array:
  """Denoising score matching, w(t)/2 ||std s(x_t, t) + z||^2 [B] (w in WEIGHTINGS)."""
  del unused
  rng_t, rng_z = jax.random.split(rng)
  t = eps + (sde.T - eps) * _uniform(rng_t, x0.shape[0], antithetic)
  z = jax.random.normal(rng_z, x0.shape, x0.dtype)
  x_t, std = _perturb(sde, x0, t, z)
  score = score_fn(x_t, t)
  loss = 0.5 * _reduce(jnp.square(score * batch_bcast(std, x0) + z), reduce_mean)
  return loss if weighting == "sigma2" else WEIGHTINGS.get(weighting)(sde, t) * loss


@SDE_LOSSES.register("dsm_likelihood")
def dsm_likelihood_loss(score_fn: ScoreFn, sde: SDE, x0: Array, rng: Array, *,
                        eps: float = 1e-5, reduce_mean: bool = False, antithetic: bool = False,
                        importance_sampling: bool = False, **unused) -> Array:
  """Likelihood-weighted DSM, lambda(t) = g(t)^2, optionally importance-sampled in t [B]."""
  del unused
  rng_t, rng_z = jax.random.split(rng)
  u = _uniform(rng_t, x0.shape[0], antithetic)
  z = jax.random.normal(rng_z, x0.shape, x0.dtype)
  if importance_sampling:
    t, norm = importance_sample_t(sde, u, eps)
    x_t, std = _perturb(sde, x0, t, z)
    score = score_fn(x_t, t)
    return 0.5 * norm * _reduce(jnp.square(score * batch_bcast(std, x0) + z), reduce_mean)
  t = eps + (sde.T - eps) * u
  x_t, std = _perturb(sde, x0, t, z)
  score = score_fn(x_t, t)
  _, g = sde.sde(jnp.zeros_like(x0), t)
  # (T - eps) makes the uniform draw an unbiased estimate of the time integral, so that this
  # loss and its importance-sampled version have the same mean.
  per_dim = jnp.square(score + z / batch_bcast(std, x0)) * batch_bcast(jnp.square(g), x0)
  return 0.5 * (sde.T - eps) * _reduce(per_dim, reduce_mean)


# ------------------------------------------------------------------ discrete losses
def _discrete_times(sde: SDE, rng: Array, batch: int) -> tuple[Array, Array]:
  i = jax.random.randint(rng, (batch,), 0, sde.N)
  return i, i.astype(jnp.float32) * (sde.T / (sde.N - 1))


@SDE_LOSSES.register("smld")
def smld_loss(score_fn: ScoreFn, sde: SDE, x0: Array, rng: Array, *, reduce_mean: bool = False,
              **unused) -> Array:
  """NCSN's loss at the discrete noise levels of a VESDE [B] (sigma_i^2 weighting)."""
  del unused
  if not isinstance(sde, VESDE):
    raise ValueError(f"The 'smld' loss needs method.sde='vesde', got {type(sde).__name__}.")
  rng_i, rng_z = jax.random.split(rng)
  i, t = _discrete_times(sde, rng_i, x0.shape[0])
  sigma = batch_bcast(sde.discrete_sigmas[i], x0)
  z = jax.random.normal(rng_z, x0.shape, x0.dtype)
  score = score_fn(x0 + sigma * z, t)
  return 0.5 * _reduce(jnp.square(score * sigma + z), reduce_mean)


@SDE_LOSSES.register("ddpm")
def ddpm_loss(score_fn: ScoreFn, sde: SDE, x0: Array, rng: Array, *, reduce_mean: bool = False,
              **unused) -> Array:
  """DDPM's L_simple ||eps_theta - z||^2 at the discrete steps of a VPSDE [B]."""
  del unused
  if not isinstance(sde, VPSDE):
    raise ValueError(f"The 'ddpm' loss needs method.sde='vpsde', got {type(sde).__name__}.")
  rng_i, rng_z = jax.random.split(rng)
  i, t = _discrete_times(sde, rng_i, x0.shape[0])
  abar = sde.alphas_cumprod[i]
  z = jax.random.normal(rng_z, x0.shape, x0.dtype)
  x_t = batch_bcast(jnp.sqrt(abar), x0) * x0 + batch_bcast(jnp.sqrt(1.0 - abar), x0) * z
  eps_pred = -score_fn(x_t, t) * batch_bcast(jnp.sqrt(1.0 - abar), x0)
  return _reduce(jnp.square(eps_pred - z), reduce_mean)
