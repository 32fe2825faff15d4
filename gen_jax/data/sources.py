"""Random-access image sources: `len(source)` and `source[i] -> {"image", "label"}`.

Every source returns, for 0 <= i < len(source), a dict with
  "image": uint8 [H, W, C] (C = 1 for grayscale, 3 for RGB; the same shape for every i),
           or, for vector data (toy2d), float32 [D] already in model space,
  "label": int32 scalar (class index; 0 when the data has no labels),
and has an `info` attribute (`DatasetInfo`). Sources are read by grain from several threads,
so `__getitem__` must not mutate shared state.

Sources are registered by name in `SOURCES` as factories `(cfg, split) -> source`, where
`cfg` is the data config (a ConfigDict or any mapping) and `split` is "train" or "eval";
`build_source(cfg, split)` looks the factory up from `cfg.source`:

  digits  scikit-learn's 1,797 real 8x8 handwritten digits (bundled, no download);
          "train" = 1,500 / "test" = 297 images, a fixed seed-0 split (`digits_split_indices`).
  tfds    `tfds.data_source(cfg.name)` read from array_record files in `cfg.data_dir`;
          fails within seconds, with instructions, when the data is not prepared there.
  folder  `<cfg.path>/<class>/<image>.(jpg|jpeg|png|bmp)`, labels from sorted class names.
  idx     MNIST-format IDX files (gzip or raw): `cfg.path` is the images file.
  npz     a .npz file with "images" uint8 [N, H, W(, C)] and optional "labels" [N].
  unpaired_folders  two unpaired domains (CycleGAN): image folders cfg.path_a and cfg.path_b
          (eval: cfg.eval_path_a, cfg.eval_path_b); examples {"image_a", "image_b", "label"}.
  unpaired_tfds     the same from two splits of one tfds dataset, e.g. cfg.name =
          "cycle_gan/horse2zebra" with splits cfg.split_a / split_b (default trainA /
          trainB) and cfg.eval_split_a / eval_split_b (default testA / testB).
  toy2d   2-D points from `toy.TOY_DISTRIBUTIONS[cfg.name]` ("train" 20,000 / "eval" 5,000
          fixed points): "image" is float32 [2], already in model space.

When `cfg.image_size` is set, every image is center-cropped to its aspect ratio and resized
(PIL bilinear, antialiased): an int n gives [n, n] (e.g. CelebA 218x178 -> 64x64), a pair
(h, w) gives [h, w] (e.g. (64, 128)).

Damaged data stops the run before training, with a `CorruptDataError` naming the file and
the fix, wherever the check is cheap: folder images that cannot be opened or whose size
differs from the others' (a header read per file), truncated IDX or npz files, and label
files whose length differs from the images'. With `cfg.skip_corrupt=True` such files (or
the incomplete records of a truncated IDX file, or the rows beyond the shorter of images
and labels) are skipped and counted in the log instead; a folder image that fails only
when fully decoded is then replaced by the next readable file of the folder (logged).
A truncated npz archive cannot be read at all and is an error either way.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import logging
import zipfile
import zlib
import os
import pathlib
import socket
import struct
import threading
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import PIL.Image

from gen_jax.data import transforms
from gen_jax.core.registry import Registry

SOURCES: Registry[Callable[[Any, str], Any]] = Registry("data source")

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")

# tfds first tries Google's public bucket for prepared data; a connect to it that fails
# within a few seconds means a download would only fail after minutes of retries.
TFDS_PROBE_ADDRESS = ("storage.googleapis.com", 443)
TFDS_PROBE_TIMEOUT_S = 3.0

DIGITS_NUM_EXAMPLES = 1797
DIGITS_NUM_TRAIN = 1500


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
  """What a model needs to know about a split.

  Attributes:
    image_shape: (H, W, C) of every image the source returns (after any resize).
    num_classes: number of label classes; 0 when the data carries no labels.
    num_examples: number of examples in the split, len(source).
    image_keys: the image entries of an example: ("image",), or ("image_a", "image_b")
      for unpaired two-domain data (`UnpairedSource`).
  """
  image_shape: tuple[int, int, int]
  num_classes: int
  num_examples: int
  image_keys: tuple[str, ...] = ("image",)


class CorruptDataError(ValueError):
  """A data file is unreadable, truncated or inconsistent; the message names it and the fix."""


def _skip_hint() -> str:
  return "or set data.skip_corrupt=True to skip it (the count is logged)"


class DatasetNotPreparedError(RuntimeError):
  """A tfds dataset is not available offline in the requested format and cannot be fetched."""


def get_field(cfg: Any, name: str, default: Any = None) -> Any:
  """Reads `cfg.name` from a ConfigDict, a mapping or a plain object; default when unset."""
  if isinstance(cfg, Mapping) or hasattr(cfg, "get"):
    value = cfg.get(name, default)
  else:
    value = getattr(cfg, name, default)
  return default if value is None else value


def _example(image: np.ndarray, label: Any) -> dict[str, Any]:
  return {"image": image, "label": np.int32(label)}


def _info_from_first(source: Any, num_classes: int) -> DatasetInfo:
  image = source[0]["image"]
  return DatasetInfo(tuple(int(d) for d in image.shape), int(num_classes), len(source))


# ----------------------------------------------------------------------------------------
# In-memory arrays (digits, idx, npz).


class ArraySource:
  """Examples held in memory as one uint8 array.

  Args:
    images: uint8 [N, H, W] or [N, H, W, C]; a channel axis of size 1 is added to [N, H, W].
    labels: integer [N], or None for unlabelled data (labels read as 0).
    num_classes: defaults to max(labels) + 1, or 0 without labels.
    image_size: when set (int or (h, w)), images are center-cropped and resized on read.
  """

  def __init__(self, images: np.ndarray, labels: np.ndarray | None = None, *,
               num_classes: int | None = None, image_size: int | tuple[int, int] | None = None):
    images = np.asarray(images)
    if images.ndim == 3:
      images = images[..., None]
    if images.ndim != 4 or images.dtype != np.uint8:
      raise ValueError(
          f"Images must be uint8 [N, H, W] or [N, H, W, C]; got {images.dtype} {images.shape}.")
    if len(images) == 0:
      raise ValueError("The image array is empty.")
    if labels is None:
      labels = np.zeros(len(images), np.int32)
      default_classes = 0
    else:
      labels = np.asarray(labels)
      if labels.shape != (len(images),) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f"Labels must be integers of shape ({len(images)},) to match the images; got "
            f"{labels.dtype} {labels.shape}.")
      labels = labels.astype(np.int32)
      default_classes = int(labels.max()) + 1
    self._images = images
    self._labels = labels
    self._image_size = transforms.image_hw(image_size)
    self.info = _info_from_first(self, default_classes if num_classes is None else num_classes)

  def __len__(self) -> int:
    return len(self._images)

  def __getitem__(self, index: int) -> dict[str, Any]:
    image = self._images[index]
    if self._image_size is not None:
      image = transforms.center_crop_resize(image, self._image_size)
    return _example(image, self._labels[index])

  def __repr__(self) -> str:
    return f"ArraySource({self.info})"


# ----------------------------------------------------------------------------------------
# digits: scikit-learn's bundled 8x8 handwritten digits.


@functools.lru_cache(maxsize=1)
def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
  from sklearn.datasets import load_digits  # pylint: disable=g-import-not-at-top
  digits = load_digits()
  # Pixels are counts 0..16 of an 8x8 grid of 4x4 blocks; spread them over 0..255.
  images = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)[..., None]
  labels = digits.target.astype(np.int32)
  images.flags.writeable = False
  labels.flags.writeable = False
  return images, labels


def digits_split_indices(split: str) -> np.ndarray:
  """Indices into `load_digits()` of a split, sorted: "train" (1,500) or "test" (297).

  The split is fixed: a permutation of the 1,797 indices by np.random.default_rng(0); its
  first 1,500 entries are "train" and the rest "test", so the two never overlap.
  """
  permutation = np.random.default_rng(0).permutation(DIGITS_NUM_EXAMPLES)
  if split == "train":
    return np.sort(permutation[:DIGITS_NUM_TRAIN])
  if split == "test":
    return np.sort(permutation[DIGITS_NUM_TRAIN:])
  raise ValueError(f"The digits source has splits 'train' and 'test', not {split!r}.")


def digits_source(split: str = "train", *,
                  image_size: int | tuple[int, int] | None = None) -> ArraySource:
  """The 8x8 digits as uint8 [8, 8, 1] images in 0..255 (round(v * 255 / 16)), labels 0..9."""
  images, labels = _digits_arrays()
  indices = digits_split_indices(split)
  return ArraySource(images[indices], labels[indices], num_classes=10, image_size=image_size)


# ----------------------------------------------------------------------------------------
# tfds: array_record data prepared by tensorflow-datasets.


def _can_connect(address: tuple[str, int], timeout_s: float) -> bool:
  """Whether a TCP connection to `address` opens within `timeout_s` (DNS lookup included)."""
  outcome: list[bool] = []

  def attempt():
    try:
      with socket.create_connection(address, timeout=timeout_s):
        outcome.append(True)
    except OSError:
      outcome.append(False)

  # A thread bounds the whole attempt: create_connection's timeout does not cover DNS.
  thread = threading.Thread(target=attempt, daemon=True)
  thread.start()
  thread.join(timeout_s)
  return bool(outcome and outcome[0])


def _not_prepared_message(name: str, split: str, data_dir: str | None, builder: Any,
                          reason: str) -> str:
  root = data_dir or os.environ.get("TFDS_DATA_DIR") or "~/tensorflow_datasets"
  return (
      f"tfds dataset {name!r} (split {split!r}) is not prepared in data_dir {root!r}: "
      f"{reason}. tfds.data_source reads array_record files from {builder.data_dir}.\n"
      "Provide the data in one of these ways:\n"
      f"  * on a machine with internet, run `tfds build {name} --file_format=array_record "
      f"--data_dir=DIR` (the tfds CLI may ask for `pip install apache-beam`; or in Python: "
      f"tfds.builder({name!r}, data_dir=DIR).download_and_prepare(file_format='array_record')"
      f"), then copy DIR/{name.split(':')[0].split('/')[0]} into {root};\n"
      "  * or set data.download=True on a machine that can reach the internet;\n"
      "  * or read local files instead: data.source='folder' (a folder of class subfolders "
      "of images), 'idx' (MNIST-format files) or 'npz'.")


def open_tfds(name: str, *, split: str, data_dir: str | None = None,
              download: bool = False) -> tuple[Any, Sequence[Any]]:
  """Returns (builder, tfds.data_source of `split`), failing fast when data is missing.

  Raises:
    DatasetNotPreparedError: the dataset is not prepared in data_dir and `download` is
      False, or `download` is True but the download host cannot be reached within
      TFDS_PROBE_TIMEOUT_S seconds, or the data exists only as tfrecord (no random access).
  """
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

  try:
    builder = tfds.builder(name, data_dir=data_dir)
  except tfds.core.registered.DatasetNotFoundError:
    raise ValueError(
        f"tensorflow-datasets has no dataset named {name!r} (see tfds.list_builders()), and "
        f"none is prepared under data_dir {data_dir!r}.") from None
  if download and not builder.is_prepared():
    if not _can_connect(TFDS_PROBE_ADDRESS, TFDS_PROBE_TIMEOUT_S):
      host, port = TFDS_PROBE_ADDRESS
      raise DatasetNotPreparedError(_not_prepared_message(
          name, split, data_dir, builder,
          f"data.download is True but {host}:{port} cannot be reached within "
          f"{TFDS_PROBE_TIMEOUT_S:g} s (no internet on this machine?)"))
    builder.download_and_prepare(file_format="array_record")
  try:
    # Checked by trying rather than by builder.is_prepared(), so that tfds.testing.mock_data
    # (which fakes as_data_source but not the files) works too.
    return builder, builder.as_data_source(split=split)
  except (NotImplementedError, ValueError, AssertionError, FileNotFoundError) as error:
    if not builder.is_prepared():
      # tfds's own error here (random access to TFRECORD) describes nothing the user has.
      raise DatasetNotPreparedError(_not_prepared_message(
          name, split, data_dir, builder, "no prepared data was found there and "
          "data.download is False")) from None
    formats = {f.value for f in builder.info.available_file_formats()}
    if "array_record" not in formats:
      raise DatasetNotPreparedError(
          f"tfds dataset {name!r} is prepared in {builder.data_dir} only as "
          f"{sorted(formats)}, which has no random access. Rebuild it as array_record: "
          f"delete that folder and run `tfds build {name} --file_format=array_record "
          f"--data_dir=...` (or tfds.builder({name!r}, data_dir=...).download_and_prepare("
          "file_format='array_record')), or convert it in place with `tfds convert_format "
          f"--dataset_version_dir={builder.data_dir} --out_file_format=array_record`."
      ) from error
    raise


class TfdsSource:
  """A tfds dataset read through `tfds.data_source` (array_record, no TensorFlow at read time).

  Args:
    name: tfds name, optionally with config and version ("cifar10", "celeb_a:2.1.0").
    split: tfds split expression ("train", "test", "train[:90%]").
    data_dir: tfds data dir; None uses $TFDS_DATA_DIR or ~/tensorflow_datasets.
    download: allow tfds to download and prepare the data (after a fast connectivity probe).
    image_size: center-crop and resize every image to [size, size] or [h, w] when set.
    image_key, label_key: feature names; a missing label feature reads as label 0.
  """

  def __init__(self, name: str, *, split: str, data_dir: str | None = None,
               download: bool = False, image_size: int | tuple[int, int] | None = None,
               image_key: str = "image", label_key: str = "label"):
    builder, self._data = open_tfds(name, split=split, data_dir=data_dir, download=download)
    self._image_size = transforms.image_hw(image_size)
    self._image_key = image_key
    self._label_key = label_key
    num_classes = 0
    features = getattr(builder.info, "features", None)
    if features is not None and label_key in features:
      num_classes = int(getattr(features[label_key], "num_classes", 0) or 0)
    if len(self._data) == 0:
      raise ValueError(f"tfds dataset {name!r} split {split!r} is empty.")
    self.info = _info_from_first(self, num_classes)

  def __len__(self) -> int:
    return len(self._data)

  def __getitem__(self, index: int) -> dict[str, Any]:
    features = self._data[index]
    image = np.asarray(features[self._image_key])
    if image.ndim == 2:
      image = image[..., None]
    if image.dtype != np.uint8:
      raise ValueError(f"Feature {self._image_key!r} is {image.dtype}, expected uint8.")
    if self._image_size is not None:
      image = transforms.center_crop_resize(image, self._image_size)
    return _example(image, features.get(self._label_key, 0))

  def __repr__(self) -> str:
    return f"TfdsSource({self.info})"


# ----------------------------------------------------------------------------------------
# folder: <root>/<class>/<image file>.


_GRAYSCALE_MODES = frozenset({"1", "L", "LA", "I", "I;16", "F"})


def _list_folder(folder: str) -> tuple[list[str], list[str]]:
  """(subfolder names, image file names) directly inside `folder`, sorted; hidden skipped."""
  folders, images = [], []
  with os.scandir(folder) as entries:
    for entry in entries:
      if entry.name.startswith("."):
        continue
      if entry.is_dir():
        folders.append(entry.name)
      elif entry.is_file() and os.path.splitext(entry.name)[1].lower() in IMAGE_EXTENSIONS:
        images.append(entry.name)
  return sorted(folders), sorted(images)


def _header(path: str) -> tuple[str, tuple[int, int]] | str:
  """(PIL mode, (width, height)) from the file's header, or why it cannot be read."""
  try:
    with PIL.Image.open(path) as image:  # reads the header only
      return image.mode, image.size
  except (OSError, ValueError, SyntaxError) as e:  # PIL.UnidentifiedImageError is an OSError
    return f"cannot be read as an image ({type(e).__name__}: {e})"


def _list_problems(problems: Mapping[str, str], limit: int = 5) -> str:
  lines = [f"  {path}: {why}" for path, why in list(problems.items())[:limit]]
  if len(problems) > limit:
    lines.append(f"  ... and {len(problems) - limit} more")
  return "\n".join(lines)


class FolderSource:
  """Images in class subfolders, decoded lazily with PIL: `<root>/<class>/<file>`.

  Classes are the subfolder names in sorted order (label = position); files are sorted
  within a class. A root holding image files and no subfolders is one unlabelled class
  (labels 0, num_classes 0). Only images directly inside a class folder count. For an
  archive such as CIFAR-10's `train/<class>/NNNN.jpg`, extract it and point at `.../train`.

  Args:
    root: the folder.
    image_size: center-crop and resize every image to [size, size] (int) or [h, w]; without
      it every image must have the size of the most common one.
    color_mode: "rgb" (3 channels), "grayscale" (1 channel), or "auto": grayscale when
      every file is single-channel (modes 1/L/LA/I/F), else RGB.
    skip_corrupt: skip files that cannot be opened or have the wrong size (logged with a
      count) instead of raising CorruptDataError; a file that fails only when decoded is
      replaced by the next readable one.

  Every file's header is read once at construction (~4 s per 50k files, against ~0.3 s to
  list them), so unreadable and wrongly-sized files are found before training.
  """

  def __init__(self, root: str | os.PathLike, *, image_size: int | tuple[int, int] | None = None,
               color_mode: str = "auto", skip_corrupt: bool = False):
    root = pathlib.Path(root).expanduser()
    if not root.exists():
      raise FileNotFoundError(f"Image folder {str(root)!r} does not exist.")
    if not root.is_dir():
      raise NotADirectoryError(
          f"{str(root)!r} is not a folder (an archive must be extracted first; point at the "
          "folder that holds the class subfolders).")
    if color_mode not in ("auto", "rgb", "grayscale"):
      raise ValueError(f"color_mode must be 'auto', 'rgb' or 'grayscale', not {color_mode!r}.")
    class_names, direct_files = _list_folder(str(root))
    if class_names and direct_files:
      raise ValueError(
          f"{str(root)!r} holds both class subfolders and image files ({direct_files[0]}); "
          "put every image inside a class folder.")
    files: list[str] = []
    labels: list[int] = []
    if class_names:
      self.classes = class_names
      for label, class_name in enumerate(class_names):
        class_dir = os.path.join(root, class_name)
        nested, class_files = _list_folder(class_dir)
        if not class_files:
          hint = (f"; it has subfolders {nested[:5]}: if those are the classes, point at "
                  f"{class_dir!r}" if nested else "")
          raise ValueError(
              f"Class folder {class_dir!r} has no {'/'.join(IMAGE_EXTENSIONS)} files{hint}.")
        files += [os.path.join(class_dir, name) for name in class_files]
        labels += [label] * len(class_files)
    elif direct_files:
      self.classes = []
      files = [os.path.join(root, name) for name in direct_files]
      labels = [0] * len(files)
    else:
      raise ValueError(
          f"Image folder {str(root)!r} is empty: expected <root>/<class>/<image> with "
          f"extensions {', '.join(IMAGE_EXTENSIONS)}.")

    self._root = str(root)
    self._image_size = transforms.image_hw(image_size)
    self._skip_corrupt = skip_corrupt
    headers = [_header(path) for path in files]
    problems = {path: h for path, h in zip(files, headers) if isinstance(h, str)}
    readable = [h for h in headers if not isinstance(h, str)]
    if readable and self._image_size is None:
      sizes = collections.Counter(size for _, size in readable)
      (common, count), = sizes.most_common(1)
      if len(sizes) > 1:
        for path, h in zip(files, headers):
          if not isinstance(h, str) and h[1] != common:
            problems[path] = (f"is {h[1][0]}x{h[1][1]} (WxH) but {count} of the images are "
                              f"{common[0]}x{common[1]}; images differ in size")
    if problems:
      fix = ("replace or delete these files, set data.image_size to resize every image to "
             "one size, " if self._image_size is None else "replace or delete these files, ")
      if not skip_corrupt or len(problems) == len(files):
        raise CorruptDataError(
            f"{len(problems)} of the {len(files)} image files in {str(root)!r} cannot be "
            f"used:\n{_list_problems(problems)}\nFix: {fix}{_skip_hint()}.")
      logging.warning("Skipped %d of the %d image files in %s (data.skip_corrupt=True):\n%s",
                      len(problems), len(files), root, _list_problems(problems))
      keep = [i for i, path in enumerate(files) if path not in problems]
      files, labels = [files[i] for i in keep], [labels[i] for i in keep]
      headers = [headers[i] for i in keep]
    self._files = files
    self._labels = np.asarray(labels, np.int32)
    if color_mode == "auto":
      grayscale = all(mode in _GRAYSCALE_MODES for mode, _ in headers)
      color_mode = "grayscale" if grayscale else "rgb"
    self._pil_mode = "L" if color_mode == "grayscale" else "RGB"
    self._shape = None
    self._replaced: set[str] = set()
    self._replaced_lock = threading.Lock()
    self.info = _info_from_first(self, len(self.classes))
    self._shape = self.info.image_shape

  def __len__(self) -> int:
    return len(self._files)

  def _decode(self, path: str) -> np.ndarray:
    try:
      with PIL.Image.open(path) as pil:
        image = np.asarray(pil.convert(self._pil_mode), np.uint8)
    except (OSError, ValueError, SyntaxError) as e:
      raise CorruptDataError(
          f"Image file {path} cannot be decoded ({type(e).__name__}: {e}). Fix: replace or "
          f"delete it, {_skip_hint()}.") from e
    if image.ndim == 2:
      image = image[..., None]
    if self._image_size is not None:
      image = transforms.center_crop_resize(image, self._image_size)
    elif self._shape is not None and image.shape != self._shape:
      raise CorruptDataError(
          f"Image file {path} has shape {image.shape}, the other images {self._shape}. Fix: "
          f"replace or delete it, set data.image_size, {_skip_hint()}.")
    return image

  def __getitem__(self, index: int) -> dict[str, Any]:
    for offset in range(len(self._files)):
      i = (index + offset) % len(self._files)
      try:
        return _example(self._decode(self._files[i]), self._labels[i])
      except CorruptDataError as e:
        if not self._skip_corrupt:
          raise
        with self._replaced_lock:  # logged once per file
          first = self._files[i] not in self._replaced
          self._replaced.add(self._files[i])
          count = len(self._replaced)
        if first:
          logging.warning("%s Replaced by the next readable file (data.skip_corrupt=True); "
                          "%d file(s) of %s replaced so far.", e, count, self._root)
    raise CorruptDataError(f"No image file in {self._root!r} can be decoded.")

  def __repr__(self) -> str:
    return f"FolderSource({self.info})"


# ----------------------------------------------------------------------------------------
# idx: MNIST-format files.


# IDX type codes (third magic byte) -> big-endian dtype.
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def _gunzip(raw: bytes, path: pathlib.Path, skip_corrupt: bool) -> bytes:
  """Decompresses gzip bytes; a truncated stream is an error, or its readable prefix."""
  decompressor = zlib.decompressobj(wbits=31)
  try:
    data = decompressor.decompress(raw)
  except zlib.error as e:
    raise CorruptDataError(
        f"{str(path)!r} is not a valid gzip file ({e}). Fix: download it again (or gunzip "
        "it to check).") from e
  if not decompressor.eof:
    if not skip_corrupt:
      raise CorruptDataError(
          f"{str(path)!r} is a truncated gzip file (the stream ends early after "
          f"{len(data)} decompressed bytes). Fix: download it again, {_skip_hint()} "
          "(only the complete records are used).")
    logging.warning("%s is a truncated gzip file; using its %d readable bytes "
                    "(data.skip_corrupt=True).", path, len(data))
  return data


def read_idx(path: str | os.PathLike, *, skip_corrupt: bool = False) -> np.ndarray:
  """Parses an IDX file (raw, or gzip by its magic bytes) into a native-endian array.

  Format: magic 0x00 0x00 <type code> <ndim>, then ndim big-endian uint32 sizes, then the
  data in C order. A bad magic is a ValueError. A file with fewer data bytes than its
  header promises (truncated) is a CorruptDataError; with `skip_corrupt` the complete
  records along the first axis are returned instead, and the number missing is logged.
  """
  path = pathlib.Path(path).expanduser()
  if not path.is_file():
    raise FileNotFoundError(f"IDX file {str(path)!r} does not exist.")
  raw = path.read_bytes()
  if raw[:2] == b"\x1f\x8b":
    raw = _gunzip(raw, path, skip_corrupt)
  if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
    raise ValueError(
        f"{str(path)!r} is not an IDX file: magic bytes {raw[:4].hex(' ')!r}, expected "
        f"00 00 <type in {sorted(hex(c) for c in _IDX_DTYPES)}> <ndim>.")
  ndim = raw[3]
  header = 4 + 4 * ndim
  if len(raw) < header:
    raise CorruptDataError(f"{str(path)!r}: IDX header for {ndim} dimensions is truncated. "
                           "Fix: download the file again.")
  shape = struct.unpack(f">{ndim}I", raw[4:header])
  dtype = np.dtype(_IDX_DTYPES[raw[2]])
  count = int(np.prod(shape, dtype=np.int64))
  available = len(raw) - header
  if available != count * dtype.itemsize:
    message = (f"{str(path)!r}: the IDX header promises shape {shape} of {dtype} "
               f"({count * dtype.itemsize} bytes) but {available} bytes follow it")
    record = int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize
    if available > count * dtype.itemsize or not skip_corrupt or not ndim or not record:
      raise CorruptDataError(f"{message}: the file is truncated or damaged. Fix: download "
                             f"it again, {_skip_hint()} (only the complete records are used).")
    complete = available // record
    logging.warning("%s; using its %d complete records of %d (data.skip_corrupt=True).",
                    message, complete, shape[0])
    shape = (complete, *shape[1:])
    count = int(np.prod(shape, dtype=np.int64))
  array = np.frombuffer(raw, dtype, count=count, offset=header).reshape(shape)
  return array.astype(dtype.newbyteorder("="))


def _match_labels(images: np.ndarray, labels: np.ndarray, images_name: str,
                  labels_name: str, skip_corrupt: bool) -> tuple[np.ndarray, np.ndarray]:
  """Checks that there is one label per image; with skip_corrupt drops the unpaired rows."""
  if labels.ndim != 1:
    raise CorruptDataError(f"Labels {labels_name} have shape {labels.shape}; expected one "
                           f"integer per image of {images_name}.")
  if len(labels) == len(images):
    return images, labels
  message = (f"Labels {labels_name} hold {len(labels)} entries but {images_name} holds "
             f"{len(images)} images")
  if not skip_corrupt:
    raise CorruptDataError(
        f"{message}. Fix: use the labels file that belongs to these images (or download "
        f"both again), {_skip_hint()} (only the first {min(len(labels), len(images))} "
        "pairs are used).")
  n = min(len(labels), len(images))
  logging.warning("%s; using the first %d pairs and skipping %d unpaired rows "
                  "(data.skip_corrupt=True).", message, n, abs(len(labels) - len(images)))
  return images[:n], labels[:n]


def idx_labels_path(images_path: str | os.PathLike) -> pathlib.Path:
  """The sibling labels file of an images file: "images-idx3" -> "labels-idx1" in its name."""
  images_path = pathlib.Path(images_path)
  return images_path.with_name(images_path.name.replace("images-idx3", "labels-idx1"))


def idx_source(images_path: str | os.PathLike, labels_path: str | os.PathLike | None = None,
               *, image_size: int | tuple[int, int] | None = None,
               skip_corrupt: bool = False) -> ArraySource:
  """MNIST-format images [N, H, W] uint8 (-> [H, W, 1]) with labels [N].

  Labels come from `labels_path`, else from the sibling file `idx_labels_path(images_path)`
  when it exists, else the data is unlabelled (labels 0, num_classes 0). A truncated file or
  a labels file of another length is a CorruptDataError, or with `skip_corrupt` only the
  complete, paired records are used (see read_idx).
  """
  images = read_idx(images_path, skip_corrupt=skip_corrupt)
  if images.dtype != np.uint8 or images.ndim not in (3, 4):
    raise ValueError(
        f"{str(images_path)!r} holds {images.dtype} {images.shape}; image IDX files must be "
        "uint8 [N, H, W] or [N, H, W, C].")
  if labels_path is None:
    sibling = idx_labels_path(images_path)
    if sibling != pathlib.Path(images_path) and sibling.is_file():
      labels_path = sibling
    else:
      logging.warning("No labels file for %s (looked for %s); labels read as 0.",
                      images_path, sibling)
  labels = None
  if labels_path is not None:
    labels = read_idx(labels_path, skip_corrupt=skip_corrupt)
    images, labels = _match_labels(images, labels, repr(str(images_path)),
                                   repr(str(labels_path)), skip_corrupt)
  return ArraySource(images, labels, image_size=image_size)


# ----------------------------------------------------------------------------------------
# npz.


def npz_source(path: str | os.PathLike, *, image_size: int | tuple[int, int] | None = None,
               skip_corrupt: bool = False) -> ArraySource:
  """A .npz with "images" uint8 [N, H, W, C] or [N, H, W] and optional "labels" [N].

  A truncated or damaged archive is a CorruptDataError (it cannot be read in part); labels
  of another length than the images are one too, unless `skip_corrupt` (then only the
  paired rows are used).
  """
  path = pathlib.Path(path).expanduser()
  if not path.is_file():
    raise FileNotFoundError(f"npz file {str(path)!r} does not exist.")
  try:
    with np.load(path, allow_pickle=False) as npz:
      if "images" not in npz:
        raise ValueError(f"{str(path)!r} has no 'images' array; it holds {sorted(npz.keys())}.")
      images = npz["images"]
      labels = npz["labels"] if "labels" in npz else None
  except (zipfile.BadZipFile, EOFError, OSError, zlib.error) as e:
    raise CorruptDataError(
        f"npz file {str(path)!r} is truncated or damaged ({type(e).__name__}: {e}); it cannot "
        "be read, even in part (data.skip_corrupt does not help). Fix: write or download it "
        "again (check the free disk space where it was written).") from e
  except ValueError as e:
    if "no 'images' array" in str(e):
      raise
    raise CorruptDataError(f"npz file {str(path)!r} is damaged ({e}). Fix: write or download "
                           "it again.") from e
  if labels is not None:
    images, labels = _match_labels(np.asarray(images), np.asarray(labels),
                                   f"{str(path)!r} ('images')", f"{str(path)!r} ('labels')",
                                   skip_corrupt)
  return ArraySource(images, labels, image_size=image_size)


# ----------------------------------------------------------------------------------------
# Two unpaired domains (CycleGAN).


class UnpairedSource:
  """Two unpaired image sources of one image shape: domain A and domain B.

  `domains` = {"image_a": source A, "image_b": source B}. Random access pairs A[i mod |A|]
  with B[i mod |B|] for 0 <= i < max(|A|, |B|) (an epoch of the official CycleGAN code's
  UnalignedDataset), which is what one ordered evaluation pass reads; training pipelines
  do not use this pairing: `pipeline.make_train_iterator` reshuffles each domain on its
  own (see there). Examples: {"image_a": uint8 [H, W, C], "image_b": uint8 [H, W, C],
  "label": 0}; labels are not used (num_classes 0).
  """

  def __init__(self, source_a: Any, source_b: Any, *, name_a: str = "A", name_b: str = "B"):
    shape_a, shape_b = source_a.info.image_shape, source_b.info.image_shape
    if tuple(shape_a) != tuple(shape_b):
      raise ValueError(
          f"The two domains have different image shapes: {name_a} {tuple(shape_a)}, "
          f"{name_b} {tuple(shape_b)}. Set data.image_size to resize both to one size (and "
          "data.color_mode='rgb' for folders mixing grey and colour images).")
    self.domains = {"image_a": source_a, "image_b": source_b}
    self._a, self._b = source_a, source_b
    self.info = DatasetInfo(tuple(int(d) for d in shape_a), 0,
                            max(len(source_a), len(source_b)),
                            image_keys=("image_a", "image_b"))

  def __len__(self) -> int:
    return self.info.num_examples

  def __getitem__(self, index: int) -> dict[str, Any]:
    return {"image_a": self._a[index % len(self._a)]["image"],
            "image_b": self._b[index % len(self._b)]["image"], "label": np.int32(0)}

  def __repr__(self) -> str:
    return f"UnpairedSource({len(self._a)} A, {len(self._b)} B, {self.info})"


# ----------------------------------------------------------------------------------------
# Config adapters.


def _split_name(cfg: Any, split: str) -> str:
  if split == "train":
    return get_field(cfg, "split", "train")
  if split == "eval":
    return get_field(cfg, "eval_split", "test")
  raise ValueError(f"split must be 'train' or 'eval', not {split!r}.")


def _local_path(cfg: Any, split: str, what: str) -> str:
  if split not in ("train", "eval"):
    raise ValueError(f"split must be 'train' or 'eval', not {split!r}.")
  field = "path" if split == "train" else "eval_path"
  path = get_field(cfg, field)
  if not path:
    raise ValueError(
        f"data.source={get_field(cfg, 'source')!r} needs data.{field}: the {what} of the "
        f"{split} split.")
  return path


@SOURCES.register("digits")
def _digits_from_config(cfg: Any, split: str) -> ArraySource:
  return digits_source(_split_name(cfg, split), image_size=get_field(cfg, "image_size"))


@SOURCES.register("tfds")
def _tfds_from_config(cfg: Any, split: str) -> TfdsSource:
  name = get_field(cfg, "name")
  if not name:
    raise ValueError("data.source='tfds' needs data.name, e.g. 'cifar10'.")
  return TfdsSource(name, split=_split_name(cfg, split), data_dir=get_field(cfg, "data_dir"),
                    download=bool(get_field(cfg, "download", False)),
                    image_size=get_field(cfg, "image_size"))


@SOURCES.register("folder")
def _folder_from_config(cfg: Any, split: str) -> FolderSource:
  return FolderSource(_local_path(cfg, split, "folder of class subfolders"),
                      image_size=get_field(cfg, "image_size"),
                      color_mode=get_field(cfg, "color_mode", "auto"),
                      skip_corrupt=bool(get_field(cfg, "skip_corrupt", False)))


@SOURCES.register("idx")
def _idx_from_config(cfg: Any, split: str) -> ArraySource:
  labels_field = "labels_path" if split == "train" else "eval_labels_path"
  return idx_source(_local_path(cfg, split, "IDX images file"), get_field(cfg, labels_field),
                    image_size=get_field(cfg, "image_size"),
                    skip_corrupt=bool(get_field(cfg, "skip_corrupt", False)))


@SOURCES.register("npz")
def _npz_from_config(cfg: Any, split: str) -> ArraySource:
  return npz_source(_local_path(cfg, split, ".npz file"), image_size=get_field(cfg, "image_size"),
                    skip_corrupt=bool(get_field(cfg, "skip_corrupt", False)))


@SOURCES.register("unpaired_folders")
def _unpaired_folders_from_config(cfg: Any, split: str) -> UnpairedSource:
  if split not in ("train", "eval"):
    raise ValueError(f"split must be 'train' or 'eval', not {split!r}.")
  prefix = "" if split == "train" else "eval_"
  folders = []
  for domain in ("a", "b"):
    field = f"{prefix}path_{domain}"
    path = get_field(cfg, field)
    if not path:
      raise ValueError(f"data.source='unpaired_folders' needs data.{field}: the folder of "
                       f"domain {domain.upper()}'s {split} images.")
    folders.append(FolderSource(path, image_size=get_field(cfg, "image_size"),
                                color_mode=get_field(cfg, "color_mode", "auto"),
                                skip_corrupt=bool(get_field(cfg, "skip_corrupt", False))))
  return UnpairedSource(*folders, name_a=get_field(cfg, f"{prefix}path_a"),
                        name_b=get_field(cfg, f"{prefix}path_b"))


UNPAIRED_TFDS_SPLITS = {"split_a": "trainA", "split_b": "trainB",
                        "eval_split_a": "testA", "eval_split_b": "testB"}


@SOURCES.register("unpaired_tfds")
def _unpaired_tfds_from_config(cfg: Any, split: str) -> UnpairedSource:
  name = get_field(cfg, "name")
  if not name:
    raise ValueError("data.source='unpaired_tfds' needs data.name, e.g. "
                     "'cycle_gan/horse2zebra'.")
  if split not in ("train", "eval"):
    raise ValueError(f"split must be 'train' or 'eval', not {split!r}.")
  prefix = "" if split == "train" else "eval_"
  splits = [get_field(cfg, f"{prefix}split_{d}", UNPAIRED_TFDS_SPLITS[f"{prefix}split_{d}"])
            for d in ("a", "b")]
  sources = [TfdsSource(name, split=s, data_dir=get_field(cfg, "data_dir"),
                        download=bool(get_field(cfg, "download", False)),
                        image_size=get_field(cfg, "image_size")) for s in splits]
  return UnpairedSource(*sources, name_a=f"{name}[{splits[0]}]", name_b=f"{name}[{splits[1]}]")


@SOURCES.register("toy2d")
def _toy_from_config(cfg: Any, split: str):
  from gen_jax.data import toy  # pylint: disable=g-import-not-at-top
  name = get_field(cfg, "name", "")
  if not name:
    raise ValueError("data.source='toy2d' needs data.name, one of: "
                     f"{', '.join(toy.TOY_DISTRIBUTIONS.names())}.")
  for field in ("image_size", "load_size", "random_flip", "dequantize"):
    if get_field(cfg, field):
      raise ValueError(f"data.{field} applies to images; unset it for the 2-D toy data "
                       f"data.source='toy2d' (data.name={name!r}).")
  return toy.toy_source(name, split)


@SOURCES.register("audio_folder")
def _audio_folder_from_config(cfg: Any, split: str):
  from gen_jax.data import audio  # pylint: disable=g-import-not-at-top
  return audio.audio_folder_from_config(cfg, split)


@SOURCES.register("audio_tones")
def _audio_tones_from_config(cfg: Any, split: str):
  from gen_jax.data import audio  # pylint: disable=g-import-not-at-top
  return audio.tones_from_config(cfg, split)


def build_source(cfg: Any, split: str) -> tuple[Any, DatasetInfo]:
  """Builds the source named by `cfg.source` for split "train" or "eval".

  Reads cfg fields: source, and per source name/split/eval_split/data_dir/download (tfds),
  split/eval_split (digits), path/eval_path (folder, idx, npz; idx also the optional
  labels_path/eval_labels_path), image_size (int or (h, w)), color_mode (folder, default
  "auto"), skip_corrupt (folder, idx, npz); unpaired_folders: path_a/path_b,
  eval_path_a/eval_path_b; unpaired_tfds: name, split_a/split_b, eval_split_a/eval_split_b.

  With load_size (training jitter, the official CycleGAN code's resize_and_crop) the train
  split is read at load_size and its info reports the image_size crop that the train
  pipeline takes (`train_crop_size`); the eval split is read at image_size.

  Returns:
    (source, info): a random-access source and its DatasetInfo.
  """
  crop = train_crop_size(cfg) if split == "train" else None
  read_cfg = _ReadAt(cfg, get_field(cfg, "load_size")) if crop else cfg
  source = SOURCES.get(get_field(cfg, "source", "digits"))(read_cfg, split)
  info = source.info
  if crop:
    info = dataclasses.replace(info, image_shape=(*crop, info.image_shape[-1]))
  return source, info


def train_crop_size(cfg: Any) -> tuple[int, int] | None:
  """(h, w) of the random training crop when cfg.load_size is set, else None.

  load_size (int) is the square size the train images are resized to, image_size (int)
  the crop taken from them (CycleGAN: 286 and 256); both must be set, load >= crop.
  """
  load = get_field(cfg, "load_size", 0)
  if not load:
    return None
  size = get_field(cfg, "image_size")
  if not isinstance(size, int) or not isinstance(load, int) or load < size:
    raise ValueError(f"data.load_size={load!r} (random-crop jitter) needs an int "
                     f"data.image_size <= load_size (the crop), got {size!r}.")
  return size, size


class _ReadAt:
  """cfg with image_size replaced by `size` (the train split's read size)."""

  def __init__(self, cfg: Any, size: int):
    self._cfg, self._size = cfg, size

  def get(self, name: str, default: Any = None) -> Any:
    return self._size if name == "image_size" else get_field(self._cfg, name, default)
