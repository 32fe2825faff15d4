"""Repeated flow steps compiled once: `ScanChain`, and converters between the two layouts.

A Glow level is `depth` identical steps (actnorm, 1x1 convolution, coupling). Unrolled in
a `Chain` of 3 * depth layers, XLA compiles every step separately (Glow CIFAR-10: 96 steps,
minutes of compilation on a CPU). `ScanChain(step, length)` runs one step module `length`
times under `flax.linen.scan` (a `lax.scan`): the step is traced and compiled once, its
parameters (and "consts", the LU permutation and signs) are stacked on a leading axis of
size `length`.

  Forward:  y = f_n(... f_1(x)),  log_det = sum_i log_det_i       (scan over i = 1..n)
  Inverse:  x = f_1^{-1}(... f_n^{-1}(y))                          (the reversed scan)

The same function as `Chain([layer for each step for layer in step])`, with the parameters
laid out differently; `to_scanned` / `to_unscanned` convert a variables tree (params or
consts) between the layouts, e.g. to load an unscanned checkpoint into a scanned model.

Data-dependent initialisation (actnorm) stays exact: at `init` the scan body creates each
step's parameters from the activations reaching that step.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from gen_jax.flows.bijectors import Bijector

# Variable collections of the bijectors (InvConv1x1 keeps its fixed P and signs in "consts").
SCANNED_COLLECTIONS = ("params", "consts")
_SCAN_NAME = "step"  # the step module's name inside a ScanChain
_LAYER = re.compile(r"^layers_(\d+)$")


class ScanChain(Bijector):
  """`length` repetitions of the bijector `step` under `nn.scan` (see the module docstring).

  Attributes:
    step: one step (e.g. a `Chain` of actnorm, 1x1 convolution and coupling); its
      parameters get a leading axis of size `length`.
    length: the number of steps.
  """

  step: Bijector
  length: int

  def __call__(self, x, cond=None, inverse=False):

    def body(step, carry, _):
      z, log_det = carry
      z, ld = step(z, cond, inverse=inverse)
      return (z, log_det + ld), None

    scan = nn.scan(body, variable_axes={c: 0 for c in SCANNED_COLLECTIONS},
                   split_rngs={"params": True}, length=self.length, reverse=inverse)
    (z, log_det), _ = scan(self.step, (x, jnp.zeros((x.shape[0],), jnp.float32)), None)
    return z, log_det


def _chain_length(tree: Mapping[str, Any]) -> int | None:
  """n when every key of `tree` is some layers_i, i < n (layers without variables are
  absent), else None."""
  matches = [_LAYER.match(k) for k in tree]
  if not matches or not all(matches):
    return None
  return max(int(m.group(1)) for m in matches) + 1


def to_scanned(tree: Mapping[str, Any], *, chain: str, layers_per_step: int) -> dict:
  """An unscanned variables tree -> the `ScanChain` layout.

  Every sub-tree named `chain` whose children are all layers_i (an unrolled `Chain`;
  a layer without variables has no entry) becomes
  {"step": {"layers_j": stack over i of layers_{k i + j}}} with
  k = `layers_per_step`, the layout of `ScanChain(Chain(k layers), n // k)` named `chain`.
  Other entries are copied. Use the same call on "params" and on "consts".
  """
  out = {}
  for key, value in tree.items():
    if not isinstance(value, Mapping):
      out[key] = value
      continue
    n = _chain_length(value) if key == chain else None
    if n is None:
      out[key] = to_scanned(value, chain=chain, layers_per_step=layers_per_step)
      continue
    steps = -(-n // layers_per_step)
    out[key] = {_SCAN_NAME: {
        f"layers_{j}": _stack([value[f"layers_{i * layers_per_step + j}"]
                               for i in range(steps)])
        for j in range(layers_per_step)
        if f"layers_{j}" in value}}
  return out


def to_unscanned(tree: Mapping[str, Any], *, chain: str, layers_per_step: int) -> dict:
  """The inverse of `to_scanned`: a `ScanChain` layout -> the unrolled `Chain` layout."""
  out = {}
  for key, value in tree.items():
    if not isinstance(value, Mapping):
      out[key] = value
      continue
    if key != chain or set(value) != {_SCAN_NAME}:
      out[key] = to_unscanned(value, chain=chain, layers_per_step=layers_per_step)
      continue
    step = value[_SCAN_NAME]
    k = layers_per_step
    steps = _leading_size(step)
    out[key] = {f"layers_{i * k + j}": _index(step[f"layers_{j}"], i)
                for i in range(steps) for j in range(k) if f"layers_{j}" in step}
  return out


def _stack(trees: list[Any]) -> Any:
  if isinstance(trees[0], Mapping):
    return {k: _stack([t[k] for t in trees]) for k in trees[0]}
  return jnp.stack([jnp.asarray(t) for t in trees])


def _index(tree: Any, i: int) -> Any:
  if isinstance(tree, Mapping):
    return {k: _index(v, i) for k, v in tree.items()}
  return tree[i]


def _leading_size(tree: Any) -> int:
  while isinstance(tree, Mapping):
    tree = next(iter(tree.values()))
  return int(np.shape(tree)[0])
