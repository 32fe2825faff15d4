"""The noise process x_t = alpha_t x_0 + sigma_t eps, its DDPM posterior, and network outputs.

Every diffusion in gen_jax is one Gaussian noise process, `x_t = alpha(t) x_0 + sigma(t) eps`,
described by any object with

    marginal_coef(t [B]) -> (alpha [B], sigma [B])

the discrete DDPM chain (`DiffusionSchedule`, t = int step, alpha = sqrt(abar_t)) as well as
the continuous SDEs (`gen_jax.diffusion.processes`: VP, sub-VP, VE; t = float time). The parameterisations
and the samplers written against `marginal_coef` work for all of them.

DDPM, Ho, Jain & Abbeel (2020), eqs. (4), (6), (7), on the discrete chain:

    q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I),
    q(x_{t-1} | x_t, x_0) = N(c1_t x_0 + c2_t x_t, beta_tilde_t I).

What the network predicts is a registered `Prediction` (PREDICTIONS), each convertible to the
(x0, eps) pair and so to the others:

* "eps": the noise (Ho et al. 2020);
* "x0": the clean data;
* "v": v = alpha eps - sigma x_0 (Salimans & Ho, "Progressive Distillation", 2022); a rotation
  of (x0, eps) where alpha^2 + sigma^2 = 1 (VP processes), inverted on any process (VE, EDM)
  as x0 = (alpha x_t - sigma v) / (alpha^2 + sigma^2);
* "score": grad log p_t(x_t | x_0) = -eps / sigma (Song et al. 2021);
* "scaled_score": sigma * score = -eps, NCSN++'s output before its division by sigma
  (score_sde's `scale_by_sigma`).

Timesteps are per example: t is [B] (int32 0-based steps on the DDPM chain).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax
import jax.numpy as jnp

from gen_jax.diffusion.schedules import DiffusionSchedule
from gen_jax.core.registry import Registry

Array = jax.Array
Process = Any  # anything with marginal_coef(t [B]) -> (alpha [B], sigma [B])


def extract(arr: Array, t: Array, ndim: int) -> Array:
  """arr[t] reshaped to [B, 1, ..., 1] (ndim axes) so it broadcasts against [B, ...] data.

  Args:
    arr: [T] per-timestep constants.
    t: int [B] timesteps.
    ndim: rank of the data it will multiply.
  """
  t = jnp.asarray(t)
  if t.ndim != 1:
    raise ValueError(f"timesteps t must have shape [B], got {t.shape}.")
  return arr[t].reshape((t.shape[0],) + (1,) * (ndim - 1))


def coefs(process: Process, t: Array, ndim: int) -> tuple[Array, Array]:
  """(alpha_t, sigma_t) of the process at t [B], each shaped [B, 1, ..., 1] (ndim axes)."""
  alpha, sigma = process.marginal_coef(t)
  shape = (jnp.shape(alpha)[0],) + (1,) * (ndim - 1)
  return jnp.reshape(alpha, shape), jnp.reshape(sigma, shape)


def q_sample(process: Process, x0: Array, t: Array, noise: Array) -> Array:
  """x_t = alpha_t x0 + sigma_t noise, a draw from q(x_t | x0); shapes [B, ...]."""
  alpha, sigma = coefs(process, t, x0.ndim)
  return alpha * x0 + sigma * noise


def q_mean_variance(schedule: DiffusionSchedule, x0: Array, t: Array) -> tuple[Array, Array, Array]:
  """Mean, variance and log-variance of q(x_t | x0).

  Returns:
    mean sqrt(abar_t) x0 [B, ...]; variance 1 - abar_t and its log, both [B, 1, ..., 1].
  """
  mean = extract(schedule.sqrt_alphas_cumprod, t, x0.ndim) * x0
  sqrt_var = extract(schedule.sqrt_one_minus_alphas_cumprod, t, x0.ndim)
  return mean, jnp.square(sqrt_var), 2.0 * jnp.log(sqrt_var)


def q_posterior(schedule: DiffusionSchedule, x0: Array, x_t: Array,
                t: Array) -> tuple[Array, Array, Array]:
  """Mean, variance and clipped log-variance of q(x_{t-1} | x_t, x0).

  mean = c1_t x0 + c2_t x_t, variance = beta_tilde_t (DDPM eq. 7).

  Returns:
    mean [B, ...]; variance and `posterior_log_variance_clipped`, both [B, 1, ..., 1].
  """
  ndim = x_t.ndim
  mean = (extract(schedule.posterior_mean_coef1, t, ndim) * x0
          + extract(schedule.posterior_mean_coef2, t, ndim) * x_t)
  return (mean, extract(schedule.posterior_variance, t, ndim),
          extract(schedule.posterior_log_variance_clipped, t, ndim))


def predict_x0_from_eps(process: Process, x_t: Array, t: Array, eps: Array) -> Array:
  """x0 = (x_t - sigma_t eps) / alpha_t."""
  alpha, sigma = coefs(process, t, x_t.ndim)
  return (x_t - sigma * eps) / alpha


def predict_eps_from_x0(process: Process, x_t: Array, t: Array, x0: Array) -> Array:
  """eps = (x_t - alpha_t x0) / sigma_t."""
  alpha, sigma = coefs(process, t, x_t.ndim)
  return (x_t - alpha * x0) / sigma


@dataclasses.dataclass(frozen=True)
class Prediction:
  """A parameterisation of the network output.

  Attributes:
    target: (process, x0, noise, t) -> what the network is trained to output, for
      x_t = q_sample(process, x0, t, noise).
    to_x0_eps: (process, model_output, x_t, t) -> (x0_hat, eps_hat), the data and noise
      estimates implied by the output; the inverse of `target` given x_t.
  """

  target: Callable[[Process, Array, Array, Array], Array]
  to_x0_eps: Callable[[Process, Array, Array, Array], tuple[Array, Array]]


PREDICTIONS: Registry[Prediction] = Registry("prediction type")


def _eps_target(process, x0, noise, t):
  del process, x0, t
  return noise


def _eps_to_x0_eps(process, model_output, x_t, t):
  return predict_x0_from_eps(process, x_t, t, model_output), model_output


def _x0_target(process, x0, noise, t):
  del process, noise, t
  return x0


def _x0_to_x0_eps(process, model_output, x_t, t):
  return model_output, predict_eps_from_x0(process, x_t, t, model_output)


def _v_target(process, x0, noise, t):
  a, b = coefs(process, t, x0.ndim)
  return a * noise - b * x0


def _v_to_x0_eps(process, model_output, x_t, t):
  # (x_t, v) is a rotation of (x0, eps) by the angle with cos = alpha, sin = sigma, scaled by
  # sqrt(alpha^2 + sigma^2) (1 on VP processes), so this inverts it on every process.
  a, b = coefs(process, t, x_t.ndim)
  norm2 = jnp.square(a) + jnp.square(b)
  return (a * x_t - b * model_output) / norm2, (b * x_t + a * model_output) / norm2


def _score_target(process, x0, noise, t):
  _, sigma = coefs(process, t, x0.ndim)
  return -noise / sigma


def _score_to_x0_eps(process, model_output, x_t, t):
  alpha, sigma = coefs(process, t, x_t.ndim)
  return (x_t + jnp.square(sigma) * model_output) / alpha, -sigma * model_output


PREDICTIONS.add("eps", Prediction(target=_eps_target, to_x0_eps=_eps_to_x0_eps))
PREDICTIONS.add("x0", Prediction(target=_x0_target, to_x0_eps=_x0_to_x0_eps))
PREDICTIONS.add("v", Prediction(target=_v_target, to_x0_eps=_v_to_x0_eps))
PREDICTIONS.add("score", Prediction(target=_score_target, to_x0_eps=_score_to_x0_eps))
PREDICTIONS.add("scaled_score", Prediction(
    target=lambda process, x0, noise, t: -noise,
    to_x0_eps=lambda process, out, x_t, t: _eps_to_x0_eps(process, -out, x_t, t)))


def score_fn_of(model_fn: Callable[[Array, Array], Array], process: Process,
                prediction: str) -> Callable[[Array, Array], Array]:
  """(x_t, t) -> score -eps_hat / sigma_t from a model whose output is of type `prediction`;
  what the SDE samplers and the probability-flow ODE integrate."""
  predictor = PREDICTIONS.get(prediction)
  if prediction == "score":
    return model_fn

  def score_fn(x, t):
    _, eps_hat = predictor.to_x0_eps(process, model_fn(x, t), x, t)
    return -eps_hat / coefs(process, t, x.ndim)[1]

  return score_fn
