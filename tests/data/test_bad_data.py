"""Damaged data: each case names the file and the fix; data.skip_corrupt skips and counts."""

from __future__ import annotations

import gzip
import io
import pathlib
import struct

import numpy as np
import PIL.Image
import pytest

from gen_jax import data
from gen_jax.data import sources
from gen_jax.data.sources import CorruptDataError


def _png_bytes(h: int, w: int, value: int) -> bytes:
  buffer = io.BytesIO()
  PIL.Image.fromarray(np.full((h, w, 3), value, np.uint8)).save(buffer, format="PNG")
  return buffer.getvalue()


def _folder(root: pathlib.Path, n: int = 4, size=(4, 4)) -> list[pathlib.Path]:
  (root / "a").mkdir(parents=True)
  paths = []
  for i in range(n):
    path = root / "a" / f"{i}.png"
    path.write_bytes(_png_bytes(*size, value=10 * i))
    paths.append(path)
  return paths


def _folder_cfg(root, **kw):
  return {"source": "folder", "path": str(root), **kw}


def test_undecodable_folder_file_is_named_before_training_or_skipped(tmp_path, caplog):
  _folder(tmp_path)
  bad = tmp_path / "a" / "2b.png"
  bad.write_bytes(b"this is not a png")
  with pytest.raises(CorruptDataError, match=r"(?s)1 of the 5 image files.*2b\.png.*cannot "
                     r"be read as an image.*replace or delete.*data\.skip_corrupt=True"):
    data.build_source(_folder_cfg(tmp_path), "train")
  caplog.set_level("WARNING")
  source, info = data.build_source(_folder_cfg(tmp_path, skip_corrupt=True), "train")
  assert len(source) == info.num_examples == 4
  assert "Skipped 1 of the 5 image files" in caplog.text and "2b.png" in caplog.text
  assert [int(source[i]["image"][0, 0, 0]) for i in range(4)] == [0, 10, 20, 30]


def test_wrongly_sized_folder_file_is_named_or_skipped(tmp_path, caplog):
  _folder(tmp_path)
  (tmp_path / "a" / "odd.png").write_bytes(_png_bytes(5, 4, value=99))
  with pytest.raises(CorruptDataError, match=r"(?s)odd\.png: is 4x5 \(WxH\) but 4 of the "
                     r"images are 4x4.*set data\.image_size"):
    data.build_source(_folder_cfg(tmp_path), "train")
  caplog.set_level("WARNING")
  source, info = data.build_source(_folder_cfg(tmp_path, skip_corrupt=True), "train")
  assert len(source) == 4 and info.image_shape == (4, 4, 3)
  assert "Skipped 1 of the 5" in caplog.text
  # With a resize every size is fine: nothing is skipped.
  source, info = data.build_source(_folder_cfg(tmp_path, image_size=4), "train")
  assert len(source) == 5


def test_file_failing_only_when_decoded_is_named_or_replaced(tmp_path, caplog):
  paths = _folder(tmp_path, size=(16, 16))
  # A valid header followed by truncated pixel data: found only by a full decode.
  paths[2].write_bytes(paths[2].read_bytes()[:60])
  source = sources.FolderSource(tmp_path)
  assert len(source) == 4  # the header check passes
  with pytest.raises(CorruptDataError, match=r"2\.png cannot be decoded.*skip_corrupt"):
    source[2]  # pylint: disable=pointless-statement
  caplog.set_level("WARNING")
  skipping = sources.FolderSource(tmp_path, skip_corrupt=True)
  np.testing.assert_array_equal(skipping[2]["image"], skipping[3]["image"])
  assert "Replaced by the next readable file" in caplog.text and "1 file(s)" in caplog.text


def _idx_bytes(array: np.ndarray) -> bytes:
  header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
  return header + array.astype(np.uint8).tobytes()


@pytest.mark.parametrize("compressed", [False, True])
def test_truncated_idx_is_named_or_cut_to_complete_records(tmp_path, caplog, compressed):
  images = np.arange(5 * 3 * 3, dtype=np.uint8).reshape(5, 3, 3)
  raw = _idx_bytes(images)[:-4]  # the last image lost 4 of its 9 bytes
  if compressed:
    raw = gzip.compress(_idx_bytes(images))[:-30]  # a download cut short
  path = tmp_path / ("train-images-idx3-ubyte" + (".gz" if compressed else ""))
  path.write_bytes(raw)
  (tmp_path / ("train-labels-idx1-ubyte" + (".gz" if compressed else ""))).write_bytes(
      _idx_bytes(np.arange(5, dtype=np.uint8)))
  cfg = {"source": "idx", "path": str(path)}
  with pytest.raises(CorruptDataError, match=r"train-images-idx3-ubyte.*truncated.*download "
                     r"it again.*skip_corrupt"):
    data.build_source(cfg, "train")
  caplog.set_level("WARNING")
  source, info = data.build_source({**cfg, "skip_corrupt": True}, "train")
  assert 1 <= len(source) <= 4  # only complete images, each equal to the original
  for i in range(len(source)):
    np.testing.assert_array_equal(source[i]["image"][..., 0], images[i])
    assert int(source[i]["label"]) == i
  assert "skip_corrupt=True" in caplog.text


def test_idx_labels_of_another_length_are_named_or_paired(tmp_path, caplog):
  images_path = tmp_path / "t10k-images-idx3-ubyte"
  images_path.write_bytes(_idx_bytes(np.zeros((6, 2, 2), np.uint8)))
  (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(_idx_bytes(np.arange(4, dtype=np.uint8)))
  cfg = {"source": "idx", "path": str(images_path)}
  with pytest.raises(CorruptDataError, match=r"t10k-labels-idx1-ubyte.*hold 4 entries but "
                     r".*t10k-images-idx3-ubyte.*holds 6 images.*labels file that belongs"):
    data.build_source(cfg, "train")
  caplog.set_level("WARNING")
  source, _ = data.build_source({**cfg, "skip_corrupt": True}, "train")
  assert len(source) == 4 and "skipping 2 unpaired rows" in caplog.text


def test_truncated_npz_is_named_even_with_skip_corrupt(tmp_path):
  path = tmp_path / "faces.npz"
  np.savez(path, images=np.zeros((4, 2, 2, 3), np.uint8), labels=np.arange(4))
  path.write_bytes(path.read_bytes()[:-40])
  for skip in (False, True):
    with pytest.raises(CorruptDataError, match=r"faces\.npz.*truncated or damaged.*write or "
                       "download it again"):
      data.build_source({"source": "npz", "path": str(path), "skip_corrupt": skip}, "train")


def test_npz_labels_of_another_length_are_named_or_paired(tmp_path, caplog):
  path = tmp_path / "pairs.npz"
  np.savez(path, images=np.zeros((3, 2, 2), np.uint8), labels=np.arange(5))
  with pytest.raises(CorruptDataError, match=r"pairs\.npz.*'labels'.*5 entries.*3 images"):
    data.build_source({"source": "npz", "path": str(path)}, "train")
  caplog.set_level("WARNING")
  source, _ = data.build_source({"source": "npz", "path": str(path), "skip_corrupt": True},
                                "train")
  assert len(source) == 3 and "skipping 2 unpaired rows" in caplog.text


def test_bad_folder_stops_training_before_anything_is_written(tmp_path):
  from gen_jax.train import loop  # pylint: disable=g-import-not-at-top
  from tests.train.helpers import quiet_digits_config  # pylint: disable=g-import-not-at-top
  _folder(tmp_path / "images", n=8, size=(8, 8))
  (tmp_path / "images" / "a" / "broken.jpg").write_bytes(b"\xff\xd8 cut")
  c = quiet_digits_config(2)
  c.data.source = "folder"
  c.data.path = str(tmp_path / "images")
  with pytest.raises(CorruptDataError, match="broken.jpg"):
    loop.train_and_evaluate(c, tmp_path / "run")
  assert not (tmp_path / "run" / "checkpoints").exists()
