"""StyleGAN2-ADA: its maths against direct computations, and its step on several devices.

* modulated convolution: the grouped (fused) form and the activation-scaling form equal
  a direct per-sample convolution with the modulated, demodulated weights (plain and 2x
  upsampling); demodulation gives unit output variance for unit-variance input;
* minibatch std against the official formula written out in numpy;
* path length regularisation and R1 against central finite differences (float64), with
  their lazy weights (k * weight on every k-th step: 4 * 2 for PL, 16 * gamma / 2 for R1);
* the optimiser adjustment lr * k / (k + 1), beta ** (k / (k + 1)) and the paper configs'
  real values (lazy periods, step counts, EMA beta and ADA's step over the real runs);
* truncation: psi = 0 gives the tracked average w; w' = w_avg + psi (w - w_avg);
* 8 devices == 1 device for three steps of the real jitted train step, with both lazy
  regularisers firing on steps 0 and 2, style mixing and ADA's p moving;
* a run saved through the trainer's Checkpointer and resumed continues exactly (ADA's p,
  the tracked w_avg and pl_mean included).
ADA's augmentations have their own file (test_ada.py).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from gen_jax.core import sharding as sharding_lib
from gen_jax.core.sample import SampleSpec
from gen_jax.data import DatasetInfo
from gen_jax.gan import regularizers
from gen_jax.methods.base import build_method
from gen_jax.methods.stylegan2 import lazy_optimizer_settings
from gen_jax.nets import stylegan2 as sg
from gen_jax.train import step as step_lib
from gen_jax.train.checkpoint import Checkpointer
from tests.train.helpers import assert_trees_close, assert_trees_equal, host_tree, load_config

CIFAR = DatasetInfo((32, 32, 3), 10, 50_000)


# ------------------------------------------------------------------ modulated convolution


def _direct_modulated_conv(x, weight, styles, demodulate, up):
  """Per sample: the modulated (and demodulated) kernel, then an ordinary convolution."""
  outs = []
  for n in range(x.shape[0]):
    w = weight * styles[n][None, None, :, None]
    if demodulate:
      w = w / jnp.sqrt(jnp.sum(jnp.square(w), axis=(0, 1, 2), keepdims=True) + 1e-8)
    outs.append(sg.conv2d(x[n:n + 1], w, up=up, kernel=sg.fir_kernel()))
  return jnp.concatenate(outs)


@pytest.mark.parametrize("up", [False, True])
@pytest.mark.parametrize("demodulate", [True, False])
def test_modulated_conv_grouped_and_scaled_forms_equal_direct(up, demodulate):
  kx, kw, ks = jax.random.split(jax.random.key(0), 3)
  x = jax.random.normal(kx, (3, 6, 6, 4))
  weight = jax.random.normal(kw, (3, 3, 4, 5))
  styles = jax.random.normal(ks, (3, 4)) + 1.0
  want = _direct_modulated_conv(x, weight, styles, demodulate, up)
  assert want.shape == (3, 12 if up else 6, 12 if up else 6, 5)
  for fused in (True, False):
    got = sg.modulated_conv(x, weight, styles, demodulate=demodulate, up=up,
                            kernel=sg.fir_kernel(), fused=fused)
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-4, atol=1e-5)


def test_demodulation_gives_unit_output_variance():
  """Var(out) = sum of the squared demodulated weights = 1 for i.i.d. unit-variance input:
  exactly per (sample, channel), and empirically on 8 samples x 8 channels x 484 pixels."""
  kx, kw, ks = jax.random.split(jax.random.key(1), 3)
  x = jax.random.normal(kx, (8, 24, 24, 8))
  weight = jax.random.normal(kw, (3, 3, 8, 8)) * 3.0
  styles = jnp.exp(jax.random.normal(ks, (8, 8)))  # far from 1
  w = weight[None] * styles[:, None, None, :, None]
  w = w * jax.lax.rsqrt(jnp.sum(jnp.square(w), axis=(1, 2, 3), keepdims=True) + 1e-8)
  np.testing.assert_allclose(np.asarray(jnp.sum(jnp.square(w), axis=(1, 2, 3))), 1.0, rtol=1e-5)
  y = np.asarray(sg.modulated_conv(x, weight, styles, demodulate=True)[:, 1:-1, 1:-1])
  var = np.var(y, axis=(1, 2))  # [N, O]: each sample's own kernel, interior pixels only
  assert abs(var.mean() - 1.0) < 0.03, var.mean()
  np.testing.assert_allclose(var, 1.0, atol=0.25)
  raw = sg.modulated_conv(x, weight, styles, demodulate=False)[:, 1:-1, 1:-1]
  assert np.var(np.asarray(raw)) > 10.0  # without demodulation it is far from 1


def test_generator_fused_and_unfused_paths_agree():
  kw = dict(out_shape=(8, 8, 3), z_dim=8, w_dim=8, mapping_layers=1, channel_base=64,
            channel_max=8)
  z = jax.random.normal(jax.random.key(2), (3, 8))
  rngs = {"noise": jax.random.key(3)}
  g = sg.StyleGAN2Generator(**kw)
  v = g.init({"params": jax.random.key(0), **rngs}, z)
  v = jax.tree.map(lambda a: a + 0.1, v)  # noise strengths away from their initial 0
  a = g.apply(v, z, rngs=rngs)
  b = sg.StyleGAN2Generator(**kw, fused_modconv=True).apply(v, z, rngs=rngs)
  np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-5)


def test_minibatch_std_matches_the_official_formula():
  x = np.asarray(jax.random.normal(jax.random.key(4), (8, 3, 3, 4)))
  got = np.asarray(sg.minibatch_std(jnp.asarray(x), group_size=4, num_channels=2))
  # torch: y = x.reshape(G, -1, F, c, H, W) in NCHW; here NHWC, sample i in group i % 2.
  want = np.zeros((8, 2))
  for i in range(8):
    members = x[i % 2::2]  # the 4 samples sharing sample i's group
    std = np.sqrt(np.mean((members - members.mean(0)) ** 2, axis=0) + 1e-8)  # [H, W, C]
    want[i] = [std[..., :2].mean(), std[..., 2:].mean()]
  np.testing.assert_allclose(got[..., :4], x, rtol=1e-6)
  np.testing.assert_allclose(got[:, 1, 2, 4:], want, rtol=1e-5)
  np.testing.assert_allclose(got[:, 0, 0, 4:], want, rtol=1e-5)


# ------------------------------------------------------------------ regularisers


def _central_grad(f, x, eps=1e-6):
  x = np.asarray(x, np.float64)
  g = np.zeros_like(x)
  for idx in np.ndindex(x.shape):
    d = np.zeros_like(x)
    d[idx] = eps
    g[idx] = (f(x + d) - f(x - d)) / (2 * eps)
  return g


def test_path_length_penalty_matches_finite_differences():
  with jax.enable_x64(True):
    rng = np.random.default_rng(0)
    a = rng.normal(size=(3, 5))
    ws = rng.normal(size=(2, 3, 3))  # [B, L, W]
    noise = rng.normal(size=(2, 4, 5))
    synth = lambda w: jnp.tanh(jnp.einsum("blw,wo->blo", w, a))[:, :, :5] ** 2 + w[:, :1, :1]
    synth_img = lambda w: jnp.concatenate([synth(w), jnp.ones((w.shape[0], 1, 5))], axis=1)
    pl_mean, decay = 0.7, 0.01
    penalty, new_mean = regularizers.path_length_penalty(
        synth_img, jnp.asarray(ws), jnp.asarray(noise), jnp.asarray(pl_mean), decay)
    lengths = []
    for i in range(2):  # J^T y of each sample by central differences
      proj = jax.jit(lambda w_i, y: jnp.sum(synth_img(w_i[None]) * y[None]))
      g = _central_grad(lambda w_i: float(proj(w_i, noise[i])), ws[i])
      lengths.append(np.sqrt(np.mean(np.sum(g ** 2, axis=1))))
    lengths = np.array(lengths)
    want_mean = pl_mean + decay * (lengths.mean() - pl_mean)
    np.testing.assert_allclose(float(new_mean), want_mean, rtol=1e-7)
    np.testing.assert_allclose(float(penalty), np.mean((lengths - want_mean) ** 2), rtol=1e-6)


def test_r1_matches_finite_differences():
  with jax.enable_x64(True):
    rng = np.random.default_rng(1)
    w = rng.normal(size=(6,))
    x = rng.normal(size=(3, 2, 3))
    d_fn = lambda v: jnp.tanh(v.reshape(v.shape[0], -1) @ w) * 2.0
    r1, logits = regularizers.r1_penalty_and_logits(d_fn, jnp.asarray(x))
    d_one = jax.jit(lambda xi: d_fn(xi[None])[0])
    grads = [_central_grad(lambda xi: float(d_one(xi)), x[i]) for i in range(3)]
    np.testing.assert_allclose(float(r1), np.mean([np.sum(g ** 2) for g in grads]), rtol=1e-7)
    np.testing.assert_allclose(np.asarray(logits), np.asarray(d_fn(jnp.asarray(x))))
    assert float(regularizers.r1_penalty(d_fn, jnp.asarray(x))) == pytest.approx(float(r1))


def test_lazy_weights_of_the_two_regularisers():
  """Path length: pl_every * pl_weight = 4 * 2 on steps 0, 4, 8; R1: 16 * gamma / 2."""
  pl = [float(regularizers.lazy_weight(jnp.asarray(s), 4, 2.0)) for s in range(9)]
  np.testing.assert_allclose(pl, [8.0, 0, 0, 0, 8.0, 0, 0, 0, 8.0])
  r1 = [float(regularizers.lazy_weight(jnp.asarray(s), 16, 0.5 * 0.01)) for s in (0, 1, 15, 16)]
  np.testing.assert_allclose(r1, [0.08, 0.0, 0.0, 0.08], rtol=1e-6)


# ------------------------------------------------------------------ builder, paper values


def _adam_matches(tx, lr, b1, b2, steps=5):
  params = {"w": jnp.ones((3,))}
  ref = optax.adam(lr, b1=b1, b2=b2, eps=1e-8)
  s, r = tx.init(params), ref.init(params)
  for i in range(steps):
    g = {"w": jnp.array([0.5, -1.0, 2.0]) * (i + 1)}
    u, s = tx.update(g, s, params)
    v, r = ref.update(g, r, params)
    np.testing.assert_allclose(np.asarray(u["w"]), np.asarray(v["w"]), rtol=1e-5)


def test_cifar10_builder_has_the_papers_values():
  c = load_config("gan/stylegan2_cifar10.py", None)
  m = build_method(c, CIFAR)
  assert c.num_train_steps == 100_000 * 1000 // 64 == 1_562_500
  assert (m.r1_gamma, m.r1_every, m.pl_weight, m.style_mixing_prob) == (0.01, 16, 0.0, 0.0)
  assert m.num_classes == 10 and m.generator.mapping_layers == 2
  assert m.discriminator.architecture == "orig" and m.discriminator.mbstd_group_size == 32
  np.testing.assert_allclose(c.ema.decay, 0.5 ** (64 / 500_000))
  # D: lazy R1 every 16 steps -> lr * 16/17 and betas ** (16/17); G: no PL -> unchanged.
  _adam_matches(m.optimizer_d, 0.0025 * 16 / 17, 0.0, 0.99 ** (16 / 17))
  _adam_matches(m.optimizer_g, 0.0025, 0.0, 0.99)
  np.testing.assert_allclose(float(m.lr_d(0)), 0.0025 * 16 / 17)
  np.testing.assert_allclose(float(m.lr_d(c.num_train_steps - 1)), 0.0025 * 16 / 17)
  # ADA: p moves by batch * interval / 500k images per adjustment: 0 -> 1 in 500 kimg,
  # i.e. 1954 adjustments = 7816 steps of the 1.56M.
  assert m.ada.target == 0.6 and m.ada.interval == 4
  np.testing.assert_allclose(m.ada.step_size(c.batch_size), 64 * 4 / 500_000)
  assert int(np.ceil(1.0 / m.ada.step_size(c.batch_size))) * m.ada.interval == 7_816
  # Real shapes: 512 channels everywhere at 32 px, 8 ws (2 per block, 1 at 4x4, + ToRGB).
  assert m.generator.num_ws == 8
  shapes = jax.eval_shape(m.init, jax.random.key(0), {"image": jnp.zeros((64, 32, 32, 3))})
  n_g = sg.count_params(shapes.params["generator"])
  assert 15e6 < n_g < 25e6, n_g


@pytest.mark.parametrize("res, gamma", [(64, 0.0128), (128, 0.0512), (256, 0.2048)])
def test_folder_builder_has_the_auto_configs_values(res, gamma):
  c = load_config("gan/stylegan2_folder.py", f"resolution={res}")
  m = build_method(c, DatasetInfo((res, res, 3), 1, 70_000))
  assert c.num_train_steps == 390_625 and c.data.image_size == res and c.data.random_flip
  np.testing.assert_allclose(m.r1_gamma, gamma)
  assert (m.r1_every, m.pl_every, m.pl_weight, m.style_mixing_prob) == (16, 4, 2.0, 0.9)
  _adam_matches(m.optimizer_g, 0.0025 * 4 / 5, 0.0, 0.99 ** (4 / 5))
  _adam_matches(m.optimizer_d, 0.0025 * 16 / 17, 0.0, 0.99 ** (16 / 17))
  np.testing.assert_allclose(c.ema.decay, 0.5 ** (64 / 20_000))
  assert m.generator.num_ws == 2 * int(np.log2(res)) - 2
  assert m.discriminator.architecture == "resnet" and m.discriminator.mbstd_group_size == 4


def test_lazy_optimizer_settings_and_refusals():
  out = lazy_optimizer_settings({"learning_rate": 1.0, "b1": 0.5, "b2": 0.99}, 4)
  np.testing.assert_allclose([out["learning_rate"], out["b1"], out["b2"]],
                             [0.8, 0.5 ** 0.8, 0.99 ** 0.8])
  assert lazy_optimizer_settings({"learning_rate": 1.0, "b1": 0.5, "b2": 0.9}, 0)["b1"] == 0.5
  c = load_config("gan/stylegan2_toy_eight_gaussians.py", "smoke")
  c.optim.schedule = "cosine"
  with pytest.raises(ValueError, match="constant learning rate"):
    build_method(c, DatasetInfo((2,), 8, 100))
  c = load_config("gan/stylegan2_folder.py", "smoke")
  c.batch_size = 6
  with pytest.raises(ValueError, match="minibatch-std"):
    build_method(c, DatasetInfo((16, 16, 1), 10, 100))


# ------------------------------------------------------------------ the step, 8 == 1


def _tiny_config():
  """8x8 RGB, class-conditional, every stateful piece on: PL and R1 every 2 steps, style
  mixing, ADA adjusting every 2 steps with a target below any r_t (p must grow)."""
  c = load_config("gan/stylegan2_cifar10.py", "smoke")
  c.optim.name = "sgd"
  for o in (c.optim_g, c.optim_d):
    o.learning_rate = 0.01
  c.batch_size = 16
  c.method.pl_weight = 2.0
  c.method.style_mixing_prob = 0.9
  c.method.r1_gamma = 1.0
  c.method.ada.target = -2.0  # below any r_t: p grows by one step per adjustment
  c.method.ada.kimg = 0.1
  return c


TINY = DatasetInfo((8, 8, 3), 10, 1000)


def _batch(i, b):
  k1, k2 = jax.random.split(jax.random.key(100 + i))
  return {"image": jnp.tanh(jax.random.normal(k1, (b, 8, 8, 3))),
          "label": jax.random.randint(k2, (b,), 0, 10)}


def _runner(c, num_devices):
  mesh = sharding_lib.make_mesh(num_devices)
  method = build_method(c, TINY)
  rep = sharding_lib.replicated(mesh)
  first = sharding_lib.make_global_batch(host_tree(_batch(0, c.batch_size)), mesh)
  state = jax.jit(method.init, out_shardings=rep)(jax.random.key(0), first)
  names = sorted(jax.eval_shape(method.update, state, first, jax.random.key(1))[1])
  collection = step_lib.metrics_collection(names)
  train_step = step_lib.make_train_step(method, collection, mesh, c.ema.decay, c.ema.warmup)

  def run(state, steps):
    acc = step_lib.empty_like_collection(collection, mesh)
    metrics = []
    for i in steps:
      b = sharding_lib.make_global_batch(host_tree(_batch(i, c.batch_size)), mesh)
      state, acc, m, finite = train_step(state, b, jax.random.key(1), acc)
      assert bool(finite)
      metrics.append(host_tree(m))
    return state, metrics

  return method, state, run, mesh


@pytest.mark.slow  # ~16 min of CPU compilation on the loaded 2-core machine
def test_eight_devices_equal_one_device():
  assert jax.device_count() == 8
  c = _tiny_config()
  _, init, run1, _ = _runner(c, 1)
  one, m1 = run1(init, range(3))
  method, init8, run8, _ = _runner(c, 8)
  eight, m8 = run8(init8, range(3))
  for name in ("params", "ema_params", "opt_state", "model_state"):
    assert_trees_close(getattr(one, name), getattr(eight, name), rtol=1e-4, atol=1e-6)
  assert_trees_close(m1, m8, rtol=1e-4, atol=1e-6)
  # Not vacuous: both lazy phases fired on steps 0 and 2 only, p grew, w_avg moved.
  assert [m["r1"] > 0 for m in m1] == [True, False, True]
  assert [m["pl_penalty"] > 0 for m in m1] == [True, False, True]
  step = method.ada.step_size(c.batch_size)
  np.testing.assert_allclose([m["ada_p"] for m in m1], [step, step, 2 * step], rtol=1e-5)
  assert float(jnp.abs(one.model_state["generator"]["w_avg"]["mapping_net"]["w_avg"]).sum()) > 0
  assert float(one.model_state["pl_mean"]) > 0
  for key in ("d_real", "d_fake", "g_loss", "d_grad_norm", "g_grad_norm", "ada_r_t",
              "diversity", "pl_mean", "g_lr", "d_lr"):
    assert key in m1[0], key


@pytest.mark.slow  # one compilation of the full step (minutes on 2 loaded cores)
def test_resume_from_a_checkpoint_continues_exactly(tmp_path):
  c = _tiny_config()
  method, init, run, mesh = _runner(c, 1)
  init = host_tree(init)  # the train step donates its state: start each run from a copy
  straight, _ = run(jax.tree.map(jnp.asarray, init), range(4))
  half, _ = run(jax.tree.map(jnp.asarray, init), range(2))
  ckpt = Checkpointer(tmp_path, asynchronous=False)
  ckpt.save(2, half)
  ckpt.close()
  abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype,
                                                         sharding=sharding_lib.replicated(mesh)),
                          half)
  restored, step = Checkpointer(tmp_path).restore_latest(abstract)
  assert step == 2 and float(restored.model_state["ada"]["p"]) > 0
  resumed, _ = run(restored, range(2, 4))
  assert_trees_equal(resumed, straight)


# ------------------------------------------------------------------ truncation, sampling


def test_truncation_uses_the_tracked_average_w():
  c = load_config("gan/stylegan2_toy_eight_gaussians.py", "smoke")
  m = build_method(c, DatasetInfo((2,), 8, 100))
  state = jax.jit(m.init)(jax.random.key(0), {"image": jnp.zeros((8, 2))})
  w_avg = jnp.linspace(-1.0, 1.0, c.model.generator.w_dim)
  ms = {**state.model_state, "generator": {"w_avg": {"mapping_net": {"w_avg": w_avg}}}}
  state = state.replace(model_state=ms)
  gvars = {"params": state.ema_params["generator"], **ms["generator"]}
  z = jax.random.normal(jax.random.key(1), (5, m.z_dim))
  ws = m.generator.apply(gvars, z, None, method="mapping")
  ws_half = m.generator.apply(gvars, z, None, method="mapping", truncation_psi=0.5)
  avg = w_avg[None, None, :]
  np.testing.assert_allclose(np.asarray(ws_half), np.asarray(avg + 0.5 * (ws - avg)),
                             rtol=1e-5, atol=1e-6)
  # psi = 0: every sample is the image of w_avg (noise strengths are 0 at init).
  sample = lambda spec: jax.jit(lambda st, k: m.sample(st, k, 6, spec))(state, jax.random.key(2))
  x0 = sample(SampleSpec(truncation=0.0)).samples
  np.testing.assert_allclose(np.asarray(x0), np.asarray(jnp.broadcast_to(x0[:1], x0.shape)),
                             rtol=1e-5, atol=1e-6)
  x1 = sample(SampleSpec()).samples
  assert float(jnp.std(x1[:, 0])) > 1e-4
  with pytest.raises(ValueError, match="temperature"):
    m.sample(state, jax.random.key(2), 6, SampleSpec(temperature=0.5))
