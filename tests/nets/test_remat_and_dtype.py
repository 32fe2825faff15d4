"""Rematerialisation gives the same values and gradients; bf16 networks keep fp32 params.

Every network with a `remat` flag is checked on a test-sized instance: same parameter
tree, same output and same parameter gradients (float tolerance: XLA may fuse the
recomputed blocks differently) with and without remat, in training mode.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gen_jax import nets
from gen_jax.core import precision
from gen_jax.flows import Flow, build_flow


def _perturbed(params, scale=0.05):
  """Parameters moved off their (partly zero) initialisation, so every block matters."""
  leaves, tree = jax.tree.flatten(params)
  keys = jax.random.split(jax.random.key(7), len(leaves))
  return jax.tree.unflatten(tree, [p + scale * jax.random.normal(k, p.shape, p.dtype)
                                   for p, k in zip(leaves, keys)])


def _image_nets():
  x = jax.random.normal(jax.random.key(0), (2, 8, 8, 3))
  t = jnp.array([0.3, 2.0])
  z = jax.random.normal(jax.random.key(1), (2, 8))
  return {
      "unet": (nets.UNet, dict(ch=8, ch_mult=(1, 2), num_res_blocks=1, attn_resolutions=(4,),
                               num_groups=4, dropout=0.0), (x, t)),
      "ncsnpp": (nets.NCSNpp, dict(ch=8, ch_mult=(1, 2), num_res_blocks=1, num_groups=4,
                                   attn_resolutions=(4,), dropout=0.0), (x, t)),
      "dcgan_g": (nets.NETS.get("dcgan_generator"), dict(out_shape=(8, 8, 3), ch=16), (z,)),
      "dcgan_d": (nets.NETS.get("dcgan_discriminator"), dict(ch=4, batch_norm=True), (x,)),
      "sngan_g": (nets.NETS.get("sngan_generator"), dict(out_shape=(8, 8, 3), ch=8), (z,)),
      "sngan_d": (nets.NETS.get("sngan_discriminator"), dict(ch=8), (x,)),
      "ddgan_unet": (nets.NETS.get("ddgan_unet"), dict(ch=8, ch_mult=(1, 2), num_res_blocks=1,
                                                       attn_resolutions=(4,), z_dim=8,
                                                       num_groups=4), (x, t, z)),
  }


# Compiling each network twice costs seconds; the default suite covers a generator and a
# discriminator (the UNet's blocks use the same per-block `nn.remat`: 48 s, slow).
_SLOW = ("dcgan_d", "sngan_g", "ddgan_unet", "ncsnpp", "unet")


@pytest.mark.parametrize("name", [n if n not in _SLOW else pytest.param(n, marks=pytest.mark.slow)
                                  for n in sorted(_image_nets())])
def test_remat_equals_no_remat(name):
  cls, kwargs, args = _image_nets()[name]
  plain, remat = cls(**kwargs), cls(**kwargs, remat=True)
  variables = plain.init({"params": jax.random.key(2)}, *args, train=False)
  remat_vars = remat.init({"params": jax.random.key(2)}, *args, train=False)
  assert jax.tree.structure(variables) == jax.tree.structure(remat_vars)
  params = _perturbed(variables.pop("params"))
  mutable = list(variables)

  def loss(net, p):
    if mutable:
      out, _ = net.apply({"params": p, **variables}, *args, train=True, mutable=mutable)
    else:
      out = net.apply({"params": p, **variables}, *args, train=True)
    return jnp.sum(jnp.sin(out)), out

  (l0, out0), g0 = jax.jit(jax.value_and_grad(functools.partial(loss, plain), has_aux=True))(
      params)
  (l1, out1), g1 = jax.jit(jax.value_and_grad(functools.partial(loss, remat), has_aux=True))(
      params)
  np.testing.assert_allclose(out1, out0, rtol=1e-5, atol=1e-5)
  for a, b in zip(jax.tree.leaves(g1), jax.tree.leaves(g0), strict=True):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_glow_remat_equals_no_remat():
  x = jax.random.uniform(jax.random.key(0), (2, 8, 8, 3), minval=-1, maxval=1)
  kwargs = dict(num_levels=2, depth=2, width=8)
  plain, remat = Flow(build_flow("glow", **kwargs)), Flow(build_flow("glow", remat=True, **kwargs))
  variables = dict(plain.init({"params": jax.random.key(1)}, x, method=Flow.log_prob))
  params = _perturbed(variables.pop("params"), 0.01)

  def nll(flow, p):
    return -jnp.mean(flow.apply({"params": p, **variables}, x, method=Flow.log_prob))

  l0, g0 = jax.jit(jax.value_and_grad(functools.partial(nll, plain)))(params)
  l1, g1 = jax.jit(jax.value_and_grad(functools.partial(nll, remat)))(params)
  np.testing.assert_allclose(l1, l0, rtol=1e-6)
  for a, b in zip(jax.tree.leaves(g1), jax.tree.leaves(g0), strict=True):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", [pytest.param("unet", marks=pytest.mark.slow),  # 30 s
                                  "sngan_d"])
def test_bf16_networks_keep_float32_parameters_and_outputs(name):
  cls, kwargs, args = _image_nets()[name]
  net = cls(**kwargs, dtype=jnp.bfloat16)
  variables = net.init({"params": jax.random.key(2)}, *args, train=False)
  assert {leaf.dtype for leaf in jax.tree.leaves(variables)} == {jnp.dtype(jnp.float32)}
  out = net.apply(variables, *args, train=False)
  assert out.dtype == jnp.float32
  ref = cls(**kwargs).apply(variables, *args, train=False)
  np.testing.assert_allclose(out, ref, atol=0.05 * float(jnp.abs(ref).max()) + 1e-3)


def test_precision_names_and_errors():
  assert precision.dtype_of("fp32") == jnp.float32
  assert precision.dtype_of("bf16") == jnp.bfloat16
  with pytest.raises(ValueError, match="Unknown config.precision 'fp16'.*fp32, bf16"):
    precision.dtype_of("fp16")
  with pytest.raises(ValueError, match="'pixelcnn' computes in float32 only"):
    nets.build_net("pixelcnn", dtype=jnp.bfloat16)
  with pytest.raises(ValueError, match="'maf' computes in float32 only"):
    build_flow("maf", dtype=jnp.bfloat16)
  assert nets.build_net("unet", dtype=jnp.bfloat16).dtype == jnp.bfloat16
  assert nets.build_net("unet", dtype=jnp.float32).dtype == jnp.float32
