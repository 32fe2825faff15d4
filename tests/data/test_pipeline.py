"""Tests for gen_jax.data.pipeline: determinism, process sharding, epochs, resume, eval."""

from __future__ import annotations

import json

import grain
import numpy as np
import pytest

from gen_jax.data import pipeline
from gen_jax.data import sources
from gen_jax.data import transforms


def _indexed_source(n: int) -> sources.ArraySource:
  """Example i has label i and every pixel equal to i (n <= 256), so batches name their rows."""
  images = np.broadcast_to(np.arange(n, dtype=np.uint8)[:, None, None, None], (n, 2, 2, 1))
  return sources.ArraySource(images, np.arange(n))


def _take(iterator, steps):
  return [next(iterator) for _ in range(steps)]


def _assert_batches_equal(a, b):
  assert len(a) == len(b)
  for x, y in zip(a, b):
    assert x.keys() == y.keys()
    for key in x:
      np.testing.assert_array_equal(x[key], y[key], err_msg=key)


@pytest.fixture(scope="module")
def digits():
  return sources.digits_source("train")


def _train(source, **kwargs):
  options = dict(global_batch_size=12, seed=0, process_index=0, process_count=1,
                 random_flip=True, dequantize=True, num_threads=2, prefetch=3)
  options.update(kwargs)
  return pipeline.make_train_iterator(source, **options)


def test_batch_layout_and_values(digits):
  batch = next(_train(digits, random_flip=False, dequantize=False))
  assert batch["image"].shape == (12, 8, 8, 1) and batch["image"].dtype == np.float32
  assert batch["label"].shape == (12,) and batch["label"].dtype == np.int32
  indexed = _indexed_source(50)
  batch = next(_train(indexed, random_flip=False, dequantize=False))
  np.testing.assert_array_equal(
      batch["image"], transforms.to_float(np.asarray(batch["label"], np.uint8))[:, None, None, None]
      * np.ones((1, 2, 2, 1), np.float32))


def test_same_seed_same_batches_different_seed_different(digits):
  first = _take(_train(digits, seed=3), 4)
  _assert_batches_equal(first, _take(_train(digits, seed=3, num_threads=0), 4))
  other = _take(_train(digits, seed=4), 4)
  assert not np.array_equal(first[0]["label"], other[0]["label"])
  assert not np.array_equal(first[0]["image"], other[0]["image"])


@pytest.mark.parametrize("process_count", [2, 4])
def test_process_shards_concatenate_to_the_global_batch(digits, process_count):
  steps = 5
  reference = _take(_train(digits), steps)
  shards = [_take(_train(digits, process_index=p, process_count=process_count), steps)
            for p in range(process_count)]
  for step in range(steps):
    for key in ("image", "label"):
      local = [shard[step][key] for shard in shards]
      assert local[0].shape[0] == 12 // process_count
      np.testing.assert_array_equal(np.concatenate(local), reference[step][key])


@pytest.mark.parametrize("num_examples,global_batch_size,process_count",
                         [(12, 4, 1), (10, 4, 2)])
def test_every_epoch_is_a_fresh_permutation(num_examples, global_batch_size, process_count):
  source = _indexed_source(num_examples)
  epochs = 4
  steps = epochs * num_examples // global_batch_size
  shards = [_take(_train(source, global_batch_size=global_batch_size, random_flip=False,
                         dequantize=False, process_index=p, process_count=process_count),
                  steps)
            for p in range(process_count)]
  stream = np.concatenate([np.concatenate([shard[t]["label"] for shard in shards])
                           for t in range(steps)])
  orders = stream.reshape(epochs, num_examples)
  for order in orders:
    np.testing.assert_array_equal(np.sort(order), np.arange(num_examples))
  assert len({tuple(order) for order in orders}) == epochs


def test_augmentation_is_a_flip_plus_in_bin_noise():
  # Example i is a left-right ramp, so a flip is visible; pixel values stay in their bins.
  ramp = np.array([[10, 20, 30]], np.uint8)[..., None]
  source = sources.ArraySource(np.broadcast_to(ramp, (8, 1, 3, 1)))
  batches = _take(_train(source, global_batch_size=8), 4)
  images = np.concatenate([b["image"] for b in batches])
  bins = np.floor((images + 1) * 128).astype(int)
  flipped = bins[:, 0, 0, 0] == 30
  assert np.all(bins[~flipped, 0, :, 0] == [10, 20, 30])
  assert np.all(bins[flipped, 0, :, 0] == [30, 20, 10])
  assert 4 < flipped.sum() < 28
  assert len(np.unique(images[:, 0, 1, 0])) == 32  # fresh noise for every draw


def test_resume_from_state_matches_uninterrupted_run(digits):
  reference = _take(_train(digits), 7)
  iterator = _train(digits)
  _take(iterator, 3)
  state = json.loads(json.dumps(iterator.get_state()))  # survives a JSON round trip
  resumed = _train(digits)
  resumed.set_state(state)
  _assert_batches_equal(_take(resumed, 4), reference[3:])


def test_resume_through_orbax_checkpoint_manager(digits, tmp_path):
  import orbax.checkpoint as ocp
  reference = _take(_train(digits, process_index=1, process_count=2), 6)
  iterator = _train(digits, process_index=1, process_count=2)
  _take(iterator, 2)
  with ocp.CheckpointManager(tmp_path / "ckpt") as manager:
    manager.save(2, args=ocp.args.Composite(data=grain.checkpoint.CheckpointSave(iterator)))
    manager.wait_until_finished()
  _take(iterator, 2)  # moves on after the save; the checkpoint must not follow

  resumed = _train(digits, process_index=1, process_count=2)
  with ocp.CheckpointManager(tmp_path / "ckpt") as manager:
    assert manager.latest_step() == 2
    manager.restore(2, args=ocp.args.Composite(data=grain.checkpoint.CheckpointRestore(resumed)))
  _assert_batches_equal(_take(resumed, 4), reference[2:])


@pytest.mark.parametrize("process_count", [1, 2, 3])
def test_eval_covers_every_example_once_with_mask(process_count):
  source = _indexed_source(20)
  iterators = [pipeline.make_eval_iterator(source, global_batch_size=6, process_index=p,
                                           process_count=process_count, num_threads=2)
               for p in range(process_count)]
  shards = [list(it) for it in iterators]
  assert all(len(shard) == 4 for shard in shards)  # ceil(20 / 6)
  labels = np.concatenate([np.concatenate([s[t]["label"] for s in shards]) for t in range(4)])
  mask = np.concatenate([np.concatenate([s[t]["mask"] for s in shards]) for t in range(4)])
  assert mask.dtype == bool and shards[0][0]["mask"].shape == (6 // process_count,)
  np.testing.assert_array_equal(labels[mask], np.arange(20))
  np.testing.assert_array_equal(mask, np.arange(24) < 20)
  images = np.concatenate([np.concatenate([s[t]["image"] for s in shards]) for t in range(4)])
  np.testing.assert_array_equal(images[mask][:, 0, 0, 0], transforms.to_float(np.arange(20)))


def test_eval_dequantization_is_fixed_by_its_seed():
  source = _indexed_source(10)
  passes = [list(pipeline.make_eval_iterator(source, global_batch_size=4, process_index=0,
                                             process_count=1, dequantize=True, seed=s))
            for s in (0, 0, 1)]
  _assert_batches_equal(passes[0], passes[1])
  assert not np.array_equal(passes[0][0]["image"], passes[2][0]["image"])
  images = np.concatenate([b["image"] for b in passes[0]])
  bins = np.floor((images + 1) * 128).astype(int)
  np.testing.assert_array_equal(bins[:, 0, 0, 0], np.arange(12) % 10)


def test_defaults_to_the_jax_process(digits):
  batch = next(pipeline.make_train_iterator(digits, global_batch_size=4, seed=0))
  assert batch["image"].shape == (4, 8, 8, 1)  # one JAX process in tests


def test_clear_errors(digits):
  with pytest.raises(ValueError, match="not divisible by the process count 4"):
    _train(digits, global_batch_size=10, process_count=4)
  with pytest.raises(ValueError, match="exceeds the 1500 examples"):
    _train(digits, global_batch_size=1504)
  with pytest.raises(ValueError, match="process_index < process_count"):
    _train(digits, process_index=2, process_count=2)
  with pytest.raises(ValueError, match="non-negative"):
    _train(digits, seed=-1)
  with pytest.raises(ValueError, match="not divisible"):
    pipeline.make_eval_iterator(digits, global_batch_size=5, process_index=0, process_count=2)


def test_iterators_from_config():
  import ml_collections
  cfg = ml_collections.ConfigDict(dict(
      source="digits", name=None, split="train", eval_split="test", data_dir=None, path=None,
      eval_path=None, image_size=None, random_flip=True, dequantize=False, download=False,
      num_threads=2, prefetch=2))
  train, info = pipeline.build_train_iterator_from_config(
      cfg, global_batch_size=8, seed=0, process_index=0, process_count=1)
  assert info == sources.DatasetInfo((8, 8, 1), 10, 1500)
  assert next(train)["image"].shape == (8, 8, 8, 1)
  evaluation, eval_info = pipeline.build_eval_iterator_from_config(
      cfg, global_batch_size=64, process_index=0, process_count=1)
  assert eval_info.num_examples == 297
  assert sum(int(batch["mask"].sum()) for batch in evaluation) == 297
