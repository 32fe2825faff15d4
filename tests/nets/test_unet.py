"""Tests of the DDPM UNet and its layers (gen_jax.nets)."""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gen_jax.nets import NETS, ResnetBlock, UNet, build_net, layers, tiny_unet_kwargs

B = 2


def _key(seed: int) -> jax.Array:
  # XLA:CPU compiles threefry slowly (a jitted tiny-UNet init takes ~15 s); rbg takes ~4 s.
  return jax.random.key(seed, impl="rbg")


def _init(model: nn.Module, x, t, y=None):
  return jax.jit(lambda k: model.init(k, x, t, y, train=False))(_key(0))


def _perturb(params, seed: int = 1, scale: float = 0.1):
  """Adds Gaussian noise to every parameter, so no branch is zero-initialised any more."""
  rng = np.random.default_rng(seed)
  return jax.tree_util.tree_map(
      lambda p: p + scale * rng.standard_normal(p.shape).astype(np.float32), params)


def _inputs(size: int = 16, channels: int = 3, seed: int = 0):
  rng = np.random.default_rng(seed)
  x = rng.standard_normal((B, size, size, channels)).astype(np.float32)
  t = rng.uniform(0.0, 999.0, (B,)).astype(np.float32)
  return jnp.asarray(x), jnp.asarray(t)


def _param_count(tree) -> int:
  return int(sum(np.prod(p.shape) for p in jax.tree_util.tree_leaves(tree)))


def _abstract_init(model: nn.Module, x, t, y=None):
  """(output, variables) as ShapeDtypeStructs: traces init without compiling or computing."""
  return jax.eval_shape(lambda: model.init_with_output(_key(0), x, t, y, train=False))


def _random_variables(model: nn.Module, x, t, y=None, seed: int = 1):
  """Variables with random values everywhere (no zero-initialised branch), made without init."""
  zeros = jax.tree_util.tree_map(lambda a: np.zeros(a.shape, a.dtype),
                                 _abstract_init(model, x, t, y)[1])
  return {"params": _perturb(zeros["params"], seed, scale=0.3)}


@pytest.fixture(scope="module")
def uncond():
  """A tiny unconditional UNet on 16x16x3: model, jitted apply, init and perturbed variables."""
  model = UNet(**tiny_unet_kwargs(16))
  x, t = _inputs()
  variables = _init(model, x, t)
  apply = jax.jit(model.apply, static_argnames="train")
  return model, apply, variables, {"params": _perturb(variables["params"])}


@pytest.fixture(scope="module")
def cond():
  """A tiny 10-class conditional UNet on 8x8x1: model, jitted apply, random variables."""
  model = UNet(**tiny_unet_kwargs(8, num_classes=10))
  x, t = _inputs(8, 1)
  apply = jax.jit(model.apply, static_argnames="train")
  return model, apply, _random_variables(model, x, t, jnp.zeros((B,), jnp.int32))


@pytest.mark.parametrize("size,in_ch,out_ch,num_classes", [
    (8, 1, None, 0), (8, 3, None, 10), (16, 3, None, 0), (16, 1, None, 10),
    (8, 3, 1, 0), (16, 1, 3, 10),
])
def test_output_shape_and_dtype(size, in_ch, out_ch, num_classes):
  model = UNet(**tiny_unet_kwargs(size, out_channels=out_ch, num_classes=num_classes))
  x, t = _inputs(size, in_ch)
  y = jnp.arange(B) if num_classes else None
  out, _ = _abstract_init(model, x, t, y)
  assert out.shape == (B, size, size, out_ch or in_ch)
  assert out.dtype == jnp.float32


def test_bfloat16_compute_keeps_float32_params_and_output():
  model = UNet(**tiny_unet_kwargs(8, dtype=jnp.bfloat16, num_heads=2))
  out, variables = _abstract_init(model, *_inputs(8))
  assert all(p.dtype == jnp.float32 for p in jax.tree_util.tree_leaves(variables))
  assert out.dtype == jnp.float32


@pytest.mark.parametrize("dim", [8, 7])
def test_timestep_embedding_matches_numpy(dim):
  t = np.array([0.0, 1.0, 2.5, 999.0 * 0.3217], np.float32)
  half = dim // 2
  freqs = np.exp(-np.log(10000.0) * np.arange(half) / (half - 1))
  args = t[:, None] * freqs[None, :]
  expected = np.concatenate([np.sin(args), np.cos(args), np.zeros((len(t), dim % 2))], axis=1)
  got = layers.timestep_embedding(jnp.asarray(t), dim)
  assert got.shape == (len(t), dim) and got.dtype == jnp.float32
  np.testing.assert_allclose(np.asarray(got), expected, atol=1e-4)
  if dim % 2:
    np.testing.assert_array_equal(np.asarray(got[:, -1]), 0.0)


def test_output_is_zero_at_init_and_not_after_perturbation(uncond):
  _, apply, variables, perturbed = uncond
  x, t = _inputs()
  out = apply(variables, x, t, train=False)
  np.testing.assert_array_equal(np.asarray(out), 0.0)
  out = apply(perturbed, x, t, train=False)
  assert float(jnp.abs(out).mean()) > 1e-3


def test_time_matters(uncond):
  _, apply, _, params = uncond
  x, t = _inputs()
  a = apply(params, x, t, train=False)
  b = apply(params, x, t + 10.5, train=False)
  assert float(jnp.abs(a - b).max()) > 1e-4


def test_class_conditioning_matters(cond):
  model, apply, params = cond
  x, t = _inputs(8, 1)
  outs = [apply(params, x, t, jnp.full((B,), label), train=False)
          for label in (0, 1, model.num_classes)]  # num_classes is the null label
  for i in range(3):
    for j in range(i):
      assert float(jnp.abs(outs[i] - outs[j]).max()) > 1e-4
  assert params["params"]["label_emb"]["embedding"].shape == (11, 4 * model.ch)


def test_dropout(cond):
  _, apply, params = cond
  x, t = _inputs(8, 1)
  y = jnp.array([0, 1])
  run = lambda train, seed: np.asarray(
      apply(params, x, t, y, train=train, rngs={"dropout": _key(seed)}))
  assert np.abs(run(True, 1) - run(True, 2)).max() > 1e-4
  np.testing.assert_array_equal(run(False, 1), run(False, 2))
  np.testing.assert_array_equal(run(False, 1), np.asarray(apply(params, x, t, y, train=False)))


@pytest.mark.parametrize("attn_res,attn_level", [(8, 1), (16, 0)])
def test_attention_only_at_configured_resolution(attn_res, attn_level):
  model = UNet(**tiny_unet_kwargs(16, attn_resolutions=(attn_res,)))
  x, t = _inputs(16)
  params = _abstract_init(model, x, t)[1]["params"]
  attn = {name for name in params if "attn" in name}
  expected = {"mid_attn", f"down_{attn_level}_attn_0"}
  expected |= {f"up_{attn_level}_attn_{j}" for j in range(2)}
  assert attn == expected
  assert set(params["mid_attn"]) == {"norm", "q", "k", "v", "proj_out"}


def test_no_attention_when_resolutions_empty():
  model = UNet(**tiny_unet_kwargs(16, attn_resolutions=()))
  x, t = _inputs(16)
  params = _abstract_init(model, x, t)[1]["params"]
  assert [name for name in params if "attn" in name] == ["mid_attn"]


def test_jit_matches_eager():
  # Eager apply compiles every op separately, so this uses a micro model on 4x4 images.
  model = UNet(ch=8, ch_mult=(1, 2), num_res_blocks=1, attn_resolutions=(2,), num_groups=4,
               num_classes=3)
  x, t = _inputs(4, 1)
  y = jnp.array([2, 3])
  params = _random_variables(model, x, t, y)
  eager = model.apply(params, x, t, y, train=False)
  jitted = jax.jit(lambda p: model.apply(p, x, t, y, train=False))(params)
  np.testing.assert_allclose(np.asarray(jitted), np.asarray(eager), atol=1e-5, rtol=1e-5)


def test_resample_and_block_shapes_without_conv_or_emb():
  x = jnp.ones((B, 8, 8, 4))
  down = layers.Downsample(with_conv=False)
  assert down.init(_key(0), x) == {}
  np.testing.assert_array_equal(np.asarray(down.apply({}, x)), 1.0)
  up = layers.Upsample(with_conv=False)
  assert up.apply({}, x).shape == (B, 16, 16, 4)
  block = ResnetBlock(out_channels=8, num_groups=4, skip_rescale=True)
  out, variables = jax.jit(
      lambda k: block.init_with_output(k, x, None, train=False))(_key(0))
  assert out.shape == (B, 8, 8, 8) and "emb_proj" not in variables["params"]
  # Zero-initialised conv2: the block is its (rescaled) 1x1 skip at init.
  skip = variables["params"]["skip"]
  expected = (x @ skip["kernel"][0, 0] + skip["bias"][None, None, None, :]) / math.sqrt(2.0)
  np.testing.assert_allclose(np.asarray(out), np.asarray(expected), atol=1e-5)


def test_error_when_size_not_divisible():
  model = UNet(**tiny_unet_kwargs(16))
  x, t = _inputs(15)
  with pytest.raises(ValueError, match=r"divisible by 2.*H=15"):
    model.init(_key(0), x, t, train=False)


def test_error_on_bad_rank_and_t_shape():
  model = UNet(**tiny_unet_kwargs(8))
  x, t = _inputs(8)
  with pytest.raises(ValueError, match=r"\[B, H, W, C\]"):
    model.init(_key(0), x[0], t, train=False)
  with pytest.raises(ValueError, match=r"t of shape \[B\]"):
    model.init(_key(0), x, t[0], train=False)


def test_error_on_missing_or_unexpected_labels():
  x, t = _inputs(8)
  conditional = UNet(**tiny_unet_kwargs(8, num_classes=10))
  with pytest.raises(ValueError, match="num_classes=10 and needs labels y"):
    conditional.init(_key(0), x, t, train=False)
  with pytest.raises(ValueError, match="integer labels y of shape"):
    conditional.init(_key(0), x, t, jnp.zeros((B, 1), jnp.int32), train=False)
  unconditional = UNet(**tiny_unet_kwargs(8))
  with pytest.raises(ValueError, match="num_classes=0"):
    unconditional.init(_key(0), x, t, jnp.zeros((B,), jnp.int32), train=False)


def test_error_on_group_norm_mismatch():
  x = jnp.ones((1, 4, 4, 12))
  with pytest.raises(ValueError, match="12 channels are not divisible into 8 groups"):
    ResnetBlock(num_groups=8).init(_key(0), x, None, train=False)
  model = UNet(**tiny_unet_kwargs(8, ch=12))
  with pytest.raises(ValueError, match="12 channels"):
    _abstract_init(model, *_inputs(8))


def test_build_net():
  assert "unet" in NETS
  model = build_net("unet", **tiny_unet_kwargs(8, ch_mult=[1, 2]))
  assert isinstance(model, UNet) and model.ch == 16
  assert model.ch_mult == (1, 2) and hash(model) == hash(build_net("unet", **tiny_unet_kwargs(8)))
  with pytest.raises(ValueError, match=r"'chmult'.*'unet'.*ch_mult"):
    build_net("unet", ch=16, chmult=(1, 2))
  with pytest.raises(KeyError, match="unet"):
    build_net("unte")


def test_cifar10_parameter_count():
  model = UNet()  # defaults: the DDPM CIFAR-10 model
  x = jax.ShapeDtypeStruct((1, 32, 32, 3), jnp.float32)
  t = jax.ShapeDtypeStruct((1,), jnp.float32)
  variables = jax.eval_shape(
      lambda x, t: model.init(_key(0), x, t, train=False), x, t)
  count = _param_count(variables)
  assert abs(count - 35.7e6) / 35.7e6 < 0.01, count
  # The exact count of the reference implementation (diffusion_tf and its PyTorch ports).
  assert count == 35_746_307
