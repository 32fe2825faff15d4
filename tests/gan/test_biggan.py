"""BigGAN's pieces against closed forms (Brock et al. 2019; official BigGAN-PyTorch).

* orthogonal regularisation: a hand-computed value and gradient, the official
  utils.ortho gradient 2 beta (W W^T * (1 - I)) W reached through the "gan" update;
* truncation: every |z_i| <= psi and the truncated normal's closed-form moments;
* standing statistics: equal to the per-layer batch statistics of the EMA generator over
  the standing batches (recorded independently with nn.intercept_methods), and used by
  sampling once estimated;
* hierarchical z split and shared embedding shapes; the 128 px parameter count;
* the configs' builders with the paper's values; the EMA start.
"""

from __future__ import annotations

import dataclasses
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gen_jax import nets
from gen_jax.core.sample import SampleSpec
from gen_jax.core.state import TrainState, ema_decay, update_ema
from gen_jax.data import DatasetInfo
from gen_jax.gan import regularizers
from gen_jax.gan.truncation import latent_normal
from gen_jax.methods.base import build_method
from gen_jax.nets.biggan import split_latent
from tests.gan.test_gan_method import _toy_batch
from tests.train.helpers import load_config

TOY = "gan/biggan_toy_eight_gaussians.py"
TOY_INFO = DatasetInfo((2,), 8, 20_000)

# ------------------------------------------------------------------ orthogonal regularisation

W = np.array([[1.0, 2.0], [3.0, 4.0], [0.0, 1.0]])  # [out=3, fan_in=2]
# W W^T = [[5, 11, 2], [11, 25, 4], [2, 4, 1]]: off-diagonal squares 2 (121 + 4 + 16) = 282.
W_PENALTY = 282.0
# dR/dW = 4 M W with M = W W^T off the diagonal = [[0, 11, 2], [11, 0, 4], [2, 4, 0]].
W_GRAD = 4.0 * np.array([[33.0, 46.0], [11.0, 26.0], [14.0, 20.0]])


def test_orthogonal_penalty_hand_value_and_gradient():
  w = jnp.asarray(W, jnp.float32)
  np.testing.assert_allclose(float(regularizers.orthogonal_penalty(w)), W_PENALTY, rtol=1e-6)
  np.testing.assert_allclose(np.asarray(jax.grad(regularizers.orthogonal_penalty)(w)), W_GRAD,
                             rtol=1e-6)
  # Rows orthogonal (any norms): no penalty, whatever the diagonal.
  assert float(regularizers.orthogonal_penalty(jnp.diag(jnp.array([3.0, 0.5])))) == 0.0


def test_orthogonal_regularization_reads_flax_layouts_and_skips_excluded():
  params = {
      "dense": {"kernel": jnp.asarray(W.T), "bias": jnp.ones(3)},  # Dense [in, out]
      "conv": {"kernel": jnp.asarray(W.T).reshape(1, 1, 2, 3)},  # Conv [kh, kw, in, out]
      "embed": {"embedding": jnp.asarray(W)},  # Embed [num, features]: rows as they are
      "shared": {"embedding": jnp.asarray(100 * W)},  # excluded
  }
  value, grads = jax.value_and_grad(regularizers.orthogonal_regularization)(params, ("shared",))
  np.testing.assert_allclose(float(value), 3 * W_PENALTY, rtol=1e-6)
  np.testing.assert_allclose(np.asarray(grads["dense"]["kernel"]), W_GRAD.T, rtol=1e-6)
  np.testing.assert_allclose(np.asarray(grads["conv"]["kernel"]).reshape(2, 3), W_GRAD.T,
                             rtol=1e-6)
  np.testing.assert_allclose(np.asarray(grads["embed"]["embedding"]), W_GRAD, rtol=1e-6)
  assert not np.any(np.asarray(grads["shared"]["embedding"]))
  assert not np.any(np.asarray(grads["dense"]["bias"]))


def _sgd_toy(ortho_weight: float, lr: float = 0.1):
  c = load_config(TOY, "smoke")
  c.optim.name = "sgd"
  for o in (c.optim_g, c.optim_d):
    o.learning_rate = lr
  c.method.ortho_weight = ortho_weight
  # Not orthogonal at init (with "ortho" most of the gradient would start at 0).
  c.model.generator.weight_init = "xavier"
  return c


def test_gan_update_adds_the_official_ortho_gradient_to_g():
  """One SGD step with and without ortho: G's weights differ by lr * 2 beta (WW^T*(1-I)) W,
  BigGAN-PyTorch's utils.ortho at strength beta, for every weight but the excluded ones."""
  beta, lr = 0.05, 0.1
  batch = _toy_batch(jax.random.key(0), 16)
  out = {}
  for weight in (0.0, beta):
    method = build_method(_sgd_toy(weight, lr), TOY_INFO)
    state = jax.jit(method.init)(jax.random.key(1), batch)
    out[weight] = (state, *jax.jit(method.update)(state, batch, jax.random.key(2)))
  init, off, _ = out[0.0]
  _, on, metrics = out[beta]
  g0 = init.params["generator"]
  flat0 = jax.tree_util.tree_flatten_with_path(g0)[0]
  flat_off = jax.tree.leaves(off.params["generator"])
  flat_on = jax.tree.leaves(on.params["generator"])
  checked, largest = 0, 0.0
  for (path, w0), w_off, w_on in zip(flat0, flat_off, flat_on, strict=True):
    name = path[-1].key
    expected = np.zeros_like(np.asarray(w0))
    if w0.ndim >= 2:
      mat = np.asarray(regularizers.weight_matrix(name, w0), np.float64)
      gram = mat @ mat.T
      grad = 2 * beta * (gram * (1 - np.eye(len(gram)))) @ mat  # utils.ortho, strength beta
      expected = (grad.T.reshape(w0.shape) if name != "embedding" else grad)
      checked += 1
    np.testing.assert_allclose(np.asarray(w_off) - np.asarray(w_on), lr * expected,
                               rtol=1e-3, atol=2e-7)
    largest = max(largest, float(np.max(np.abs(lr * expected))))
  assert checked >= 4 and largest > 1e-3
  assert float(metrics["g_ortho"]) > 0
  # D is untouched by G's regulariser.
  for a, b in zip(jax.tree.leaves(off.params["discriminator"]),
                  jax.tree.leaves(on.params["discriminator"])):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


# ------------------------------------------------------------------ truncation


def _truncated_moments(psi: float) -> tuple[float, float]:
  """Var and E[z^4] of N(0, 1) conditioned on |z| <= psi."""
  pdf = math.exp(-psi ** 2 / 2) / math.sqrt(2 * math.pi)
  mass = math.erf(psi / math.sqrt(2))  # 2 Phi(psi) - 1
  var = 1 - 2 * psi * pdf / mass
  return var, 3 * var - 2 * psi ** 3 * pdf / mass


@pytest.mark.parametrize("psi", [0.04, 0.5, 1.0, 2.0])
def test_truncated_latents_are_bounded_with_the_closed_form_moments(psi):
  n = 400_000
  z = np.asarray(latent_normal(jax.random.key(0), (n,), psi), np.float64)
  assert np.all(np.abs(z) <= psi)
  var, fourth = _truncated_moments(psi)
  # Tolerances: 5 standard errors of each sample moment.
  assert abs(z.mean()) < 5 * math.sqrt(var / n)
  assert abs(np.mean(z ** 2) - var) < 5 * math.sqrt((fourth - var ** 2) / n)
  assert abs(np.mean(z ** 4) - fourth) < 5 * math.sqrt(np.var(z ** 4) / n)
  # Not vacuous: the bound binds (the untruncated variance would be 1).
  assert var < 0.8 if psi <= 1.0 else var < 0.9


def test_sample_honours_spec_truncation_and_the_configured_default():
  method = build_method(load_config(TOY, "smoke"), TOY_INFO)
  state = jax.jit(method.init)(jax.random.key(0), _toy_batch(jax.random.key(0), 16))
  z, _ = method.latents(jax.random.key(1), 512, truncation=0.3)
  assert float(jnp.max(jnp.abs(z))) <= 0.3
  key = jax.random.key(2)
  sample = lambda m, spec=SampleSpec(): jax.jit(lambda s, k: m.sample(s, k, 64, spec).samples)(
      state, key)
  via_spec = sample(method, SampleSpec(truncation=0.3))
  via_default = sample(dataclasses.replace(method, truncation=0.3))
  untruncated = sample(method)
  np.testing.assert_array_equal(np.asarray(via_spec), np.asarray(via_default))
  assert float(jnp.max(jnp.abs(via_spec - untruncated))) > 1e-3
  # The generator sees exactly the truncated latents of `latents`.
  r_z = jax.random.split(key)[0]
  z = latent_normal(r_z, (64, method.z_dim), 0.3)
  x, _ = jax.jit(lambda s: method.generate(s.ema_params["generator"],
                                           method.sampling_variables(s), z, None,
                                           train=False))(state)
  np.testing.assert_allclose(np.asarray(x), np.asarray(via_spec), rtol=1e-5, atol=1e-6)
  with pytest.raises(ValueError, match="temperature"):
    method.sample(state, key, 4, SampleSpec(temperature=0.5))
  with pytest.raises(ValueError, match="must be > 0"):
    method.sample(state, key, 4, SampleSpec(truncation=0.0))


# ------------------------------------------------------------------ standing statistics


def _record_batch_norm_inputs(fn):
  """Runs fn() and returns {module path: [(mean, var) per call]} of every nn.BatchNorm input."""
  records: dict[tuple, list] = {}

  def interceptor(next_fun, args, kwargs, context):
    if isinstance(context.module, nn.BatchNorm) and context.method_name == "__call__":
      x = np.asarray(args[0], np.float64)
      axes = tuple(range(x.ndim - 1))
      records.setdefault(context.module.path, []).append((x.mean(axes), x.var(axes)))
    return next_fun(*args, **kwargs)

  with nn.intercept_methods(interceptor):
    fn()
  return records


def _stats_at(tree, path):
  for key in path:
    tree = tree[key]
  return tree


def _toy_state_with_distinct_ema(method, key=0):
  state = jax.jit(method.init)(jax.random.key(key), _toy_batch(jax.random.key(key), 16))
  # An EMA generator unlike the raw one (as after training): scaled, shifted weights.
  leaves, tree = jax.tree.flatten(state.ema_params["generator"])
  keys = jax.random.split(jax.random.key(7), len(leaves))
  ema_g = jax.tree.unflatten(tree, [1.3 * x + 0.2 * jax.random.normal(k, x.shape)
                                    for x, k in zip(leaves, keys)])
  return state.replace(ema_params={**state.ema_params, "generator": ema_g},
                       step=jnp.asarray(5, jnp.int32))


def test_standing_statistics_are_the_ema_generators_batch_statistics():
  c = load_config(TOY, "smoke")
  c.method.standing_stats = 3
  c.method.standing_batch_size = 32
  method = build_method(c, TOY_INFO)
  state = _toy_state_with_distinct_ema(method)
  rng = jax.random.key(11)
  prepared = jax.jit(method.prepare_sampling)(state, rng)
  ema_state = prepared.model_state["ema_generator"]
  assert int(ema_state["estimated_at"]) == 5
  stats = ema_state["batch_stats"]

  # Independently: the EMA generator in training mode on the same K standing batches,
  # each batch-norm input's batch mean and (biased) variance, averaged over the batches.
  g_vars = state.model_state["generator"]
  params = state.ema_params["generator"]

  def run_standing_batches():
    for key in jax.random.split(rng, 3):
      z, y = method.latents(key, 32)
      method.generator.apply({"params": params, **g_vars}, z, y, train=True,
                             mutable=list(g_vars))

  records = _record_batch_norm_inputs(run_standing_batches)
  assert len(records) == len(jax.tree.leaves(stats)) // 2 >= 2
  for path, calls in records.items():
    assert len(calls) == 3
    leaf = _stats_at(stats, path)
    np.testing.assert_allclose(np.asarray(leaf["mean"]), np.mean([m for m, _ in calls], 0),
                               rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.asarray(leaf["var"]), np.mean([v for _, v in calls], 0),
                               rtol=1e-4, atol=1e-5)
    # Not the raw generator's running statistics (the thing standing statistics replace).
    running = _stats_at(g_vars["batch_stats"], path)
    assert np.max(np.abs(np.asarray(leaf["var"]) - np.asarray(running["var"]))) > 1e-2


def test_sampling_uses_standing_statistics_once_estimated():
  c = load_config(TOY, "smoke")
  method = build_method(c, TOY_INFO)
  state = _toy_state_with_distinct_ema(method)
  key = jax.random.key(3)
  g_vars = state.model_state["generator"]
  params = state.ema_params["generator"]
  z, _ = method.latents(key, 16)

  @jax.jit
  def eval_with(batch_stats):
    return method.generator.apply({"params": params, **g_vars, "batch_stats": batch_stats},
                                  z, None, train=False)

  sample = jax.jit(lambda s: method.sample(s, key, 16).samples)
  # Never estimated: the raw generator's running statistics.
  np.testing.assert_allclose(np.asarray(sample(state)),
                             np.asarray(eval_with(g_vars["batch_stats"])), rtol=1e-5,
                             atol=1e-6)
  prepared = jax.jit(method.prepare_sampling)(state, jax.random.key(4))
  standing = prepared.model_state["ema_generator"]["batch_stats"]
  with_standing = np.asarray(sample(prepared))
  np.testing.assert_allclose(with_standing, np.asarray(eval_with(standing)), rtol=1e-5,
                             atol=1e-6)
  assert np.max(np.abs(with_standing - np.asarray(eval_with(g_vars["batch_stats"])))) > 1e-3
  # Training is untouched by the estimate: only model_state["ema_generator"] changed.
  for name in ("params", "ema_params", "opt_state"):
    for a, b in zip(jax.tree.leaves(getattr(state, name)), jax.tree.leaves(
        getattr(prepared, name))):
      np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_standing_statistics_need_a_generator_with_bn_momentum():
  c = load_config("gan/toy_eight_gaussians.py", "smoke")
  c.method.standing_stats = 4
  with pytest.raises(ValueError, match="bn_momentum"):
    build_method(c, TOY_INFO)


# ------------------------------------------------------------------ hierarchical z, shapes


def test_hierarchical_split_and_shared_embedding_shapes_at_128px():
  z = jnp.arange(2 * 120, dtype=jnp.float32).reshape(2, 120)
  chunks = split_latent(z, 6)
  assert [c.shape for c in chunks] == [(2, 20)] * 6
  np.testing.assert_array_equal(np.asarray(jnp.concatenate(chunks, -1)), np.asarray(z))
  with pytest.raises(ValueError, match="multiple of 6"):
    split_latent(z[:, :121 - 2], 6)

  g = nets.build_net("biggan_generator", out_shape=(128, 128, 3), ch=96, attention=(64,),
                     num_classes=1000, shared_dim=128)
  d = nets.build_net("biggan_discriminator", ch=96, attention=(64,), num_classes=1000)
  y = jnp.zeros((2,), jnp.int32)
  gv = jax.eval_shape(lambda: g.init({"params": jax.random.key(0)}, z, y, train=False))
  dv = jax.eval_shape(lambda: d.init({"params": jax.random.key(0)},
                                     jnp.zeros((2, 128, 128, 3)), y, train=False))
  p = gv["params"]
  assert p["shared"]["embedding"].shape == (1000, 128)  # one embedding for every layer
  assert p["linear"]["kernel"].shape == (20, 4 * 4 * 16 * 96)  # z chunk 0
  in_ch = [16, 16, 8, 4, 2]
  for i, mult in enumerate(in_ch):  # block i's CBN reads [shared(y), z chunk i + 1]
    gain = p[f"block_{i}"]["bn_1"]["gain"]["kernel"]
    assert gain.shape == (128 + 20, mult * 96)
  assert "attention_3" in p and "attention_0" in dv["params"]  # 64x64 in G and D
  assert not any(k.startswith("attention") and k != "attention_3" for k in p)
  count = lambda t: sum(x.size for x in jax.tree.leaves(t))
  # Brock et al.'s Table 1: 158.3M parameters for this model (G + D).
  assert abs(count(p) + count(dv["params"]) - 158.3e6) < 0.001 * 158.3e6
  out = jax.eval_shape(lambda v: g.apply(v, z, y, train=False), gv)
  assert out.shape == (2, 128, 128, 3)


# ------------------------------------------------------------------ configs and builder


@pytest.mark.parametrize("arg,shape,data,attention,z_chunks", [
    (None, (128, 128, 3), "imagenet2012", (64,), 6),
    ("res=64", (64, 64, 3), "imagenet_resized/64x64", (32,), 5)])
def test_imagenet_builder_has_the_papers_values(arg, shape, data, attention, z_chunks):
  c = load_config("gan/biggan_imagenet.py", arg)
  method = build_method(c, DatasetInfo(shape, 1000, 1_281_167))
  assert c.data.name == data and c.data.image_size == shape[0]
  assert method.n_dis == 2 and c.batch_size == 2 * 2048  # two D steps of 2048
  assert float(method.lr_g(0)) == pytest.approx(5e-5)
  assert float(method.lr_d(0)) == pytest.approx(2e-4)
  assert float(method.lr_g(100_000)) == pytest.approx(5e-5)  # constant
  assert c.optim_g.b1 == c.optim_d.b1 == 0.0 and c.optim_g.b2 == c.optim_d.b2 == 0.999
  assert c.num_train_steps == 165_000
  assert method.ortho_weight == 1e-4 and method.loss == "hinge"
  assert method.z_dim == 120 and method.z_dim % z_chunks == 0
  assert method.generator.ch == method.discriminator.ch == 96
  assert method.generator.attention == method.discriminator.attention == attention
  assert method.generator.shared_dim == 128 and method.generator.hierarchical
  assert method.num_classes == 1000
  assert c.ema.decay == 0.9999 and c.ema.start == 20_000
  assert method.standing_stats == 16 and method.standing_batch_size == 256
  assert method.truncation is None


def test_cifar10_builder_has_the_official_scripts_values():
  c = load_config("gan/biggan_cifar10.py", None)
  method = build_method(c, DatasetInfo((32, 32, 3), 10, 50_000))
  assert method.n_dis == 4 and c.batch_size == 4 * 50
  assert float(method.lr_g(0)) == float(method.lr_d(0)) == pytest.approx(2e-4)
  assert c.num_train_steps == 125_000  # 500 epochs of 50k images at 200 per G step
  assert method.generator.ch == method.discriminator.ch == 64
  assert method.generator.attention == () and method.generator.weight_init == "N02"
  assert c.ema.start == 1000 and c.ema.decay == 0.9999
  assert method.ortho_weight == 1e-4 and method.standing_batch_size == 50


def test_missing_imagenet_names_the_dataset(tmp_path):
  from gen_jax import data as data_lib  # pylint: disable=g-import-not-at-top
  c = load_config("gan/biggan_imagenet.py", "smoke")
  c.data.data_dir = str(tmp_path / "empty")
  with pytest.raises(data_lib.DatasetNotPreparedError, match="imagenet2012"):
    data_lib.build_source(c.data, "train")


# ------------------------------------------------------------------ EMA start


def test_ema_copies_the_weights_until_its_start_step():
  steps = jnp.arange(0, 6)
  d = np.asarray(jax.vmap(lambda s: ema_decay(s, 0.9, False, start=3))(steps))
  np.testing.assert_allclose(d, [0, 0, 0, 0.9, 0.9, 0.9], rtol=1e-6)
  state = TrainState.create({"w": jnp.zeros(())}, {})
  state = state.replace(params={"w": jnp.ones(())}, step=jnp.asarray(2, jnp.int32))
  assert float(update_ema(state, 0.9, False, start=3).ema_params["w"]) == 1.0  # copied
  state = state.replace(step=jnp.asarray(3, jnp.int32))
  np.testing.assert_allclose(float(update_ema(state, 0.9, False, start=3).ema_params["w"]),
                             0.1, rtol=1e-6)


# ------------------------------------------------------------------ the trainer


def test_trainer_keeps_fresh_standing_statistics_in_the_state(tmp_path):
  """The loop re-estimates them before its sample grid (and saves them in the checkpoint);
  --mode=sample honours sample.truncation."""
  from gen_jax.train import loop  # pylint: disable=g-import-not-at-top
  c = load_config(TOY, "smoke")
  c.num_train_steps = 2
  c.trainer.sample_every_steps = 2
  c.trainer.checkpoint_every_steps = 2
  c.trainer.eval_every_steps = 0
  state = loop.train_and_evaluate(c, tmp_path)
  assert int(state.model_state["ema_generator"]["estimated_at"]) == 2
  c.sample.truncation = 0.5
  path = loop.run_sample(c, tmp_path)
  assert np.load(path)["images"].shape == (c.sample.num_samples, 2)
