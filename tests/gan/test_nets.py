"""GAN networks: spectral norm converges to the top singular value, conditional batch norm
starts as the identity affine map, and every registered network has the right shapes."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gen_jax import nets
from gen_jax.nets import gan as gan_nets


def test_spectral_norm_estimate_converges_to_the_largest_singular_value():
  rng = np.random.default_rng(0)
  kernel = rng.normal(size=(6, 4)).astype(np.float32) * 3.0
  sigma_svd = np.linalg.svd(kernel, compute_uv=False)[0]
  layer = nn.SpectralNorm(nn.Dense(4, use_bias=False), collection_name=gan_nets.SPECTRAL)
  x = jnp.asarray(rng.normal(size=(3, 6)).astype(np.float32))
  variables = layer.init(jax.random.key(0), x, update_stats=False)
  params = jax.tree.map(lambda _: jnp.asarray(kernel), variables["params"])  # the one kernel
  spectral = variables[gan_nets.SPECTRAL]

  @jax.jit
  def step(spectral):
    y, new = layer.apply({"params": params, gan_nets.SPECTRAL: spectral}, x,
                         update_stats=True, mutable=[gan_nets.SPECTRAL])
    return y, new[gan_nets.SPECTRAL]

  sigmas = []
  for _ in range(30):
    y, spectral = step(spectral)
    sigmas.append(float(_sigma(spectral)))
  assert abs(sigmas[0] - sigma_svd) > 1e-3 * sigma_svd  # it starts away from the answer
  np.testing.assert_allclose(sigmas[-1], sigma_svd, rtol=1e-5)
  # The layer then computes x @ (W / sigma_max).
  np.testing.assert_allclose(np.asarray(y), np.asarray(x) @ kernel / sigma_svd, rtol=1e-4,
                             atol=1e-5)
  # Frozen (update_stats=False): the state is not written.
  _, frozen = layer.apply({"params": params, gan_nets.SPECTRAL: spectral}, x,
                          update_stats=False, mutable=[gan_nets.SPECTRAL])
  for a, b in zip(jax.tree.leaves(frozen[gan_nets.SPECTRAL]), jax.tree.leaves(spectral)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def _sigma(spectral):
  """The one `.../sigma` entry of a spectral-norm collection."""
  (value,) = [v for p, v in jax.tree_util.tree_flatten_with_path(spectral)[0]
              if "sigma" in jax.tree_util.keystr(p)]
  return value


@pytest.mark.parametrize("num_classes", [0, 3])
def test_conditional_batch_norm_is_the_identity_affine_map_at_init(num_classes):
  cbn = gan_nets.ConditionalBatchNorm(num_classes)
  x = jnp.asarray(np.random.default_rng(1).normal(2.0, 3.0, size=(16, 4, 4, 5)), jnp.float32)
  y = jnp.arange(16) % 3 if num_classes else None
  variables = cbn.init(jax.random.key(0), x, y, train=False)
  out, _ = cbn.apply(variables, x, y, train=True, mutable=["batch_stats"])
  mean = np.mean(np.asarray(x), axis=(0, 1, 2))
  var = np.var(np.asarray(x), axis=(0, 1, 2))
  np.testing.assert_allclose(np.asarray(out), (np.asarray(x) - mean) / np.sqrt(var + 1e-5),
                             rtol=1e-4, atol=1e-4)
  # Evaluation mode at init: running mean 0, variance 1.
  out_eval = cbn.apply(variables, x, y, train=False)
  np.testing.assert_allclose(np.asarray(out_eval), np.asarray(x) / np.sqrt(1 + 1e-5), rtol=1e-6)
  if num_classes:  # every class gets the same (identity) map at init
    out_other = cbn.apply(variables, x, (y + 1) % 3, train=True, mutable=["batch_stats"])[0]
    np.testing.assert_allclose(np.asarray(out_other), np.asarray(out), rtol=1e-6)


# The convolutional networks run in the smoke configs (tests/train/test_smoke_configs.py);
# compiling them costs tens of CPU-seconds each, so the unit tests use MLPs where the code
# under test (conditional batch norm, projection head, time embedding) is shared.
GENERATORS = [("mlp_generator", dict(hidden=(8,), batch_norm=True))]
DISCRIMINATORS = [("mlp_discriminator", dict(hidden=(8,), spectral_norm=True))]


def _init_apply(net, *args):
  """(variables, output with train=False), each in one jitted program."""
  variables = jax.jit(lambda k: net.init(k, *args, train=False))(jax.random.key(1))
  return variables, jax.jit(lambda v: net.apply(v, *args, train=False))(variables)


@pytest.mark.parametrize("name,kwargs", GENERATORS)
def test_conditional_generators_make_samples_of_the_data_shape(name, kwargs):
  shape = (2,) if name.startswith("mlp") else (28, 28, 1)
  net = nets.build_net(name, out_shape=shape, num_classes=10, **kwargs)
  z = jax.random.normal(jax.random.key(0), (4, 8))
  variables, out = _init_apply(net, z, jnp.arange(4))
  assert out.shape == (4, *shape)
  assert "batch_stats" in variables


@pytest.mark.parametrize("name,kwargs", DISCRIMINATORS)
def test_projection_discriminator_adds_the_label_inner_product(name, kwargs):
  shape = (3,) if name.startswith("mlp") else (8, 8, 3)
  net = nets.build_net(name, num_classes=5, time_embed_dim=8, **kwargs)
  x = jax.random.normal(jax.random.key(0), (4, *shape))
  t = jnp.array([0.0, 1.0, 2.0, 3.0])
  y = jnp.array([0, 1, 2, 3])
  variables, out = _init_apply(net, x, y, t)
  assert out.shape == (4,)
  # Zeroing the class embedding leaves the unconditional logit: the difference is the
  # projection term, which changes with the label.
  params = jax.tree_util.tree_map_with_path(
      lambda p, v: jnp.zeros_like(v) if "embed" in jax.tree_util.keystr(p) else v,
      variables["params"])
  apply = jax.jit(lambda v, y: net.apply(v, x, y, t, train=False))
  plain = apply({**variables, "params": params}, y)
  other = apply(variables, (y + 1) % 5)
  assert not np.allclose(np.asarray(out), np.asarray(plain))
  assert not np.allclose(np.asarray(out), np.asarray(other))
  with pytest.raises(ValueError, match="time_embed_dim"):
    jax.eval_shape(lambda v: net.apply(v, x, y, None, train=False), variables)


def test_ddgan_generator_predicts_data_of_the_input_shape():
  for name, kwargs, shape in [("ddgan_mlp", dict(hidden=(8,), z_dim=4, embed_dim=8), (2,))]:
    net = nets.build_net(name, **kwargs)
    x = jnp.ones((2, *shape))
    args = (x, jnp.array([0.0, 3.0]), jnp.ones((2, 4)))
    assert _init_apply(net, *args)[1].shape == (2, *shape)


def test_num_upsamplings():
  assert [gan_nets.num_upsamplings(s) for s in (32, 28, 8, 16, 64)] == [3, 2, 1, 2, 4]


@pytest.mark.parametrize("name, kwargs, shape, bound", [
    # The reference generator ends with tanh (ncsnpp_generator_adagn.py): x0 in [-1, 1].
    ("ddgan_unet", dict(ch=8, ch_mult=(1,), num_res_blocks=1, attn_resolutions=(),
                        z_dim=4, n_mlp=1, num_groups=4, mid_attention=False), (8, 8, 1), 1.0),
    ("ddgan_mlp", dict(hidden=(8,), z_dim=4, embed_dim=8, output_bound=3.0), (2,), 3.0)])
def test_ddgan_generators_bound_their_x0_prediction_with_tanh(name, kwargs, shape, bound):
  net = nets.build_net(name, **kwargs)
  assert net.output_bound == bound
  x = 50.0 * jax.random.normal(jax.random.key(0), (4, *shape))  # far outside the data range
  args = (x, jnp.array([0.0, 1.0, 2.0, 3.0]), jax.random.normal(jax.random.key(1), (4, 4)))
  variables = jax.jit(lambda: net.init(jax.random.key(2), *args, train=False))()
  bounded = net.apply(variables, *args, train=False)
  raw = net.clone(output_bound=0.0).apply(variables, *args, train=False)  # same parameters
  np.testing.assert_allclose(np.asarray(bounded), bound * np.tanh(np.asarray(raw) / bound),
                             rtol=1e-5, atol=1e-6)
  assert float(jnp.max(jnp.abs(raw))) > bound  # not vacuous: the bound bites
  assert float(jnp.max(jnp.abs(bounded))) <= bound


# ------------------------------------------------------------------------------ DDGAN options
# (per-step networks and zero-initialised conditioning for the 25-Gaussian toy DDGAN)


@pytest.mark.parametrize("name, kwargs, make_args", [
    ("ddgan_mlp", dict(hidden=(8,), z_dim=3, per_step=3, activation="relu", z_mapping=False,
                       output_bound=3.0),
     lambda x, t: (x, t, jnp.ones((x.shape[0], 3)))),
    ("mlp_discriminator", dict(hidden=(8, 8), per_step=3, zero_init_condition=True),
     lambda x, t: (jnp.concatenate([x, -x], -1), None, t))])
def test_per_step_networks_apply_the_head_of_each_rows_step(name, kwargs, make_args):
  """Row b's output is head t[b]'s alone: equal to a batch where every row has that t, and
  unchanged when the other heads' parameters change."""
  net = nets.build_net(name, **kwargs)
  x = jax.random.normal(jax.random.key(0), (6, 2))
  t = jnp.array([0.0, 1.0, 2.0, 2.0, 1.0, 0.0])
  args = make_args(x, t)
  variables, out = _init_apply(net, *args)
  apply = jax.jit(lambda v, a: net.apply(v, *a, train=False))
  for step in range(3):
    rows = np.asarray(t) == step
    same = apply(variables, make_args(x, jnp.full_like(t, step)))
    np.testing.assert_allclose(np.asarray(out)[rows], np.asarray(same)[rows], rtol=1e-6)
    others = jax.tree_util.tree_map(  # heads' parameters carry the step on axis 0
        lambda v: v.at[jnp.arange(3) != step].add(1.0), variables["params"])
    moved = apply({**variables, "params": others}, args)
    np.testing.assert_allclose(np.asarray(moved)[rows], np.asarray(out)[rows], rtol=1e-6)
    assert not np.allclose(np.asarray(moved)[~rows], np.asarray(out)[~rows])


def test_zero_initialised_discriminator_ignores_condition_and_time_at_init():
  """zero_init_condition / zero_init_time: at init D([x_prev, x_t], t) depends on x_prev
  alone; after a change of those kernels it depends on x_t and t too (not vacuous)."""
  net = nets.build_net("mlp_discriminator", hidden=(8, 8), time_embed_dim=8,
                       zero_init_time=True, zero_init_condition=True)
  x_prev, x_t = jax.random.normal(jax.random.key(0), (2, 5, 2))
  t = jnp.arange(5.0)
  variables, out = _init_apply(net, jnp.concatenate([x_prev, x_t], -1), None, t)
  apply = jax.jit(lambda v, xt, t: net.apply(v, jnp.concatenate([x_prev, xt], -1), None, t,
                                             train=False))
  np.testing.assert_allclose(np.asarray(apply(variables, 3.0 * x_t + 1.0, t[::-1])),
                             np.asarray(out), rtol=1e-6)
  nonzero = jax.tree_util.tree_map_with_path(
      lambda p, v: v + 0.3 if "condition" in jax.tree_util.keystr(p)
      or "time_" in jax.tree_util.keystr(p) else v, variables["params"])
  moved = {**variables, "params": nonzero}
  base = apply(moved, x_t, t)
  assert not np.allclose(np.asarray(apply(moved, 3.0 * x_t + 1.0, t)), np.asarray(base))
  assert not np.allclose(np.asarray(apply(moved, x_t, t[::-1])), np.asarray(base))
