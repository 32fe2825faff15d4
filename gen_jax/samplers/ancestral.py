"""Ancestral sampling of DDPM: Ho, Jain & Abbeel, "Denoising Diffusion Probabilistic Models" (2020).

Starting from x_T ~ N(0, I), each step t = T-1, ..., 0 draws

    x_{t-1} ~ N(mu(x_t, x0_hat), sigma_t^2 I),   mu = c1_t x0_hat + c2_t x_t,

the posterior q(x_{t-1} | x_t, x0) with x0 replaced by the network's estimate (DDPM
Algorithm 2, written through x0_hat so that every `Prediction` works). The step variance is
fixed, DDPM section 3.2:

* "fixed_small": sigma_t^2 = beta_tilde_t (optimal when x_0 is a point mass);
* "fixed_large": sigma_t^2 = beta_t (optimal when x_0 ~ N(0, I)), with beta_tilde_1 in place
  of beta_0 as in the DDPM code.

No noise is added at the last step (t = 0); the sample is the posterior mean there, which
equals x0_hat since c1_0 = 1 and c2_0 = 0.
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp

from gen_jax.diffusion.gaussian import PREDICTIONS, extract, q_posterior
from gen_jax.diffusion.schedules import DiffusionSchedule
from gen_jax.samplers.base import SAMPLERS, DenoiseFn, SampleOutput, initial_noise

Array = jax.Array

VARIANCES = ("fixed_large", "fixed_small")


def step_log_variance(schedule: DiffusionSchedule, variance: str) -> Array:
  """log sigma_t^2 [T] of the reverse steps for a fixed-variance choice (see module docstring).

  Raises:
    ValueError: unknown `variance`.
  """
  if variance == "fixed_small":
    return schedule.posterior_log_variance_clipped
  if variance == "fixed_large":
    if schedule.num_timesteps == 1:
      return jnp.log(schedule.betas)  # t = 0 only; its noise is never added
    return jnp.log(jnp.concatenate([schedule.posterior_variance[1:2], schedule.betas[1:]]))
  raise ValueError(f"Unknown variance {variance!r}; choose one of: {', '.join(VARIANCES)}.")


@SAMPLERS.register("ancestral")
def ancestral_sample(
    denoise_fn: DenoiseFn,
    schedule: DiffusionSchedule,
    *,
    rng: Array,
    shape: Sequence[int] | None = None,
    prediction: str = "eps",
    variance: str = "fixed_small",
    clip_x0: bool = True,
    init_noise: Array | None = None,
) -> SampleOutput:
  """Draws samples with T ancestral steps (DDPM Algorithm 2); jit-compatible, nfe = T.

  Args:
    denoise_fn: (x_t [B, ...], t int32 [B]) -> network output of type `prediction`.
    schedule: the diffusion the network was trained on.
    rng: PRNG key; split into the key of x_T and the key of the per-step noise (step i,
      counted from 0 at t = T-1, uses fold_in(step_key, i)).
    shape: [B, ...] of the samples; may be omitted when `init_noise` is given.
    prediction: name in PREDICTIONS ("eps", "x0", "v", ...).
    variance: "fixed_small" (beta_tilde_t) or "fixed_large" (beta_t).
    clip_x0: clip x0_hat to [-1, 1] (data scaled to [-1, 1]) before forming the mean.
    init_noise: optional x_T [B, ...]; if None it is drawn N(0, I) from `rng`.

  Returns:
    SampleOutput with samples of x_T's shape and dtype, and nfe = T.
  """
  predictor = PREDICTIONS.get(prediction)
  log_var = step_log_variance(schedule, variance)
  num_timesteps = schedule.num_timesteps
  init_key, step_key = jax.random.split(rng)
  x_init = initial_noise(schedule, init_key, shape, init_noise)
  batch = x_init.shape[0]

  def step(i, x):
    t_scalar = num_timesteps - 1 - i
    t = jnp.full((batch,), t_scalar, jnp.int32)
    x0_hat, _ = predictor.to_x0_eps(schedule, denoise_fn(x, t), x, t)
    if clip_x0:
      x0_hat = jnp.clip(x0_hat, -1.0, 1.0)
    mean, _, _ = q_posterior(schedule, x0_hat, x, t)
    std = jnp.exp(0.5 * extract(log_var, t, x.ndim))
    noise = jax.random.normal(jax.random.fold_in(step_key, i), x.shape, x.dtype)
    x_prev = jnp.where(t_scalar > 0, mean + std * noise, mean)
    return x_prev.astype(x.dtype)

  samples = jax.lax.fori_loop(0, num_timesteps, step, x_init)
  return SampleOutput(samples=samples, nfe=num_timesteps)
