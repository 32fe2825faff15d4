"""The continuous noise processes: forward SDEs of score-based generative modelling (Song, Sohl-Dickstein, Kingma, Kumar, Ermon &
Poole, "Score-Based Generative Modeling through Stochastic Differential Equations", ICLR 2021).

Each is a noise process x_t = alpha(t) x_0 + sigma(t) eps (`marginal_coef`), the interface of
`gen_jax.diffusion.gaussian`; DDPM's discrete chains are presets derived from the VP process
(`gen_jax.diffusion.schedules`). EDM's sigma-parameterised process would be one more class.

A forward SDE on t in [0, T] (T = 1 here)

    dx = f(x, t) dt + g(t) dw

carries data x(0) ~ p_0 to a tractable prior x(T) ~ p_T. Its time reversal (Anderson 1982,
paper eq. 6) and the probability-flow ODE with the same marginals (paper eq. 13) are

    dx = [f(x, t) - g(t)^2 score(x, t)] dt + g(t) dw_bar,       (reverse SDE)
    dx = [f(x, t) - 1/2 g(t)^2 score(x, t)] dt,                  (probability-flow ODE)

with score(x, t) = grad_x log p_t(x). Three SDEs are registered in `SDES` (paper section 3.4):

* "vesde"    -- variance exploding, the continuous limit of SMLD / NCSN noise levels;
* "vpsde"    -- variance preserving, the continuous limit of DDPM;
* "subvpsde" -- sub-VP, whose marginal variance is bounded by the VP one.

Shapes: x is [B, ...]; t is float [B]; drift has x's shape, diffusion g and marginal stds are
[B] (one scalar per example), broadcast explicitly against x (rank promotion is strict).

Every SDE also has an N-step discretisation x_{i+1} = x_i + f_i(x_i) + G_i z_i (paper
appendix E), the one the reverse-diffusion predictor inverts. Discrete index i and time t are
related as in the paper's code: i = floor(t (N - 1) / T), so the sampler grid
linspace(T, eps, N) visits i = N-1, ..., 0 whenever eps < T / (N - 1).
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from gen_jax.core.registry import Registry

Array = jax.Array
ScoreFn = Callable[[Array, Array], Array]


def batch_bcast(v: Array, x: Array) -> Array:
  """Reshapes per-example values v [B] to [B, 1, ..., 1] so they broadcast against x [B, ...]."""
  v = jnp.asarray(v)
  return v.reshape(v.shape + (1,) * (x.ndim - v.ndim))


def _as_time(t: Array, x: Array) -> Array:
  """t as float32 [B] (a scalar is broadcast to the batch of x)."""
  t = jnp.asarray(t, jnp.float32)
  if t.ndim == 0:
    t = jnp.full((x.shape[0],), t, jnp.float32)
  return t


def _std_normal_logp(z: Array, scale: float) -> Array:
  """log N(z; 0, scale^2 I) summed over all but the batch axis -> [B]."""
  d = int(np.prod(z.shape[1:]))
  sq = jnp.sum(jnp.square(z.reshape(z.shape[0], -1)), axis=-1)
  return -0.5 * d * np.log(2 * np.pi * scale**2) - 0.5 * sq / scale**2


class SDE:
  """Base class of the forward SDEs; subclasses are frozen (hashable) dataclasses.

  Subclasses define `sde`, `marginal_coef`, `prior_sampling`, `prior_logp`, and may override
  `discretize` (the default is Euler-Maruyama) and `langevin_alpha`.
  """

  T: float = 1.0
  N: int = 1000

  # --- to be defined by subclasses ---------------------------------------------------------
  def sde(self, x: Array, t: Array) -> tuple[Array, Array]:
    """(drift f(x, t) [B, ...], diffusion g(t) [B])."""
    raise NotImplementedError

  def marginal_coef(self, t: Array) -> tuple[Array, Array]:
    """(m(t) [B], std(t) [B]) with p_t(x | x0) = N(m(t) x0, std(t)^2 I)."""
    raise NotImplementedError

  def prior_sampling(self, rng: Array, shape) -> Array:
    """A draw from the prior p_T, float32 of `shape` [B, ...]."""
    raise NotImplementedError

  def prior_logp(self, z: Array) -> Array:
    """log p_T(z) [B], summed over all but the batch axis."""
    raise NotImplementedError

  # --- shared --------------------------------------------------------------------------------
  def marginal_prob(self, x0: Array, t: Array) -> tuple[Array, Array]:
    """(mean [B, ...], std [B]) of the perturbation kernel p_t(x | x0) = N(mean, std^2 I)."""
    m, std = self.marginal_coef(_as_time(t, x0))
    return batch_bcast(m, x0) * x0, std

  def sampling_grid(self, num_steps: int | None = None, *, eps: float = 1e-3,
                    **unused) -> Array:
    """The times t_k = linspace(T, eps, n) a sampler visits, float32 [n] (n = N by default)."""
    del unused
    n = self.N if num_steps is None else int(num_steps)
    if n < 2:
      raise ValueError(f"num_steps must be >= 2, got {n}.")
    if not 0.0 < eps < self.T:
      raise ValueError(f"eps must lie in (0, T = {self.T}), got {eps}.")
    return jnp.linspace(self.T, eps, n, dtype=jnp.float32)

  def discrete_index(self, t: Array) -> Array:
    """The discrete step i = floor(t (N - 1) / T), clipped to [0, N-1], int32 [B]."""
    i = jnp.floor(jnp.asarray(t, jnp.float32) * (self.N - 1) / self.T).astype(jnp.int32)
    return jnp.clip(i, 0, self.N - 1)

  def discretize(self, x: Array, t: Array) -> tuple[Array, Array]:
    """(f [B, ...], G [B]) of the step x_{i+1} = x_i + f + G z; here Euler-Maruyama with dt = T/N:

        f = f(x, t) dt,   G = g(t) sqrt(dt).
    """
    dt = self.T / self.N
    drift, diffusion = self.sde(x, _as_time(t, x))
    return drift * dt, diffusion * np.sqrt(dt)

  def langevin_alpha(self, t: Array) -> Array:
    """alpha_i [B] of the Langevin corrector's step size (paper Algorithm 4/5): 1 here."""
    return jnp.ones_like(jnp.asarray(t, jnp.float32))

  def reverse(self, score_fn: ScoreFn, probability_flow: bool = False) -> ReverseSDE:
    """The reverse-time SDE (or the probability-flow ODE) of this SDE driven by `score_fn`.

    Args:
      score_fn: (x [B, ...], t [B]) -> score [B, ...], an estimate of grad_x log p_t(x).
      probability_flow: return the probability-flow ODE (drift with 1/2 g^2, no diffusion).
    """
    return ReverseSDE(self, score_fn, bool(probability_flow))


class ReverseSDE:
  """Reverse-time SDE dx = [f - c g^2 score] dt + g' dw_bar, c = 1 (g' = g) or 1/2 (g' = 0, ODE).

  Time runs backwards: integrate with dt < 0. Attributes: forward (the SDE), score_fn,
  probability_flow, T, N.
  """

  def __init__(self, forward: SDE, score_fn: ScoreFn, probability_flow: bool):
    self.forward = forward
    self.score_fn = score_fn
    self.probability_flow = probability_flow
    self.T = forward.T
    self.N = forward.N

  def _weight(self) -> float:
    return 0.5 if self.probability_flow else 1.0

  def sde(self, x: Array, t: Array) -> tuple[Array, Array]:
    """(drift [B, ...], diffusion [B]) of the reverse SDE (paper eq. 6) or the ODE (eq. 13):

        drift = f(x, t) - c g(t)^2 score(x, t),   diffusion = g(t) (SDE) or 0 (ODE).
    """
    t = _as_time(t, x)
    drift, diffusion = self.forward.sde(x, t)
    score = self.score_fn(x, t)
    drift = drift - batch_bcast(self._weight() * jnp.square(diffusion), x) * score
    if self.probability_flow:
      diffusion = jnp.zeros_like(diffusion)
    return drift, diffusion

  def discretize(self, x: Array, t: Array) -> tuple[Array, Array]:
    """(rev_f [B, ...], rev_G [B]) of the reverse-diffusion predictor (paper eq. 46/47):

        rev_f = f_i(x) - c G_i^2 score(x, t),   rev_G = G_i (SDE) or 0 (ODE),

    with (f_i, G_i) the forward discretisation; one step is x_{i-1} = x_i - rev_f + rev_G z.
    """
    t = _as_time(t, x)
    f, g = self.forward.discretize(x, t)
    score = self.score_fn(x, t)
    rev_f = f - batch_bcast(self._weight() * jnp.square(g), x) * score
    rev_g = jnp.zeros_like(g) if self.probability_flow else g
    return rev_f, rev_g


SDES: Registry[type] = Registry("sde")


@SDES.register("vesde")
@dataclasses.dataclass(frozen=True)
class VESDE(SDE):
  """Variance-exploding SDE (SMLD / NCSN in continuous time), paper eq. 9 / 30:

      sigma(t) = sigma_min (sigma_max / sigma_min)^t,
      dx = sqrt(d sigma(t)^2 / dt) dw = sigma(t) sqrt(2 log(sigma_max / sigma_min)) dw.

  Marginal (paper eq. 29, the code's convention): p_t(x | x0) = N(x0, sigma(t)^2 I). Strictly
  the SDE started at x0 gives variance sigma(t)^2 - sigma_min^2; the convention takes x(0) as
  the data already perturbed at level sigma_min, which is negligible for sigma_min << data
  scale. Prior N(0, sigma_max^2 I).

  Discretisation (NCSN): the N noise levels sigma_i = discrete_sigmas, geometric from
  sigma_min to sigma_max, and x_{i+1} = x_i + sqrt(sigma_{i+1}^2 - sigma_i^2) z, i.e.
  f = 0, G_i = sqrt(sigma_i^2 - sigma_{i-1}^2) with sigma_{-1} = 0.
  """

  sigma_min: float = 0.01
  sigma_max: float = 50.0
  N: int = 1000
  T: float = 1.0

  @property
  def discrete_sigmas(self) -> Array:
    """float32 [N]: exp(linspace(log sigma_min, log sigma_max, N))."""
    s = np.exp(np.linspace(np.log(self.sigma_min), np.log(self.sigma_max), self.N))
    return jnp.asarray(s, jnp.float32)

  def sigma(self, t: Array) -> Array:
    return self.sigma_min * (self.sigma_max / self.sigma_min) ** (jnp.asarray(t) / self.T)

  def sde(self, x, t):
    t = _as_time(t, x)
    diffusion = self.sigma(t) * np.sqrt(2 * np.log(self.sigma_max / self.sigma_min) / self.T)
    return jnp.zeros_like(x), diffusion

  def marginal_coef(self, t):
    t = jnp.asarray(t, jnp.float32)
    return jnp.ones_like(t), self.sigma(t)

  ancestral_variance = "fixed_small"  # NCSN's ancestral step (paper eq. 48)

  def discrete_chain(self) -> tuple[Array, Array]:
    """(alpha_i, sigma_i) [N] of the N-step chain: (1, discrete_sigmas)."""
    return jnp.ones((self.N,), jnp.float32), self.discrete_sigmas

  def prior_sampling(self, rng, shape):
    return self.sigma_max * jax.random.normal(rng, tuple(shape), jnp.float32)

  def prior_logp(self, z):
    return _std_normal_logp(z, self.sigma_max)

  def discretize(self, x, t):
    i = self.discrete_index(_as_time(t, x))
    sigmas = self.discrete_sigmas
    sigma = sigmas[i]
    adjacent = jnp.where(i == 0, 0.0, sigmas[jnp.maximum(i - 1, 0)])
    return jnp.zeros_like(x), jnp.sqrt(jnp.square(sigma) - jnp.square(adjacent))


class _VPFamily(SDE):
  """Shared pieces of VP and sub-VP: beta(t) = beta_min + t (beta_max - beta_min) (T = 1) and
  the DDPM betas beta_i = linspace(beta_min / N, beta_max / N, N)."""

  beta_min: float
  beta_max: float

  def beta(self, t: Array) -> Array:
    return self.beta_min + jnp.asarray(t) / self.T * (self.beta_max - self.beta_min)

  def log_mean_coeff(self, t: Array) -> Array:
    """log m(t) = -1/2 int_0^t beta = -1/4 t^2 (beta_max - beta_min) - 1/2 t beta_min (T = 1).

    NumPy (float64) in, NumPy out, so that discrete presets can be derived in float64.
    """
    t = (t if isinstance(t, np.ndarray) else jnp.asarray(t)) / self.T
    return self.T * (-0.25 * t**2 * (self.beta_max - self.beta_min) - 0.5 * t * self.beta_min)

  @property
  def discrete_betas(self) -> Array:
    """float32 [N]: linspace(beta_min / N, beta_max / N, N), DDPM's betas for N = 1000."""
    return jnp.asarray(self.discrete_betas64(), jnp.float32)

  def discrete_betas64(self) -> np.ndarray:
    """float64 [N] betas of the DDPM discretisation (the discrete presets derive from it)."""
    return np.linspace(self.beta_min / self.N, self.beta_max / self.N, self.N, dtype=np.float64)

  @property
  def alphas(self) -> Array:
    """float32 [N]: 1 - beta_i."""
    return jnp.asarray(1.0 - self.discrete_betas64(), jnp.float32)

  @property
  def alphas_cumprod(self) -> Array:
    """float32 [N]: abar_i = prod_{j<=i} (1 - beta_j) (computed in float64)."""
    return jnp.asarray(np.cumprod(1.0 - self.discrete_betas64()), jnp.float32)

  def prior_sampling(self, rng, shape):
    return jax.random.normal(rng, tuple(shape), jnp.float32)

  def prior_logp(self, z):
    return _std_normal_logp(z, 1.0)

  def langevin_alpha(self, t):
    """alpha_i = 1 - beta_i [B] at the discrete step of t (paper Algorithm 5)."""
    return self.alphas[self.discrete_index(t)]


@SDES.register("vpsde")
@dataclasses.dataclass(frozen=True)
class VPSDE(_VPFamily):
  """Variance-preserving SDE (DDPM in continuous time), paper eq. 11 / 32:

      dx = -1/2 beta(t) x dt + sqrt(beta(t)) dw,   beta(t) = beta_min + t (beta_max - beta_min).

  Marginal: p_t(x | x0) = N(m(t) x0, (1 - m(t)^2) I), m(t) = exp(-1/2 int_0^t beta(s) ds)
  = exp(-1/4 t^2 (beta_max - beta_min) - 1/2 t beta_min). Prior N(0, I).

  Discretisation (DDPM, paper eq. 45/47): beta_i = discrete_betas, alpha_i = 1 - beta_i,
  x_{i+1} = sqrt(alpha_i) x_i + sqrt(beta_i) z, i.e. f = (sqrt(alpha_i) - 1) x, G = sqrt(beta_i).
  For N = 1000 the betas are DDPM's linear 1e-4 .. 0.02.
  """

  beta_min: float = 0.1
  beta_max: float = 20.0
  N: int = 1000
  T: float = 1.0

  ancestral_variance = "fixed_large"  # DDPM's beta_i (paper eq. 49)

  def discrete_chain(self) -> tuple[Array, Array]:
    """(alpha_i, sigma_i) [N] of the DDPM chain: (sqrt(abar_i), sqrt(1 - abar_i))."""
    abar = np.cumprod(1.0 - self.discrete_betas64())
    return jnp.asarray(np.sqrt(abar), jnp.float32), jnp.asarray(np.sqrt(1.0 - abar), jnp.float32)

  def sde(self, x, t):
    beta = self.beta(_as_time(t, x))
    return -0.5 * batch_bcast(beta, x) * x, jnp.sqrt(beta)

  def marginal_coef(self, t):
    lmc = self.log_mean_coeff(jnp.asarray(t, jnp.float32))
    return jnp.exp(lmc), jnp.sqrt(-jnp.expm1(2.0 * lmc))

  def discretize(self, x, t):
    i = self.discrete_index(_as_time(t, x))
    beta = self.discrete_betas[i]
    alpha = self.alphas[i]
    return batch_bcast(jnp.sqrt(alpha) - 1.0, x) * x, jnp.sqrt(beta)


@dataclasses.dataclass(frozen=True)
class DiscreteVP:
  """The N-step DDPM chain of a VP SDE as a process on the SDE's times: at t the chain's
  (sqrt(abar_i), sqrt(1 - abar_i)) with i = floor(t (N - 1) / T), the step the samplers take
  at t. A network trained on the chain (score_sde's continuous=False) outputs its
  parameterisation with respect to this process; its score is -eps / sqrt(1 - abar_i).
  (The square roots are taken in float32 of the float32 abar, as score_sde's code.)"""

  sde: VPSDE

  N = property(lambda self: self.sde.N)
  T = property(lambda self: self.sde.T)

  def discrete_index(self, t: Array) -> Array:
    return self.sde.discrete_index(t)

  def marginal_coef(self, t: Array) -> tuple[Array, Array]:
    abar = self.sde.alphas_cumprod[self.discrete_index(t)]
    return jnp.sqrt(abar), jnp.sqrt(1.0 - abar)


@SDES.register("subvpsde")
@dataclasses.dataclass(frozen=True)
class subVPSDE(_VPFamily):  # noqa: N801 (the paper's name)
  """Sub-VP SDE, paper eq. 17:

      dx = -1/2 beta(t) x dt + sqrt(beta(t) (1 - exp(-2 int_0^t beta(s) ds))) dw.

  Marginal: p_t(x | x0) = N(m(t) x0, (1 - m(t)^2)^2 I), m(t) as for the VP SDE, so the std is
  1 - exp(-int_0^t beta) and the variance never exceeds the VP one. Prior N(0, I).
  Discretisation: Euler-Maruyama with dt = T / N (the base class); the Langevin corrector
  uses the VP alphas 1 - beta_i.
  """

  beta_min: float = 0.1
  beta_max: float = 20.0
  N: int = 1000
  T: float = 1.0

  def sde(self, x, t):
    t = _as_time(t, x)
    beta = self.beta(t)
    discount = -jnp.expm1(4.0 * self.log_mean_coeff(t))  # 1 - exp(-2 int_0^t beta)
    return -0.5 * batch_bcast(beta, x) * x, jnp.sqrt(beta * discount)

  def marginal_coef(self, t):
    lmc = self.log_mean_coeff(jnp.asarray(t, jnp.float32))
    return jnp.exp(lmc), -jnp.expm1(2.0 * lmc)
