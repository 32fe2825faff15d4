"""Classifier guidance: a noisy classifier's gradient added to any sampler's denoiser.

Dhariwal & Nichol, "Diffusion Models Beat GANs on Image Synthesis" (NeurIPS 2021), Sec. 4.2
(Algorithm 2) and github:openai/guided-diffusion (`classifier_sample.py`, `cond_fn`;
`GaussianDiffusion.condition_score`). With a classifier p_phi(y | x_t, t) trained on noisy
x_t of the same process and a gradient scale s, the guided model is the score of
p_t(x) p_phi(y | x)^s:

    score'(x_t) = score(x_t) + s grad_x log p_phi(y | x_t, t),
    eps'        = eps - sigma_t s grad_x log p_phi(y | x_t, t)          (alpha, sigma of t)

(s = 1 is the score of p_t(x | y) for an exact classifier). `classifier_guided` wraps a
denoiser of any parameterisation (`gaussian.PREDICTIONS`): it converts the output to
(x0_hat, eps_hat), shifts eps_hat, and converts back, so every registered sampler gets the
guidance without knowing of it; extra channels after the first C (a learned variance) pass
through unchanged.

Deviation from the official code: its ancestral sampler shifts the posterior mean by
s Sigma grad (`condition_mean`) instead of shifting eps; the two agree to first order in
the step size (both are the score shift), the eps form is what its DDIM sampler uses.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax
import jax.numpy as jnp

from gen_jax.diffusion.gaussian import PREDICTIONS, coefs

Array = jax.Array
LogProbFn = Callable[[Array, Array, Array], Array]  # (x_t [B, ...], t [B], y [B]) -> [B]


@dataclasses.dataclass(frozen=True, eq=False)
class ClassifierGuidance:
  """A trained noisy classifier and the gradient scale it is applied with.

  Attributes:
    log_prob: (x_t [B, ...], t [B], y int [B]) -> log p(y | x_t, t) [B], parameters closed
      over; t as the samplers pass it (int steps of a chain, float times of an SDE).
    scale: s.
    num_classes: K (labels in [0, K)).
  """

  log_prob: LogProbFn
  scale: float
  num_classes: int


def log_prob_of_logits(logits_fn: Callable[[Array, Array], Array]) -> LogProbFn:
  """(x, t, y) -> log_softmax(logits_fn(x, t))[y], the log-probability of a classifier."""

  def log_prob(x, t, y):
    logp = jax.nn.log_softmax(logits_fn(x, t), axis=-1)
    return jnp.take_along_axis(logp, y[:, None].astype(jnp.int32), axis=-1)[:, 0]

  return log_prob


def classifier_guided(denoise_fn: Callable[[Array, Array], Array], process: Any,
                      prediction: str, guidance: ClassifierGuidance, labels: Array,
                      channels: int | None = None) -> Callable[[Array, Array], Array]:
  """denoise_fn guided towards `labels` [B] (module docstring), of the same type.

  Args:
    denoise_fn: (x_t [B, ...], t [B]) -> output of type `prediction` w.r.t. `process`.
    channels: how many leading output channels are the prediction (default: all of x's).
  """
  predictor = PREDICTIONS.get(prediction)
  labels = jnp.asarray(labels, jnp.int32)

  def fn(x, t):
    out = denoise_fn(x, t)
    c = x.shape[-1] if channels is None else channels
    main, rest = out[..., :c], out[..., c:]
    grad = jax.grad(lambda y: jnp.sum(guidance.log_prob(y, t, labels)))(x)
    alpha, sigma = coefs(process, t, x.ndim)
    _, eps = predictor.to_x0_eps(process, main, x, t)
    eps = eps - sigma * guidance.scale * grad
    x0 = (x - sigma * eps) / alpha
    main = predictor.target(process, x0, eps, t).astype(out.dtype)
    return jnp.concatenate([main, rest], axis=-1) if rest.shape[-1] else main

  return fn
