"""EDM: Karras, Aittala, Aila & Laine, "Elucidating the Design Space of Diffusion-Based
Generative Models" (NeurIPS 2022); official code github:NVlabs/edm (`training/networks.py`
EDMPrecond, `training/loss.py` EDMLoss, `generate.py` edm_sampler).

Three pieces, each fitting the one diffusion core:

* `EDMProcess`: the variance-exploding process of the paper in sigma, x = x0 + sigma n, with
  time t = sigma (the paper's sigma(t) = t, s(t) = 1): `marginal_coef(t) = (1, t)`, the prior
  N(0, sigma_max^2 I) and the sampling grid of the paper's eq. (5), rho = 7:

      sigma_i = (sigma_max^(1/rho) + i / (n - 1) (sigma_min^(1/rho) - sigma_max^(1/rho)))^rho,

  i = 0..n-1, after which every sampler of `gen_jax.samplers` steps to the clean data
  (sigma_n = 0). DDIM with eta = 0 on this grid is EDM's Euler sampler.
* `EDMPrecond`: the preconditioned denoiser (paper Table 1) wrapped around any registered
  network F (`net(x, c, y, train=)`):

      D(x; sigma) = c_skip x + c_out F(c_in x, c_noise),
      c_skip = sd^2 / (sigma^2 + sd^2),  c_out = sigma sd / sqrt(sigma^2 + sd^2),
      c_in = 1 / sqrt(sigma^2 + sd^2),   c_noise = ln(sigma) / 4,

  sd = sigma_data. Its output is an x0-prediction of the network input sigma
  (`Diffusion` with prediction="x0", time_input="sigma").
* The loss "edm" (`LOSSES`): ln sigma ~ N(P_mean, P_std^2) and the weight
  lambda(sigma) = (sigma^2 + sd^2) / (sigma sd)^2 on ||D - x0||^2 (weighting "edm"), which
  makes it ||F - F_target||^2 with unit-variance targets.

Deviations from the official code:
* The loss sums over dimensions (reduce_mean=False) as EDMLoss + `loss.sum()` do, but is
  averaged over the batch by the trainer (the official code divides the sum by the batch
  size as well: the same number).
* `EDMPrecond` computes D in float32 whatever the network's dtype (the official code: float32
  for CIFAR-10 as well); `round_sigma` is the identity there too.
* The weighting "edm" on another process (alpha != 1) applies the same formula to the
  sigma of the scaled variable x / alpha, sigma / alpha (paper section 2, s(t) = alpha).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from gen_jax.diffusion.losses import LOSSES, WEIGHTINGS, denoising_error

Array = jax.Array


def karras_sigmas(num_steps: int, sigma_min: float, sigma_max: float,
                  rho: float = 7.0) -> np.ndarray:
  """The n = num_steps noise levels of EDM's eq. (5), decreasing from sigma_max to sigma_min,
  float64 [n] (computed as `generate.py`'s t_steps, without the appended 0)."""
  if isinstance(num_steps, bool) or not isinstance(num_steps, (int, np.integer)):
    raise TypeError(f"num_steps must be an int, got {num_steps!r}.")
  if num_steps < 2:
    raise ValueError(f"num_steps must be >= 2 on EDM's sigma grid, got {num_steps}.")
  if not 0.0 < sigma_min < sigma_max:
    raise ValueError(f"need 0 < sigma_min < sigma_max, got {sigma_min}, {sigma_max}.")
  i = np.arange(num_steps, dtype=np.float64)
  lo, hi = sigma_min ** (1.0 / rho), sigma_max ** (1.0 / rho)
  return (hi + i / (num_steps - 1) * (lo - hi)) ** rho


def _std_normal_logp(z: Array, scale: float) -> Array:
  d = int(np.prod(z.shape[1:]))
  sq = jnp.sum(jnp.square(z.reshape(z.shape[0], -1)), axis=-1)
  return -0.5 * d * np.log(2 * np.pi * scale**2) - 0.5 * sq / scale**2


@dataclasses.dataclass(frozen=True)
class EDMProcess:
  """x_t = x0 + t n, t = sigma in [sigma_min, sigma_max] (module docstring).

  Attributes:
    sigma_min, sigma_max: the noise range the samplers cover (0.002, 80 in the paper).
    sigma_data: std of the data (0.5 for images in [-1, 1]); used by the preconditioning and
      the weighting "edm".
    rho: exponent of the sampling grid (7).
    N: default number of grid points (18: 35 network evaluations with Heun).
  """

  sigma_min: float = 0.002
  sigma_max: float = 80.0
  sigma_data: float = 0.5
  rho: float = 7.0
  N: int = 18

  @property
  def T(self) -> float:  # noqa: N802 (the name every process uses for its largest time)
    return self.sigma_max

  def marginal_coef(self, t: Array) -> tuple[Array, Array]:
    """(alpha, sigma) = (1, t), each float32 of t's shape."""
    t = jnp.asarray(t, jnp.float32)
    return jnp.ones_like(t), t

  def sigma_to_t(self, sigma: Array) -> Array:
    """The time of noise level sigma of the scaled variable x / alpha: sigma itself."""
    return jnp.asarray(sigma, jnp.float32)

  def prior_sampling(self, rng: Array, shape) -> Array:
    """x ~ N(0, sigma_max^2 I), float32 of `shape`."""
    return self.sigma_max * jax.random.normal(rng, tuple(shape), jnp.float32)

  def prior_logp(self, z: Array) -> Array:
    return _std_normal_logp(z, self.sigma_max)

  def sampling_grid(self, num_steps: int | None = None, *, rho: float | None = None,
                    **unused) -> Array:
    """EDM's sigma grid (eq. 5), float32 [n] decreasing from sigma_max to sigma_min
    (n = N by default). Options of other processes' grids (spacing, eps) are ignored."""
    del unused
    n = self.N if num_steps is None else num_steps
    return jnp.asarray(karras_sigmas(n, self.sigma_min, self.sigma_max,
                                     self.rho if rho is None else float(rho)), jnp.float32)


class EDMPrecond(nn.Module):
  """D(x; sigma) = c_skip x + c_out net(c_in x, c_noise, y) (module docstring).

  Attributes:
    net: the network F, any module `net(x [B, ...], c [B], y [B] | None, train=)` whose
      noise conditioning takes c_noise = ln(sigma) / 4 (e.g. NCSN++/DDPM++ with the
      positional embedding; the Fourier embedding takes the log of its input, which is
      not defined here).
    sigma_data: the data std sd.
  """

  net: nn.Module
  sigma_data: float = 0.5

  @nn.compact
  def __call__(self, x: Array, sigma: Array, y: Array | None = None, *,
               train: bool = False) -> Array:
    """x [B, ...] noisy data at noise level sigma [B] -> D(x; sigma) [B, ...], float32."""
    sigma = jnp.asarray(sigma, jnp.float32)
    if sigma.ndim != 1 or sigma.shape[0] != x.shape[0]:
      raise ValueError(f"sigma must be [B] = [{x.shape[0]}], got shape {sigma.shape}.")
    x = x.astype(jnp.float32)
    sd2 = self.sigma_data**2
    s = sigma.reshape(sigma.shape + (1,) * (x.ndim - 1))
    c_skip = sd2 / (jnp.square(s) + sd2)
    c_out = s * self.sigma_data / jnp.sqrt(jnp.square(s) + sd2)
    c_in = 1.0 / jnp.sqrt(sd2 + jnp.square(s))
    c_noise = jnp.log(sigma) / 4.0
    f = self.net(c_in * x, c_noise, y, train=train)
    return c_skip * x + c_out * f.astype(jnp.float32)


# ------------------------------------------------------------------ training
@WEIGHTINGS.register("edm")
def edm_weighting(process, t: Array) -> Array:
  """EDM's lambda(sigma) = (sigma^2 + sd^2) / (sigma sd)^2 on ||x0_hat - x0||^2, as a weight of
  the eps-space error: lambda sigma^2 = (sigma^2 + sd^2) / sd^2, with sigma = sigma / alpha of
  the scaled variable and sd = process.sigma_data."""
  sd = getattr(process, "sigma_data", None)
  if sd is None:
    raise ValueError(f"The weighting 'edm' needs the data std sigma_data of the process; a "
                     f"{type(process).__name__} has none. Use method.process='edm'.")
  alpha, sigma = process.marginal_coef(t)
  return (jnp.square(sigma / alpha) + sd**2) / sd**2


def lognormal_sigmas(rng: Array, batch: int, p_mean: float = -1.2,
                     p_std: float = 1.2) -> Array:
  """EDM's training noise levels: ln sigma ~ N(P_mean, P_std^2), float32 [B]."""
  return jnp.exp(p_mean + p_std * jax.random.normal(rng, (batch,), jnp.float32))


@LOSSES.register("edm")
def edm_loss(model_fn, process, x0: Array, rng: Array, *, prediction: str = "x0",
             weighting: str = "edm", p_mean: float = -1.2, p_std: float = 1.2,
             reduce_mean: bool = False, weighting_options: Any = None, **unused) -> Array:
  """EDM's loss (EDMLoss) [B]: lambda(sigma) ||D(x0 + sigma n; sigma) - x0||^2 summed over
  dimensions, ln sigma ~ N(p_mean, p_std^2). `process` must map a noise level to its time
  (`sigma_to_t`, e.g. `EDMProcess`); any prediction type works (the error is taken in eps
  space with the equivalent weight). weighting: "edm" (the paper) or any in WEIGHTINGS."""
  del unused
  if not hasattr(process, "sigma_to_t"):
    raise ValueError(f"The edm loss draws noise levels sigma and needs the process to map them "
                     f"to times (sigma_to_t); a {type(process).__name__} does not. Use "
                     "method.process='edm'.")
  rng_s, rng_z = jax.random.split(rng)
  t = process.sigma_to_t(lognormal_sigmas(rng_s, x0.shape[0], p_mean, p_std))
  z = jax.random.normal(rng_z, x0.shape, x0.dtype)
  return denoising_error(model_fn, process, x0, t, z, prediction=prediction,
                         weighting=weighting, reduce_mean=reduce_mean,
                         weighting_options=weighting_options)

