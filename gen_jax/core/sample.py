"""What every family's `Method.sample` returns."""

from __future__ import annotations

import flax
import jax

Array = jax.Array


@flax.struct.dataclass
class SampleOutput:
  """Samples and their cost.

  Attributes:
    samples: [B, ...] draws of x_0.
    nfe: number of network (denoise_fn) evaluations per sample (static).
  """

  samples: Array
  nfe: int = flax.struct.field(pytree_node=False)
