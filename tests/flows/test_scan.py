"""Glow with scanned steps (`flows/scan.py`) computes the unrolled Glow's function."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from gen_jax.flows import Flow, build_flow
from gen_jax.flows import scan as scan_lib

KW = dict(num_levels=2, depth=2, width=4)


def _perturbed(variables, key):
  """Every parameter moved by small noise, so that the couplings are not the identity."""
  leaves, treedef = jax.tree_util.tree_flatten(variables["params"])
  keys = jax.random.split(key, len(leaves))
  leaves = [p + 0.05 * jax.random.normal(k, p.shape) for p, k in zip(leaves, keys)]
  return {**variables, "params": jax.tree_util.tree_unflatten(treedef, leaves)}


def _convert(variables, fn, **kw):
  return {c: fn(v, chain="post", layers_per_step=3, **kw) for c, v in variables.items()}


def test_scanned_glow_equals_unrolled_glow_with_converted_params():
  """Log-density, forward and inverse (values and log-dets) agree; data-dependent init
  inside the scan: step 0 sees the squeezed data (as the unrolled first actnorm), step 1
  its own input."""
  x = jax.random.normal(jax.random.key(0), (2, 4, 4, 2)) * 2.0 + 1.0
  unrolled = Flow(build_flow("glow", **KW))
  scanned = Flow(build_flow("glow", scan_blocks=True, **KW))
  init = lambda flow: jax.jit(lambda x: flow.init(jax.random.key(1), x,
                                                   method=Flow.log_prob))(x)
  initial, scanned_init = init(unrolled), init(scanned)
  loc = scanned_init["params"]["bijector"]["post"]["step"]["layers_0"]["loc"]
  np.testing.assert_allclose(loc[0], initial["params"]["bijector"]["post"]["layers_0"]["loc"],
                             rtol=1e-5, atol=1e-6)
  assert not np.allclose(loc[1], loc[0])

  variables = _perturbed(initial, jax.random.key(2))
  converted = _convert(variables, scan_lib.to_scanned)
  assert (jax.tree_util.tree_structure(converted)
          == jax.tree_util.tree_structure(scanned_init))
  for method in (Flow.log_prob, Flow.forward, Flow.inverse):
    want = jax.jit(lambda v, x: unrolled.apply(v, x, method=method))(variables, x)
    got = jax.jit(lambda v, x: scanned.apply(v, x, method=method))(converted, x)
    jax.tree_util.tree_map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4), got, want)
  restored = _convert(converted, scan_lib.to_unscanned)
  jax.tree_util.tree_map(np.testing.assert_array_equal, restored, variables)


def test_converters_with_layers_without_variables():
  """Glow with permutation="reverse": the middle layer of each step has no variables."""
  unrolled = {"bijector": {"post": {
      f"layers_{3 * i + j}": {"w": np.full((2,), 10 * i + j, np.float32)}
      for i in range(3) for j in (0, 2)}, "split": {"w": np.ones(1)}}}
  scanned = scan_lib.to_scanned(unrolled, chain="post", layers_per_step=3)
  step = scanned["bijector"]["post"]["step"]
  assert sorted(step) == ["layers_0", "layers_2"]
  np.testing.assert_array_equal(step["layers_2"]["w"][:, 0], [2, 12, 22])
  back = scan_lib.to_unscanned(scanned, chain="post", layers_per_step=3)
  jax.tree_util.tree_map(np.testing.assert_array_equal, back, unrolled)
