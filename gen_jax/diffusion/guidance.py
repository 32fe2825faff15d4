"""Class conditioning of diffusion models, written once for every parameterisation.

Ho & Salimans, "Classifier-Free Diffusion Guidance" (2021): train one network on labels that
are replaced by a null label with probability p, and sample with the combination

    out = (1 + w) out(x, t, y) - w out(x, t, null)

of the conditional and unconditional outputs (eps, score, x0, v: the combination is linear,
so it is the same rule for each; w = 0 is the conditional model).
"""

from __future__ import annotations

from typing import Callable, Mapping

import jax
import jax.numpy as jnp

Array = jax.Array
ApplyFn = Callable[[Array, Array, Array | None], Array]  # (x [B, ...], t [B], y [B]) -> out


def batch_labels(batch: Mapping[str, Array], num_classes: int) -> Array | None:
  """int32 labels [B] of a class-conditional model (num_classes > 0), else None."""
  if not num_classes:
    return None
  if "label" not in batch:
    raise ValueError("A class-conditional diffusion model needs batch['label'] (set "
                     "method.class_conditional=False for an unconditional one).")
  return batch["label"].astype(jnp.int32)


def drop_labels(rng: Array, labels: Array, p: float, null_label: int) -> Array:
  """labels [B] with each replaced by `null_label` with probability p."""
  return jnp.where(jax.random.bernoulli(rng, p, labels.shape), null_label, labels)


def guided(apply_fn: ApplyFn, labels: Array | None, null_label: int,
           scale: float) -> Callable[[Array, Array], Array]:
  """(x, t) -> the guided output, conditional and unconditional in one batched call.

  Without labels or with scale 0 it is apply_fn(x, t, labels) (one evaluation).
  """
  if labels is None or scale == 0:
    return lambda x, t: apply_fn(x, t, labels)
  w = float(scale)

  def fn(x, t):
    null = jnp.full_like(labels, null_label)
    out = apply_fn(jnp.concatenate([x, x]), jnp.concatenate([t, t]),
                   jnp.concatenate([labels, null]))
    cond, uncond = jnp.split(out, 2)
    return (1.0 + w) * cond - w * uncond

  return fn


def evals_per_step(labels: Array | None, scale: float) -> int:
  """Network evaluations per denoiser call: 2 with guidance, else 1."""
  return 2 if (labels is not None and scale != 0) else 1
