"""gen_jax.nets.conv_transpose.ConvTranspose equals flax.linen.ConvTranspose, faster."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gen_jax.nets.conv_transpose import ConvTranspose, strided_conv_general_dilated

# (kernel, strides, padding, input spatial shape): the DCGAN layer, odd sizes, kernels that
# stride does not divide, a stride larger than the kernel, explicit (lo, hi) pairs, 1-D.
CASES = [
    ((4, 4), (2, 2), "SAME", (7, 7)),
    ((4, 4), (2, 2), "VALID", (7, 5)),
    ((3, 3), (2, 2), "SAME", (5, 6)),
    ((3, 3), (2, 2), "VALID", (5, 5)),
    ((5, 3), (2, 1), "SAME", (5, 6)),
    ((5, 3), (2, 1), "VALID", (4, 3)),
    ((3, 3), (1, 1), "SAME", (5, 6)),
    ((4, 4), (1, 1), "VALID", (3, 5)),
    ((1, 1), (2, 2), "SAME", (3, 3)),
    ((2, 2), (3, 3), "VALID", (4, 4)),
    ((4, 4), (2, 2), ((1, 2), (0, 3)), (5, 4)),
    ((4,), (2,), "SAME", (9,)),
]


def _loss(module):
  # A non-linear function of every output, so that each output's cotangent differs.
  return lambda variables, x: jnp.sum(jnp.sin(module.apply(variables, x)))


def _assert_close(actual, expected):
  scale = float(np.max(np.abs(expected))) + 1e-6
  np.testing.assert_allclose(actual, expected, rtol=0, atol=2e-6 * scale)


@pytest.mark.parametrize("kernel,strides,padding,spatial", CASES)
def test_value_and_gradients_equal_flax(kernel, strides, padding, spatial):
  x = jax.random.normal(jax.random.key(0), (2, *spatial, 3))
  ours, flax_layer = (cls(5, kernel, strides, padding) for cls in (ConvTranspose,
                                                                      nn.ConvTranspose))
  variables = flax_layer.init(jax.random.key(1), x)
  assert (jax.tree.map(jnp.shape, ours.init(jax.random.key(1), x))
          == jax.tree.map(jnp.shape, variables))
  variables = jax.tree.map(lambda v: v + 0.1, variables)  # a non-zero bias too

  @jax.jit  # one compilation per case: eager op-by-op dispatch costs seconds here
  def value_and_grads(variables, x):
    return [(m.apply(variables, x), jax.grad(_loss(m), argnums=(0, 1))(variables, x))
            for m in (ours, flax_layer)]

  (y, grads), (y_ref, grads_ref) = value_and_grads(variables, x)
  assert y.shape == y_ref.shape
  _assert_close(y, y_ref)
  for g, g_ref in zip(jax.tree.leaves(grads), jax.tree.leaves(grads_ref)):
    _assert_close(g, g_ref)


def test_options_match_flax():
  """No bias, transpose_kernel, a mask, extra and missing batch dimensions, bf16."""
  x = jax.random.normal(jax.random.key(0), (2, 3, 5, 5, 4))
  mask = (jax.random.uniform(jax.random.key(2), (3, 3, 6, 4)) > 0.3).astype(jnp.float32)
  for kwargs, inputs in [(dict(use_bias=False), x), (dict(transpose_kernel=True), x),
                         (dict(transpose_kernel=True, mask=mask), x[0, 0]),
                         (dict(dtype=jnp.bfloat16), x[0])]:
    ours = ConvTranspose(6, (3, 3), (2, 2), "SAME", **kwargs)
    ref = nn.ConvTranspose(6, (3, 3), (2, 2), "SAME", **kwargs)
    variables = ref.init(jax.random.key(1), inputs)
    y, y_ref = ours.apply(variables, inputs), ref.apply(variables, inputs)
    assert y.shape == y_ref.shape and y.dtype == y_ref.dtype, kwargs
    tol = 2e-2 if kwargs.get("dtype") == jnp.bfloat16 else 2e-6
    np.testing.assert_allclose(np.asarray(y, np.float32), np.asarray(y_ref, np.float32),
                               atol=tol * float(np.max(np.abs(np.asarray(y_ref, np.float32)))))


def test_gradients_use_no_dilated_convolution():
  """The slow XLA:CPU path is a convolution with lhs_dilation > 1; none is left."""
  layer = ConvTranspose(4, (4, 4), (2, 2), "SAME")
  x = jnp.ones((2, 7, 7, 3))
  variables = layer.init(jax.random.key(0), x)
  jaxpr = jax.make_jaxpr(jax.grad(_loss(layer), argnums=(0, 1)))(variables, x)
  convs = [e for e in jaxpr.jaxpr.eqns if e.primitive.name == "conv_general_dilated"]
  assert len(convs) == 3 * 4  # forward, input and kernel gradient of 4 phases
  for eqn in convs:
    assert set(eqn.params["lhs_dilation"]) == {1}
    assert set(eqn.params["rhs_dilation"]) == {1}
    assert set(eqn.params["window_strides"]) == {1}
  flax_jaxpr = jax.make_jaxpr(jax.grad(_loss(nn.ConvTranspose(4, (4, 4), (2, 2))),
                                       argnums=(0, 1)))(variables, x)
  assert any(set(e.params["lhs_dilation"]) != {1} for e in flax_jaxpr.jaxpr.eqns
             if e.primitive.name == "conv_general_dilated")


@pytest.mark.parametrize("kwargs,error", [
    (dict(padding="CIRCULAR"), NotImplementedError),
    (dict(kernel_dilation=2), NotImplementedError),
    (dict(padding="FULL"), ValueError),
])
def test_unsupported_options_raise(kwargs, error):
  with pytest.raises(error):
    ConvTranspose(2, (3, 3), (2, 2), **kwargs).init(jax.random.key(0), jnp.ones((1, 4, 4, 1)))


@pytest.mark.parametrize("size,kernel,stride,padding", [
    # Even sizes with SAME padding behave like the odd ones (slow: the suite's budget).
    pytest.param(28, 4, 2, "SAME", marks=pytest.mark.slow), (7, 4, 2, "SAME"),
    (9, 3, 2, "VALID"), pytest.param(8, 3, 2, "SAME", marks=pytest.mark.slow),
    (10, 5, 3, ((1, 2), (2, 1))),
])
def test_strided_conv_value_and_gradients_to_second_order_equal_lax(size, kernel, stride,
                                                                    padding):
  """The custom input gradient (a transposed convolution) equals autodiff's, and so does the
  gradient of a gradient penalty through it (R1 and WGAN-GP differentiate it again)."""
  dn = ("NHWC", "HWIO", "NHWC")
  x = jax.random.normal(jax.random.key(0), (2, size, size + 1, 3))
  k = jax.random.normal(jax.random.key(1), (kernel, kernel, 3, 5))
  ref = lambda x, k: jax.lax.conv_general_dilated(x, k, (stride,) * 2, padding,
                                                  dimension_numbers=dn)
  new = lambda x, k: strided_conv_general_dilated(
      x, k, (stride,) * 2, padding,
      dimension_numbers=jax.lax.conv_dimension_numbers(x.shape, k.shape, dn))
  np.testing.assert_array_equal(ref(x, k), new(x, k))
  dy = jax.random.normal(jax.random.key(2), ref(x, k).shape)
  for want, got in zip(jax.vjp(ref, x, k)[1](dy), jax.vjp(new, x, k)[1](dy)):
    np.testing.assert_allclose(got, want, atol=2e-6 * float(jnp.abs(want).max()))
  penalty_grad = lambda f: jax.grad(lambda k: jnp.sum(
      jax.grad(lambda x: jnp.sum(f(x, k) ** 2))(x) ** 2))(k)
  want = penalty_grad(ref)
  np.testing.assert_allclose(penalty_grad(new), want, atol=2e-6 * float(jnp.abs(want).max()))


def test_strided_conv_input_gradient_has_no_dilated_convolution():
  x, k = jnp.ones((1, 8, 8, 2)), jnp.ones((4, 4, 2, 3))
  dn = jax.lax.conv_dimension_numbers(x.shape, k.shape, ("NHWC", "HWIO", "NHWC"))
  f = lambda x: jnp.sum(strided_conv_general_dilated(x, k, (2, 2), "SAME",
                                                     dimension_numbers=dn))
  jaxpr = str(jax.make_jaxpr(jax.grad(f))(x))
  assert "lhs_dilation=(1, 1)" in jaxpr and "lhs_dilation=(2, 2)" not in jaxpr
