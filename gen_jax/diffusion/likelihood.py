"""Likelihoods of diffusion models: the probability-flow ODE's exact one, the pieces of DDPM's
variational bound (Gaussian KL, discretised decoder), and bits/dim, once for every model.

Song et al., "Score-Based Generative Modeling through SDEs" (ICLR 2021), section 4.3 and
appendix D.2; Chen et al. 2018 / Grathwohl et al. 2019 (FFJORD) for the instantaneous change
of variables. Along the probability-flow ODE dx/dt = d(x, t) = f(x, t) - 1/2 g(t)^2 s(x, t),

    d log p_t(x(t)) / dt = -div_x d(x(t), t),

so integrating the augmented state (x, delta) from t = eps to T with

    dx/dt = d(x, t),   d delta / dt = div_x d(x, t),   x(eps) = x, delta(eps) = 0

gives log p_eps(x) = log p_T(x(T)) + delta(T), with the prior log-density `sde.prior_logp`.
The divergence is exact (`trace="exact"`: one Jacobian-vector product per dimension, for tests
and toy data) or Hutchinson's unbiased estimate eps^T (dd/dx) eps with one fixed probe eps per
example for the whole integration, Rademacher or Gaussian (one JVP per evaluation). The
integration is the adaptive Dormand-Prince solver of `gen_jax.diffusion.ode`, on device and jitted.

Bits/dim of 8-bit images. The data pipeline dequantizes pixel u in {0..255} to
x = 2 (u + U[0, 1)) / 256 - 1 in [-1, 1) (`data.transforms.dequantize`), i.e. x = a y + b with
y = u + U in [0, 256), a = 2 / 256, b = -1. A density p_x over [-1, 1)^D is a density over y
with p_y(y) = p_x(x) a^D, and since the bins of y have unit width, -log2 p_y bounds the
negative log2-probability of the 8-bit image (Theis et al. 2016). Hence

    bpd = -(log p_x(x) + D log a) / (D ln 2) = -log p_x(x) / (D ln 2) + log2(128) = ... + 7,

the offset 7 of the paper's code for centred data (8 for data in [0, 1], where a = 1/256).
On data that is NOT dequantized (x = u / 127.5 - 1 exactly on a grid), a continuous model can
put unbounded density on the grid points: the "bits/dim" then goes negative and means nothing.
`bits_per_dim` cannot see that from a batch, so the method refuses to report it unless
`config.data.dequantize` is True (see `gen_jax.methods.diffusion`).
"""

from __future__ import annotations

import math
from typing import Callable

import flax
import jax
import jax.numpy as jnp

from gen_jax.diffusion import gaussian
from gen_jax.diffusion import learned_variance as learned_variance_lib
from gen_jax.diffusion.gaussian import PREDICTIONS, score_fn_of
from gen_jax.diffusion.ode import odeint_adaptive
from gen_jax.diffusion.processes import SDE

Array = jax.Array

TRACE_ESTIMATORS = ("rademacher", "gaussian", "exact")
# Bin width of one 8-bit level in model space for the dequantization x = 2 (u + U) / 256 - 1.
BIN_WIDTH_8BIT = 2.0 / 256.0


@flax.struct.dataclass
class LikelihoodOutput:
  """log p_eps(x) through the probability-flow ODE.

  Attributes:
    logp: [B] log-density of x in nats (model space).
    prior_logp: [B] log p_T(x(T)).
    delta_logp: [B] the integrated divergence, logp = prior_logp + delta_logp.
    z: [B, ...] the latent x(T).
    nfe: int32 scalar, evaluations of the ODE drift (each with one JVP, or D for "exact").
    success: bool scalar, the solver reached T within its step cap.
  """

  logp: Array
  prior_logp: Array
  delta_logp: Array
  z: Array
  nfe: Array
  success: Array


def _divergence_fn(drift_fn: Callable[[Array, Array], Array], trace: str, probe: Array | None):
  """(x, t) -> (drift [B, ...], divergence [B]) for the chosen trace estimator."""
  if trace == "exact":

    def exact(x, t):
      b = x.shape[0]
      d = math.prod(x.shape[1:])
      basis = jnp.eye(d, dtype=x.dtype).reshape((d, 1) + x.shape[1:])
      basis = jnp.broadcast_to(basis, (d,) + x.shape)  # the same direction for every example

      def jvp(v):
        return jax.jvp(lambda y: drift_fn(y, t), (x,), (v,))

      drift, _ = jvp(basis[0])
      jv = jax.vmap(lambda v: jvp(v)[1])(basis)  # [D, B, ...]: column i of each Jacobian
      jv = jv.reshape(d, b, d)
      return drift, jnp.einsum("ibi->b", jv)

    return exact

  def hutchinson(x, t):
    drift, jv = jax.jvp(lambda y: drift_fn(y, t), (x,), (probe,))
    return drift, jnp.sum((probe * jv).reshape(x.shape[0], -1), axis=-1)

  return hutchinson


def ode_likelihood(
    model_fn: Callable[[Array, Array], Array],
    sde: SDE,
    x: Array,
    *,
    prediction: str = "eps",
    rng: Array | None = None,
    trace: str = "rademacher",
    eps: float = 1e-5,
    rtol: float = 1e-5,
    atol: float = 1e-5,
    max_steps: int = 4096,
) -> LikelihoodOutput:
  """log p_eps(x) [B] of the probability-flow ODE of `sde` driven by the model.

  Args:
    model_fn: (x [B, ...], t [B]) -> the network's output, of type `prediction`
      (`gaussian.PREDICTIONS`: eps, x0, v, score, scaled_score).
    sde: the forward SDE.
    x: [B, ...] data in model space (dequantized for 8-bit data).
    rng: key of the Hutchinson probe (unused for trace="exact").
    trace: "rademacher" | "gaussian" (Hutchinson) | "exact" (D JVPs per evaluation).
    eps: the start time (the paper uses 1e-5 for likelihoods).
    rtol, atol, max_steps: of the adaptive solver (`odeint_adaptive`).

  Returns:
    LikelihoodOutput (logp in nats, prior and divergence parts, latent, nfe, success).
  """
  if trace not in TRACE_ESTIMATORS:
    raise ValueError(f"Unknown trace estimator {trace!r}; choose one of: "
                     f"{', '.join(TRACE_ESTIMATORS)}.")
  if not 0.0 < eps < sde.T:
    raise ValueError(f"eps must lie in (0, T = {sde.T}), got {eps}.")
  x = jnp.asarray(x, jnp.float32)
  probe = None
  if trace != "exact":
    if rng is None:
      raise ValueError("The Hutchinson trace estimator needs a PRNG key `rng`.")
    if trace == "rademacher":
      probe = jax.random.rademacher(rng, x.shape, jnp.float32)
    else:
      probe = jax.random.normal(rng, x.shape, jnp.float32)
  rsde = sde.reverse(score_fn_of(model_fn, sde, prediction), probability_flow=True)
  batch = x.shape[0]

  def drift_fn(y, t):
    return rsde.sde(y, jnp.full((batch,), t, jnp.float32))[0]

  div_fn = _divergence_fn(drift_fn, trace, probe)

  def f(t, state):
    y, _ = state
    drift, div = div_fn(y, t)
    return drift, div

  sol = odeint_adaptive(f, (x, jnp.zeros((batch,), jnp.float32)), eps, sde.T, rtol=rtol,
                        atol=atol, max_steps=max_steps)
  z, delta = sol.y
  prior = sde.prior_logp(z)
  return LikelihoodOutput(logp=prior + delta, prior_logp=prior, delta_logp=delta, z=z,
                          nfe=sol.nfe, success=sol.success)


# ------------------------------------------------------------------ DDPM's variational bound
def flat_sum(x: Array) -> Array:
  """Sum over all but the batch axis: [B, ...] -> [B]."""
  return jnp.sum(x.reshape(x.shape[0], -1), axis=1)


def normal_kl(mean1, log_var1, mean2, log_var2):
  """Elementwise KL(N(mean1, exp(log_var1)) || N(mean2, exp(log_var2))) in nats."""
  return 0.5 * (-1.0 + log_var2 - log_var1 + jnp.exp(log_var1 - log_var2)
                + jnp.square(mean1 - mean2) * jnp.exp(-log_var2))


def _standard_normal_cdf(x):
  return 0.5 * (1.0 + jax.lax.erf(x / math.sqrt(2.0)))


def discretized_gaussian_log_likelihood(x, mean, log_scale):
  """Elementwise log-probability of 8-bit data x in [-1, 1] under a discretised Gaussian.

  Each of the 256 values owns a bin of width 2/255; the two extreme bins extend to +-inf
  (Ho et al. 2020, Sec. 3.3).
  """
  centered = x - mean
  inv_std = jnp.exp(-log_scale)
  cdf_plus = _standard_normal_cdf(inv_std * (centered + 1.0 / 255.0))
  cdf_min = _standard_normal_cdf(inv_std * (centered - 1.0 / 255.0))
  log_cdf_plus = jnp.log(jnp.maximum(cdf_plus, 1e-12))
  log_one_minus_cdf_min = jnp.log(jnp.maximum(1.0 - cdf_min, 1e-12))
  log_delta = jnp.log(jnp.maximum(cdf_plus - cdf_min, 1e-12))
  return jnp.where(x < -0.999, log_cdf_plus, jnp.where(x > 0.999, log_one_minus_cdf_min, log_delta))


def vlb_term(model_fn, schedule, x0: Array, t: Array, noise: Array, *,
             prediction: str = "eps", learned_variance: bool = False,
             clip_x0: bool = True) -> Array:
  """L_t in nats [B]: KL(q(x_{t-1}|x_t,x_0) || p(x_{t-1}|x_t)) for t > 0, the decoder NLL at 0.

  The model's reverse variance is the posterior variance beta_tilde_t (clipped at t=0),
  DDPM's "fixed small" choice, or with `learned_variance` the interpolation of improved
  DDPM read from the last C of the model's 2C output channels
  (`learned_variance.interpolated_log_variance`); its mean is the posterior mean at the x0
  estimate (clipped to [-1, 1] with `clip_x0`) of model_fn(x_t, t) (of type `prediction`).
  schedule: a `DiffusionSchedule`; t: int [B].
  """
  x_t = gaussian.q_sample(schedule, x0, t, noise)
  out = model_fn(x_t, t)
  if learned_variance:
    out, v = learned_variance_lib.split_output(out, x0.shape[-1])
  x0_hat, _ = PREDICTIONS.get(prediction).to_x0_eps(schedule, out, x_t, t)
  if clip_x0:
    x0_hat = jnp.clip(x0_hat, -1.0, 1.0)
  model_mean, _, model_log_var = gaussian.q_posterior(schedule, x0_hat, x_t, t)
  if learned_variance:
    model_log_var = learned_variance_lib.interpolated_log_variance(schedule, v, t)
  true_mean, _, true_log_var = gaussian.q_posterior(schedule, x0, x_t, t)
  kl = flat_sum(normal_kl(true_mean, true_log_var, model_mean, model_log_var))
  decoder_nll = -flat_sum(discretized_gaussian_log_likelihood(x0, model_mean, 0.5 * model_log_var))
  return jnp.where(t == 0, decoder_nll, kl)


def prior_kl(schedule, x0: Array) -> Array:
  """L_T in nats [B]: KL(q(x_T | x_0) || N(0, I)) on a `DiffusionSchedule`."""
  t = jnp.full((x0.shape[0],), schedule.num_timesteps - 1, jnp.int32)
  mean, _, log_var = gaussian.q_mean_variance(schedule, x0, t)
  return flat_sum(normal_kl(mean, log_var, jnp.zeros_like(mean), jnp.zeros_like(log_var)))


def vlb(model_fn, schedule, x0: Array, rng: Array, *, prediction: str = "eps",
        learned_variance: bool = False, **unused) -> Array:
  """Unbiased one-sample estimate [B] of DDPM's negative ELBO in nats, a loss of the
  signature of `losses.LOSSES` (registered there as "vlb").

  -ELBO = L_T + sum_t L_t = L_T + T * E_{t ~ U{0..T-1}}[L_t]; its average over a split is
  an unbiased estimate of the bound, at one network evaluation per example.
  """
  del unused
  rng_t, rng_noise = jax.random.split(rng)
  t = jax.random.randint(rng_t, (x0.shape[0],), 0, schedule.num_timesteps)
  noise = jax.random.normal(rng_noise, x0.shape, x0.dtype)
  return prior_kl(schedule, x0) + schedule.num_timesteps * vlb_term(
      model_fn, schedule, x0, t, noise, prediction=prediction,
      learned_variance=learned_variance)



# ------------------------------------------------------------------ bits/dim
def nats_to_bits_per_dim(nats: Array, dim: int) -> Array:
  """A negative log-likelihood in nats per example [B] as bits per dimension [B]."""
  return nats / (dim * math.log(2.0))


def bits_per_dim(logp: Array, dim: int, bin_width: float = BIN_WIDTH_8BIT) -> Array:
  """Bits/dim of quantized data from the model-space log-density of its dequantized version.

  Args:
    logp: [B] log p_x(x) in nats, x = bin_width * y + b with y = u + U[0, 1) in [0, 256).
    dim: D, the number of dimensions per example.
    bin_width: the width of one quantization level in model space (2/256 for [-1, 1)).

  Returns:
    [B] -(logp + D log bin_width) / (D ln 2); for bin_width = 2/256 this is
    -logp / (D ln 2) + 7.
  """
  return nats_to_bits_per_dim(-(logp + dim * math.log(bin_width)), dim)
