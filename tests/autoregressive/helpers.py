"""Small autoregressive methods built from the configs, for the tests."""

from __future__ import annotations

from gen_jax.data import DatasetInfo
from gen_jax.methods.autoregressive import build_autoregressive
from tests.train.helpers import load_config


def small_method(relpath: str, shape, *, num_classes: int = 0, model=None, optim=None,
                 **method):
  """The smoke config's method for data of `shape` (and overrides), built directly."""
  c = load_config(f"autoregressive/{relpath}", "smoke")
  for k, v in (optim or {}).items():
    c.optim[k] = v
  for k, v in (model or {}).items():
    c.model[k] = v
  for k, v in method.items():
    c.method[k] = v
  return build_autoregressive(c, DatasetInfo(tuple(shape), num_classes, 64))
