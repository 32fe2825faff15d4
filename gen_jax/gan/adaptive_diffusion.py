"""Diffusion-GAN's instance noise: the discriminator sees diffused data, with adaptive length.

Wang, Zheng, He, Chen & Zhou, "Diffusion-GAN: Training GANs with Diffusion" (ICLR 2023,
arXiv:2206.02262). Real and generated samples are both passed through the forward chain
before the discriminator, which is conditioned on the step t:

    y = sqrt(abar_t) x + sqrt(1 - abar_t) * sigma * eps,   abar_0 = 1 (no noise),

with the chain of length T: beta_i = linspace(beta_start, beta_end, T), abar_t =
prod_{i<t} (1 - beta_i). Half of the examples get t = 0 (clean inputs); the other half draw
t in {1..T} from the "priority" distribution p(t) proportional to t - 1 (or uniformly).

T adapts to the discriminator's overfitting r_d = E[sign(D(x_real))] by ADA's rule
(Karras et al. 2020; `gen_jax.gan.ada.AdaptiveProbability`, clipped at p_max = 1 as the
Diffusion-GAN code does): after every `interval`-th discriminator step,
    p <- clip(p + sign(r_d - target) * batch * interval / (kimg * 1000), 0, 1),
    T = clip(t_min + round(p * (t_max - t_min)), t_min, t_max),
with r_d the mean sign over the real logits since the last adjustment. The state
{p, r_sum, r_count} (ADA's p, signs_sum and signs_count under the names this module used
before it shared ADA's rule, so older checkpoints resume) lives in the train state's
model_state, so resuming is exact.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from gen_jax.gan.ada import AdaptiveProbability

Array = jax.Array


@dataclasses.dataclass(frozen=True)
class AdaptiveDiffusion:
  """The adaptive forward chain of Diffusion-GAN (defaults: the paper's code).

  Attributes:
    t_min, t_max: range of the chain length T.
    beta_start, beta_end: linear beta schedule endpoints for any T.
    noise_std: sigma, the scale of the injected noise.
    target: d_target, the wanted E[sign(D(real))].
    interval: steps between two adjustments of T (ada_interval).
    kimg: thousands of images for p to move by 1 (ada_kimg).
    ts_dist: "priority" (p(t) proportional to t - 1) or "uniform" over {1..T}.
  """

  t_min: int = 10
  t_max: int = 1000
  beta_start: float = 1e-4
  beta_end: float = 2e-2
  noise_std: float = 0.05
  target: float = 0.6
  interval: int = 4
  kimg: float = 100.0
  ts_dist: str = "priority"

  def __post_init__(self):
    if not 1 <= self.t_min <= self.t_max:
      raise ValueError(f"Diffusion-GAN needs 1 <= t_min <= t_max; got {self.t_min}, {self.t_max}.")
    if self.ts_dist not in ("priority", "uniform"):
      raise ValueError(f"ts_dist must be 'priority' or 'uniform', got {self.ts_dist!r}.")

  @property
  def controller(self) -> AdaptiveProbability:
    """ADA's p update with this chain's target, interval and kimg (p starts at 0)."""
    return AdaptiveProbability(initial_p=0.0, target=self.target, interval=self.interval,
                               kimg=self.kimg, p_max=1.0)

  # The state keeps the names it had before the rule moved to `AdaptiveProbability`
  # (r_sum, r_count), so Diffusion-GAN checkpoints written before then still resume.
  _STATE_KEYS = (("r_sum", "signs_sum"), ("r_count", "signs_count"))

  def init_state(self) -> dict[str, Array]:
    return self._own_keys(self.controller.init_state())

  def _own_keys(self, state):
    names = dict((ada, own) for own, ada in self._STATE_KEYS)
    return {names.get(k, k): v for k, v in state.items()}

  def _ada_keys(self, state):
    names = dict(self._STATE_KEYS)
    return {names.get(k, k): v for k, v in state.items()}

  def num_steps(self, state) -> Array:
    """The current chain length T (int32 scalar)."""
    t = self.t_min + jnp.round(state["p"] * (self.t_max - self.t_min))
    return jnp.clip(t, self.t_min, self.t_max).astype(jnp.int32)

  def alphas_cumprod(self, num_steps: Array) -> Array:
    """abar_t for t = 0..t_max [t_max + 1] of the chain of length T (entries t > T unused)."""
    i = jnp.arange(self.t_max, dtype=jnp.float32)
    denom = jnp.maximum(num_steps.astype(jnp.float32) - 1.0, 1.0)
    betas = self.beta_start + (self.beta_end - self.beta_start) * i / denom
    log_alpha = jnp.where(i < num_steps, jnp.log1p(-betas), 0.0)
    return jnp.exp(jnp.concatenate([jnp.zeros((1,)), jnp.cumsum(log_alpha)]))

  def sample_t(self, rng: Array, batch: int, num_steps: Array) -> Array:
    """t int32 [batch]: 0 with probability 1/2, else from {1..T} by `ts_dist`."""
    r_clean, r_t = jax.random.split(rng)
    k = jnp.arange(1, self.t_max + 1, dtype=jnp.float32)
    weights = (k - 1.0) if self.ts_dist == "priority" else jnp.ones_like(k)
    weights = jnp.where(k <= num_steps, weights, 0.0)
    t = jax.random.categorical(r_t, jnp.log(weights), shape=(batch,)) + 1
    clean = jax.random.bernoulli(r_clean, 0.5, (batch,))
    return jnp.where(clean, 0, t).astype(jnp.int32)

  def diffuse(self, rng: Array, x: Array, state) -> tuple[Array, Array]:
    """(y, t): x [B, ...] diffused to random steps t [B] of the current chain."""
    r_t, r_eps = jax.random.split(rng)
    t = self.sample_t(r_t, x.shape[0], self.num_steps(state))
    abar = self.alphas_cumprod(self.num_steps(state))[t].reshape((-1,) + (1,) * (x.ndim - 1))
    eps = jax.random.normal(r_eps, x.shape, x.dtype) * self.noise_std
    return jnp.sqrt(abar) * x + jnp.sqrt(1.0 - abar) * eps, t

  def update(self, state, d_real: Array, batch_size: int, step: Array):
    """Accumulates sign(d_real) of discriminator step `step` (0-based) and, when step + 1 is
    a multiple of `interval`, adjusts p (ADA's rule) and restarts the sums."""
    ctrl = self.controller
    state = ctrl.adjust(ctrl.accumulate(self._ada_keys(state), d_real), jnp.asarray(step) + 1,
                        batch_size)
    return self._own_keys(state)
