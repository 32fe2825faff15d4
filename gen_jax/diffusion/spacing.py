"""Timestep spacings of the diffusers library and the zero-terminal-SNR rescale.

Spacings (diffusers `DDIMScheduler.set_timesteps`, `timestep_spacing`; Lin et al., "Common
Diffusion Noise Schedules and Sample Steps are Flawed", WACV 2024, Table 2), for a chain of
T steps sampled in S steps, as decreasing int steps [S]:

* "linspace": round(linspace(0, T - 1, S)) reversed (gen_jax's "uniform");
* "leading":  arange(S) * (T // S) reversed, plus `steps_offset` (T = 1000, S = 10: 900, 800,
  ..., 0; the last step T - 1 is never visited, the flaw Lin et al. point out);
* "trailing": round(arange(T, 0, -T / S)) - 1 (999, 899, ..., 99: starts at the last step).

Every chain sampler of gen_jax steps from the last grid step to the clean data (alpha = 1),
as diffusers does with set_alpha_to_one=True / final_sigmas_type="zero". Deviation: diffusers'
DDIM steps from t to t - T // S (for "trailing" with T / S not an integer that is not the next
grid step); gen_jax always steps to the next grid step. diffusers' DPMSolverMultistepScheduler
defines "linspace" and "leading" on S + 1 points with the last dropped; gen_jax uses the DDIM
definitions above for every sampler.

Zero terminal SNR (Lin et al. Algorithm 1, diffusers `rescale_zero_terminal_snr`): shift and
scale sqrt(abar_t) so that it is unchanged at t = 0 and exactly 0 at t = T - 1, and rederive
the betas; the last beta is then 1 and alpha_{T-1} = 0, so x_{T-1} is pure noise. An eps-network
cannot give x0 at that step (x0 = (x - sigma eps) / alpha): use v or x0 prediction, as the paper
does.
"""

from __future__ import annotations

import numpy as np

DIFFUSERS_SPACINGS = ("leading", "linspace", "trailing")


def diffusers_timesteps(num_timesteps: int, num_steps: int, spacing: str,
                        steps_offset: int = 0) -> np.ndarray:
  """The S = num_steps steps of `spacing` (module docstring), int32 [S], decreasing.

  Raises:
    ValueError: unknown spacing, or steps that collide or leave [0, T - 1].
  """
  t, s = int(num_timesteps), int(num_steps)
  if spacing == "linspace":
    steps = np.linspace(0, t - 1, s).round()[::-1]
  elif spacing == "leading":
    steps = (np.arange(0, s) * (t // s)).round()[::-1] + steps_offset
  elif spacing == "trailing":
    steps = np.round(np.arange(t, 0, -t / s)) - 1
  else:
    raise ValueError(f"Unknown diffusers spacing {spacing!r}; choose one of: "
                     f"{', '.join(DIFFUSERS_SPACINGS)}.")
  steps = steps.astype(np.int64)
  if len(steps) != s or np.any(np.diff(steps) >= 0) or steps.min() < 0 or steps.max() >= t:
    raise ValueError(f"spacing {spacing!r} gives no {s} distinct steps in [0, {t - 1}] "
                     f"(steps_offset={steps_offset}): {steps.tolist()}.")
  return steps.astype(np.int32)


def rescale_zero_terminal_snr(betas: np.ndarray) -> np.ndarray:
  """Betas [T] (float64) whose abar_{T-1} = 0 and abar_0 unchanged (Lin et al. Algorithm 1)."""
  betas = np.asarray(betas, np.float64)
  sqrt_abar = np.sqrt(np.cumprod(1.0 - betas))
  first, last = sqrt_abar[0], sqrt_abar[-1]
  sqrt_abar = (sqrt_abar - last) * first / (first - last)
  abar = np.square(sqrt_abar)
  alphas = np.concatenate([abar[:1], abar[1:] / abar[:-1]])
  return 1.0 - alphas
