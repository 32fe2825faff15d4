"""Discrete chains of the noise process (DDPM, DDGAN) and the constants derived from them.

A diffusion with T steps is fixed by its variances beta_t, t = 0..T-1 (0-based, so beta_0
is DDPM's beta_1):

    q(x_t | x_{t-1}) = N(sqrt(1 - beta_t) x_{t-1}, beta_t I),
    alpha_t = 1 - beta_t,   abar_t = prod_{s<=t} alpha_s,
    q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I).

Schedules:

* "linear" -- Ho, Jain & Abbeel, "Denoising Diffusion Probabilistic Models" (2020):
  betas evenly spaced from 1e-4 to 0.02 for T = 1000: the DDPM discretisation of the VP
  process (beta_min = 0.1, beta_max = 20) with N = T steps, derived from it.
* "ddgan_vp" -- Xiao, Kreis & Vahdat, "Denoising Diffusion GANs" (ICLR 2022): the same VP
  process sampled at t_i = eps + (1 - eps) i / T, beta_i = 1 - abar(t_{i+1}) / abar(t_i).
* "cosine" -- Nichol & Dhariwal, "Improved Denoising Diffusion Probabilistic Models" (2021):
  abar(t) = f(t) / f(0) with f(t) = cos(((t / T) + s) / (1 + s) * pi / 2)^2, s = 0.008.

`DiffusionSchedule` holds every per-timestep constant the losses and samplers need, computed
once in float64 NumPy and stored as float32 arrays, as in the DDPM reference code. It is a
noise process on the integer times 0..T-1 (`marginal_coef`, `prior_sampling`,
`sampling_grid`), so the samplers of `gen_jax.samplers` run on it and on the SDEs alike.
"""

from __future__ import annotations

from typing import Callable

import flax
import jax
import jax.numpy as jnp
import numpy as np

from gen_jax.diffusion.processes import VPSDE
from gen_jax.diffusion.spacing import (DIFFUSERS_SPACINGS, diffusers_timesteps,
                                       rescale_zero_terminal_snr)
from gen_jax.core.registry import Registry

# A beta schedule maps T to the float64 NumPy betas of shape [T].
BetaFn = Callable[[int], np.ndarray]

BETA_SCHEDULES: Registry[BetaFn] = Registry("beta schedule")

MAX_BETA = 0.999


@BETA_SCHEDULES.register("linear")
def linear_betas(num_timesteps: int) -> np.ndarray:
  """DDPM's linear betas: the VP process (0.1, 20) discretised into N = T steps.

  beta_t = linspace(0.1 / T, 20 / T, T) (= 1e-4 .. 0.02 for T = 1000, and rescaled for
  T != 1000 as in improved DDPM, so sum_t beta_t is the same). For T < 50 the upper end
  exceeds 1 and is clipped at MAX_BETA = 0.999.

  Returns:
    float64 [T] betas.
  """
  return np.minimum(VPSDE(N=num_timesteps).discrete_betas64(), MAX_BETA)


@BETA_SCHEDULES.register("ddgan_vp")
def ddgan_vp_betas(num_timesteps: int, beta_min: float = 0.1, beta_max: float = 20.0,
                   eps: float = 1e-3) -> np.ndarray:
  """Xiao et al.'s T-step chain of the VP process (float64 [T]); see the module docstring."""
  t = np.arange(num_timesteps + 1, dtype=np.float64) / num_timesteps * (1.0 - eps) + eps
  log_alpha = VPSDE(beta_min=beta_min, beta_max=beta_max).log_mean_coeff(t)
  return 1.0 - np.exp(2.0 * (log_alpha[1:] - log_alpha[:-1]))


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
  def from_betas(cls, betas: np.ndarray, *,
                 zero_terminal_snr: bool = False) -> DiffusionSchedule:
    """Builds the schedule from betas [T] with 0 < beta_t < 1 (computed in float64); with
    zero_terminal_snr the last beta may be 1 (`spacing.rescale_zero_terminal_snr`)."""
    betas = np.asarray(betas, np.float64)
    if betas.ndim != 1 or betas.shape[0] < 1:
      raise ValueError(f"betas must be a non-empty 1-D array, got shape {betas.shape}.")
    last_max = 1.0 if zero_terminal_snr and len(betas) > 1 else np.nextafter(1.0, 0.0)
    if (not np.all(np.isfinite(betas)) or np.any(betas <= 0) or np.any(betas[:-1] >= 1)
        or betas[-1] > last_max):
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


  # ---------------------------------------------------------- the noise-process interface
  def marginal_coef(self, t: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(alpha_t, sigma_t) = (sqrt(abar_t), sqrt(1 - abar_t)) at int steps t [B] (or [S])."""
    t = jnp.asarray(t)
    return self.sqrt_alphas_cumprod[t], self.sqrt_one_minus_alphas_cumprod[t]

  def prior_sampling(self, rng: jax.Array, shape) -> jax.Array:
    """x_{T-1} ~ N(0, I), float32 of `shape`."""
    return jax.random.normal(rng, tuple(shape), jnp.float32)

  def sampling_grid(self, num_steps: int | None = None, *, spacing: str = "uniform",
                    **unused) -> jax.Array:
    """The int32 steps [S] a sampler visits (`ddim_timesteps`; all T by default)."""
    del unused
    return jnp.asarray(ddim_timesteps(
        self.num_timesteps, self.num_timesteps if num_steps is None else num_steps, spacing))


SPACINGS = ("quadratic", "uniform") + DIFFUSERS_SPACINGS


def ddim_timesteps(num_timesteps: int, num_steps: int, spacing: str = "uniform") -> np.ndarray:
  """The S = num_steps distinct timesteps DDIM visits, decreasing from T-1 (to 0 when S > 1).

  * "uniform": round(linspace(T-1, 0, S)), evenly spaced; S = T gives every timestep.
  * "quadratic": tau grows quadratically from 0, tau_i = floor((T-1) (i / (S-1))^2), so
    steps are dense at low noise (DDIM appendix D.2, where CIFAR-10 uses it; the paper's
    code stops at 0.8 T, here the first step is always T-1 as x_T ~ N(0, I) assumes). Where
    the floors collide at small i, tau_i is raised to i to keep the steps distinct.
  * "leading", "linspace", "trailing": diffusers' spacings (`gen_jax.diffusion.spacing`);
    "leading" does not start at T-1.

  Returns:
    int32 [S] timesteps, strictly decreasing.

  Raises:
    ValueError: num_steps not in [1, T], or unknown spacing.
  """
  if isinstance(num_steps, bool) or not isinstance(num_steps, (int, np.integer)):
    raise TypeError(f"num_steps must be an int, got {num_steps!r}.")
  if not 1 <= num_steps <= num_timesteps:
    raise ValueError(
        f"num_steps must be between 1 and the schedule's num_timesteps={num_timesteps}, "
        f"got {num_steps}.")
  if spacing in DIFFUSERS_SPACINGS:
    return diffusers_timesteps(num_timesteps, num_steps, spacing)
  if num_steps == 1:
    return np.array([num_timesteps - 1], np.int32)
  last = num_timesteps - 1
  if spacing == "uniform":
    ascending = np.round(np.linspace(0.0, last, num_steps)).astype(np.int64)
  elif spacing == "quadratic":
    frac = np.arange(num_steps, dtype=np.float64) / (num_steps - 1)
    ascending = np.maximum(np.floor(last * frac**2).astype(np.int64), np.arange(num_steps))
    ascending[-1] = last
  else:
    raise ValueError(f"Unknown spacing {spacing!r}; choose one of: {', '.join(SPACINGS)}.")
  assert np.all(np.diff(ascending) > 0), ascending  # distinctness is proved in the tests
  return ascending[::-1].astype(np.int32)


def make_schedule(name: str, num_timesteps: int, *,
                  zero_terminal_snr: bool = False) -> DiffusionSchedule:
  """The `DiffusionSchedule` of the registered beta schedule `name` with T = num_timesteps,
  rescaled to zero terminal SNR (`spacing.rescale_zero_terminal_snr`) if asked."""
  if isinstance(num_timesteps, bool) or not isinstance(num_timesteps, (int, np.integer)):
    raise TypeError(f"num_timesteps must be an int, got {num_timesteps!r}.")
  if num_timesteps < 1:
    raise ValueError(f"num_timesteps must be >= 1, got {num_timesteps}.")
  betas = BETA_SCHEDULES.get(name)(int(num_timesteps))
  if np.shape(betas) != (num_timesteps,):
    raise ValueError(
        f"beta schedule {name!r} returned shape {np.shape(betas)}, expected ({num_timesteps},).")
  if zero_terminal_snr:
    if num_timesteps < 2:
      raise ValueError("zero_terminal_snr needs num_timesteps >= 2.")
    betas = rescale_zero_terminal_snr(betas)
  return DiffusionSchedule.from_betas(betas, zero_terminal_snr=zero_terminal_snr)
