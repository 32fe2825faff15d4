"""Unpaired two-domain data (CycleGAN): folders and tfds splits, independent shuffles."""

import numpy as np
import pytest
import tensorflow_datasets as tfds

from gen_jax.data import build_source, make_eval_iterator, make_train_iterator
from gen_jax.data.sources import ArraySource, UnpairedSource
from tests.train.helpers import write_image_folder


def _domain(n, value_offset):
  """n 2x2 grey images whose pixel value identifies the image (offset + index)."""
  images = (value_offset + np.arange(n, dtype=np.uint8))[:, None, None, None]
  return ArraySource(np.broadcast_to(images, (n, 2, 2, 1)).copy())


def _ids(batch_images, offset):
  """Image indices from model-space pixels x = u / 127.5 - 1."""
  return np.rint((batch_images[:, 0, 0, 0] + 1) * 127.5).astype(int) - offset


def test_domains_are_reshuffled_independently_every_epoch_of_their_own_size():
  source = UnpairedSource(_domain(5, 0), _domain(3, 100))
  assert len(source) == 5 and source.info.image_keys == ("image_a", "image_b")
  it = make_train_iterator(source, global_batch_size=5, seed=0, process_index=0,
                           process_count=1, num_threads=0)
  a, b = [], []
  for _ in range(6):
    batch = next(it)
    assert set(batch) == {"image_a", "image_b", "label"}
    a += list(_ids(batch["image_a"], 0))
    b += list(_ids(batch["image_b"], 100))
  for epoch in range(6):  # each epoch of A is a permutation of A
    assert sorted(a[5 * epoch:5 * epoch + 5]) == list(range(5))
  for epoch in range(10):  # and of B, with B's own length
    assert sorted(b[3 * epoch:3 * epoch + 3]) == list(range(3))
  assert len({tuple(a[i:i + 5]) for i in range(0, 30, 5)}) > 1  # reshuffled
  # Two processes load the halves of the same global batches.
  def rows(p, n):
    it = make_train_iterator(source, global_batch_size=4, seed=3, process_index=p,
                             process_count=n, num_threads=0)
    return [next(it) for _ in range(3)]
  whole = rows(0, 1)
  halves = [rows(0, 2), rows(1, 2)]
  for t in range(3):
    for key in ("image_a", "image_b"):
      np.testing.assert_array_equal(
          whole[t][key], np.concatenate([halves[0][t][key], halves[1][t][key]]))


def test_eval_pass_pairs_by_index_and_masks_padding():
  source = UnpairedSource(_domain(5, 0), _domain(3, 100))
  batches = list(make_eval_iterator(source, global_batch_size=4, process_index=0,
                                    process_count=1, num_threads=0))
  a = np.concatenate([_ids(x["image_a"], 0) for x in batches])
  b = np.concatenate([_ids(x["image_b"], 100) for x in batches])
  mask = np.concatenate([x["mask"] for x in batches])
  assert list(a[mask]) == [0, 1, 2, 3, 4] and list(b[mask]) == [0, 1, 2, 0, 1]


def test_unpaired_folders_and_tfds_splits_from_the_config(tmp_path):
  cfg = dict(source="unpaired_folders", image_size=8,
             path_a=write_image_folder(tmp_path / "a", 3),
             path_b=write_image_folder(tmp_path / "b", 4, size=(10, 30)))
  source, info = build_source(cfg, "train")
  assert info.image_shape == (8, 8, 3) and info.num_examples == 4
  assert source[3]["image_b"].shape == (8, 8, 3)
  with pytest.raises(ValueError, match="data.eval_path_a"):
    build_source(cfg, "eval")
  with pytest.raises(ValueError, match="different image shapes"):
    build_source({**cfg, "image_size": None}, "train")

  with tfds.testing.mock_data(num_examples=4, policy=tfds.testing.MockPolicy.USE_CODE):
    source, info = build_source(dict(source="unpaired_tfds", name="cycle_gan/horse2zebra",
                                     image_size=8, data_dir=str(tmp_path / "tfds")), "eval")
  assert info.image_keys == ("image_a", "image_b") and info.num_classes == 0
  assert source[0]["image_a"].shape == (8, 8, 3)
