"""DDIM sampling: Song, Meng & Ermon, "Denoising Diffusion Implicit Models" (ICLR 2021).

On a decreasing subsequence tau_1 > ... > tau_S of the T training timesteps, with
a = abar_{tau_i} and a' = abar_{tau_{i+1}} (a' = 1 after the last step), DDIM eq. (12):

    x0_hat, eps_hat = estimates from the network at (x_{tau_i}, tau_i),
    sigma = eta sqrt((1 - a') / (1 - a)) sqrt(1 - a / a'),
    x_{tau_{i+1}} = sqrt(a') x0_hat + sqrt(1 - a' - sigma^2) eps_hat + sigma z,  z ~ N(0, I).

eta = 0 is the deterministic DDIM sampler (an ODE discretisation); eta = 1 with all T steps
is DDPM's ancestral sampler with the fixed_small variance. The last step returns x0_hat.
When x0_hat is clipped, eps_hat is recomputed from the clipped x0_hat so the pair stays
consistent with x_{tau_i}.
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from gen_jax.diffusion.gaussian import PREDICTIONS, extract, predict_eps_from_x0
from gen_jax.diffusion.schedules import DiffusionSchedule
from gen_jax.samplers.base import SAMPLERS, DenoiseFn, SampleOutput, initial_noise

Array = jax.Array

SPACINGS = ("quadratic", "uniform")


def ddim_timesteps(num_timesteps: int, num_steps: int, spacing: str = "uniform") -> np.ndarray:
  """The S = num_steps distinct timesteps DDIM visits, decreasing from T-1 (to 0 when S > 1).

  * "uniform": round(linspace(T-1, 0, S)), evenly spaced; S = T gives every timestep.
  * "quadratic": tau grows quadratically from 0, tau_i = floor((T-1) (i / (S-1))^2), so
    steps are dense at low noise (DDIM appendix D.2, where CIFAR-10 uses it; the paper's
    code stops at 0.8 T, here the first step is always T-1 as x_T ~ N(0, I) assumes). Where
    the floors collide at small i, tau_i is raised to i to keep the steps distinct.

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


@SAMPLERS.register("ddim")
def ddim_sample(
    denoise_fn: DenoiseFn,
    schedule: DiffusionSchedule,
    *,
    rng: Array,
    shape: Sequence[int] | None = None,
    num_steps: int,
    eta: float = 0.0,
    prediction: str = "eps",
    clip_x0: bool = True,
    spacing: str = "uniform",
    init_noise: Array | None = None,
) -> SampleOutput:
  """Draws samples with S = num_steps DDIM steps; jit-compatible, nfe = num_steps.

  Args:
    denoise_fn: (x_t [B, ...], t int32 [B]) -> network output of type `prediction`.
    schedule: the diffusion the network was trained on.
    rng: PRNG key; split into the key of x_T and the key of the per-step noise (step i uses
      fold_in(step_key, i), as the ancestral sampler, so eta = 1 with S = T reproduces it).
    shape: [B, ...] of the samples; may be omitted when `init_noise` is given.
    num_steps: S, 1 <= S <= T.
    eta: stochasticity in [0, 1]; 0 is deterministic given x_T. A traced eta is accepted
      (it is then not range-checked).
    prediction: name in PREDICTIONS ("eps", "x0", "v", ...).
    clip_x0: clip x0_hat to [-1, 1] (and recompute eps_hat from it).
    spacing: "uniform" or "quadratic" (see `ddim_timesteps`).
    init_noise: optional x_T [B, ...]; if None it is drawn N(0, I) from `rng`.

  Returns:
    SampleOutput with samples of x_T's shape and dtype, and nfe = num_steps.
  """
  if not isinstance(eta, jax.core.Tracer) and not 0.0 <= float(eta) <= 1.0:
    raise ValueError(f"eta must be in [0, 1], got {eta}.")
  predictor = PREDICTIONS.get(prediction)
  taus = ddim_timesteps(schedule.num_timesteps, num_steps, spacing)
  taus_prev = np.append(taus[1:], -1).astype(np.int32)  # -1 marks abar_prev = 1
  init_key, step_key = jax.random.split(rng)
  x_init = initial_noise(init_key, shape, init_noise)
  batch, ndim = x_init.shape[0], x_init.ndim

  def step(x, inputs):
    i, tau, tau_prev = inputs
    t = jnp.full((batch,), tau, jnp.int32)
    x0_hat, eps_hat = predictor.to_x0_eps(schedule, denoise_fn(x, t), x, t)
    if clip_x0:
      x0_hat = jnp.clip(x0_hat, -1.0, 1.0)
      eps_hat = predict_eps_from_x0(schedule, x, t, x0_hat)
    abar = extract(schedule.alphas_cumprod, t, ndim)
    abar_prev = jnp.where(
        tau_prev >= 0, schedule.alphas_cumprod[jnp.maximum(tau_prev, 0)], 1.0)
    sigma = eta * jnp.sqrt((1.0 - abar_prev) / (1.0 - abar) * (1.0 - abar / abar_prev))
    direction = jnp.sqrt(jnp.maximum(1.0 - abar_prev - jnp.square(sigma), 0.0))
    noise = jax.random.normal(jax.random.fold_in(step_key, i), x.shape, x.dtype)
    x_prev = jnp.sqrt(abar_prev) * x0_hat + direction * eps_hat + sigma * noise
    return x_prev.astype(x.dtype), None

  steps = (jnp.arange(num_steps, dtype=jnp.int32), jnp.asarray(taus), jnp.asarray(taus_prev))
  samples, _ = jax.lax.scan(step, x_init, steps)
  return SampleOutput(samples=samples, nfe=num_steps)
