"""Improved DDPM's hybrid loss L_simple + lambda L_vlb for learned-variance models.

Nichol & Dhariwal, "Improved Denoising Diffusion Probabilistic Models" (ICML 2021), Sec. 3.1
(eq. 16, lambda = 0.001); official code github:openai/improved-diffusion,
`GaussianDiffusion.training_losses` with `LossType.RESCALED_MSE` and a LEARNED_RANGE
variance. The network outputs 2C channels (`learned_variance.split_output`); at one
t ~ U{0..T-1} and noise z per example,

    L_simple = mean_dims (out_mean - target)^2            (`losses.denoising_error`)
    L_t      = the VLB term of `likelihood.vlb_term` with the learned variance, evaluated on
               the output with the MEAN channels behind a stop-gradient, so L_vlb trains
               only the variance (paper Sec. 3.1)
    loss     = L_simple + lambda * T * L_t / (D ln 2).

T * L_t is the one-sample estimate of L_vlb = sum_t L_t (the prior term L_T has no
parameters), in bits per dimension as the official `_vb_terms_bpd` (mean over dimensions,
/ ln 2); the official `vb * num_timesteps / 1000` is this with lambda = 0.001.

Deviations from the official code: none in the loss. With another `weighting` the L_simple
part is that weighting's eps-space error (`losses.WEIGHTINGS`); the official code has only
the unweighted one. t is uniform (the official "uniform" schedule sampler; its
loss-aware importance sampler of L_vlb is not implemented).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from gen_jax.diffusion import learned_variance as learned_variance_lib
from gen_jax.diffusion.gaussian import q_sample
from gen_jax.diffusion.likelihood import vlb_term
from gen_jax.diffusion.losses import LOSSES, denoising_error, discrete_times
from gen_jax.diffusion.schedules import DiffusionSchedule

Array = jax.Array

VLB_WEIGHT = 0.001  # lambda of the paper


def hybrid_terms(model_fn, schedule: DiffusionSchedule, x0: Array, t: Array, z: Array, *,
                 prediction: str = "eps", vlb_weight: float = VLB_WEIGHT,
                 weighting: str = "simple", reduce_mean: bool = True) -> dict[str, Array]:
  """The hybrid loss's terms at given t [B] and noise z [B, ...] (module docstring).

  Args:
    model_fn: (x_t [B, ...], t [B]) -> [B, ..., 2C], the mean output of type `prediction`
      and v_var.

  Returns:
    {"simple": L_simple [B], "vlb_t": L_t in nats [B] (the VLB term with the mean frozen),
     "loss": L_simple + vlb_weight * T * L_t / (D ln 2) [B]}.
  """
  if not isinstance(schedule, DiffusionSchedule):
    raise ValueError(f"The hybrid loss learns the variance of a discrete chain; got a "
                     f"{type(schedule).__name__}. Use method.process='chain'.")
  out = model_fn(q_sample(schedule, x0, t, z), t).astype(jnp.float32)
  mean_out, v = learned_variance_lib.split_output(out, x0.shape[-1])
  simple = denoising_error(lambda *_: mean_out, schedule, x0, t, z, prediction=prediction,
                           weighting=weighting, reduce_mean=reduce_mean)
  frozen = jnp.concatenate([jax.lax.stop_gradient(mean_out), v], axis=-1)
  vlb_t = vlb_term(lambda *_: frozen, schedule, x0, t, z, prediction=prediction,
                   learned_variance=True, clip_x0=False)
  dim = math.prod(x0.shape[1:])
  loss = simple + vlb_weight * schedule.num_timesteps * vlb_t / (dim * math.log(2.0))
  return {"simple": simple, "vlb_t": vlb_t, "loss": loss}


@LOSSES.register("hybrid")
def hybrid(model_fn, process: DiffusionSchedule, x0: Array, rng: Array, *,
           prediction: str = "eps", vlb_weight: float = VLB_WEIGHT, weighting: str = "simple",
           reduce_mean: bool = True, **unused) -> Array:
  """L_hybrid [B] of a learned-variance model at t uniform over the chain's steps."""
  del unused
  rng_t, rng_z = jax.random.split(rng)
  t = discrete_times(process, rng_t, x0.shape[0])
  z = jax.random.normal(rng_z, x0.shape, x0.dtype)
  return hybrid_terms(model_fn, process, x0, t, z, prediction=prediction,
                      vlb_weight=vlb_weight, weighting=weighting,
                      reduce_mean=reduce_mean)["loss"]
