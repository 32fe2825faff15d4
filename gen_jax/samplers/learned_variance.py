"""Ancestral sampling with learned variances on a respaced chain (improved DDPM).

Nichol & Dhariwal, "Improved Denoising Diffusion Probabilistic Models" (ICML 2021), Sec. 4;
official code github:openai/improved-diffusion (`p_sample_loop` of a `SpacedDiffusion`).

The K kept steps S_K > ... > S_1 are the chain's sampling grid (`schedules.ddim_timesteps`
with `num_steps`, `spacing`; K = T keeps every step); the chain on them is
`learned_variance.respace`. At each kept step, from x at original step S_k (the network
sees S_k):

    out, v_var   = denoise_fn(x, S_k)                    (2C channels)
    x0_hat       = x0 estimate of out (clipped to [-1, 1] with clip_x0)
    mean         = posterior mean of the respaced chain at step k,
    log Sigma    = frac log beta'_k + (1 - frac) log beta_tilde'_k,  frac = (v_var + 1) / 2,
    x            = mean + exp(log Sigma / 2) z,  no noise at the last step.

The keys follow `ddim_sample` (x_T from the first half of rng, step i uses fold_in(second
half, i)), so a model whose v_var is -1 everywhere gives the ancestral sampler with the
"fixed_small" variance, and +1 the "fixed_large" one, sample for sample.
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from gen_jax.diffusion.gaussian import PREDICTIONS, q_posterior
from gen_jax.diffusion.learned_variance import (interpolated_log_variance, respace,
                                                split_output)
from gen_jax.diffusion.schedules import DiffusionSchedule, ddim_timesteps
from gen_jax.samplers.base import SAMPLERS, DenoiseFn, SampleOutput, initial_noise

Array = jax.Array


@SAMPLERS.register("learned_variance")
def learned_variance_sample(
    denoise_fn: DenoiseFn,
    process: DiffusionSchedule,
    *,
    rng: Array,
    shape: Sequence[int] | None = None,
    prediction: str = "eps",
    num_steps: int | None = None,
    spacing: str = "uniform",
    clip_x0: bool = True,
    init_noise: Array | None = None,
) -> SampleOutput:
  """Draws samples with K = num_steps ancestral steps of learned variance; nfe = K.

  Args:
    denoise_fn: (x_t [B, ..., C], t [B]) -> [B, ..., 2C]: the output of type `prediction`
      and v_var.
    process: the chain the model was trained on.
    num_steps, spacing: the kept steps, `process.sampling_grid(num_steps, spacing=...)`
      (default: all T).
    clip_x0: clip x0_hat to [-1, 1].
    rng, shape, init_noise: as every sampler (`gen_jax.samplers.base`).
  """
  if not isinstance(process, DiffusionSchedule):
    raise ValueError(f"Learned variances live on a discrete chain; got a "
                     f"{type(process).__name__}. Use method.process='chain'.")
  predictor = PREDICTIONS.get(prediction)
  # The chain's sampling grid (`DiffusionSchedule.sampling_grid`), in NumPy: respacing is
  # done once, outside any trace.
  times = ddim_timesteps(process.num_timesteps, num_steps or process.num_timesteps, spacing)
  spaced = respace(process, times)
  init_key, step_key = jax.random.split(rng)
  x_init = initial_noise(process, init_key, shape, init_noise)
  batch, channels = x_init.shape[0], x_init.shape[-1]
  k_of = np.arange(len(times) - 1, -1, -1, dtype=np.int32)  # respaced index of times[i]

  def step(x, inputs):
    i, t, k = inputs
    tb, kb = jnp.full((batch,), t, jnp.int32), jnp.full((batch,), k, jnp.int32)
    out, v = split_output(denoise_fn(x, tb), channels)
    x0_hat, _ = predictor.to_x0_eps(process, out, x, tb)
    if clip_x0:
      x0_hat = jnp.clip(x0_hat, -1.0, 1.0)
    mean, _, _ = q_posterior(spaced, x0_hat, x, kb)
    std = jnp.where(k > 0, jnp.exp(0.5 * interpolated_log_variance(spaced, v, kb)), 0.0)
    noise = jax.random.normal(jax.random.fold_in(step_key, i), x.shape, x.dtype)
    return (mean + std * noise).astype(x.dtype), None

  steps = (jnp.arange(len(times), dtype=jnp.int32), jnp.asarray(times, jnp.int32),
           jnp.asarray(k_of))
  samples, _ = jax.lax.scan(step, x_init, steps)
  return SampleOutput(samples=samples, nfe=len(times))


learned_variance_sample.takes_learned_variance = True  # `Diffusion.sample` keeps 2C channels
