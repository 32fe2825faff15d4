"""Standing batch-norm statistics (Brock et al., BigGAN, ICLR 2019, Appendix C).

A generator with batch norm is trained on batch statistics; at sampling time it needs
fixed statistics that suit the weights it samples with -- for the EMA generator, the
running statistics of the raw generator do not. BigGAN's "standing statistics" run the
generator in training mode on `num_batches` batches of fresh latents and keep, for every
batch-norm layer, the mean over those batches of its per-batch mean and (biased) variance:

    mu_l = 1/K sum_k mean_B(h_l^(k)),   var_l = 1/K sum_k var_B(h_l^(k)),

where h_l^(k) is the layer's input on batch k with every earlier layer normalised by the
statistics of that same batch (training mode). This is BigGAN-PyTorch's
`utils.accumulate_standing_stats` with `layers.myBN` (16 batches by default; the paper
mentions ~100).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

LatentsFn = Callable[[jax.Array], tuple[jax.Array, jax.Array | None]]  # key -> (z, y)


def standing_statistics(generator: nn.Module, params: Any, variables: dict,
                        latents_fn: LatentsFn, rng: jax.Array, num_batches: int) -> Any:
  """The generator's "batch_stats" re-estimated for `params` (see the module docstring).

  Args:
    generator: a module with a `bn_momentum` field (its batch norms' running-average
      decay): it is run with bn_momentum = 0, so one training-mode call stores exactly the
      batch statistics of that call.
    params: the weights to estimate statistics for (the EMA generator's).
    variables: the generator's other collections ("batch_stats", "spectral", ...); their
      values only fix the structure (training mode reads no running statistics).
    latents_fn: key -> (z [B, Z], y [B] | None), one standing batch.
    rng: key of the K standing batches.
    num_batches: K >= 1.

  Returns:
    A tree like variables["batch_stats"]: the mean over the K batches of each layer's
    batch mean and biased batch variance.
  """
  if "batch_stats" not in variables:
    raise ValueError(f"{type(generator).__name__} has no batch norm (no 'batch_stats'); "
                     "set method.standing_stats=0.")
  if "bn_momentum" not in {f.name for f in dataclasses.fields(generator)}:
    raise ValueError(f"Standing statistics need a `bn_momentum` field on "
                     f"{type(generator).__name__} (its batch norms' momentum), which it lacks; "
                     "set method.standing_stats=0 for this generator.")
  if num_batches < 1:
    raise ValueError(f"num_batches must be >= 1, got {num_batches}.")
  batch_stat_net = generator.clone(bn_momentum=0.0)

  def one_batch(key):
    z, y = latents_fn(key)
    _, new = batch_stat_net.apply({"params": params, **variables}, z, y, train=True,
                                  mutable=list(variables))
    return new["batch_stats"]

  stats = jax.lax.map(one_batch, jax.random.split(rng, num_batches))
  return jax.tree.map(lambda s: jnp.mean(s, axis=0), stats)
