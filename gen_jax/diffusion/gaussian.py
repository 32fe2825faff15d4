"""The forward process q(x_t | x_0), its posterior q(x_{t-1} | x_t, x_0), and network outputs.

Ho, Jain & Abbeel, "Denoising Diffusion Probabilistic Models" (2020), eqs. (4), (6), (7):

    q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I),
    q(x_{t-1} | x_t, x_0) = N(c1_t x_0 + c2_t x_t, beta_tilde_t I).

What the network predicts is a registered `Prediction` (PREDICTIONS):

* "eps": the noise, x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps (Ho et al. 2020);
* "x0": the clean data;
* "v": v = sqrt(abar_t) eps - sqrt(1 - abar_t) x_0 (Salimans & Ho, "Progressive
  Distillation for Fast Sampling of Diffusion Models", 2022).

Timesteps are per example: t is int32 [B], 0-based (t = 0 is the least noisy step).
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp

from gen_jax.diffusion.schedules import DiffusionSchedule
from gen_jax.registry import Registry

Array = jax.Array


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


def q_sample(schedule: DiffusionSchedule, x0: Array, t: Array, noise: Array) -> Array:
  """x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) noise, a draw from q(x_t | x0); shapes [B, ...]."""
  return (extract(schedule.sqrt_alphas_cumprod, t, x0.ndim) * x0
          + extract(schedule.sqrt_one_minus_alphas_cumprod, t, x0.ndim) * noise)


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


def predict_x0_from_eps(schedule: DiffusionSchedule, x_t: Array, t: Array, eps: Array) -> Array:
  """x0 = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t)."""
  ndim = x_t.ndim
  return ((x_t - extract(schedule.sqrt_one_minus_alphas_cumprod, t, ndim) * eps)
          / extract(schedule.sqrt_alphas_cumprod, t, ndim))


def predict_eps_from_x0(schedule: DiffusionSchedule, x_t: Array, t: Array, x0: Array) -> Array:
  """eps = (x_t - sqrt(abar_t) x0) / sqrt(1 - abar_t)."""
  ndim = x_t.ndim
  return ((x_t - extract(schedule.sqrt_alphas_cumprod, t, ndim) * x0)
          / extract(schedule.sqrt_one_minus_alphas_cumprod, t, ndim))


@dataclasses.dataclass(frozen=True)
class Prediction:
  """A parameterisation of the network output.

  Attributes:
    target: (schedule, x0, noise, t) -> what the network is trained to output, for
      x_t = q_sample(schedule, x0, t, noise).
    to_x0_eps: (schedule, model_output, x_t, t) -> (x0_hat, eps_hat), the data and noise
      estimates implied by the output; the inverse of `target` given x_t.
  """

  target: Callable[[DiffusionSchedule, Array, Array, Array], Array]
  to_x0_eps: Callable[[DiffusionSchedule, Array, Array, Array], tuple[Array, Array]]


PREDICTIONS: Registry[Prediction] = Registry("prediction type")


def _eps_target(schedule, x0, noise, t):
  del schedule, x0, t
  return noise


def _eps_to_x0_eps(schedule, model_output, x_t, t):
  return predict_x0_from_eps(schedule, x_t, t, model_output), model_output


def _x0_target(schedule, x0, noise, t):
  del schedule, noise, t
  return x0


def _x0_to_x0_eps(schedule, model_output, x_t, t):
  return model_output, predict_eps_from_x0(schedule, x_t, t, model_output)


def _v_target(schedule, x0, noise, t):
  a = extract(schedule.sqrt_alphas_cumprod, t, x0.ndim)
  b = extract(schedule.sqrt_one_minus_alphas_cumprod, t, x0.ndim)
  return a * noise - b * x0


def _v_to_x0_eps(schedule, model_output, x_t, t):
  # (x_t, v) is a rotation of (x0, eps) by the angle with cos = sqrt(abar), sin = sqrt(1 - abar).
  a = extract(schedule.sqrt_alphas_cumprod, t, x_t.ndim)
  b = extract(schedule.sqrt_one_minus_alphas_cumprod, t, x_t.ndim)
  return a * x_t - b * model_output, b * x_t + a * model_output


PREDICTIONS.add("eps", Prediction(target=_eps_target, to_x0_eps=_eps_to_x0_eps))
PREDICTIONS.add("x0", Prediction(target=_x0_target, to_x0_eps=_x0_to_x0_eps))
PREDICTIONS.add("v", Prediction(target=_v_target, to_x0_eps=_v_to_x0_eps))
