"""Learned reverse-process variances and respaced chains (improved DDPM).

Nichol & Dhariwal, "Improved Denoising Diffusion Probabilistic Models" (ICML 2021), Sec. 3.1
and 4; official code github:openai/improved-diffusion (`gaussian_diffusion.py`,
`respace.py`).

A learned-variance network outputs 2C channels for C data channels: the usual output
(eps / x0 / v, `gaussian.PREDICTIONS`) in the first C and v_var in the last C. The reverse
variance interpolates, in the log domain, between the two natural choices on the chain:

    frac = (v_var + 1) / 2,
    log Sigma_t = frac log beta_t + (1 - frac) log beta_tilde_t       (paper eq. 15)

with log beta_tilde_t the clipped posterior log-variance (`posterior_log_variance_clipped`).
v_var is not squashed: the official code takes the raw output, which the hybrid loss keeps
near [-1, 1] (outside it the variance extrapolates).

Respacing (paper Sec. 4): sampling on a subsequence S of the T steps is a new chain whose
cumulative products are those of the kept steps, abar'_k = abar_{S_k}, so its betas are
beta'_k = 1 - abar_{S_k} / abar_{S_{k-1}} (abar'_{-1} = 1); the network still sees the
original step S_k, and its learned variance interpolates between the respaced beta'_k and
beta_tilde'_k. `respace` builds that chain (as `SpacedDiffusion` of respace.py).

Deviations from the official code: the network sees the step t in 0..T-1 as it is (the
official `rescale_timesteps=True` feeds it 1000 t / T); with classifier-free guidance
(`diffusion.guidance.guided`) v_var is combined like the mean output, (1 + w) v(y) - w
v(null), where GLIDE keeps the conditional one.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from gen_jax.diffusion.gaussian import extract
from gen_jax.diffusion.schedules import DiffusionSchedule

Array = jax.Array


def split_output(out: Array, channels: int) -> tuple[Array, Array]:
  """(mean output [B, ..., C], v_var [B, ..., C]) of a learned-variance output [B, ..., 2C].

  Raises:
    ValueError: the last axis is not 2 * channels.
  """
  if out.shape[-1] != 2 * channels:
    raise ValueError(
        f"A learned-variance model outputs 2C = {2 * channels} channels (the mean output "
        f"and v_var), got {out.shape[-1]}. Build the network with out_channels=2C "
        "(method.learned_variance=True does this).")
  return out[..., :channels], out[..., channels:]


def interpolated_log_variance(schedule: DiffusionSchedule, v: Array, t: Array) -> Array:
  """log Sigma_t [B, ...] = frac log beta_t + (1 - frac) log beta_tilde_t, frac = (v + 1) / 2.

  Args:
    schedule: the (possibly respaced) chain.
    v: v_var [B, ...], the network's variance output.
    t: int [B] steps of `schedule`.
  """
  min_log = extract(schedule.posterior_log_variance_clipped, t, v.ndim)
  max_log = extract(jnp.log(schedule.betas), t, v.ndim)
  frac = (v + 1.0) / 2.0
  return frac * max_log + (1.0 - frac) * min_log


def respace(schedule: DiffusionSchedule, kept_steps) -> DiffusionSchedule:
  """The chain on the subsequence `kept_steps` of `schedule`'s steps (module docstring).

  Args:
    schedule: a chain of T steps.
    kept_steps: distinct int steps in [0, T), in any order (a sampling grid is decreasing).

  Returns:
    A `DiffusionSchedule` of K = len(kept_steps) steps whose step k is the k-th smallest
    kept step: its alphas_cumprod are the kept ones, its betas recomputed from them in
    float64 (from the cumulative product of the stored betas, so keeping every step gives
    the same betas back).
  """
  steps = np.sort(np.asarray(kept_steps, np.int64))
  if steps.ndim != 1 or steps.size < 1 or len(np.unique(steps)) != steps.size:
    raise ValueError(f"kept_steps must be distinct steps, got {np.asarray(kept_steps)}.")
  if steps[0] < 0 or steps[-1] >= schedule.num_timesteps:
    raise ValueError(f"kept_steps must lie in [0, {schedule.num_timesteps}), got "
                     f"{steps[0]}..{steps[-1]}.")
  abar = np.cumprod(1.0 - np.asarray(schedule.betas, np.float64))[steps]
  betas = 1.0 - abar / np.append(1.0, abar[:-1])
  return DiffusionSchedule.from_betas(betas)
