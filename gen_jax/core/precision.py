"""Mixed precision: the one place where `config.precision` becomes a computation dtype.

    config.precision = "fp32"   everything in float32 (the default)
    config.precision = "bf16"   networks compute in bfloat16

With "bf16" only the networks' activations and matrix products use bfloat16: parameters,
optimiser state and the EMA stay float32 (flax keeps `param_dtype` float32 and casts the
parameters at each use, so gradients arrive in float32), normalisation statistics and
softmax are computed in float32 inside the layers, and every network returns float32 so
that losses, likelihoods and samplers run in float32.

The method builders read the setting through `compute_dtype(config)` and hand the dtype to
`gen_jax.nets.build_net(..., dtype=...)` (or a flow's builder); nothing deeper reads it.
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp

PRECISIONS: dict[str, Any] = {"fp32": jnp.float32, "bf16": jnp.bfloat16}


def dtype_of(precision: str) -> Any:
  """The computation dtype named by `precision` ("fp32" | "bf16").

  Raises:
    ValueError: for any other value, listing the valid ones.
  """
  try:
    return PRECISIONS[precision]
  except (KeyError, TypeError):
    raise ValueError(
        f"Unknown config.precision {precision!r}; choose one of: "
        f"{', '.join(PRECISIONS)} (e.g. --config.precision=bf16).") from None


def compute_dtype(config: Any) -> Any:
  """The networks' computation dtype of a run: `config.precision`, "fp32" when absent."""
  return dtype_of(config.get("precision", "fp32"))


def is_reduced(dtype: Any) -> bool:
  """Whether `dtype` is narrower than float32 (then a network must support it)."""
  return jnp.dtype(dtype) != jnp.dtype(jnp.float32)
