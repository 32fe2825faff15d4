"""Tests for gen_jax.data.sources and gen_jax.data.transforms."""

from __future__ import annotations

import gzip
import hashlib
import pathlib
import socket
import struct
import tarfile
import time

import numpy as np
import PIL.Image
import pytest
import tensorflow_datasets as tfds

from gen_jax.data import sources
from gen_jax.data import transforms


@pytest.fixture(autouse=True)
def _no_real_downloads(monkeypatch):
  """Any real tfds download in this module fails at once instead of hanging for minutes."""

  def refuse(*args, **kwargs):
    raise AssertionError("a test reached a real tfds download")

  monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", refuse)


def _closed_local_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


# ------------------------------------------------------------------------------ digits


def test_digits_split_sizes_disjoint_and_pixel_values():
  from sklearn.datasets import load_digits
  train, test = sources.digits_source("train"), sources.digits_source("test")
  assert (len(train), len(test)) == (1500, 297)
  train_idx, test_idx = sources.digits_split_indices("train"), sources.digits_split_indices("test")
  assert not set(train_idx) & set(test_idx)
  assert sorted(np.concatenate([train_idx, test_idx])) == list(range(1797))

  raw = load_digits()
  for split, source, indices in (("train", train, train_idx), ("test", test, test_idx)):
    images = np.stack([source[i]["image"] for i in range(len(source))])
    labels = np.array([source[i]["label"] for i in range(len(source))])
    assert images.dtype == np.uint8 and images.shape == (len(source), 8, 8, 1), split
    assert images.min() == 0 and images.max() == 255
    np.testing.assert_array_equal(images[..., 0], np.round(raw.images[indices] * 255 / 16))
    np.testing.assert_array_equal(labels, raw.target[indices])
    assert source[0]["label"].dtype == np.int32
  assert train.info == sources.DatasetInfo((8, 8, 1), 10, 1500)
  with pytest.raises(ValueError, match="'train' and 'test'"):
    sources.digits_source("validation")


# -------------------------------------------------------------------------- transforms


def test_to_float_range_and_endpoints():
  u = np.arange(256, dtype=np.uint8).reshape(16, 16, 1)
  x = transforms.to_float(u)
  assert x.dtype == np.float32 and x.min() == -1.0 and x.max() == 1.0
  assert np.all(np.diff(x.ravel()) > 0)


def test_random_flip_is_a_left_right_flip_or_identity():
  image = np.arange(2 * 3 * 2, dtype=np.uint8).reshape(2, 3, 2)
  rng = np.random.default_rng(0)
  outcomes = [transforms.random_flip(image, rng) for _ in range(64)]
  flipped = [o for o in outcomes if not np.array_equal(o, image)]
  assert 10 < len(flipped) < 54
  for o in flipped:
    np.testing.assert_array_equal(o, image[:, ::-1])


def test_dequantize_stays_in_bin_and_averages_to_bin_centre():
  u = np.tile(np.arange(256, dtype=np.uint8), (64, 1))[..., None]  # [64, 256, 1]
  rng = np.random.default_rng(1)
  draws = np.stack([transforms.dequantize(u, rng) for _ in range(200)])
  assert draws.dtype == np.float32
  lower = (2 * u.astype(np.float32)) / 256 - 1
  upper = (2 * (u.astype(np.float32) + 1)) / 256 - 1
  assert np.all(draws >= lower) and np.all(draws < upper)
  assert draws.min() >= -1 and draws.max() < 1
  mean = draws.mean(axis=(0, 1))[:, 0]
  # 12,800 uniform draws per bin of width 2/256: standard error ~ 2.3e-5.
  np.testing.assert_allclose(mean, transforms.bin_centre(np.arange(256)), atol=2e-4)
  # Under float32 rounding the top draw of bin 255 would hit +1; it is kept below.
  top = transforms.dequantize(np.full((1, 1, 1), 255, np.uint8), _AlmostOne())
  assert top[0, 0, 0] < 1.0


class _AlmostOne:
  def random(self, shape, dtype):
    return np.full(shape, np.nextafter(np.float32(1), np.float32(0)), dtype)


def test_center_crop_resize():
  image = np.zeros((20, 10, 3), np.uint8)
  image[5:15] = 200  # the central 10x10 square
  out = transforms.center_crop_resize(image, 4)
  assert out.shape == (4, 4, 3) and out.dtype == np.uint8
  np.testing.assert_array_equal(out, 200)
  gray = transforms.center_crop_resize(image[..., :1], 6)
  assert gray.shape == (6, 6, 1)


# --------------------------------------------------------------------------------- idx


def _idx_bytes(array: np.ndarray, type_code: int, dtype: str) -> bytes:
  header = bytes([0, 0, type_code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
  return header + array.astype(dtype).tobytes()


@pytest.mark.parametrize("compress", [False, True])
def test_idx_round_trip_with_sibling_labels(tmp_path, compress):
  rng = np.random.default_rng(0)
  images = rng.integers(0, 256, (5, 3, 4), dtype=np.uint8)
  labels = np.array([3, 1, 4, 1, 5], np.uint8)
  suffix = ".gz" if compress else ""
  write = gzip.compress if compress else (lambda b: b)
  images_path = tmp_path / f"train-images-idx3-ubyte{suffix}"
  images_path.write_bytes(write(_idx_bytes(images, 0x08, ">u1")))
  (tmp_path / f"train-labels-idx1-ubyte{suffix}").write_bytes(write(_idx_bytes(labels, 0x08, ">u1")))

  np.testing.assert_array_equal(sources.read_idx(images_path), images)
  source = sources.idx_source(images_path)
  assert source.info == sources.DatasetInfo((3, 4, 1), 6, 5)
  for i in range(5):
    np.testing.assert_array_equal(source[i]["image"][..., 0], images[i])
    assert source[i]["label"] == labels[i]


def test_idx_wider_types_and_errors(tmp_path):
  values = np.array([[-7, 70000], [1, 2]], np.int32)
  path = tmp_path / "ints.idx"
  path.write_bytes(_idx_bytes(values, 0x0C, ">i4"))
  parsed = sources.read_idx(path)
  np.testing.assert_array_equal(parsed, values)
  assert parsed.dtype == np.int32 and parsed.dtype.isnative

  bad_magic = tmp_path / "bad-magic"
  bad_magic.write_bytes(b"\x08\x03\x00\x00" + bytes(16))
  with pytest.raises(ValueError, match="not an IDX file"):
    sources.read_idx(bad_magic)
  truncated = tmp_path / "truncated"
  truncated.write_bytes(_idx_bytes(np.zeros((4, 2, 2), np.uint8), 0x08, ">u1")[:-3])
  with pytest.raises(ValueError, match=r"promises shape \(4, 2, 2\)"):
    sources.read_idx(truncated)
  with pytest.raises(FileNotFoundError):
    sources.read_idx(tmp_path / "missing")


def test_real_mnist_test_split(shared_data):
  images_path = shared_data / "mnist" / "t10k-images-idx3-ubyte.gz"
  raw = gzip.decompress(images_path.read_bytes())
  assert hashlib.md5(raw).hexdigest() == "2646ac647ad5339dbf082846283269ea"
  source = sources.idx_source(images_path)  # labels from the sibling file
  assert source.info == sources.DatasetInfo((28, 28, 1), 10, 10000)
  assert source[0]["label"] == 7
  np.testing.assert_array_equal(source[9999]["image"].ravel(), np.frombuffer(raw[-784:], np.uint8))
  cfg = {"source": "idx", "path": str(images_path), "eval_path": str(images_path)}
  _, info = sources.build_source(cfg, "eval")
  assert info.num_examples == 10000


# ------------------------------------------------------------------------------ folder


def _write_png(path: pathlib.Path, array: np.ndarray):
  path.parent.mkdir(parents=True, exist_ok=True)
  PIL.Image.fromarray(array).save(path)


def test_folder_labels_from_sorted_class_names(tmp_path):
  rng = np.random.default_rng(0)
  expected = {}
  for cls in ("zebra", "ant", "moth"):
    for k in range(2):
      array = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
      _write_png(tmp_path / cls / f"{k}.png", array)
      expected[(cls, k)] = array
  (tmp_path / "ant" / "notes.txt").write_text("not an image")
  source = sources.FolderSource(tmp_path)
  assert source.classes == ["ant", "moth", "zebra"]
  assert source.info == sources.DatasetInfo((5, 7, 3), 3, 6)
  for i, (cls, k) in enumerate(sorted(expected)):
    example = source[i]
    assert example["label"] == ["ant", "moth", "zebra"].index(cls)
    np.testing.assert_array_equal(example["image"], expected[(cls, k)])

  resized = sources.FolderSource(tmp_path, image_size=4)
  assert resized[0]["image"].shape == (4, 4, 3) and resized.info.image_shape == (4, 4, 3)


def test_folder_grayscale_auto_and_forced_rgb(tmp_path):
  _write_png(tmp_path / "a" / "0.png", np.full((4, 4), 9, np.uint8))
  _write_png(tmp_path / "b" / "0.png", np.full((4, 4), 200, np.uint8))
  gray = sources.FolderSource(tmp_path)
  assert gray.info.image_shape == (4, 4, 1) and gray[1]["image"][0, 0, 0] == 200
  rgb = sources.FolderSource(tmp_path, color_mode="rgb")
  assert rgb.info.image_shape == (4, 4, 3)
  _write_png(tmp_path / "b" / "1.png", np.zeros((4, 4, 3), np.uint8))
  assert sources.FolderSource(tmp_path).info.image_shape == (4, 4, 3)  # one RGB file -> RGB


def test_folder_errors(tmp_path):
  with pytest.raises(FileNotFoundError, match="does not exist"):
    sources.FolderSource(tmp_path / "missing")
  (tmp_path / "empty").mkdir()
  with pytest.raises(ValueError, match="is empty"):
    sources.FolderSource(tmp_path / "empty")
  _write_png(tmp_path / "sizes" / "a" / "0.png", np.zeros((4, 4, 3), np.uint8))
  _write_png(tmp_path / "sizes" / "a" / "1.png", np.zeros((5, 4, 3), np.uint8))
  with pytest.raises(ValueError, match="(?s)differ in size.*image_size"):
    sources.FolderSource(tmp_path / "sizes")
  assert sources.FolderSource(tmp_path / "sizes", image_size=3)[1]["image"].shape == (3, 3, 3)
  # CIFAR-style archive root: <root>/train/<class>/..., pointed at one level too high.
  _write_png(tmp_path / "archive" / "train" / "cat" / "0.png", np.zeros((4, 4, 3), np.uint8))
  with pytest.raises(ValueError, match="point at .*train"):
    sources.FolderSource(tmp_path / "archive")
  assert len(sources.FolderSource(tmp_path / "archive" / "train")) == 1


def test_folder_on_real_cifar10_jpegs(shared_data, tmp_path):
  archive = shared_data / "cifar10_jpeg_test.tar.gz"
  if not archive.is_file():
    pytest.skip(f"{archive} is absent")
  wanted = {"airplane": 2, "cat": 2, "truck": 3}
  with tarfile.open(archive) as tar:
    for member in tar:
      parts = pathlib.PurePosixPath(member.name).parts
      if member.isfile() and len(parts) == 3 and wanted.get(parts[1], 0) > 0:
        wanted[parts[1]] -= 1
        target = tmp_path.joinpath(*parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(tar.extractfile(member).read())
      if not any(wanted.values()):
        break
  source = sources.FolderSource(tmp_path / "test")
  assert source.classes == ["airplane", "cat", "truck"]
  assert source.info == sources.DatasetInfo((32, 32, 3), 3, 7)
  assert [int(source[i]["label"]) for i in range(7)] == [0, 0, 1, 1, 2, 2, 2]
  image = source[6]["image"]
  assert image.dtype == np.uint8 and image.std() > 10  # a real photo, not a blank


# --------------------------------------------------------------------------------- npz


def test_npz_with_and_without_labels(tmp_path):
  images = np.random.default_rng(0).integers(0, 256, (6, 4, 4), dtype=np.uint8)
  np.savez(tmp_path / "plain.npz", images=images)
  plain = sources.npz_source(tmp_path / "plain.npz")
  assert plain.info == sources.DatasetInfo((4, 4, 1), 0, 6)
  assert plain[2]["label"] == 0
  np.testing.assert_array_equal(plain[2]["image"][..., 0], images[2])

  rgb = np.zeros((3, 2, 2, 3), np.uint8)
  np.savez(tmp_path / "labelled.npz", images=rgb, labels=np.array([0, 4, 2]))
  cfg = {"source": "npz", "path": str(tmp_path / "labelled.npz")}
  source, info = sources.build_source(cfg, "train")
  assert info == sources.DatasetInfo((2, 2, 3), 5, 3) and source[1]["label"] == 4

  np.savez(tmp_path / "wrong.npz", x=images)
  with pytest.raises(ValueError, match="no 'images' array.*'x'"):
    sources.npz_source(tmp_path / "wrong.npz")
  with pytest.raises(ValueError, match="uint8"):
    sources.ArraySource(images.astype(np.float32))


# -------------------------------------------------------------------------------- tfds


def test_tfds_mock_through_data_source(tmp_path):
  with tfds.testing.mock_data(num_examples=12, policy=tfds.testing.MockPolicy.USE_CODE):
    source = sources.TfdsSource("mnist", split="train", data_dir=str(tmp_path))
    assert source.info == sources.DatasetInfo((28, 28, 1), 10, 12)
    example = source[5]
    assert example["image"].dtype == np.uint8 and example["image"].shape == (28, 28, 1)
    assert example["label"].dtype == np.int32 and 0 <= example["label"] < 10
    np.testing.assert_array_equal(source[5]["image"], example["image"])  # deterministic

    cfg = {"source": "tfds", "name": "cifar10", "eval_split": "test", "image_size": 16,
           "data_dir": str(tmp_path)}
    cifar, info = sources.build_source(cfg, "eval")
    assert info == sources.DatasetInfo((16, 16, 3), 10, 12)
    assert cifar[11]["image"].shape == (16, 16, 3)


def test_tfds_not_prepared_fails_fast_with_instructions(tmp_path):
  start = time.monotonic()
  with pytest.raises(sources.DatasetNotPreparedError) as error:
    sources.TfdsSource("mnist", split="train", data_dir=str(tmp_path), download=False)
  message = str(error.value)
  for needle in ("'mnist'", str(tmp_path), "tfds build mnist --file_format=array_record",
                 "data.download=True", "data.source='folder'"):
    assert needle in message
  assert time.monotonic() - start < 10


def test_tfds_download_fails_fast_when_offline(tmp_path, monkeypatch):
  monkeypatch.setattr(sources, "TFDS_PROBE_ADDRESS", ("127.0.0.1", _closed_local_port()))
  start = time.monotonic()
  with pytest.raises(sources.DatasetNotPreparedError, match="cannot be reached within 3 s"):
    sources.TfdsSource("mnist", split="train", data_dir=str(tmp_path), download=True)
  assert time.monotonic() - start < 10


def test_connectivity_probe(monkeypatch):
  with socket.socket() as server:
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    assert sources._can_connect(server.getsockname(), 3.0)
  assert not sources._can_connect(("127.0.0.1", _closed_local_port()), 3.0)


def test_tfds_prepared_only_as_tfrecord(tmp_path):
  builder = tfds.builder("mnist", data_dir=str(tmp_path))
  builder.data_path.mkdir(parents=True)
  builder.info.write_to_directory(builder.data_path)  # metadata of a tfrecord build
  with pytest.raises(sources.DatasetNotPreparedError, match="only as \\['tfrecord'\\]"):
    sources.TfdsSource("mnist", split="train", data_dir=str(tmp_path))


def test_tfds_unknown_dataset_name(tmp_path):
  with pytest.raises(ValueError, match="no dataset named 'not_a_dataset'"):
    sources.TfdsSource("not_a_dataset", split="train", data_dir=str(tmp_path))


# ------------------------------------------------------------------------------ config


def test_build_source_errors_and_registry(tmp_path):
  assert sources.SOURCES.names() == ["audio_folder", "audio_tones", "digits", "downsampled",
                                     "folder", "idx", "npz", "tfds", "toy2d",
                                     "unpaired_folders", "unpaired_tfds"]
  with pytest.raises(KeyError, match="choose one of: audio_folder, audio_tones, digits, "
                                     "downsampled, folder"):
    sources.build_source({"source": "imagenet"}, "train")
  with pytest.raises(ValueError, match="needs data.eval_path"):
    sources.build_source({"source": "folder", "path": str(tmp_path)}, "eval")
  with pytest.raises(FileNotFoundError, match="does not exist"):
    sources.build_source({"source": "npz", "path": str(tmp_path / "missing.npz")}, "train")
  with pytest.raises(ValueError, match="'train' or 'eval'"):
    sources.build_source({"source": "digits"}, "test")


def test_build_source_reads_a_config_dict():
  import ml_collections
  cfg = ml_collections.ConfigDict({"source": "digits", "split": "train", "eval_split": "test",
                                   "image_size": None, "path": None})
  source, info = sources.build_source(cfg, "eval")
  assert info == sources.DatasetInfo((8, 8, 1), 10, 297) and len(source) == 297
  cfg.image_size = 16
  assert sources.build_source(cfg, "train")[1].image_shape == (16, 16, 1)


def test_center_crop_resize_to_height_and_width():
  image = np.arange(8 * 8 * 3, dtype=np.uint8).reshape(8, 8, 3)
  # Same size as the central crop of the target's aspect ratio: the crop itself.
  np.testing.assert_array_equal(transforms.center_crop_resize(image, (4, 8)), image[2:6])
  np.testing.assert_array_equal(transforms.center_crop_resize(image, (8, 4)), image[:, 2:6])
  assert transforms.center_crop_resize(image, (6, 12)).shape == (6, 12, 3)
  assert transforms.center_crop_resize(image[:, :6], (3, 5)).shape == (3, 5, 3)
  np.testing.assert_array_equal(transforms.center_crop_resize(image, 8), image)
  assert transforms.image_hw(5) == (5, 5) and transforms.image_hw([4, 6]) == (4, 6)
  for bad in ((4, 6, 1), "32", (0, 4), 2.5):
    with pytest.raises(ValueError, match="image_size"):
      transforms.image_hw(bad)


@pytest.mark.parametrize("source", ["digits", "npz", "folder", "idx", "tfds"])
def test_every_source_takes_height_and_width(tmp_path, source):
  images = np.random.default_rng(0).integers(0, 256, (4, 12, 12, 3), dtype=np.uint8)
  cfg = {"source": source, "image_size": (6, 10)}
  if source == "npz":
    np.savez(tmp_path / "x.npz", images=images)
    cfg["path"] = str(tmp_path / "x.npz")
  elif source == "folder":
    for i, image in enumerate(images):
      PIL.Image.fromarray(image).save(tmp_path / f"{i}.png")
    cfg["path"] = str(tmp_path)
  elif source == "idx":
    path = tmp_path / "images-idx3-ubyte"
    path.write_bytes(bytes([0, 0, 8, 3]) + struct.pack(">3I", 4, 12, 12)
                     + images[..., 0].tobytes())
    cfg["path"] = str(path)
  elif source == "tfds":
    cfg.update(name="mnist", data_dir=str(tmp_path))
  with tfds.testing.mock_data(num_examples=4, policy=tfds.testing.MockPolicy.USE_CODE):
    src, info = sources.build_source(cfg, "train")
    assert info.image_shape[:2] == (6, 10) and src[1]["image"].shape == info.image_shape
