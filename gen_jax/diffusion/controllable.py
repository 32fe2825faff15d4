"""Controllable generation with an unconditional score model: inpainting and colorization.

Song et al., "Score-Based Generative Modeling through SDEs" (ICLR 2021), section 5 and
appendix I.2. Both are imputation in an orthogonal basis: the data y = x U (U orthogonal,
acting on the channel axis) is known where `mask` is 1. The PC sampler runs as usual, and
after every predictor and corrector update the known coordinates are replaced by a fresh draw
of their forward perturbation,

    y_known(t) = m(t) y_known + std(t) z,

so that the unknown coordinates are sampled from (an approximation of) p(y_unknown | y_known).
At the end the known coordinates are set to their exact values. The loop is the samplers' own
(`pc_sample` with `Imputation.project` as its projection hook), so any family that samples
with "pc" imputes through `SampleSpec(sampler="pc", sampler_options={"project": ...})`.

* Inpainting: U = I, mask [B, H, W, C] (or broadcastable), 1 = known pixel.
* Colorization: U = the paper's orthogonal matrix whose first column is (1, 1, 1) / sqrt(3),
  so the first decoupled channel is sqrt(3) times the grey level (mean of R, G, B) and is
  known; the other two are imputed.

Every network evaluation is counted: nfe = N (1 + n_corrector_steps) (+1 for denoising).
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from gen_jax.diffusion.processes import SDE, batch_bcast
from gen_jax.samplers.base import DenoiseFn, SampleOutput
from gen_jax.samplers.sde import pc_sample

Array = jax.Array

# Orthogonal colour decoupling (paper appendix I.2): columns are an orthonormal basis whose
# first vector is the grey direction (1, 1, 1) / sqrt(3).
COLOR_MATRIX = np.array([[0.5773502691896258, -0.8164965809277261, 0.0],
                         [0.5773502691896258, 0.4082482904638631, 0.7071067811865475],
                         [0.5773502691896258, 0.4082482904638631, -0.7071067811865475]])


def decouple(x: Array) -> Array:
  """RGB [..., 3] -> decoupled channels [..., 3] (x @ U)."""
  return x @ jnp.asarray(COLOR_MATRIX, x.dtype)


def couple(y: Array) -> Array:
  """Decoupled [..., 3] -> RGB [..., 3] (y @ U^T); the inverse of `decouple`."""
  return y @ jnp.asarray(COLOR_MATRIX.T, y.dtype)


@dataclasses.dataclass(frozen=True)
class Imputation:
  """Coordinates `mask` of to_space(x) fixed to to_space(known): the projection hook of the
  PC loop (`pc_sample(..., project=imputation.project)`) and the final replacement.

  Attributes:
    known: [B, ...] data whose masked coordinates (in the transformed space) are kept.
    mask: 1 where known, 0 where imputed; broadcastable to known's shape.
    to_space, from_space: an orthogonal linear map and its inverse (None: identity).
  """

  known: Array
  mask: Array
  to_space: Callable[[Array], Array] | None = None
  from_space: Callable[[Array], Array] | None = None

  def _maps(self):
    identity = lambda a: a
    known = jnp.asarray(self.known, jnp.float32)
    mask = jnp.broadcast_to(jnp.asarray(self.mask, jnp.float32), known.shape)
    return known, mask, self.to_space or identity, self.from_space or identity

  def project(self, sde: SDE, x: Array, t: Array, key: Array) -> Array:
    """x with its known coordinates replaced by a fresh draw of their perturbation at t."""
    known, mask, to_space, from_space = self._maps()
    y_known = to_space(known)
    mean, std = sde.marginal_prob(y_known, t)
    noisy = mean + batch_bcast(std, y_known) * jax.random.normal(key, y_known.shape)
    return from_space(mask * noisy + (1.0 - mask) * to_space(x))

  def finish(self, x: Array) -> Array:
    """x with its known coordinates set to their exact values (after the last step)."""
    known, mask, to_space, from_space = self._maps()
    return from_space(mask * to_space(known) + (1.0 - mask) * to_space(x))


def inpainting(data: Array, mask: Array) -> Imputation:
  """Keeps data where mask == 1 ([B, H, W, C] or broadcastable)."""
  return Imputation(known=data, mask=mask)


def colorization(gray: Array) -> Imputation:
  """RGB images whose grey level (mean of R, G, B) is `gray`, [B, H, W, 1] (or [B, H, W, 3]
  whose channel mean is used), in [-1, 1]."""
  gray = jnp.asarray(gray, jnp.float32)
  if gray.shape[-1] == 3:
    gray = jnp.mean(gray, axis=-1, keepdims=True)
  known = jnp.broadcast_to(gray, gray.shape[:-1] + (3,))  # decouple(known)[..., 0] = sqrt(3) g
  return Imputation(known=known, mask=jnp.asarray([1.0, 0.0, 0.0], jnp.float32),
                    to_space=decouple, from_space=couple)


def pc_impute(denoise_fn: DenoiseFn, sde: SDE, imputation: Imputation, *, rng: Array,
              prediction: str = "eps", **pc_options) -> SampleOutput:
  """PC sampling (`pc_sample` and its options) of x with `imputation` imposed.

  Returns:
    SampleOutput with samples [B, ...] (known coordinates exact) and nfe.
  """
  out = pc_sample(denoise_fn, sde, rng=rng, shape=jnp.shape(imputation.known),
                  prediction=prediction, project=imputation.project, **pc_options)
  return out.replace(samples=imputation.finish(out.samples))


def pc_inpaint(denoise_fn: DenoiseFn, sde: SDE, *, rng: Array, data: Array, mask: Array,
               **kwargs) -> SampleOutput:
  """Inpainting: keeps data where mask == 1 ([B, H, W, C] or broadcastable), fills the rest.

  Keyword arguments are those of `pc_impute` (prediction, predictor, corrector, snr, ...).
  """
  return pc_impute(denoise_fn, sde, inpainting(data, mask), rng=rng, **kwargs)


def pc_colorize(denoise_fn: DenoiseFn, sde: SDE, *, rng: Array, gray: Array,
                **kwargs) -> SampleOutput:
  """Colorization: RGB images [B, H, W, 3] whose grey level (mean of R, G, B) equals `gray`.

  Args:
    gray: [B, H, W, 1] (or [B, H, W, 3] whose channel mean is used) grey images in [-1, 1].
    **kwargs: as `pc_impute`.
  """
  return pc_impute(denoise_fn, sde, colorization(gray), rng=rng, **kwargs)
