"""GAN regularisers: gradient penalty, R1 (lazy), LeCam (discriminator); path length
(StyleGAN2) and orthogonal (BigGAN) on the generator.

* Gradient penalty (WGAN-GP; Gulrajani et al., "Improved Training of Wasserstein GANs",
  2017): with x_hat = a x_real + (1 - a) x_fake, a ~ U[0, 1] per example,
      GP = E[(||grad_x D(x_hat)||_2 - 1)^2],   added to L_D with weight lambda (10).
* R1 (Mescheder et al., "Which Training Methods for GANs do actually Converge?", 2018):
      R1 = E[||grad_x D(x_real)||_2^2],        added to L_D with weight gamma / 2.
  Lazy regularisation: apply it only every k-th discriminator step, with one of two
  conventions for its weight (`LAZY_SCALINGS`, chosen by the config's r1_lazy_scaling):
    "stylegan2"  k * gamma / 2 (Karras et al., StyleGAN2, 2020), which keeps the average
                 weight of gamma / 2 per step;
    "none"       gamma / 2 (Xiao et al.'s DDGAN code, train_ddgan.py with --lazy_reg k),
                 so the average weight is gamma / (2 k).
* Path length (Karras et al., StyleGAN2, 2020): E[(||J_w^T y||_2 - a)^2] with y ~ N(0, I) /
  sqrt(H W) and a the running mean of the lengths (`path_length_penalty`); lazy with the
  "stylegan2" convention (pl_every * pl_weight on every pl_every-th step).
* LeCam (Tseng et al., "Regularizing GANs under Limited Data", CVPR 2021):
      R_LC = E[relu(d_real - alpha_fake)^2] + E[relu(alpha_real - d_fake)^2],
  with alpha_real / alpha_fake exponential moving averages of the discriminator's mean
  outputs on real / fake data (kept by the method in its model state).

* Orthogonal regularisation, BigGAN's variant (Brock et al., "Large Scale GAN Training
  for High Fidelity Natural Image Synthesis", ICLR 2019, Sec. 3.1): for every weight matrix
  W [out, fan_in] (one row per output unit),
      R(W) = ||W W^T * (1 - I)||_F^2,   dR/dW = 4 (W W^T * (1 - I)) W,
  which pulls distinct filters towards orthogonality without constraining their norms
  (the off-diagonal part only). See `orthogonal_regularization` for which parameters
  count and how the weight relates to the official code's strength.

The per-example input gradients are those of sum_i D(x_i): the discriminator must treat
examples independently (no batch norm in D when a penalty is used, as in WGAN-GP).
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp

Array = jax.Array
DiscriminatorFn = Callable[[Array], Array]  # x [B, ...] -> logits [B]


def _per_example_grads(d_fn: DiscriminatorFn, x: Array) -> Array:
  """grad_x D(x) [B, ...], per example (D must not mix examples)."""
  return jax.grad(lambda v: jnp.sum(d_fn(v)))(x)


def _flat_sq_norm(g: Array) -> Array:
  return jnp.sum(jnp.square(g.reshape(g.shape[0], -1)), axis=1)


def interpolate(real: Array, fake: Array, alpha: Array) -> Array:
  """x_hat = alpha real + (1 - alpha) fake, alpha [B] broadcast over the other axes."""
  a = alpha.reshape((-1,) + (1,) * (real.ndim - 1))
  return a * real + (1.0 - a) * fake


def gradient_penalty(d_fn: DiscriminatorFn, real: Array, fake: Array, alpha: Array,
                     target: float = 1.0) -> Array:
  """WGAN-GP's E[(||grad D(x_hat)|| - target)^2] at x_hat = interpolate(real, fake, alpha).

  Args:
    d_fn: x [B, ...] -> logits [B].
    real, fake: [B, ...] data and generated samples.
    alpha: [B] interpolation weights (U[0, 1] in WGAN-GP).
    target: the norm the penalty pulls towards (1 for a 1-Lipschitz critic).

  Returns:
    Scalar penalty (not yet multiplied by its weight).
  """
  grads = _per_example_grads(d_fn, interpolate(real, fake, alpha))
  # The epsilon keeps the gradient of the norm finite where grad D vanishes.
  norms = jnp.sqrt(_flat_sq_norm(grads) + 1e-12)
  return jnp.mean(jnp.square(norms - target))


def r1_penalty(d_fn: DiscriminatorFn, real: Array) -> Array:
  """R1 = E[||grad_x D(x_real)||^2] (scalar; multiply by gamma / 2)."""
  return jnp.mean(_flat_sq_norm(_per_example_grads(d_fn, real)))


# Factor of the weight on the steps where a lazy regulariser applies, given the period k.
LAZY_SCALINGS: dict[str, Callable[[int], int]] = {
    "stylegan2": lambda every: every,  # k * weight: the average weight stays `weight`
    "none": lambda every: 1,  # weight itself (DDGAN's code)
}


def check_lazy_scaling(scaling: str) -> str:
  """Returns `scaling` if it names a convention of LAZY_SCALINGS, else a clear error."""
  if scaling not in LAZY_SCALINGS:
    raise ValueError(f"Unknown lazy-regularisation scaling {scaling!r}; use one of "
                     f"{sorted(LAZY_SCALINGS)} (method.r1_lazy_scaling).")
  return scaling


def lazy_weight(step: Array, every: int, weight: float, scaling: str = "stylegan2") -> Array:
  """The weight on steps divisible by `every`, else 0.

  On those steps: `every * weight` for scaling "stylegan2", `weight` for "none".
  """
  every = max(int(every), 1)
  w = LAZY_SCALINGS[check_lazy_scaling(scaling)](every) * weight
  return jnp.where(jnp.asarray(step) % every == 0, w, 0.0).astype(jnp.float32)


def lazy_penalty(step: Array, every: int, weight: float, penalty_fn: Callable[[], Array],
                 scaling: str = "stylegan2") -> Array:
  """weight-scaled `penalty_fn()` on every `every`-th step, 0 (and not computed) otherwise.

  `scaling` is the convention of `lazy_weight`. `jax.lax.cond` skips the double
  back-propagation on the steps without the penalty.
  """
  w = lazy_weight(step, every, weight, scaling)
  if int(every) <= 1:
    return w * penalty_fn()
  return jax.lax.cond(w > 0, lambda: w * penalty_fn(), lambda: jnp.zeros((), jnp.float32))


def lecam_penalty(d_real: Array, d_fake: Array, ema_real: Array, ema_fake: Array) -> Array:
  """LeCam's E[relu(d_real - ema_fake)^2] + E[relu(ema_real - d_fake)^2]."""
  return (jnp.mean(jnp.square(jax.nn.relu(d_real - ema_fake)))
          + jnp.mean(jnp.square(jax.nn.relu(ema_real - d_fake))))


def orthogonal_penalty(w: Array) -> Array:
  """||W W^T * (1 - I)||_F^2 of a matrix W [rows, cols]: the squared off-diagonal Gram entries."""
  gram = w @ w.T
  return jnp.sum(jnp.square(gram * (1.0 - jnp.eye(w.shape[0], dtype=gram.dtype))))


def weight_matrix(name: str, value: Array) -> Array:
  """A Flax weight as the [out, fan_in] matrix of PyTorch's `weight.view(out, -1)`.

  "embedding" ([num, features], as torch's nn.Embedding) keeps its rows; every other
  parameter (Dense [in, out], Conv [kh, kw, in, out]: Flax puts outputs last) becomes
  kernel.reshape(-1, out).T.
  """
  if name == "embedding":
    return value.reshape(value.shape[0], -1)
  return value.reshape(-1, value.shape[-1]).T


def orthogonal_regularization(params: Any, exclude: Sequence[str] = ()) -> Array:
  """Sum of `orthogonal_penalty` over every parameter with >= 2 axes.

  Args:
    params: a Flax parameter tree.
    exclude: module names; a parameter whose path holds one of them is skipped (BigGAN's
      code skips the shared class embedding: "it makes no sense" there).

  Returns:
    Scalar sum_W ||W W^T * (1 - I)||_F^2 (W from `weight_matrix`). The BigGAN code adds
    strength * 2 (W W^T * (1 - I)) W to each weight's gradient (utils.ortho), which is the
    gradient of strength / 2 * this sum: the "gan" method adds ortho_weight / 2 times it,
    so its ortho_weight is the official `G_ortho` strength (1e-4).
  """
  total = jnp.zeros((), jnp.float32)
  for path, value in jax.tree_util.tree_flatten_with_path(params)[0]:
    keys = [getattr(k, "key", getattr(k, "name", str(k))) for k in path]
    if value.ndim < 2 or any(k in exclude for k in keys):
      continue
    total = total + orthogonal_penalty(weight_matrix(str(keys[-1]), value).astype(jnp.float32))
  return total


def r1_penalty_and_logits(d_fn: DiscriminatorFn, real: Array) -> tuple[Array, Array]:
  """(R1 = E[||grad_x D(x_real)||^2], the logits D(x_real) [B]) from one double pass."""
  grads, logits = jax.grad(lambda v: (lambda l: (jnp.sum(l), l))(d_fn(v)), has_aux=True)(real)
  return jnp.mean(_flat_sq_norm(grads)), logits


def path_length_penalty(synthesis_fn: Callable[[Array], Array], ws: Array, noise: Array,
                        pl_mean: Array, decay: float) -> tuple[Array, Array]:
  """StyleGAN2's path length regulariser (Karras et al. 2020, eq. 4 and its code).

  With y = noise (drawn N(0, I) / sqrt(H W) by the caller) and J_w the Jacobian of the
  synthesis at ws [B, L, W]:
      a_i = sqrt(mean_l ||(J_w^T y)_{i, l}||^2),
      pl_mean' = pl_mean + decay * (mean_i a_i - pl_mean),
      penalty = mean_i (a_i - pl_mean')^2,
  where pl_mean' is not detached inside the penalty (as the official loss.py).

  Args:
    synthesis_fn: ws [B, L, W] -> images [B, ...] (its randomness fixed by the caller).
    ws: [B, L, W] intermediate latents.
    noise: [B, ...] the projection y, same shape as the images.
    pl_mean: running mean of the lengths (scalar).
    decay: pl_decay (0.01).

  Returns:
    (penalty scalar, pl_mean' scalar): multiply the penalty by pl_weight (and the lazy
    period); store stop_gradient(pl_mean').
  """
  grads = jax.grad(lambda w: jnp.sum(synthesis_fn(w) * noise))(ws)
  lengths = jnp.sqrt(jnp.mean(jnp.sum(jnp.square(grads), axis=2), axis=1))
  new_mean = pl_mean + decay * (jnp.mean(lengths) - pl_mean)
  return jnp.mean(jnp.square(lengths - new_mean)), new_mean
