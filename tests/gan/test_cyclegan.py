"""CycleGAN: cycle loss, the history pool, the networks, the schedule, 8 devices == 1, and
train-then-translate from the command line on two folders of PNGs."""

import os
import subprocess
import sys

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from PIL import Image

from gen_jax.core import sharding as sharding_lib
from gen_jax.core.sample import SampleSpec
from gen_jax.data import DatasetInfo
from gen_jax.gan import image_pool
from gen_jax.methods import build_method
from gen_jax.methods import cyclegan as cyclegan_lib
from gen_jax.methods.gan import build_optimizers
from gen_jax.nets import build_net
from gen_jax.nets.cyclegan import instance_norm, patch_grid, receptive_field
from gen_jax.train import step as step_lib
from tests.train.helpers import (REPO, assert_trees_close, host_tree, load_config,
                                 write_image_folder)

SHAPE = (16, 16, 3)
INFO = DatasetInfo(SHAPE, 0, 64, image_keys=("image_a", "image_b"))


def _images(key, n, shape=SHAPE):
  return jax.random.uniform(key, (n, *shape), minval=-1.0, maxval=1.0)


# ------------------------------------------------------------------------------ losses


class Affine(nn.Module):
  """x -> scale * x + shift, with one (unused) parameter so it has a param tree."""

  scale: float = 1.0
  shift: float = 0.0

  @nn.compact
  def __call__(self, x, *, train=False):
    del train
    return self.scale * x + self.shift + 0.0 * self.param("w", nn.initializers.ones, ())


def _method_with(generator):
  tiny = build_net("patchgan_discriminator", ndf=4, num_layers=1)
  tx = optax.sgd(0.1)
  return cyclegan_lib.CycleGAN(generator=generator, discriminator=tiny, optimizer_g=tx,
                               optimizer_d=tx, image_shape=SHAPE, pool_size=4)


def test_cycle_loss_of_identity_generators_is_zero():
  a, b = _images(jax.random.key(0), 3), _images(jax.random.key(1), 3)
  identity = lambda x: x
  cycle_a, cycle_b, fake_b, fake_a = cyclegan_lib.cycle_losses(identity, identity, a, b)
  assert float(cycle_a) == 0.0 and float(cycle_b) == 0.0
  np.testing.assert_array_equal(fake_b, a)
  # Any inverse pair is cycle-consistent; a non-inverse pair is not (|shift| twice).
  g, f = (lambda x: 2 * x + 1), (lambda y: (y - 1) / 2)
  assert max(map(float, cyclegan_lib.cycle_losses(g, f, a, b)[:2])) < 1e-6
  shift = lambda x: x + 0.1
  np.testing.assert_allclose(cyclegan_lib.cycle_losses(shift, shift, a, b)[:2], 0.2, rtol=1e-4)

  # Through the method's generator objective: identity nets have zero cycle and identity
  # losses, so L_G is the adversarial part alone.
  method = _method_with(Affine())
  state = method.init(jax.random.key(2), {"image_a": a, "image_b": b})
  loss, (metrics, _, _) = method.generator_loss(
      state.params["generator"], state.params["discriminator"], a, b)
  for key in ("cycle_a", "cycle_b", "identity_a", "identity_b"):
    assert float(metrics[key]) == 0.0, key
  np.testing.assert_allclose(loss, metrics["g_adv_a"] + metrics["g_adv_b"], rtol=1e-6)
  # The adversarial term is the code's MSE(D(G(a)), 1), not 1/2 of it.
  d_b = method.discriminator.apply({"params": state.params["discriminator"]["b"]}, a)
  np.testing.assert_allclose(metrics["g_adv_b"], jnp.mean(jnp.square(d_b - 1)), rtol=1e-5)


def test_cycle_and_identity_weights_enter_as_in_the_code():
  a, b = _images(jax.random.key(0), 2), _images(jax.random.key(1), 2)
  method = _method_with(Affine(shift=0.25))  # G = F = x + 0.25: cycle 0.5, identity 0.25
  state = method.init(jax.random.key(2), {"image_a": a, "image_b": b})
  loss, (m, _, _) = method.generator_loss(state.params["generator"],
                                          state.params["discriminator"], a, b)
  np.testing.assert_allclose([m["cycle_a"], m["cycle_b"]], 0.5, rtol=1e-5)
  np.testing.assert_allclose([m["identity_a"], m["identity_b"]], 0.25, rtol=1e-5)
  expected = m["g_adv_a"] + m["g_adv_b"] + 10 * (0.5 + 0.5) + 0.5 * 10 * (0.25 + 0.25)
  np.testing.assert_allclose(loss, expected, rtol=1e-5)


# ------------------------------------------------------------------------------ the pool


def test_pool_passes_through_and_stores_the_first_pool_size_images():
  size = 5
  pool = image_pool.init_pool(size, (2, 2, 1))
  fakes = jnp.arange(8, dtype=jnp.float32)[:, None, None, None] * jnp.ones((8, 2, 2, 1))
  # 3 images fill slots 0-2; the next batch of 3 fills 3-4 and then the pool is full.
  pool, out = image_pool.query(pool, fakes[:3], jax.random.key(0))
  np.testing.assert_array_equal(out, fakes[:3])
  assert int(pool["count"]) == 3
  pool, out = image_pool.query(pool, fakes[3:6], jax.random.key(1))
  np.testing.assert_array_equal(out[:2], fakes[3:5])  # still filling: passed through
  np.testing.assert_array_equal(pool["images"], fakes[:5])
  assert int(pool["count"]) == size
  # The sixth image met a full pool: returned as is, or swapped for a stored image.
  assert float(out[2, 0, 0, 0]) in {5.0, *map(float, range(5))}
  # pool_size 0 is no pool.
  empty = image_pool.init_pool(0, (2, 2, 1))
  np.testing.assert_array_equal(image_pool.query(empty, fakes, jax.random.key(2))[1], fakes)


def test_full_pool_returns_stored_history_with_probability_one_half():
  """Each query after the pool is full returns a stored image w.p. 1/2, chosen uniformly,
  and the new image takes its slot (binomial test: 4 standard deviations)."""
  size, batch, steps = 10, 8, 250
  pool = image_pool.init_pool(size, (1, 1, 1))
  pool, _ = image_pool.query(pool, -jnp.arange(1, size + 1, dtype=jnp.float32)
                             .reshape(size, 1, 1, 1), jax.random.key(99))
  query = jax.jit(image_pool.query)
  returned_stored, slots, next_id = 0, np.zeros(size), 0
  for step in range(steps):
    ids = np.arange(next_id, next_id + batch, dtype=np.float32)  # every fake is unique
    next_id += batch
    before = np.asarray(pool["images"]).ravel()
    pool, out = query(pool, jnp.asarray(ids).reshape(batch, 1, 1, 1),
                      jax.random.fold_in(jax.random.key(0), step))
    out = np.asarray(out).ravel()
    after = np.asarray(pool["images"]).ravel()
    history = set(before) | set(ids)
    for i, value in enumerate(out):
      assert value in history  # only stored images or this batch's own fakes come back
      if value != ids[i]:
        returned_stored += 1
        assert ids[i] in after or ids[i] in out  # the new image was stored (or re-served)
    for slot in np.flatnonzero(before != after):
      slots[slot] += 1
  n = steps * batch
  p = image_pool.RETURN_STORED_PROBABILITY
  assert abs(returned_stored / n - p) < 4 * np.sqrt(p * (1 - p) / n), returned_stored / n
  # Every slot is replaced about equally often (each step changes ~4 of 10 slots).
  assert slots.min() > 0.6 * slots.mean() and slots.max() < 1.4 * slots.mean(), slots


# ------------------------------------------------------------------------------ networks


def test_resnet_generator_and_patchgan_shapes_and_receptive_field():
  g = build_net("cyclegan_resnet_generator", ngf=4, num_blocks=1, out_channels=3)
  x = _images(jax.random.key(0), 2, (16, 16, 3))
  params = g.init(jax.random.key(1), x)
  y = g.apply(params, x)
  assert y.shape == x.shape and float(jnp.max(jnp.abs(y))) <= 1.0
  with pytest.raises(ValueError, match="divisible by 4"):
    g.apply(params, x[:, :14])

  h = instance_norm(x * 3 + 2)
  np.testing.assert_allclose(jnp.mean(h, axis=(1, 2)), 0.0, atol=1e-5)
  np.testing.assert_allclose(jnp.var(h, axis=(1, 2)), 1.0, rtol=1e-3)

  d = build_net("patchgan_discriminator", ndf=2, num_layers=3)
  image = _images(jax.random.key(2), 1, (96, 96, 1))
  logits = d.apply(d.init(jax.random.key(3), image), image)
  assert logits.shape == (1, 10, 10, 1)  # 96 -> 48 -> 24 -> 12 -> 11 -> 10
  assert patch_grid(96) == 10 and patch_grid(256) == 30
  with pytest.raises(ValueError, match="too small"):
    d.init(jax.random.key(3), image[:, :16, :16])  # 16 -> 8 -> 4 -> 2 -> 1 -> 0
  # The convolutions' window per logit (instance norm adds the image-wide statistics).
  assert receptive_field(3) == 70 and receptive_field(1) == 16


# ------------------------------------------------------------------------------ schedule


def _epoch_factor_of_the_code(epoch: int, n_epochs=100, n_epochs_decay=100) -> float:
  """networks.get_scheduler's 'linear' rule in epoch `epoch` (1-based; stepped at epoch ends)."""
  return 1.0 - max(0, epoch - n_epochs) / float(n_epochs_decay + 1)


def test_learning_rate_schedule_has_the_papers_shape_over_the_real_steps():
  c = load_config("cyclegan/horse2zebra.py", None)
  epoch = 1334  # max(|trainA|, |trainB|) at batch 1
  assert c.num_train_steps == 200 * epoch and c.batch_size == 1
  _, _, lr_g, lr_d = build_optimizers(c)
  peak = 2e-4
  steps = np.arange(0, c.num_train_steps + 1, 97)
  lr = np.asarray(jax.vmap(lr_g)(jnp.asarray(steps)))
  np.testing.assert_allclose(lr, np.asarray(jax.vmap(lr_d)(jnp.asarray(steps))))
  # Paper: the same rate for 100 epochs, then linearly to zero over the next 100.
  half = c.num_train_steps // 2
  np.testing.assert_allclose(lr[steps < half], peak, rtol=1e-6)
  decay = steps >= half
  np.testing.assert_allclose(lr[decay], peak * (1 - (steps[decay] - half) / half), rtol=1e-4,
                             atol=1e-10)
  assert float(lr_g(c.num_train_steps)) == 0.0
  # The official code's per-epoch rule, within 1/101 of the peak at every epoch.
  for e in range(1, 201):
    mid = (e - 1) * epoch + epoch // 2
    assert abs(float(lr_g(mid)) - peak * _epoch_factor_of_the_code(e)) <= peak / 101 + 1e-12


# ------------------------------------------------------------------------------ 8 == 1


def _tiny_config(batch=8):
  c = load_config("cyclegan/folders.py", "smoke")
  c.batch_size = batch
  c.data.image_size = SHAPE[0]
  c.model.generator.ngf = 4
  c.model.discriminator.ndf = 4
  c.model.discriminator.num_layers = 2  # 16 -> 8 -> 4 -> 3 -> 2 patches per side
  c.method.pool_size = 6  # the first step fills it and then swaps
  c.optim.name = "sgd"
  c.optim.schedule = "constant"
  for o in (c.optim_g, c.optim_d):
    o.learning_rate = 0.05
  return c


def _run(c, num_devices, steps=2):
  mesh = sharding_lib.make_mesh(num_devices)
  method = build_method(c, INFO)
  rep = sharding_lib.replicated(mesh)
  batches = [{"image_a": _images(jax.random.key(10 + i), c.batch_size),
              "image_b": _images(jax.random.key(20 + i), c.batch_size),
              "label": jnp.zeros((c.batch_size,), jnp.int32)} for i in range(steps)]
  batches = [sharding_lib.make_global_batch(host_tree(b), mesh) for b in batches]
  state = jax.jit(method.init, out_shardings=rep)(jax.random.key(0), batches[0])
  init = host_tree(state)
  collection = step_lib.metrics_collection(sorted(jax.eval_shape(
      method.update, state, batches[0], jax.random.key(1))[1]))
  train_step = step_lib.make_train_step(method, collection, mesh, 0.0, False)
  acc = step_lib.empty_like_collection(collection, mesh)
  for b in batches:
    state, acc, metrics, finite = train_step(state, b, jax.random.key(1), acc)
    assert bool(finite)
  return state, host_tree(metrics), init


@pytest.mark.slow  # two compilations of the whole step: 150 s on 2 loaded CPU cores
def test_eight_devices_equal_one_device():
  assert jax.device_count() == 8
  c = _tiny_config()  # batch 8, pool 6: one step fills the pool and swaps two images
  one, m1, init = _run(c, 1, steps=1)
  eight, m8, _ = _run(c, 8, steps=1)
  for name in ("params", "opt_state", "model_state"):
    assert_trees_close(getattr(one, name), getattr(eight, name), rtol=1e-4, atol=1e-5)
  assert_trees_close(m1, m8, rtol=1e-4, atol=1e-5)
  # Not vacuous: both generators and discriminators moved, and the pool filled and swapped.
  for net in ("generator", "discriminator"):
    for key in one.params[net]:
      delta = jax.tree.map(lambda x, y: np.max(np.abs(np.asarray(x) - y)),
                           one.params[net][key], init.params[net][key])
      assert max(jax.tree.leaves(delta)) > 1e-4, (net, key)
  pool = host_tree(one.model_state["pool"]["b"])
  assert int(pool["count"]) == c.method.pool_size and np.abs(pool["images"]).max() > 0
  assert float(m1["pool_count"]) == c.method.pool_size
  for key in ("cycle_a", "identity_b", "d_a_loss", "d_b_real", "g_grad_norm", "g_lr"):
    assert key in m1, key


def test_sampling_refuses_options_it_cannot_honour():
  c = _tiny_config(batch=2)
  method = build_method(c, INFO)
  batch = {"image_a": _images(jax.random.key(0), 2), "image_b": _images(jax.random.key(1), 2)}
  state = method.init(jax.random.key(2), batch)
  out = method.sample(state, jax.random.key(3), 5)
  # Previews: rows 0, 1 of A repeated to preview_size (4), then B's; 5 samples = 4 + 1.
  to_b = method.translate(state, batch["image_a"], "a_to_b")["translated"]
  np.testing.assert_allclose(out.samples[:2], to_b, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(out.samples[2:4], to_b, rtol=1e-5, atol=1e-6)
  for spec in (SampleSpec(temperature=0.7), SampleSpec(truncation=0.5),
               SampleSpec(guidance_scale=2.0)):
    with pytest.raises(ValueError, match="'cyclegan' family cannot honour"):
      method.sample(state, jax.random.key(3), 4, spec)
    with pytest.raises(ValueError, match="cannot honour"):
      method.translate(state, batch["image_a"], "a_to_b", spec)
  with pytest.raises(ValueError, match="direction"):
    method.translate(state, batch["image_a"], "a_to_c")
  with pytest.raises(ValueError, match="unpaired"):
    build_method(c, DatasetInfo(SHAPE, 0, 8))


# ------------------------------------------------------------------------------ command line


@pytest.mark.slow  # two processes compiling the step and the translation: 290 s loaded
def test_train_then_translate_two_folders_from_the_command_line(tmp_path):
  folders = {f: write_image_folder(tmp_path / f, n, seed=i) for i, (f, n) in
             enumerate([("trainA", 9), ("trainB", 8), ("testA", 3), ("testB", 2)])}
  inputs = tmp_path / "mine"
  inputs.mkdir()
  Image.fromarray(np.full((40, 50, 3), 200, np.uint8)).save(inputs / "x.jpg")  # resized
  common = ["--config=configs/cyclegan/folders.py:smoke", f"--workdir={tmp_path / 'run'}",
            f"--config.data.path_a={folders['trainA']}",
            f"--config.data.path_b={folders['trainB']}",
            f"--config.data.eval_path_a={folders['testA']}",
            f"--config.data.eval_path_b={folders['testB']}",
            "--config.num_train_steps=2", "--config.trainer.sample_every_steps=0",
            "--config.trainer.eval_every_steps=0", "--config.trainer.num_devices=1"]
  run = lambda *args: subprocess.run([sys.executable, "-m", "gen_jax.main", *common, *args],
                                     cwd=REPO, env=dict(os.environ), capture_output=True,
                                     text=True, timeout=1800)
  train = run()
  assert train.returncode == 0, train.stderr[-3000:]
  sample = run("--mode=sample", f"--config.sample.inputs_a={inputs}")
  assert sample.returncode == 0, sample.stderr[-3000:]
  out = tmp_path / "run" / "samples"
  a2b, b2a = np.load(out / "translate_a_to_b_2.npz"), np.load(out / "translate_b_to_a_2.npz")
  assert a2b["inputs"].shape == (1, 32, 32, 3)  # the given folder, resized
  assert (a2b["inputs"] == 200).all()
  assert b2a["inputs"].shape == (2, 32, 32, 3)  # the eval split of B (testB)
  for arrays in (a2b, b2a):
    assert arrays["translated"].shape == arrays["reconstructed"].shape == arrays[
        "inputs"].shape
  for direction in ("a_to_b", "b_to_a"):
    grid = np.asarray(Image.open(out / f"translate_{direction}_2.png"))
    # One row of (input | translated | reconstructed) triples, upscaled 4x from 32 px.
    assert grid.shape[0] == 4 * (32 + 2) and grid.shape[1] == 4 * (
        3 * len(a2b["inputs"] if direction == "a_to_b" else b2a["inputs"]) * 33 + 1)


# ------------------------------------------------------------------------------ data jitter


def test_training_images_are_random_image_size_crops_of_load_size_images(tmp_path):
  """The official resize_and_crop: train images read at load_size, each batch row a random
  image_size window of its image (offsets vary), eval images read at image_size."""
  from gen_jax import data as data_lib  # pylint: disable=g-import-not-at-top
  from gen_jax.data import sources  # pylint: disable=g-import-not-at-top
  c = load_config("cyclegan/folders.py", "smoke")
  assert (c.data.image_size, c.data.load_size) == (32, 36)  # 256 -> 286, scaled
  c.data.path_a = c.data.eval_path_a = write_image_folder(tmp_path / "a", 1, size=(40, 40))
  c.data.path_b = c.data.eval_path_b = write_image_folder(tmp_path / "b", 1, seed=1,
                                                          size=(40, 40))
  c.data.random_flip = False
  c.data.num_threads = 0
  source, info = data_lib.build_source(c.data, "train")
  assert info.image_shape == (32, 32, 3)
  full = source[0]["image_a"]
  assert full.shape == (36, 36, 3)  # read at load_size
  iterator, _ = data_lib.build_train_iterator_from_config(
      c.data, global_batch_size=1, seed=0, process_index=0, process_count=1,
      source_and_info=(source, info))
  offsets = set()
  for _ in range(12):
    crop = np.asarray(next(iterator)["image_a"][0])
    assert crop.shape == (32, 32, 3)
    pixels = np.round((crop + 1.0) * 127.5).astype(np.uint8)
    found = [(i, j) for i in range(5) for j in range(5)
             if np.array_equal(full[i:i + 32, j:j + 32], pixels)]
    assert len(found) == 1, "a batch row is not a window of the load_size image"
    offsets.add(found[0])
  assert len(offsets) > 3  # random offsets
  assert data_lib.build_source(c.data, "eval")[1].image_shape == (32, 32, 3)
  c.data.load_size = 30
  with pytest.raises(ValueError, match="load_size"):
    sources.train_crop_size(c.data)
