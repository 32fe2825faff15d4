"""The "gan" and "ddgan" methods: training on 8 Gaussians, 8 devices == 1, their pieces.

* Diffusion-GAN's adaptive chain and DDGAN's chain against closed forms;
* the monitoring signals on hand-made batches;
* 8 devices equal 1 device for three steps of the real jitted train step (trainer's
  `make_train_step`), batch norm and spectral norm state included: under jit with the
  global batch sharded, batch-norm statistics are GLOBAL batch statistics;
* evaluation mode uses frozen running statistics (a sample does not depend on its batch);
* a short CPU run of configs/gan/toy_eight_gaussians.py and of
  configs/gan/ddgan_toy_eight_gaussians.py covers all 8 modes with a high-quality fraction
  above a stated threshold, measured on 2,000 samples of the EMA generator; the same test
  on the 25-Gaussian grid (slow) for the GAN and configs/gan/ddgan_toy_twenty_five_gaussians.py
  (per-step networks; 7 min on the loaded cores); BigGAN's toy recipe
  (configs/gan/biggan_toy_eight_gaussians.py: hierarchical-z conditional BN, SN, ortho
  regularisation, EMA sampled with standing statistics) and StyleGAN2's
  (configs/gan/stylegan2_toy_eight_gaussians.py: all 8 modes, its high-quality fraction
  an xfail while untuned) on 8 Gaussians (slow: ~90 s and ~30 min for 1000 steps on
  these loaded cores).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gen_jax.data import DatasetInfo
from gen_jax.data import toy
from gen_jax.gan import monitoring
from gen_jax.gan.adaptive_diffusion import AdaptiveDiffusion
from gen_jax.diffusion import schedules
from gen_jax.methods.base import build_method
from gen_jax.core import sharding as sharding_lib
from gen_jax.train import step as step_lib
from gen_jax.core.state import update_ema
from tests.train.helpers import assert_trees_close, host_tree, load_config

EIGHT = toy.TOY_DISTRIBUTIONS.get("eight_gaussians")
MODES = jnp.asarray(EIGHT.modes)
INFO = DatasetInfo((2,), 8, 20_000)


def _toy_batch(key: jax.Array, b: int, dist=EIGHT) -> dict[str, jax.Array]:
  """b points of a Gaussian mixture (a toy2d distribution), drawn with jax.random."""
  kc, kn = jax.random.split(key)
  modes = jnp.asarray(dist.modes)
  comp = jax.random.randint(kc, (b,), 0, modes.shape[0])
  return {"image": modes[comp] + dist.mode_std * jax.random.normal(kn, (b, 2)),
          "label": comp.astype(jnp.int32)}


# ------------------------------------------------------------------------------ closed forms


def test_adaptive_diffusion_chain_and_timestep_distribution():
  diff = AdaptiveDiffusion(t_min=3, t_max=12, beta_start=1e-2, beta_end=0.2)
  state = {**diff.init_state(), "p": jnp.asarray(0.5)}
  num = int(diff.num_steps(state))
  assert num == 3 + round(0.5 * 9) == 7
  betas = np.linspace(1e-2, 0.2, num)
  abar = np.asarray(diff.alphas_cumprod(jnp.asarray(num)))
  np.testing.assert_allclose(abar[:num + 1], np.concatenate([[1.0], np.cumprod(1 - betas)]),
                             rtol=1e-5)
  t = np.asarray(diff.sample_t(jax.random.key(0), 40_000, jnp.asarray(num)))
  assert t.min() == 0 and t.max() == num and not np.any(t == 1)  # p(1) = 0 under "priority"
  np.testing.assert_allclose(np.mean(t == 0), 0.5, atol=0.01)
  counts = np.bincount(t[t > 0], minlength=num + 1)[2:]
  expected = np.arange(1, num) / np.arange(1, num).sum()  # p(k) proportional to k - 1
  np.testing.assert_allclose(counts / counts.sum(), expected, atol=0.01)


def test_adaptive_diffusion_moves_p_by_the_ada_rule_every_interval():
  diff = AdaptiveDiffusion(interval=2, kimg=1.0, target=0.6)
  state = diff.init_state()
  # The names of the state before the rule was shared with ADA: older checkpoints resume.
  assert set(state) == {"p", "r_sum", "r_count"}
  overfit = jnp.ones((10,))  # sign(D(real)) = 1 > 0.6
  s1 = diff.update(state, overfit, 10, jnp.asarray(0))
  assert set(s1) == set(state)
  assert float(s1["p"]) == 0.0 and float(s1["r_count"]) == 10.0  # accumulating
  s2 = diff.update(s1, overfit, 10, jnp.asarray(1))
  np.testing.assert_allclose(float(s2["p"]), 10 * 2 / 1000.0)  # + batch * interval / kimg
  assert float(s2["r_count"]) == 0.0
  s3 = diff.update(diff.update(s2, -overfit, 10, jnp.asarray(2)), -overfit, 10, jnp.asarray(3))
  np.testing.assert_allclose(float(s3["p"]), 0.0, atol=1e-7)  # and back down


# p after each of 48 discriminator steps, recorded with Diffusion-GAN's own copy of the rule
# (before it called gen_jax.gan.ada.AdaptiveProbability, commit b930813): adjustments after
# steps 3, 6, ... (step + 1 a multiple of the interval), clipped to [0, 1].
OLD_DIFFUSION_GAN_P = [
    0.0, 0.0, 0.3, 0.3, 0.3, 0.6, 0.6, 0.6, 0.9, 0.9, 0.9, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0,
    1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.7, 0.7, 0.7, 0.4, 0.4, 0.4, 0.1, 0.1, 0.1, 0.0,
    0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]


def test_adaptive_diffusion_p_trajectory_is_unchanged_by_sharing_adas_rule():
  diff = AdaptiveDiffusion(interval=3, kimg=0.1, target=0.6)
  bias = np.concatenate([np.full(24, 1.5), np.full(24, -1.0)])  # overfit, then underfit
  d = np.asarray(jax.random.normal(jax.random.key(3), (48, 10))) + bias[:, None]
  update = jax.jit(lambda s, d, i: diff.update(s, d, 10, i))
  state, ps = diff.init_state(), []
  for i in range(48):
    state = update(state, jnp.asarray(d[i]), jnp.asarray(i))
    ps.append(float(state["p"]))
  np.testing.assert_allclose(ps, OLD_DIFFUSION_GAN_P, atol=1e-6)


def test_ddgan_schedule_and_real_pairs_follow_the_forward_process():
  betas = schedules.ddgan_vp_betas(4)
  t = 1e-3 + (1 - 1e-3) * np.arange(5) / 4
  abar = np.exp(-0.1 * t - 0.5 * 19.9 * t ** 2)
  np.testing.assert_allclose(np.cumprod(1 - betas), abar[1:] / abar[0], rtol=1e-10)
  c = load_config("gan/ddgan_toy_eight_gaussians.py", "smoke")
  method = build_method(c, INFO)
  x0 = jnp.tile(jnp.array([[1.5, -0.5]]), (20_000, 1))
  s = method.schedule
  for step in (0, 2, 3):
    tt = jnp.full((20_000,), step)
    x_prev, x_t = method.q_pair(jax.random.key(step), x0, tt)
    a = float(s.alphas_cumprod[step])
    np.testing.assert_allclose(np.mean(np.asarray(x_t), 0), np.sqrt(a) * np.array([1.5, -0.5]),
                               atol=0.03)
    np.testing.assert_allclose(np.var(np.asarray(x_t), 0), 1 - a, rtol=0.05, atol=1e-3)
    if step == 0:
      np.testing.assert_array_equal(np.asarray(x_prev), np.asarray(x0))
  # At t = 0 the fake "previous step" is the generator's x0 prediction itself.
  out = method.posterior_sample(jax.random.key(0), x0[:4] + 1.0, x0[:4], jnp.zeros(4, jnp.int32))
  np.testing.assert_allclose(np.asarray(out), np.asarray(x0[:4] + 1.0), rtol=1e-6)


def test_monitoring_signals():
  real = jnp.array([[0.0, 0.0], [3.0, 4.0]])  # one pair at distance 5
  np.testing.assert_allclose(float(monitoring.mean_pairwise_distance(real)), 5.0, rtol=1e-5)
  collapsed = jnp.ones((6, 2))
  assert float(monitoring.diversity_ratio(collapsed, real)) < 1e-5
  x = jnp.array([[2.0, 0.0], [2.1, 0.0], [0.0, 2.0], [1.0, 1.0]])  # 2 modes, 1 point off
  m = monitoring.mode_metrics(x, MODES, 0.05)
  assert float(m["modes_covered"]) == 2.0
  # (2.1, 0) is 2 std from its mode (inside 3 std); (1, 1) is far from every mode.
  np.testing.assert_allclose(float(m["high_quality"]), 0.75)


# ------------------------------------------------------------------------------ 8 == 1 devices


def _sgd(c):
  c.optim.name = "sgd"
  c.optim.schedule = "constant"
  for o in (c.optim_g, c.optim_d):
    o.learning_rate = 0.05
  return c


def _gan_config():
  """Conditional toy GAN with every stateful piece: G batch norm, D spectral norm, lazy
  R1, LeCam state and Diffusion-GAN's adaptive chain, two D steps per G step."""
  c = load_config("gan/toy_eight_gaussians.py", "smoke")
  _sgd(c)
  c.batch_size = 32
  c.model.generator.batch_norm = True
  c.model.discriminator.spectral_norm = True
  c.model.discriminator.time_embed_dim = 8
  c.method.class_conditional = True
  c.method.n_dis = 2
  c.method.r1_every = 2
  c.method.lecam_weight = 0.5
  d = c.method.diffusion
  # target -0.5: r_d = E[sign D(real)] starts near 0 > target, so T grows from the start.
  d.enabled, d.t_min, d.t_max, d.kimg, d.interval, d.target = True, 2, 8, 0.01, 1, -0.5
  return c


def _ddgan_config():
  return _sgd(load_config("gan/ddgan_toy_eight_gaussians.py", "smoke"))


def _run(c, num_devices: int, steps: int = 3):
  mesh = sharding_lib.make_mesh(num_devices)
  method = build_method(c, INFO)
  rep = sharding_lib.replicated(mesh)
  batches = [_toy_batch(jax.random.key(10 + i), c.batch_size) for i in range(steps)]
  batches = [sharding_lib.make_global_batch(host_tree(b), mesh) for b in batches]
  state = jax.jit(method.init, out_shardings=rep)(jax.random.key(0), batches[0])
  init = host_tree(state)
  collection = step_lib.metrics_collection(sorted(jax.eval_shape(
      method.update, state, batches[0], jax.random.key(1))[1]))
  train_step = step_lib.make_train_step(method, collection, mesh, 0.9, False)
  acc = step_lib.empty_like_collection(collection, mesh)
  for b in batches:
    state, acc, metrics, finite = train_step(state, b, jax.random.key(1), acc)
    assert bool(finite)
  return method, state, host_tree(metrics), init


@pytest.mark.parametrize("make_config", [
    _gan_config,
    # DDGAN shares apply_net and the networks; its own compile costs ~40 CPU-seconds.
    pytest.param(_ddgan_config, marks=pytest.mark.slow)], ids=["gan", "ddgan"])
def test_eight_devices_equal_one_device(make_config):
  assert jax.device_count() == 8
  c = make_config()
  _, one, m1, init = _run(c, 1)
  method, eight, m8, _ = _run(c, 8)
  for name in ("params", "ema_params", "opt_state", "model_state"):
    assert_trees_close(getattr(one, name), getattr(eight, name), rtol=1e-4, atol=1e-6)
  assert_trees_close(m1, m8, rtol=1e-4, atol=1e-6)
  # Not vacuous: parameters and the stateful collections moved.
  moved = lambda a, b: max(float(np.max(np.abs(x - y))) for x, y in zip(
      jax.tree.leaves(host_tree(a)), jax.tree.leaves(b)))
  assert moved(one.params, init.params) > 1e-4
  if method.__class__.__name__ == "GAN":
    assert moved(one.model_state, init.model_state) > 1e-4
    assert "batch_stats" in one.model_state["generator"]
    assert "spectral" in one.model_state["discriminator"]
    assert float(m1["diffusion_p"]) > 0  # the adaptive chain moved
    for key in ("d_real", "d_fake", "d_grad_norm", "g_grad_norm", "modes_covered",
                "high_quality", "diversity", "r1", "lecam", "diffusion_T", "loss"):
      assert key in m1, key
    # Evaluation mode uses the running statistics: a sample does not depend on its batch.
    z = jax.random.normal(jax.random.key(3), (8, method.z_dim))
    y = jnp.arange(8) % 8
    full, _ = method.generate(one.ema_params["generator"], one.model_state["generator"], z, y,
                              train=False)
    part, _ = method.generate(one.ema_params["generator"], one.model_state["generator"],
                              z[:2], y[:2], train=False)
    np.testing.assert_allclose(np.asarray(full[:2]), np.asarray(part), rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------------------ 8 Gaussians


def _train_on_mixture(config_name: str, steps: int, data: str = "eight_gaussians"):
  """`steps` updates (+ EMA) of the config's method in one jitted scan; 2,000 EMA samples.

  config_name may carry the config's argument: "gan/x.py:lr=5e-4"."""
  dist = toy.TOY_DISTRIBUTIONS.get(data)
  modes = jnp.asarray(dist.modes)
  path, _, arg = config_name.partition(":")
  c = load_config(path, arg or None)
  c.data.name = data
  method = build_method(c, DatasetInfo((2,), modes.shape[0], 20_000))
  b = c.batch_size
  state = jax.jit(method.init)(jax.random.key(0), _toy_batch(jax.random.key(0), b, dist))

  @jax.jit
  def train(state, key):
    def body(s, k):
      new, metrics = method.update(s, _toy_batch(jax.random.fold_in(k, 1), b, dist), k)
      new = update_ema(new.replace(step=s.step + 1), c.ema.decay, c.ema.warmup,
                       c.ema.get("start", 0))
      return new, metrics["modes_covered"]
    state, _ = jax.lax.scan(body, state, jax.random.split(key, steps))
    state = method.prepare_sampling(state, jax.random.key(6))  # BigGAN: standing statistics
    samples = method.sample(state, jax.random.key(5), 2000).samples
    return monitoring.mode_metrics(samples, modes, dist.mode_std)

  return {k: float(v) for k, v in train(state, jax.random.key(1)).items()}


# Measured (2 CPU cores, seed 0): GAN 1000 steps -> 8 modes, high quality 0.40;
# DDGAN 1000 steps, 4 sampling steps -> 8 modes, high quality 0.37; BigGAN toy 1000 steps
# -> 8 modes, high quality 0.44 (0.39 with the raw G's running statistics, no standing).
HIGH_QUALITY_THRESHOLD = 0.25


# StyleGAN2's toy recipe (untuned) covers the 8 modes but with few high-quality samples:
# 8/8, 0.037 after 1000 steps (seed 0, 33 min on the loaded 2-core CPU, 2026-11-29).
STYLEGAN2_TOY = "gan/stylegan2_toy_eight_gaussians.py"


@pytest.mark.parametrize("config_name", [
    "gan/toy_eight_gaussians.py", "gan/ddgan_toy_eight_gaussians.py",
    pytest.param("gan/biggan_toy_eight_gaussians.py", marks=pytest.mark.slow),
    pytest.param(STYLEGAN2_TOY, marks=pytest.mark.slow)])
def test_short_training_covers_all_eight_modes(config_name):
  result = _train_on_mixture(config_name, steps=1000)
  assert result["modes_covered"] == 8, result
  if config_name == STYLEGAN2_TOY and result["high_quality"] <= HIGH_QUALITY_THRESHOLD:
    pytest.xfail(f"StyleGAN2 toy: all 8 modes, high quality {result['high_quality']:.3f} "
                 f"<= {HIGH_QUALITY_THRESHOLD} (its recipe is not tuned yet)")
  assert result["high_quality"] > HIGH_QUALITY_THRESHOLD, result


# Measured (seed 0, experiments/bench/gan_mixture_coverage_cpu.md): GAN 6000 steps -> 25/25
# modes, high quality 0.82 (2000 steps: 25/25, 0.16). The 8-Gaussian DDGAN config stalls at
# ~0.07 on the grid (issue 10, bug 6); configs/gan/ddgan_toy_twenty_five_gaussians.py
# (per-step networks, zero-initialised condition in D, lr 2e-3) learns it (the bench: 25/25,
# 0.698). BigGAN's toy recipe at lr 5e-4: 25/25, 0.51 (0.24 at its 1e-3 default).
@pytest.mark.slow
@pytest.mark.parametrize("config_name", [
    "gan/toy_eight_gaussians.py", "gan/ddgan_toy_twenty_five_gaussians.py",
    "gan/biggan_toy_eight_gaussians.py:lr=5e-4"])
def test_training_covers_all_twenty_five_modes(config_name):
  result = _train_on_mixture(config_name, steps=6000, data="twenty_five_gaussians")
  assert result["modes_covered"] == 25, result
  assert result["high_quality"] > HIGH_QUALITY_THRESHOLD, result
