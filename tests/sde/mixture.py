"""Exact scores and log-densities of Gaussian and Gaussian-mixture data under an SDE (tests).

If x0 ~ sum_k w_k N(mu_k, s^2 I) and p_t(x | x0) = N(m(t) x0, std(t)^2 I), then
p_t = sum_k w_k N(m mu_k, (m^2 s^2 + std^2) I): closed-form log-density, and its gradient (by
jax.grad, exact) is the score. The exact denoiser E[x0 | x_t] is closed-form too:
sum_k r_k(x) (mu_k + m s^2 (x - m mu_k) / (m^2 s^2 + std^2)), r_k the posterior responsibilities
(`GaussianMixtureScore.denoiser`, on any process, DDPM chains with int t included).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from gen_jax.diffusion import PREDICTIONS, batch_bcast


def gaussian_score(sde, mu, s):
  """The exact score of p_t for x0 ~ N(mu, s^2 I) (mu scalar or [D])."""

  def score_fn(x, t):
    m, std = sde.marginal_coef(t)
    m, std = batch_bcast(m, x), batch_bcast(std, x)
    return -(x - m * mu) / (m**2 * s**2 + std**2)

  return score_fn


@dataclasses.dataclass(frozen=True)
class GaussianMixtureScore:
  """sum_k w_k N(means[k], std^2 I) in D dimensions."""

  means: tuple
  std: float
  weights: tuple

  @property
  def mu(self) -> np.ndarray:
    return np.asarray(self.means, np.float64)

  @property
  def w(self) -> np.ndarray:
    w = np.asarray(self.weights, np.float64)
    return w / w.sum()

  def mean(self) -> np.ndarray:
    return self.w @ self.mu

  def cov(self) -> np.ndarray:
    d = self.mu.shape[1]
    c = self.mu - self.mean()
    return self.std**2 * np.eye(d) + (self.w[:, None] * c).T @ c

  def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
    k = rng.choice(len(self.w), size=n, p=self.w)
    return self.mu[k] + self.std * rng.standard_normal((n, self.mu.shape[1]))

  def log_prob_t(self, sde, x: jax.Array, t) -> jax.Array:
    """log p_t(x) [B] for x [B, D]."""
    t = jnp.broadcast_to(jnp.asarray(t, jnp.float32), (x.shape[0],))
    m, std = sde.marginal_coef(t)
    var = m**2 * self.std**2 + std**2  # [B]
    mu = jnp.asarray(self.mu, jnp.float32)
    d = x.shape[1]
    sq = jnp.sum(jnp.square(x[:, None, :] - m[:, None, None] * mu[None]), axis=-1)  # [B, K]
    logs = (jnp.log(jnp.asarray(self.w, jnp.float32))[None] - 0.5 * sq / var[:, None]
            - 0.5 * d * jnp.log(2 * jnp.pi * var)[:, None])
    return jax.nn.logsumexp(logs, axis=-1)

  def score_fn(self, sde):
    def score(x, t):
      return jax.grad(lambda y: jnp.sum(self.log_prob_t(sde, y, t)))(x)

    return score

  def denoiser(self, process, prediction: str = "x0"):
    """The exact E[output | x_t] (x_t [B, D], t [B]) of a network of type `prediction` on
    `process` (anything with marginal_coef): the output is linear in (x0, eps), so its mean is
    the target of the exact (E[x0 | x_t], E[eps | x_t])."""
    pred = PREDICTIONS.get(prediction)
    mu = jnp.asarray(self.mu, jnp.float32)
    logw = jnp.log(jnp.asarray(self.w, jnp.float32))

    def fn(x, t):
      a, s = process.marginal_coef(t)
      a, s = a.astype(jnp.float32)[:, None], s.astype(jnp.float32)[:, None]  # [B, 1]
      var = a**2 * self.std**2 + s**2
      centred = x[:, None, :] - a[:, None] * mu[None]  # [B, K, D]
      r = jax.nn.softmax(logw[None] - 0.5 * jnp.sum(centred**2, -1) / var, axis=-1)  # [B, K]
      post = mu[None] + (a * self.std**2 / var)[:, None] * centred
      x0 = jnp.sum(r[..., None] * post, axis=1)
      eps = (x - a * x0) / s
      return pred.target(process, x0, eps, t)

    return fn
