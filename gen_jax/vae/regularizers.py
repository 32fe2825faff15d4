"""The KL term of a VAE's objective: beta-VAE, capacity annealing, KL warm-up, free bits.

With reconstruction NLL R = -E_q log p(x | z) and KL = KL(q(z | x) || N(0, I)) (nats per
example, averaged over the batch), the minimised objective is R + penalty, with

  beta-VAE (Higgins et al. 2017)     penalty = w(step) * beta * KL
  capacity (Burgess et al. 2018)     penalty = w(step) * gamma * |KL - C(step)|,
                                     C growing linearly from 0 to capacity_max nats over
                                     capacity_steps steps (then held)
  KL warm-up (Bowman et al. 2016;    w(step) = min(1, step / warmup_steps) (1 without
    Sonderby et al. 2016)            warm-up)
  free bits (Kingma et al. 2016)     KL is replaced by sum_j max(free_bits, E_batch KL_j)
                                     over latent dimensions j: a dimension whose average
                                     KL is below free_bits nats is not pushed further down

beta = 1 without the others is the plain ELBO; beta = 0 is a (stochastic) autoencoder.
Free bits apply to the beta form only (the capacity form already targets a KL).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp


@dataclasses.dataclass(frozen=True)
class KLPenalty:
  """The weighting of the KL term; see the module docstring.

  Attributes:
    beta: weight of the KL (beta-VAE); 1 is the ELBO, 0 an autoencoder.
    capacity_max: > 0 switches to the capacity objective: target KL C in nats reached at
      capacity_steps.
    capacity_steps: steps over which C grows from 0 to capacity_max.
    gamma: weight of |KL - C| in the capacity objective (Burgess et al.: 1000 on dSprites).
    warmup_steps: > 0 ramps the penalty's weight linearly from 0 to 1 over these steps.
    free_bits: > 0: nats per latent dimension below which its batch-average KL is not
      penalised.
  """

  beta: float = 1.0
  capacity_max: float = 0.0
  capacity_steps: int = 0
  gamma: float = 1000.0
  warmup_steps: int = 0
  free_bits: float = 0.0

  def __post_init__(self):
    if self.beta < 0 or self.capacity_max < 0 or self.free_bits < 0 or self.gamma < 0:
      raise ValueError(f"The KL penalty's beta, gamma, capacity_max and free_bits must be >= 0; "
                       f"got {self}.")
    if self.capacity_max > 0 and self.free_bits > 0:
      raise ValueError("method.kl.free_bits and method.kl.capacity_max are exclusive: the "
                       "capacity objective already sets the KL it aims for; set one to 0.")

  def warmup_weight(self, step: jax.Array) -> jax.Array:
    """w(step) in [0, 1]."""
    if self.warmup_steps <= 0:
      return jnp.ones((), jnp.float32)
    return jnp.minimum(1.0, jnp.asarray(step, jnp.float32) / self.warmup_steps)

  def capacity(self, step: jax.Array) -> jax.Array:
    """C(step) in nats: linear from 0 to capacity_max over capacity_steps, then held."""
    if self.capacity_steps <= 0:
      return jnp.asarray(self.capacity_max, jnp.float32)
    frac = jnp.minimum(1.0, jnp.asarray(step, jnp.float32) / self.capacity_steps)
    return self.capacity_max * frac

  def __call__(self, kl_per_dim: jax.Array, step: jax.Array) -> tuple[jax.Array, dict]:
    """The scalar penalty for a batch and its metrics.

    Args:
      kl_per_dim: [B, ...] KL of each latent dimension of each example (nats).
      step: the optimisation step (int scalar).

    Returns:
      (penalty, {"kl_weight": w * beta or w * gamma, "capacity": C (capacity form)}).
    """
    kl = jnp.mean(jnp.sum(kl_per_dim.reshape(kl_per_dim.shape[0], -1), axis=1))
    w = self.warmup_weight(step)
    if self.capacity_max > 0:
      c = self.capacity(step)
      return w * self.gamma * jnp.abs(kl - c), {"kl_weight": w * self.gamma, "capacity": c}
    if self.free_bits > 0:
      kl = jnp.sum(jnp.maximum(self.free_bits, jnp.mean(kl_per_dim, axis=0)))
    return w * self.beta * kl, {"kl_weight": w * self.beta}
