"""The UNet options that select other implementations' conventions (diffusers' UNet2DModel).

Their agreement with diffusers itself is tested on stored outputs in
tests/tools/test_import_diffusers.py; here: each option's closed form, and that no option
changes the parameter tree (so today's checkpoints stay loadable).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gen_jax.nets import UNet, layers, tiny_unet_kwargs

_KEY = jax.random.key(0, impl="rbg")
OPTIONS = dict(norm_eps=1e-5, attn_head_dim=8, downsample_padding="symmetric",
               flip_sin_to_cos=True, freq_shift=0.0)


def _diffusers_embedding(t, dim, flip, shift, max_period=10000.0):
  """diffusers' get_timestep_embedding, written out in NumPy."""
  half = dim // 2
  freqs = np.exp(-math.log(max_period) * np.arange(half) / (half - shift))
  args = t[:, None].astype(np.float64) * freqs[None]
  emb = np.concatenate([np.sin(args), np.cos(args)], axis=1)
  return np.concatenate([emb[:, half:], emb[:, :half]], axis=1) if flip else emb


@pytest.mark.parametrize("flip,shift", [(False, 1.0), (True, 0.0), (False, 0.0), (True, 1.0)])
def test_timestep_embedding_order_and_shift(flip, shift):
  t = np.array([0.0, 1.0, 10.0, 500.0, 999.0])
  got = layers.timestep_embedding(jnp.asarray(t), 32, flip_sin_to_cos=flip, freq_shift=shift)
  np.testing.assert_allclose(got, _diffusers_embedding(t, 32, flip, shift), atol=2e-4)


@pytest.mark.parametrize("padding,pads", [("same", ((0, 1), (0, 1))),
                                          ("symmetric", ((1, 1), (1, 1)))])
def test_downsample_padding(padding, pads):
  """The stride-2 conv equals an unpadded conv of the explicitly padded input."""
  rng = np.random.default_rng(0)
  x = rng.standard_normal((2, 8, 8, 4)).astype(np.float32)
  down = layers.Downsample(padding=padding)
  params = jax.tree.map(lambda a: rng.standard_normal(a.shape).astype(np.float32),
                        jax.eval_shape(lambda: down.init(_KEY, x)))
  got = down.apply(params, x)
  kernel = params["params"]["conv"]["kernel"]
  padded = jnp.pad(x, ((0, 0), *pads, (0, 0)))
  want = jax.lax.conv_general_dilated(padded, kernel, (2, 2), "VALID",
                                      dimension_numbers=("NHWC", "HWIO", "NHWC"))
  np.testing.assert_allclose(got, want + params["params"]["conv"]["bias"][None, None, None],
                             atol=1e-5)
  assert got.shape == (2, 4, 4, 4)


def test_downsample_padding_must_be_known():
  with pytest.raises(ValueError, match="padding must be one of"):
    layers.Downsample(padding="reflect").init(_KEY, jnp.zeros((1, 4, 4, 2)))


def test_head_width_sets_heads_per_block():
  """attn_head_dim=d equals num_heads=C/d in a block of C channels."""
  rng = np.random.default_rng(0)
  x = rng.standard_normal((2, 4, 4, 16)).astype(np.float32)
  block = layers.AttentionBlock(num_heads=4, num_groups=4)
  params = jax.tree.map(lambda a: rng.standard_normal(a.shape).astype(np.float32),
                        jax.eval_shape(lambda: block.init(_KEY, x)))
  one_head = layers.AttentionBlock(num_heads=1, num_groups=4).apply(params, x)
  four = block.apply(params, x)
  assert np.abs(np.asarray(four - one_head)).max() > 1e-3
  kwargs = tiny_unet_kwargs(8, attn_head_dim=8)  # ch 16 / 32: 2 and 4 heads
  model = UNet(**kwargs)
  xs, t = jnp.zeros((1, 8, 8, 3)), jnp.zeros((1,))
  variables = jax.eval_shape(lambda: model.init(_KEY, xs, t, train=False))
  assert variables["params"]["mid_attn"]["q"]["kernel"].shape == (32, 32)


def test_options_keep_the_parameter_tree():
  """No option adds, removes or reshapes a parameter: today's checkpoints load unchanged."""
  x, t = jnp.zeros((1, 16, 16, 3)), jnp.zeros((1,))
  shapes = lambda m: jax.tree.map(lambda a: a.shape, jax.eval_shape(
      lambda: m.init(_KEY, x, t, train=False)))
  assert shapes(UNet(**tiny_unet_kwargs(16))) == shapes(UNet(**tiny_unet_kwargs(16, **OPTIONS)))
