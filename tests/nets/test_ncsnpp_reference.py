"""NCSN++ / DDPM++ against the reference code (yang-song/score_sde, `models/ncsnpp.py`).

* The CIFAR-10 networks of the reference configs have the reference's exact parameter counts
  (`jax.eval_shape`, nothing compiled). The counts were measured by building the reference
  `NCSNpp` (flax linen) from `configs/{ve,vp,subvp}/cifar10_*_continuous.py`.
* A tiny network with deterministic weights reproduces outputs of the reference module run
  with the same weights (copied in creation order) and inputs.
* The structural points that once differed: one attention block per resolution level on the
  up path, the "input_skip" combine is a plain sum, the "residual" input pyramid, GroupNorm
  groups min(C // 4, 32), and the 0.1 init scale of the attention projections.
"""

from __future__ import annotations

import dataclasses
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gen_jax.nets import NCSNpp, build_net, layers
from tests.train.helpers import load_config

# The reference CIFAR-10 model options (configs/{ve,vp,subvp}/cifar10_*_continuous.py of
# yang-song/score_sde), in gen_jax's names.
_NCSNPP = dict(ch=128, ch_mult=(1, 2, 2, 2), attn_resolutions=(16,), dropout=0.1,
               resblock_type="biggan", resamp_with_conv=True, skip_rescale=True,
               progressive_combine="sum", num_groups=32, min_group_size=4)
REFERENCE = {
    "ve_ncsnpp_continuous": dict(
        _NCSNPP, num_res_blocks=4, embedding_type="fourier", fourier_scale=16.0, fir=True,
        progressive="none", progressive_input="residual"),
    "vp_ddpmpp_continuous": dict(
        _NCSNPP, num_res_blocks=4, embedding_type="positional", fir=False, progressive="none",
        progressive_input="none"),
}
REFERENCE["ve_ncsnpp_deep_continuous"] = dict(REFERENCE["ve_ncsnpp_continuous"],
                                              num_res_blocks=8)
REFERENCE["subvp_ddpmpp_deep_continuous"] = dict(REFERENCE["vp_ddpmpp_continuous"],
                                                 num_res_blocks=8)
# Parameter counts of the reference modules for 32x32x3 images.
REFERENCE_COUNTS = {
    "ve_ncsnpp_continuous": 62_758_915,
    "ve_ncsnpp_deep_continuous": 107_587_075,
    "vp_ddpmpp_continuous": 61_804_419,
    "subvp_ddpmpp_deep_continuous": 106_632_579,
}


def _param_shapes(net, x, t):
  return jax.eval_shape(lambda: net.init(jax.random.PRNGKey(0), x, t, train=False))["params"]


@pytest.mark.parametrize("variant", [
    "ve_ncsnpp_continuous",
    pytest.param("ve_ncsnpp_deep_continuous", marks=pytest.mark.slow),
    pytest.param("vp_ddpmpp_continuous", marks=pytest.mark.slow),
    "subvp_ddpmpp_deep_continuous",
])
def test_cifar10_parameter_counts_equal_the_reference(variant):
  net = build_net("ncsnpp", **REFERENCE[variant])
  params = _param_shapes(net, jnp.zeros((1, 32, 32, 3)), jnp.ones((1,)))
  assert sum(math.prod(p.shape) for p in jax.tree.leaves(params)) == REFERENCE_COUNTS[variant]


@pytest.mark.parametrize("variant", [
    "ve_ncsnpp_continuous",
    "vp_ddpmpp_continuous",
])
def test_cifar10_configs_use_the_reference_options(variant):
  model = dict(load_config("score_sde/cifar10.py", f"variant={variant}").model)
  defaults = {f.name: f.default for f in dataclasses.fields(NCSNpp)}
  for key, want in REFERENCE[variant].items():
    got = model.get(key, defaults[key])
    got = tuple(got) if isinstance(want, tuple) else got
    assert got == want, f"{key}: config {got!r}, reference {want!r}"


# ---------------------------------------------------------------------------------------
# Forward pass against reference values.

CANONICAL = {"W": "kernel", "weight": "kernel", "b": "bias"}  # the reference's NIN / Conv2d


def param_shapes_in_call_order(module, *args, **kwargs):
  """`module`'s parameter shapes (by `jax.eval_shape`) and leaf paths in creation order.

  Modules are ordered by their first call; the leaves of one module by canonical name, so
  that a reference NIN (W, b) lines up with a Dense / 1x1 conv (bias, kernel).
  """
  order = []

  def interceptor(next_fun, a, kw, context):
    path = tuple(context.module.scope.path)
    if context.method_name == "__call__" and path not in order:
      order.append(path)
    return next_fun(*a, **kw)

  with nn.intercept_methods(interceptor):
    shapes = jax.eval_shape(lambda: module.init(*args, **kwargs))["params"]
  leaves = []
  for path in order:
    node = shapes
    for key in path:
      node = node.get(key, {})
    direct = [k for k, v in node.items() if not isinstance(v, dict)]
    leaves += [path + (k,) for k in sorted(direct, key=lambda k: CANONICAL.get(k, k))]
  return shapes, leaves


def deterministic_params(shapes, leaves):
  """Leaf i (creation order) of shape s gets 0.3 sin(0.7 j + i), j its flat index."""
  params = jax.tree.map(lambda s: s, shapes)  # a copy of the nested dicts
  for i, path in enumerate(leaves):
    node = params
    for key in path[:-1]:
      node = node[key]
    shape = node[path[-1]].shape
    values = 0.3 * np.sin(0.7 * np.arange(math.prod(shape)) + i)
    node[path[-1]] = values.reshape(shape).astype(np.float32)
  return params


TINY = dict(ch=8, ch_mult=(1, 2), num_res_blocks=1, attn_resolutions=(4,), dropout=0.1,
            resblock_type="biggan", skip_rescale=True)
# name: (options, conditioning t, reference outputs out[:, 1::2, 3, :] of score_sde's NCSNpp
# with the same weights and inputs; nf=8, ch_mult=(1, 2), 1 block, attention at 4x4,
# data.centered=True, scale_by_sigma=False)
FORWARD_CASES = {
    "ncsnpp": (dict(TINY, embedding_type="fourier", fourier_scale=16.0, fir=True,
                    progressive="none", progressive_input="residual"),
               (0.5, 10.0), [
                [[-0.257228, -0.386027, -0.333272],
                 [-0.324217, -0.395708, -0.281091],
                 [-0.260723, -0.199587, -0.044582],
                 [-0.229771, -0.215500, -0.099875]],
                [[-0.312318, -0.440052, -0.360822],
                 [-0.306300, -0.275068, -0.114467],
                 [-0.222374, -0.200167, -0.083818],
                 [-0.231420, -0.294522, -0.219105]]]),
    "ddpmpp": (dict(TINY, embedding_type="positional", fir=False, progressive="none",
                    progressive_input="none"),
               (3.0, 250.0), [
                [[0.239879, 0.289834, 0.203475],
                 [0.295325, 0.326421, 0.203996],
                 [0.248946, 0.203466, 0.062294],
                 [0.310846, 0.265388, 0.095113]],
                [[0.268124, 0.323444, 0.226643],
                 [0.284288, 0.288022, 0.156295],
                 [0.287364, 0.217308, 0.045049],
                 [0.266324, 0.296212, 0.186786]]]),
}


def tiny_inputs(t):
  x = jnp.asarray(np.sin(0.3 * np.arange(2 * 8 * 8 * 3)).reshape(2, 8, 8, 3), jnp.float32)
  return x, jnp.asarray(t, jnp.float32)


@pytest.mark.parametrize("case", list(FORWARD_CASES))
def test_tiny_forward_pass_equals_the_reference(case):
  options, t, expected = FORWARD_CASES[case]
  net = build_net("ncsnpp", **options)
  x, t = tiny_inputs(t)
  shapes, leaves = param_shapes_in_call_order(net, jax.random.PRNGKey(0), x, t, train=False)
  params = deterministic_params(shapes, leaves)
  out = jax.jit(lambda p: net.apply({"params": p}, x, t, train=False))(params)
  np.testing.assert_allclose(out[:, 1::2, 3, :], np.asarray(expected), rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------------------------------
# The structural points, on tiny networks.

def test_attention_once_per_level_on_the_up_path():
  """The reference attends after every down-path block but once per up-path level."""
  net = build_net("ncsnpp", ch=8, ch_mult=(1, 2, 2), num_res_blocks=2, attn_resolutions=(8, 4),
                  fir=False, progressive_input="none")
  params = _param_shapes(net, jnp.zeros((1, 16, 16, 3)), jnp.ones((1,)))
  attention = [name for name, sub in params.items() if "q" in sub]
  for level, size in enumerate((16, 8, 4)):
    down = [n for n in attention if n.startswith(f"down_{level}_")]
    up = [n for n in attention if n.startswith(f"up_{level}_")]
    want = size in (8, 4)
    assert len(down) == 2 * want and len(up) == want, (level, down, up)
  assert "mid_attn" in attention


def _trace(net, x, t):
  """{module name: (first positional input, output)} of the first call of each named module
  when net is applied (eagerly) with deterministic weights."""
  params = deterministic_params(*param_shapes_in_call_order(net, jax.random.PRNGKey(0), x, t,
                                                            train=False))
  calls = {}

  def interceptor(next_fun, args, kwargs, context):
    out = next_fun(*args, **kwargs)
    if context.method_name == "__call__" and context.module.name:
      calls.setdefault(context.module.name, (args[0] if args else None, out))
    return out

  with nn.intercept_methods(interceptor):
    net.apply({"params": params}, x, t, train=False)
  return calls


@pytest.mark.parametrize("progressive_input,combine", [
    ("input_skip", "sum"), ("input_skip", "cat"), ("residual", "sum")])
def test_input_pyramid_combines_as_the_reference(progressive_input, combine):
  """input_skip: 1x1 conv of the downsampled image plus (or concatenated with) the features,
  not rescaled; residual: (strided conv of the pyramid + features) / sqrt(2)."""
  extra = {} if combine == "sum" else dict(progressive_combine=combine)  # "sum": the default
  net = build_net("ncsnpp", ch=8, ch_mult=(1, 2), num_res_blocks=1, attn_resolutions=(),
                  progressive="output_skip", progressive_input=progressive_input, **extra)
  x = jax.random.normal(jax.random.PRNGKey(1), (2, 8, 8, 3))
  calls = _trace(net, x, jnp.asarray([0.5, 5.0]))
  h = calls["down_0_resample"][1]
  combined = calls["down_1_block_0"][0]
  if progressive_input == "input_skip":
    skip = calls["down_0_input_skip"][1]
    want = skip + h if combine == "sum" else jnp.concatenate([skip, h], axis=-1)
  else:
    want = (calls["down_0_input_residual"][1] + h) / math.sqrt(2.0)
  np.testing.assert_allclose(combined, want, rtol=1e-6, atol=1e-6)


def test_group_count_is_min_of_quarter_channels_and_32():
  for channels in (4, 8, 16, 64, 128, 256, 512):
    norm = layers.group_norm(channels, 32, dtype=jnp.float32, name="n", min_group_size=4)
    assert norm.num_groups == min(channels // 4, 32)
  assert layers.group_norm(16, 32, dtype=jnp.float32, name="n").num_groups == 16  # DDPM


def test_attention_and_nin_shortcut_init_scale_is_a_tenth():
  """score_sde's NIN layers (attention q, k, v; the DDPM++ block's shortcut) use variance
  scale 0.1; NCSNpp passes that to its blocks."""
  scales = []

  def interceptor(next_fun, args, kwargs, context):
    module = context.module
    if isinstance(module, layers.AttentionBlock):
      scales.append(("attention", module.qkv_init_scale))
    if isinstance(module, layers.ResnetBlock):
      scales.append(("resnet", module.skip_init_scale))
    return next_fun(*args, **kwargs)

  for block_type, resnet_scale in (("ddpm", 0.1), ("biggan", 1.0)):
    scales.clear()
    net = build_net("ncsnpp", ch=8, ch_mult=(1, 2), num_res_blocks=1, attn_resolutions=(4,),
                    resblock_type=block_type, fir=False, progressive_input="none")
    with nn.intercept_methods(interceptor):
      _param_shapes(net, jnp.zeros((1, 8, 8, 3)), jnp.ones((1,)))
    assert set(scales) == {("attention", 0.1), ("resnet", resnet_scale)}, block_type

  x = jnp.zeros((1, 2, 2, 16))
  attention = layers.AttentionBlock(num_groups=4, qkv_init_scale=0.1)
  resnet = layers.ResnetBlock(out_channels=32, num_groups=4, skip_init_scale=0.1)
  params = jax.jit(lambda key: (attention.init(key, x)["params"],
                                resnet.init(key, x, None, train=False)["params"]))(
                                    jax.random.PRNGKey(0))
  for kernel in (params[0]["q"]["kernel"], params[0]["v"]["kernel"], params[1]["skip"]["kernel"]):
    fan_in, fan_out = math.prod(kernel.shape[:-1]), kernel.shape[-1]
    bound = math.sqrt(3 * 0.1 / ((fan_in + fan_out) / 2))  # uniform(-bound, bound)
    assert float(jnp.max(jnp.abs(kernel))) <= bound
    assert float(jnp.std(kernel)) > 0.8 * bound / math.sqrt(3)
