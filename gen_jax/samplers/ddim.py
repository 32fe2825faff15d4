"""DDIM sampling: Song, Meng & Ermon, "Denoising Diffusion Implicit Models" (ICLR 2021),
written for any noise process x_t = alpha_t x_0 + sigma_t eps (DDPM chains, VP, sub-VP, VE).

On the process's decreasing grid t_1 > ... > t_S (`process.sampling_grid`: DDPM steps, or
SDE times from T to eps) followed by the clean data (alpha = 1, sigma = 0), one step from t
to the next time s is DDIM eq. (12) in (alpha, sigma) form:

    x0_hat, eps_hat = estimates from the network at (x_t, t),
    c = eta (sigma_s / sigma_t) sqrt(sigma_t^2 - (alpha_t / alpha_s)^2 sigma_s^2),
    x_s = alpha_s x0_hat + sqrt(sigma_s^2 - c^2) eps_hat + c z,  z ~ N(0, I).

For a DDPM chain (alpha^2 = abar) this is DDIM's sigma; eta = 0 is the deterministic DDIM
sampler (the probability-flow ODE in the variable x / alpha against sigma / alpha; for VE it
is Euler in sigma), and eta = 1 with all T steps is DDPM's ancestral sampler with the
fixed_small variance (DDPM's ancestral sampler is this loop: `gen_jax.samplers.sde`). With
variance="fixed_large" the added noise has std eta sigma_{t|s} instead of c (DDPM's beta_t at
eta = 1) and the mean is unchanged. The last step returns x0_hat (for an SDE grid ending at
eps, Tweedie's denoised estimate). When x0_hat is clipped, eps_hat is recomputed from the clipped x0_hat so
the pair stays consistent with x_t.
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp

from gen_jax.diffusion.gaussian import PREDICTIONS, predict_eps_from_x0
from gen_jax.diffusion.schedules import SPACINGS, ddim_timesteps  # noqa: F401
from gen_jax.samplers.base import SAMPLERS, DenoiseFn, SampleOutput, initial_noise

Array = jax.Array

VARIANCES = ("fixed_large", "fixed_small")


def posterior_step(x0_hat, eps_hat, noise, a, s, a_next, s_next, *, eta=1.0,
                   variance: str = "fixed_small") -> Array:
  """x at the next time from the estimates at t (module docstring); a, s: (alpha, sigma) at t,
  a_next, s_next at the next time (1, 0 for the clean data), scalars or broadcastable."""
  var_step = jnp.maximum(jnp.square(s) - jnp.square(a / a_next * s_next), 0.0)  # sigma_{t|s}^2
  c = eta * s_next / s * jnp.sqrt(var_step)
  direction = jnp.sqrt(jnp.maximum(jnp.square(s_next) - jnp.square(c), 0.0))
  std = c if variance == "fixed_small" else jnp.where(s_next > 0, eta * jnp.sqrt(var_step), 0.0)
  return a_next * x0_hat + direction * eps_hat + std * noise


@SAMPLERS.register("ddim")
def ddim_sample(
    denoise_fn: DenoiseFn,
    process,
    *,
    rng: Array,
    shape: Sequence[int] | None = None,
    num_steps: int | None = None,
    eta: float = 0.0,
    prediction: str = "eps",
    clip_x0: bool = True,
    variance: str = "fixed_small",
    spacing: str = "uniform",
    eps: float = 1e-3,
    init_noise: Array | None = None,
    timesteps: Array | None = None,
) -> SampleOutput:
  """Draws samples with S = num_steps DDIM steps; jit-compatible, nfe = S.

  Args:
    denoise_fn: (x_t [B, ...], t [B]) -> network output of type `prediction`.
    process: the noise process the network was trained on (a `DiffusionSchedule` or an SDE).
    rng: PRNG key; split into the key of x_T and the key of the per-step noise (step i uses
      fold_in(step_key, i), as the ancestral sampler, so eta = 1 with S = T reproduces it).
    shape: [B, ...] of the samples; may be omitted when `init_noise` is given.
    num_steps: S; 1 <= S <= T on a DDPM chain, >= 2 on an SDE (default: T, or the SDE's N).
    eta: stochasticity in [0, 1]; 0 is deterministic given x_T. A traced eta is accepted
      (it is then not range-checked).
    prediction: name in PREDICTIONS ("eps", "x0", "v", "score", ...).
    clip_x0: clip x0_hat to [-1, 1] (and recompute eps_hat from it).
    variance: "fixed_small" (noise std c) or "fixed_large" (eta sigma_{t|s}).
    spacing: "uniform" or "quadratic" on a DDPM chain (see `ddim_timesteps`).
    eps: the last time of an SDE grid (ignored on a DDPM chain).
    init_noise: optional x_T [B, ...]; if None it is drawn from the process's prior.
    timesteps: optional explicit decreasing grid [S] of the process's times, replacing
      num_steps, spacing and eps (e.g. a distilled student's, `diffusion.distillation`).

  Returns:
    SampleOutput with samples of x_T's shape and dtype, and nfe = S.
  """
  if not isinstance(eta, jax.core.Tracer) and not 0.0 <= float(eta) <= 1.0:
    raise ValueError(f"eta must be in [0, 1], got {eta}.")
  if variance not in VARIANCES:
    raise ValueError(f"Unknown variance {variance!r}; choose one of: {', '.join(VARIANCES)}.")
  predictor = PREDICTIONS.get(prediction)
  times = (process.sampling_grid(num_steps, spacing=spacing, eps=eps) if timesteps is None
           else jnp.asarray(timesteps))
  alpha, sigma = process.marginal_coef(times)
  alpha_next = jnp.append(alpha[1:], 1.0)  # after the last grid time: the clean data
  sigma_next = jnp.append(sigma[1:], 0.0)
  init_key, step_key = jax.random.split(rng)
  x_init = initial_noise(process, init_key, shape, init_noise)
  batch = x_init.shape[0]

  def step(x, inputs):
    i, t, a, s, a_next, s_next = inputs
    tb = jnp.full((batch,), t, times.dtype)
    x0_hat, eps_hat = predictor.to_x0_eps(process, denoise_fn(x, tb), x, tb)
    if clip_x0:
      x0_hat = jnp.clip(x0_hat, -1.0, 1.0)
      eps_hat = predict_eps_from_x0(process, x, tb, x0_hat)
    noise = jax.random.normal(jax.random.fold_in(step_key, i), x.shape, x.dtype)
    x_next = posterior_step(x0_hat, eps_hat, noise, a, s, a_next, s_next, eta=eta,
                            variance=variance)
    return x_next.astype(x.dtype), None

  steps = (jnp.arange(times.shape[0], dtype=jnp.int32), times, alpha, sigma, alpha_next,
           sigma_next)
  samples, _ = jax.lax.scan(step, x_init, steps)
  return SampleOutput(samples=samples, nfe=int(times.shape[0]))
