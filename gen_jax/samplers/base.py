"""What every sampler returns, the sampler registry, and helpers the samplers share.

A sampler draws x_0 from a trained diffusion model given its denoiser and its noise process,
with one call signature for every model (DDPM chains and score SDEs alike):

    sampler(denoise_fn, process, *, rng, shape, prediction, **options) -> SampleOutput,
    denoise_fn(x_t [B, ...], t [B]) -> model_output [B, ...],

the denoiser already closed over the parameters (and class labels, guidance scale, ...), its
output of the parameterisation `prediction` (`gen_jax.diffusion.PREDICTIONS`: eps, x0, v,
score), and `process` anything with `marginal_coef`, `prior_sampling` and `sampling_grid`
(`DiffusionSchedule`, whose t are int steps, or an SDE, whose t are float times). Samplers are pure
functions built on `jax.lax` loops, so `jax.jit` traces the network once, whatever the number
of steps. Jit a function that takes the parameters and builds `denoise_fn` inside, so the
parameters are arguments rather than compile-time constants.
"""

from __future__ import annotations

from typing import Callable, Sequence

import jax
import jax.numpy as jnp

from gen_jax.core.registry import Registry
from gen_jax.core.sample import SampleOutput

Array = jax.Array
DenoiseFn = Callable[[Array, Array], Array]


SAMPLERS: Registry[Callable[..., SampleOutput]] = Registry("sampler")


def initial_noise(process, rng: Array, shape: Sequence[int] | None,
                  init_noise: Array | None) -> Array:
  """x_T: `init_noise` if given (its shape must match `shape` when both are given), else a
  draw of the process's prior (`process.prior_sampling`).

  Raises:
    ValueError: neither is given, or their shapes disagree.
  """
  if init_noise is None:
    if shape is None:
      raise ValueError("Give the sample shape [B, ...] as `shape` (or x_T as `init_noise`).")
    shape = tuple(int(d) for d in shape)
    if len(shape) < 1 or any(d < 1 for d in shape):
      raise ValueError(f"shape must be [B, ...] with positive sizes, got {shape}.")
    return process.prior_sampling(rng, shape)
  init_noise = jnp.asarray(init_noise)
  if shape is not None and tuple(shape) != init_noise.shape:
    raise ValueError(f"init_noise has shape {init_noise.shape} but shape={tuple(shape)}.")
  if init_noise.ndim < 1:
    raise ValueError("init_noise must be [B, ...], got a scalar.")
  return init_noise
