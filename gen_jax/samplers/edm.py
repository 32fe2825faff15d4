"""EDM's samplers: Karras et al., "Elucidating the Design Space of Diffusion-Based Generative
Models" (NeurIPS 2022), Algorithms 1 (deterministic Heun) and 2 (stochastic), as
`generate.py`'s edm_sampler of github:NVlabs/edm.

They step in the scaled variable x~ = x / alpha, whose noise level is s = sigma / alpha and
whose probability-flow ODE is dx~/ds = (x~ - D(x~; s)) / s, D the denoiser (the x0 estimate of
any prediction type, `PREDICTIONS`). On `diffusion.edm.EDMProcess` (alpha = 1, t = sigma) this
is the paper's; on other processes (a DDPM chain, the VP SDE) it is the same Heun method on
their own time grid (the paper's section 3 with s(t) = alpha). With the grid s_0 > ... > s_{n-1}
(`process.sampling_grid`, EDM's rho = 7 sigmas on an EDMProcess) and s_n = 0:

    for i = 0 .. n - 1:
      gamma_i = min(S_churn / n, sqrt(2) - 1) if S_tmin <= s_i <= S_tmax else 0
      s^ = (1 + gamma_i) s_i,   x^ = x_i + sqrt(s^^2 - s_i^2) S_noise z       (churn)
      d = (x^ - D(x^; s^)) / s^,   x_{i+1} = x^ + (s_{i+1} - s^) d              (Euler)
      if i < n - 1: d' = (x_{i+1} - D(x_{i+1}; s_{i+1})) / s_{i+1}
                    x_{i+1} = x^ + (s_{i+1} - s^) (d + d') / 2                 (Heun)

nfe = 2 n - 1 (n = 18: 35). The last step (to s = 0) is Euler and returns D(x^; s^). Steps
that start above `heun_sigma_max` (80, EDM's sigma_max, so never on EDM's own grid) keep the
Euler result: a chain whose terminal SNR is near 0 (a cosine chain: s_0 ~ 2e4, s_1 ~ 11 at
n = 18) would otherwise multiply the denoiser's change between the two ends, D(s_0) - D(s_1),
by (s_0 - s_1) / (2 s_1) ~ 1e3 in the trapezoid rule and saturate every sample; there D is
nearly constant, so the Euler step (DDIM's step) is accurate. The network is still evaluated
at the end of such a step (nfe does not change). Churn
(S_churn > 0) needs the time of the raised noise level s^: processes with `sigma_to_t` (the
EDMProcess) only.

Deviations from the official code: the loop runs in float32 (the official: float64 on the
host's GPU); the grid is the process's (`EDMProcess.sampling_grid`), so sigma_min / sigma_max
are the process's rather than per-call arguments (the rho of the grid is an option).
"""

from __future__ import annotations

import math
from typing import Sequence

import jax
import jax.numpy as jnp

from gen_jax.diffusion.gaussian import PREDICTIONS
from gen_jax.samplers.base import SAMPLERS, DenoiseFn, SampleOutput, initial_noise

Array = jax.Array


def _check_grid(alpha: Array, sigma: Array) -> None:
  if not isinstance(alpha, jax.core.Tracer) and float(jnp.min(alpha)) <= 0.0:
    raise ValueError("EDM's samplers step in x / alpha and need alpha > 0 on the whole grid; "
                     "this grid reaches alpha = 0 (zero terminal SNR). Use ddim or a "
                     "dpm_solver sampler, or another spacing.")


@SAMPLERS.register("edm_heun")
def edm_heun_sample(
    denoise_fn: DenoiseFn,
    process,
    *,
    rng: Array,
    shape: Sequence[int] | None = None,
    prediction: str = "x0",
    num_steps: int | None = None,
    S_churn: float = 0.0,  # noqa: N803 (the paper's names)
    S_tmin: float = 0.0,  # noqa: N803
    S_tmax: float = math.inf,  # noqa: N803
    S_noise: float = 1.0,  # noqa: N803
    heun_sigma_max: float = 80.0,
    init_noise: Array | None = None,
    **grid_options,
) -> SampleOutput:
  """EDM's sampler (module docstring); deterministic given x_T when S_churn = 0.

  Args:
    denoise_fn, process, rng, shape, prediction, init_noise: as every sampler
      (`gen_jax.samplers.base`); rng draws x_T and the churn noise (step i: fold_in(key, i)).
    num_steps: n grid points (default: the process's N; 18 on an EDMProcess), nfe = 2n - 1.
    S_churn, S_tmin, S_tmax, S_noise: the stochasticity of Algorithm 2 (0, 0, inf, 1: none).
    heun_sigma_max: steps starting at a noise level s_i above it keep the Euler result.
    grid_options: options of `process.sampling_grid` (rho on an EDMProcess; spacing on a
      DDPM chain; eps on an SDE).

  Returns:
    SampleOutput with samples of x_T's shape and nfe = 2n - 1.
  """
  predictor = PREDICTIONS.get(prediction)
  if S_churn < 0 or S_noise <= 0:
    raise ValueError(f"need S_churn >= 0 and S_noise > 0, got {S_churn}, {S_noise}.")
  stochastic = S_churn > 0
  if stochastic and not hasattr(process, "sigma_to_t"):
    raise ValueError(f"S_churn > 0 raises the noise level and needs the time of a noise level "
                     f"(sigma_to_t), which a {type(process).__name__} lacks; use an EDMProcess "
                     "(method.process='edm') or S_churn=0.")
  times = process.sampling_grid(num_steps, **grid_options)
  n = int(times.shape[0])
  alpha, sigma = process.marginal_coef(times)
  _check_grid(alpha, sigma)
  s_grid = sigma / alpha
  s_next = jnp.append(s_grid[1:], 0.0)
  t_next = jnp.append(times[1:], times[-1])  # the last entry is unused (no Heun correction)
  gamma = jnp.where((s_grid >= S_tmin) & (s_grid <= S_tmax),
                    min(S_churn / n, math.sqrt(2.0) - 1.0), 0.0)
  init_key, step_key = jax.random.split(rng)
  x_init = initial_noise(process, init_key, shape, init_noise)
  batch = x_init.shape[0]
  bcast = lambda v: jnp.reshape(v, (-1,) + (1,) * (x_init.ndim - 1))

  def denoised(x_tilde, t):
    """D(x~; s(t)) [B, ...] from the network at x = alpha(t) x~."""
    tb = jnp.full((batch,), t, times.dtype)
    a = bcast(process.marginal_coef(tb)[0])
    x = a * x_tilde
    return predictor.to_x0_eps(process, denoise_fn(x, tb), x, tb)[0].astype(x.dtype)

  def churn(x, i, t, s):
    if not stochastic:
      return x, t, s
    g = gamma[i]
    s_hat = s * (1.0 + g)
    z = jax.random.normal(jax.random.fold_in(step_key, i), x.shape, x.dtype)
    # sqrt(s^^2 - s^2) written so that gamma = 0 adds exactly 0 (a fused s^^2 - s^2 can round
    # below 0, and its square root is NaN).
    x = x + s * jnp.sqrt(g * (2.0 + g)) * S_noise * z
    return x, process.sigma_to_t(s_hat), s_hat

  def heun_step(x, inputs):
    i, t, s, t_n, s_n = inputs
    x_hat, t_hat, s_hat = churn(x, i, t, s)
    d = (x_hat - denoised(x_hat, t_hat)) / s_hat
    x_euler = x_hat + (s_n - s_hat) * d
    d_prime = (x_euler - denoised(x_euler, t_n)) / s_n
    x_heun = x_hat + (s_n - s_hat) * 0.5 * (d + d_prime)
    return jnp.where(s > heun_sigma_max, x_euler, x_heun).astype(x.dtype), None

  x = x_init / alpha[0]
  steps = (jnp.arange(n - 1, dtype=jnp.int32), times[:-1], s_grid[:-1], t_next[:-1],
           s_next[:-1])
  x, _ = jax.lax.scan(heun_step, x, steps)
  # The last step, to s = 0, is Euler: x^ + (0 - s^) (x^ - D) / s^ = D(x^; s^).
  x_hat, t_hat, _ = churn(x, n - 1, times[-1], s_grid[-1])
  return SampleOutput(samples=denoised(x_hat, t_hat).astype(x_init.dtype), nfe=2 * n - 1)


@SAMPLERS.register("edm_stochastic")
def edm_stochastic_sample(denoise_fn: DenoiseFn, process, *, rng: Array,
                          shape: Sequence[int] | None = None, prediction: str = "x0",
                          S_churn: float = 40.0, S_tmin: float = 0.05,  # noqa: N803
                          S_tmax: float = 50.0, S_noise: float = 1.003,  # noqa: N803
                          **options) -> SampleOutput:
  """EDM's stochastic sampler (Algorithm 2): `edm_heun_sample` with churn; the defaults are
  the paper's ImageNet-64 settings (Table 5: S_churn 40, S_tmin 0.05, S_tmax 50, S_noise
  1.003; its CIFAR-10 models sample best deterministically)."""
  return edm_heun_sample(denoise_fn, process, rng=rng, shape=shape, prediction=prediction,
                         S_churn=S_churn, S_tmin=S_tmin, S_tmax=S_tmax, S_noise=S_noise,
                         **options)
