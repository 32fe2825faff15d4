"""Progressive distillation of a DDIM sampler: the maths (Salimans & Ho, ICLR 2022).

Salimans & Ho, "Progressive Distillation for Fast Sampling of Diffusion Models" (ICLR 2022),
Algorithm 2; official code github:google-research/google-research `diffusion_distillation`.
A student learns to take in ONE deterministic DDIM step what its teacher takes in TWO. On
a grid of n student steps, at u = i / n (i = 1..n) and the teacher's half steps,

    z_t ~ q(z_t | x),  t = t(i / n),  t' = t((i - 0.5) / n),  t'' = t((i - 1) / n),
    z_t'  = DDIM step of the teacher from (z_t, t) to t',
    z_t'' = DDIM step of the teacher from (z_t', t') to t''           (t'' = clean at i = 1)
    x~    = (z_t'' - (sigma_t'' / sigma_t) z_t) / (alpha_t'' - (sigma_t'' / sigma_t) alpha_t)

x~ is the x0 prediction with which ONE DDIM step of the student from z_t lands on z_t''.
The loss is w(lambda_t) ||x~ - x0_hat_student(z_t)||^2 with the "truncated SNR" weight
w = max(SNR_t, 1), SNR = alpha^2 / sigma^2 (paper Sec. 4), averaged over dimensions.

On a DDPM chain of T steps the grid is the chain's steps t(u) = u T - 1 (u > 0) and the
clean data at u = 0: for n | T the grids of n and n / 2 steps are nested, so
`student_grid(T, n)` (= the common "trailing" spacing) is what the student samples on, with
`samplers.ddim_sample(timesteps=...)` and eta = 0; nfe = n.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from gen_jax.diffusion.gaussian import PREDICTIONS, predict_eps_from_x0
from gen_jax.diffusion.schedules import DiffusionSchedule
from gen_jax.samplers.ddim import posterior_step

Array = jax.Array
DenoiseFn = Callable[[Array, Array], Array]


def student_grid(num_timesteps: int, num_steps: int) -> np.ndarray:
  """The n = num_steps chain steps i T / n - 1, i = n..1 (int32 [n], decreasing).

  Raises:
    ValueError: n does not divide T.
  """
  if num_steps < 1 or num_timesteps % num_steps:
    raise ValueError(f"A distillation grid of {num_steps} steps needs num_steps dividing the "
                     f"chain's num_timesteps={num_timesteps}.")
  return (np.arange(num_steps, 0, -1) * (num_timesteps // num_steps) - 1).astype(np.int32)


def _at(schedule: DiffusionSchedule, i2: Array, n2: Array) -> tuple[Array, Array, Array]:
  """(t int [B], alpha [B], sigma [B]) at u = i2 / n2 (integers), the clean data at u = 0."""
  t = i2 * (schedule.num_timesteps // n2) - 1
  clean = t < 0
  alpha, sigma = schedule.marginal_coef(jnp.maximum(t, 0))
  return t, jnp.where(clean, 1.0, alpha), jnp.where(clean, 0.0, sigma)


def _x0_eps(denoise_fn, predictor, schedule, x, t, clip_x0):
  x0, eps = predictor.to_x0_eps(schedule, denoise_fn(x, t), x, t)
  if clip_x0:
    x0 = jnp.clip(x0, -1.0, 1.0)
    eps = predict_eps_from_x0(schedule, x, t, x0)
  return x0, eps


def distillation_target(teacher_fn: DenoiseFn, schedule: DiffusionSchedule, z_t: Array,
                        i: Array, n: Array, *, prediction: str,
                        clip_x0: bool) -> Array:
  """x~ [B, ...]: the x0 target of the student at z_t, step i [B] of n student steps.

  Args:
    teacher_fn: (x [B, ...], t int [B]) -> the teacher's output of type `prediction`.
    i: int [B] in 1..n; n: int scalar (may be traced), n | T / 2.
  """
  bc = lambda a: a.reshape((-1,) + (1,) * (z_t.ndim - 1))
  predictor = PREDICTIONS.get(prediction)
  t, a, s = _at(schedule, 2 * i, 2 * n)
  t1, a1, s1 = _at(schedule, 2 * i - 1, 2 * n)
  _, a2, s2 = _at(schedule, 2 * i - 2, 2 * n)
  x0, eps = _x0_eps(teacher_fn, predictor, schedule, z_t, t, clip_x0)
  z1 = posterior_step(x0, eps, 0.0, bc(a), bc(s), bc(a1), bc(s1), eta=0.0)
  x0, eps = _x0_eps(teacher_fn, predictor, schedule, z1, t1, clip_x0)
  z2 = posterior_step(x0, eps, 0.0, bc(a1), bc(s1), bc(a2), bc(s2), eta=0.0)
  ratio = bc(s2 / s)
  return (z2 - ratio * z_t) / (bc(a2) - ratio * bc(a))


def distillation_loss(student_fn: DenoiseFn, teacher_fn: DenoiseFn,
                      schedule: DiffusionSchedule, x0: Array, rng: Array, n: Array, *,
                      prediction: str, clip_x0: bool) -> Array:
  """max(SNR_t, 1) mean_dims (x~ - x0_hat_student)^2 [B] at i ~ U{1..n} (module docstring).

  The teacher's target is behind a stop-gradient (the teacher is not trained).
  """
  rng_i, rng_z = jax.random.split(rng)
  batch = x0.shape[0]
  i = jax.random.randint(rng_i, (batch,), 1, n + 1)
  t, a, s = _at(schedule, 2 * i, 2 * n)
  bc = lambda v: v.reshape((-1,) + (1,) * (x0.ndim - 1))
  z_t = bc(a) * x0 + bc(s) * jax.random.normal(rng_z, x0.shape, x0.dtype)
  target = jax.lax.stop_gradient(distillation_target(
      teacher_fn, schedule, z_t, i, n, prediction=prediction, clip_x0=clip_x0))
  x0_hat, _ = PREDICTIONS.get(prediction).to_x0_eps(schedule, student_fn(z_t, t), z_t, t)
  weight = jnp.maximum(jnp.square(a / s), 1.0)
  err = jnp.square(x0_hat - target).reshape(batch, -1)
  return weight * jnp.mean(err, axis=-1)
