"""Every bijector checked as mathematics, on tiny shapes ([B, 4, 4, 2] images, [B, 3] vectors).

For each bijector, with its parameters perturbed away from the (often identity)
initialisation so that nothing is trivially true:
  * inverse(forward(x)) == x;
  * log_det of forward == -log_det of inverse (at the corresponding points);
  * log_det == log|det J| with J = jax.jacfwd of the flattened per-example map;
  * jax.jit(forward) == forward;
  * batched == per-example (each row alone).
And at initialisation: couplings, split priors, MADE layers and whole NICE / RealNVP / MAF
flows are exactly the identity; a Glow flow is an affine map (actnorm and 1x1 convs only).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gen_jax import flows
from gen_jax.nets import flow_conditioners as conditioners

IMG = (4, 4, 2)
VEC = (3,)
B = 3


def _key(seed):
  return jax.random.key(seed, impl="rbg")


CASES = {
    "actnorm": (lambda: flows.ActNorm(), IMG),
    "actnorm_vector": (lambda: flows.ActNorm(), VEC),
    "invconv_lu": (lambda: flows.InvConv1x1(lu=True), IMG),
    "invconv_plain": (lambda: flows.InvConv1x1(lu=False), IMG),
    "permute": (lambda: flows.Permute(), IMG),
    "squeeze": (lambda: flows.Squeeze(), IMG),
    "additive_checkerboard_mlp": (lambda: flows.Coupling(
        conditioners.MLPConditioner(width=8, depth=1), mask="checkerboard", scale="additive"), IMG),
    "affine_checkerboard_resnet": (lambda: flows.Coupling(
        conditioners.ResNetConditioner(width=4, num_blocks=1), mask="checkerboard", parity=1,
        scale="exp_tanh"), IMG),
    "affine_channel_resnet": (lambda: flows.Coupling(
        conditioners.ResNetConditioner(width=4, num_blocks=1), mask="channel", scale="exp_tanh"), IMG),
    "glow_coupling": (lambda: flows.Coupling(
        conditioners.ConvConditioner(width=4), mask="channel", scale="sigmoid"), IMG),
    "vector_coupling": (lambda: flows.Coupling(
        conditioners.MLPConditioner(width=8, depth=1), mask="checkerboard", scale="exp_tanh"), VEC),
    "split_prior": (lambda: flows.SplitPrior(learned=True), IMG),
    "learned_prior": (lambda: flows.LearnedPrior(), IMG),
    "maf": (lambda: flows.MaskedAutoregressive(hidden=(8, 8)), VEC),
    "maf_reversed": (lambda: flows.MaskedAutoregressive(hidden=(8,), reverse=True), VEC),
    "inverse_of_coupling": (lambda: flows.Inverse(flows.Coupling(
        conditioners.ConvConditioner(width=4), mask="channel", scale="sigmoid")), IMG),
    "chain": (lambda: flows.Chain([flows.ActNorm(), flows.InvConv1x1(), flows.Coupling(
        conditioners.ConvConditioner(width=4), mask="channel", scale="sigmoid")]), IMG),
    "glow_multiscale": (lambda: flows.build_flow("glow", num_levels=2, depth=1, width=4), IMG),
    "realnvp_multiscale": (lambda: flows.build_flow(
        "realnvp", num_scales=2, width=4, num_blocks=1, couplings_per_scale=1,
        final_couplings=1), IMG),
    "nice": (lambda: flows.build_flow("nice", num_couplings=2, width=8, depth=1), IMG),
}


@functools.lru_cache(maxsize=None)
def _setup(name):
  """(module, perturbed variables, x [B, ...]) for a case."""
  make, shape = CASES[name]
  module = make()
  x = jax.random.normal(_key(0), (B, *shape)) * 0.8 + 0.3
  variables = dict(module.init(_key(1), x, method=module.forward))
  if "params" in variables:
    leaves, tree = jax.tree.flatten(variables["params"])
    keys = jax.random.split(_key(2), len(leaves))
    variables["params"] = jax.tree.unflatten(
        tree, [p + 0.15 * jax.random.normal(k, p.shape) for p, k in zip(leaves, keys)])
  return module, variables, x


def _fwd(module, variables, x):
  return module.apply(variables, x, method=module.forward)


def _inv(module, variables, y):
  return module.apply(variables, y, method=module.inverse)


@pytest.mark.parametrize("name", sorted(CASES))
def test_bijector_properties(name):
  module, variables, x = _setup(name)
  y, ld_fwd = _fwd(module, variables, x)
  assert ld_fwd.shape == (B,), f"log_det must be [B], got {ld_fwd.shape}"
  assert y.size == x.size

  # Round trip and opposite log-dets.
  x_back, ld_inv = _inv(module, variables, y)
  np.testing.assert_allclose(x_back, x, rtol=1e-4, atol=1e-4, err_msg="inverse(forward(x)) != x")
  np.testing.assert_allclose(ld_inv, -ld_fwd, rtol=1e-5, atol=1e-4,
                             err_msg="inverse log_det != -forward log_det")

  # log_det against the Jacobian of one example's flattened map (jitted: op-by-op dispatch
  # of a Jacobian-vector product of a whole flow costs tens of seconds on a CPU).
  def flat_forward(v):
    out, _ = _fwd(module, variables, v.reshape(1, *x.shape[1:]))
    return out.reshape(-1)

  jac = jax.jit(jax.jacfwd(flat_forward))(x[1].reshape(-1))
  _, logabsdet = np.linalg.slogdet(np.asarray(jac, np.float64))
  np.testing.assert_allclose(ld_fwd[1], logabsdet, rtol=1e-4, atol=2e-4,
                               err_msg="log_det != slogdet(jacfwd)")

  # Jit equals eager, in both directions.
  y_jit, ld_jit = jax.jit(functools.partial(_fwd, module))(variables, x)
  np.testing.assert_allclose(y_jit, y, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(ld_jit, ld_fwd, rtol=1e-5, atol=1e-5)
  x_jit, _ = jax.jit(functools.partial(_inv, module))(variables, y)
  np.testing.assert_allclose(x_jit, x_back, rtol=1e-5, atol=1e-5)

  # Batched equals per-example (the jitted forward on one row at a time).
  fwd_jit = jax.jit(functools.partial(_fwd, module))
  for i in range(B):
    yi, ldi = fwd_jit(variables, x[i:i + 1])
    np.testing.assert_allclose(yi[0], y[i], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ldi[0], ld_fwd[i], rtol=1e-5, atol=1e-5)


IDENTITY_AT_INIT = ["additive_checkerboard_mlp", "affine_checkerboard_resnet",
                    "affine_channel_resnet", "glow_coupling", "vector_coupling", "split_prior",
                    "learned_prior", "maf", "maf_reversed", "realnvp_multiscale", "nice"]


@pytest.mark.parametrize("name", IDENTITY_AT_INIT)
def test_zero_initialised_layers_and_flows_start_as_the_identity(name):
  make, shape = CASES[name]
  module = make()
  x = jax.random.normal(_key(3), (B, *shape))
  variables = module.init(_key(4), x, method=module.forward)
  y, log_det = _fwd(module, variables, x)
  np.testing.assert_array_equal(y, x)
  np.testing.assert_allclose(log_det, 0.0, atol=1e-6)


def test_glow_at_init_is_affine_with_a_constant_log_det():
  """Zero-init couplings and priors leave only actnorm and 1x1 convs: an affine map."""
  module = flows.build_flow("glow", num_levels=2, depth=2, width=4)
  x = jax.random.normal(_key(5), (4, *IMG))
  variables = module.init(_key(6), x, method=module.forward)
  f = jax.jit(lambda v: _fwd(module, variables, v))
  (y, ld), (y0, _) = f(x), f(jnp.zeros_like(x))
  a, b = x[:2], x[2:]
  mix, _ = f(0.3 * a + 0.7 * b)
  np.testing.assert_allclose(mix - y0[:2], 0.3 * (y[:2] - y0[:2]) + 0.7 * (y[2:] - y0[2:]),
                             atol=1e-4)
  np.testing.assert_allclose(ld, jnp.full_like(ld, ld[0]), rtol=1e-6)
  assert float(jnp.abs(ld[0])) > 1e-3  # actnorm's data-dependent scale is not the identity


def test_shape_errors_are_clear():
  with pytest.raises(ValueError, match="even height and width"):
    flows.squeeze(jnp.zeros((1, 3, 4, 1)))
  with pytest.raises(ValueError, match="at least 2 channels"):
    flows.make_mask((4, 4, 1), "channel", 0)
  with pytest.raises(ValueError, match="no argument"):
    flows.build_flow("glow", levels=3)
