"""Noise schedules of discrete-time Gaussian diffusion and the constants derived from them.

A diffusion with T steps is fixed by its variances beta_t, t = 0..T-1 (0-based, so beta_0
is DDPM's beta_1):

    q(x_t | x_{t-1}) = N(sqrt(1 - beta_t) x_{t-1}, beta_t I),
    alpha_t = 1 - beta_t,   abar_t = prod_{s<=t} alpha_s,
    q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I).

Schedules:

* "linear" -- Ho, Jain & Abbeel, "Denoising Diffusion Probabilistic Models" (2020):
  betas evenly spaced from 1e-4 to 0.02 for T = 1000.
* "cosine" -- Nichol & Dhariwal, "Improved Denoising Diffusion Probabilistic Models" (2021):
  abar(t) = f(t) / f(0) with f(t) = cos(((t / T) + s) / (1 + s) * pi / 2)^2, s = 0.008.

`DiffusionSchedule` holds every per-timestep constant the losses and samplers need, computed
once in float64 NumPy and stored as float32 arrays, as in the DDPM reference code.
"""

from __future__ import annotations

from typing import Callable

import flax
import jax
import jax.numpy as jnp
import numpy as np

from gen_jax.registry import Registry

# A beta schedule maps T to the float64 NumPy betas of shape [T].
BetaFn = Callable[[int], np.ndarray]

BETA_SCHEDULES: Registry[BetaFn] = Registry("beta schedule")

MAX_BETA = 0.999


@BETA_SCHEDULES.register("linear")
def linear_betas(num_timesteps: int) -> np.ndarray:
  """DDPM's linear betas, rescaled for T != 1000 as in improved DDPM.

  beta_t = linspace(1e-4 * 1000 / T, 0.02 * 1000 / T, T), so that for any T the process
  destroys about as much signal as DDPM's T = 1000 one (sum_t beta_t is the same). For
  T < 50 the upper end exceeds 1 and is clipped at MAX_BETA = 0.999.

  Returns:
    float64 [T] betas.
  """
  scale = 1000.0 / num_timesteps
  betas = np.linspace(scale * 1e-4, scale * 0.02, num_timesteps, dtype=np.float64)
  return np.minimum(betas, MAX_BETA)


def cosine_alphas_cumprod(t: np.ndarray, num_timesteps: int, s: float = 0.008) -> np.ndarray:
  """Nichol & Dhariwal's abar(t) = cos(((t / T) + s) / (1 + s) * pi / 2)^2 / (same at t = 0).

  `t` is continuous in [0, T]; abar(0) = 1 and abar(T) = 0.
  """
  f = lambda u: np.cos((u / num_timesteps + s) / (1 + s) * np.pi / 2) ** 2
  return f(np.asarray(t, np.float64)) / f(0.0)


@BETA_SCHEDULES.register("cosine")
def cosine_betas(num_timesteps: int, s: float = 0.008, max_beta: float = MAX_BETA) -> np.ndarray:
  """Improved DDPM's cosine betas: beta_t = min(1 - abar(t + 1) / abar(t), max_beta).

  The clip only bites at the last step(s), where abar(T) = 0 would give beta = 1; there the
  cumulative product of (1 - beta) departs slightly from the closed form.

  Returns:
    float64 [T] betas.
  """
  abar = cosine_alphas_cumprod(np.arange(num_timesteps + 1), num_timesteps, s)
  return np.minimum(1.0 - abar[1:] / abar[:-1], max_beta)


@flax.struct.dataclass
class DiffusionSchedule:
  """Per-timestep constants of a T-step Gaussian diffusion; every array is float32 [T].

  A pytree (so it can be a jit argument, or closed over) with T as static metadata.
  Index t = 0..T-1; abar_{-1} = 1 by convention.

  Attributes:
    betas: beta_t.
    alphas_cumprod: abar_t = prod_{s<=t} (1 - beta_s).
    alphas_cumprod_prev: abar_{t-1} (1 at t = 0).
    sqrt_alphas_cumprod: sqrt(abar_t).
    sqrt_one_minus_alphas_cumprod: sqrt(1 - abar_t).
    posterior_variance: beta_tilde_t = beta_t (1 - abar_{t-1}) / (1 - abar_t), the variance of
      q(x_{t-1} | x_t, x_0); 0 at t = 0.
    posterior_log_variance_clipped: log beta_tilde_t with the t = 0 entry (log 0) replaced by
      the t = 1 one, as in DDPM; for T = 1 (no t = 1) it is log beta_0.
    posterior_mean_coef1: beta_t sqrt(abar_{t-1}) / (1 - abar_t), the weight of x_0 in the
      posterior mean.
    posterior_mean_coef2: (1 - abar_{t-1}) sqrt(alpha_t) / (1 - abar_t), the weight of x_t.
    num_timesteps: T (static).
  """

  betas: jax.Array
  alphas_cumprod: jax.Array
  alphas_cumprod_prev: jax.Array
  sqrt_alphas_cumprod: jax.Array
  sqrt_one_minus_alphas_cumprod: jax.Array
  posterior_variance: jax.Array
  posterior_log_variance_clipped: jax.Array
  posterior_mean_coef1: jax.Array
  posterior_mean_coef2: jax.Array
  num_timesteps: int = flax.struct.field(pytree_node=False)

  @classmethod
  def from_betas(cls, betas: np.ndarray) -> DiffusionSchedule:
    """Builds the schedule from betas [T] with 0 < beta_t < 1 (computed in float64)."""
    betas = np.asarray(betas, np.float64)
    if betas.ndim != 1 or betas.shape[0] < 1:
      raise ValueError(f"betas must be a non-empty 1-D array, got shape {betas.shape}.")
    if not np.all(np.isfinite(betas)) or np.any(betas <= 0) or np.any(betas >= 1):
      raise ValueError(
          f"betas must lie in the open interval (0, 1); got min {betas.min()}, max {betas.max()}.")
    alphas = 1.0 - betas
    abar = np.cumprod(alphas)
    abar_prev = np.append(1.0, abar[:-1])
    posterior_variance = betas * (1.0 - abar_prev) / (1.0 - abar)
    fill = posterior_variance[1] if len(betas) > 1 else betas[0]
    posterior_log_variance_clipped = np.log(np.append(fill, posterior_variance[1:]))
    f32 = lambda a: jnp.asarray(a, jnp.float32)
    return cls(
        betas=f32(betas),
        alphas_cumprod=f32(abar),
        alphas_cumprod_prev=f32(abar_prev),
        sqrt_alphas_cumprod=f32(np.sqrt(abar)),
        sqrt_one_minus_alphas_cumprod=f32(np.sqrt(1.0 - abar)),
        posterior_variance=f32(posterior_variance),
        posterior_log_variance_clipped=f32(posterior_log_variance_clipped),
        posterior_mean_coef1=f32(betas * np.sqrt(abar_prev) / (1.0 - abar)),
        posterior_mean_coef2=f32((1.0 - abar_prev) * np.sqrt(alphas) / (1.0 - abar)),
        num_timesteps=len(betas),
    )


def make_schedule(name: str, num_timesteps: int) -> DiffusionSchedule:
  """The `DiffusionSchedule` of the registered beta schedule `name` with T = num_timesteps."""
  if isinstance(num_timesteps, bool) or not isinstance(num_timesteps, (int, np.integer)):
    raise TypeError(f"num_timesteps must be an int, got {num_timesteps!r}.")
  if num_timesteps < 1:
    raise ValueError(f"num_timesteps must be >= 1, got {num_timesteps}.")
  betas = BETA_SCHEDULES.get(name)(int(num_timesteps))
  if np.shape(betas) != (num_timesteps,):
    raise ValueError(
        f"beta schedule {name!r} returned shape {np.shape(betas)}, expected ({num_timesteps},).")
  return DiffusionSchedule.from_betas(betas)
