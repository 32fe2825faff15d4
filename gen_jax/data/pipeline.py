"""Deterministic, resumable grain pipelines whose global batch ignores the process count.

Training stream. One global stream G of examples is defined by the seed alone:

  G = MapDataset.source(source).shuffle(s1).repeat(None).random_map(augment, seed=s2)

G[k] is the k-th example ever drawn: epoch k // N (N = len(source)) is a fresh permutation
of the whole source (grain folds the epoch into the shuffle seed), and its flip /
dequantization noise is drawn from a generator that grain seeds with (s2, k). Global batch
t is G[t*B : (t+1)*B]. With n processes each takes b = B / n consecutive rows of every
global batch: process p's local element j is

  G[(j // b) * B + p * b + j % b],

so concatenating the local batches of processes 0..n-1 gives exactly the single-process
global batch, for any n. Batches straddle epoch boundaries (no example is dropped).

State. The iterators are grain `DatasetIterator`s over a MapDataset, so their whole state
is the next batch index ({"next_index": t}); `get_state()`/`set_state()` resume exactly,
and `grain.checkpoint.CheckpointSave(it)` / `CheckpointRestore(it)` store it in an orbax
checkpoint (one small JSON file per process).

Evaluation stream. One ordered pass over the source, padded to whole global batches by
repeating examples from the start; a boolean "mask" marks the real ones, so a masked mean
over all batches of all processes is exact over the split.
"""

from __future__ import annotations

from typing import Any, Sequence

import grain
import numpy as np

from gen_jax.data import sources as sources_lib
from gen_jax.data import transforms

DEFAULT_NUM_THREADS = 4
DEFAULT_PREFETCH = 8


def _derive_seeds(seed: int) -> tuple[int, int]:
  """Independent uint32 seeds for the shuffle and the augmentation from one user seed.

  Hashing keeps seed s + 1 from replaying seed s one epoch later: grain's shuffle uses
  seed + epoch for each epoch.
  """
  if not isinstance(seed, (int, np.integer)) or seed < 0:
    raise ValueError(f"seed must be a non-negative integer, got {seed!r}.")
  shuffle_seed, augment_seed = np.random.SeedSequence(int(seed)).generate_state(2)
  return int(shuffle_seed), int(augment_seed)


def _resolve_processes(process_index: int | None,
                       process_count: int | None) -> tuple[int, int]:
  if process_index is None or process_count is None:
    import jax  # pylint: disable=g-import-not-at-top
    process_index = jax.process_index() if process_index is None else process_index
    process_count = jax.process_count() if process_count is None else process_count
  if process_count < 1 or not 0 <= process_index < process_count:
    raise ValueError(
        f"Need 0 <= process_index < process_count, got {process_index} and {process_count}.")
  return int(process_index), int(process_count)


def _local_batch_size(global_batch_size: int, process_count: int) -> int:
  if global_batch_size < 1:
    raise ValueError(f"global_batch_size must be positive, got {global_batch_size}.")
  if global_batch_size % process_count:
    raise ValueError(
        f"global_batch_size {global_batch_size} is not divisible by the process count "
        f"{process_count}; every process must load the same number of rows.")
  return global_batch_size // process_count


class ToModelInput(grain.transforms.RandomMap):
  """{"image": uint8 [H,W,C], "label"} -> {"image": float32 [H,W,C] in [-1,1], "label": int32}.

  Optionally crops a random [h, w] window (`random_crop`, before the flip, as the official
  CycleGAN code's resize_and_crop), mirrors left-right (p = 1/2) and dequantizes (uniform
  noise within each 8-bit bin) instead of the plain x / 127.5 - 1; any "mask" entry is
  passed through.
  Float "image" entries (vector data such as toy2d) are passed through unchanged.
  """

  def __init__(self, *, random_flip: bool = False, dequantize: bool = False,
               random_crop: tuple[int, int] | None = None):
    self.random_flip = random_flip
    self.dequantize = dequantize
    self.random_crop = random_crop

  def random_map(self, element: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
    # Every image entry ("image", or "image_a" and "image_b" of unpaired data) is mapped,
    # each with its own draws, in sorted key order.
    out = {key: self._to_model(element[key], rng)
           for key in sorted(k for k in element if k.startswith("image"))}
    out["label"] = np.int32(element["label"])
    if "mask" in element:
      out["mask"] = element["mask"]
    return out

  def _to_model(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    if np.issubdtype(image.dtype, np.floating):
      # Vector data (e.g. toy2d) is already in model space: no flip, no dequantization.
      return np.ascontiguousarray(image.astype(np.float32, copy=False))
    if self.random_crop:
      image = transforms.random_crop(image, self.random_crop, rng)
    if self.random_flip:
      image = transforms.random_flip(image, rng)
    image = transforms.dequantize(image, rng) if self.dequantize else transforms.to_float(image)
    return np.ascontiguousarray(image)


class ProcessRowsMapDataset(grain.MapDataset):
  """Process p's share of a global stream: b = B / n consecutive rows of each global batch.

  Element j is parent[(j // b) * B + p * b + j % b]; the length covers the whole global
  batches of the parent (all of them for an infinite parent).
  """

  def __init__(self, parent: grain.MapDataset, *, global_batch_size: int,
               process_index: int, process_count: int):
    super().__init__(parent)
    self._global_batch = global_batch_size
    self._local_batch = _local_batch_size(global_batch_size, process_count)
    self._offset = process_index * self._local_batch
    self._length = (len(parent) // global_batch_size) * self._local_batch

  def __len__(self) -> int:
    return self._length

  def _global_index(self, index: int) -> int:
    batch, row = divmod(index, self._local_batch)
    return batch * self._global_batch + self._offset + row

  def __getitem__(self, index):
    if isinstance(index, slice):
      return self.slice(index)
    return self._parent[self._global_index(index)]

  def _getitems(self, indices: Sequence[int]):
    return self._parent._getitems([self._global_index(i) for i in indices])  # pylint: disable=protected-access

  @property
  def _element_spec(self) -> Any:
    return self._parent._element_spec  # pylint: disable=protected-access

  def __str__(self) -> str:
    return (f"ProcessRowsMapDataset(global_batch={self._global_batch}, "
            f"rows=[{self._offset}, {self._offset + self._local_batch}))")


class PadWithMaskMapDataset(grain.MapDataset):
  """The parent's N elements padded to `length` by repeating from the start, plus a mask.

  Element g is {**parent[g % N], "mask": g < N}; the repeated elements are real data, so
  padding never produces out-of-distribution values, but they must be masked out.
  """

  def __init__(self, parent: grain.MapDataset, length: int):
    super().__init__(parent)
    self._num_real = len(parent)
    self._length = length

  def __len__(self) -> int:
    return self._length

  def __getitem__(self, index):
    if isinstance(index, slice):
      return self.slice(index)
    return self._with_mask(self._parent[index % self._num_real], index)

  def _getitems(self, indices: Sequence[int]):
    elements = self._parent._getitems([i % self._num_real for i in indices])  # pylint: disable=protected-access
    return [self._with_mask(e, i) for e, i in zip(elements, indices)]

  def _with_mask(self, element: dict[str, Any], index: int) -> dict[str, Any]:
    return {**element, "mask": np.bool_(index < self._num_real)}

  def __str__(self) -> str:
    return f"PadWithMaskMapDataset(num_real={self._num_real}, length={self._length})"


def _to_iterator(dataset: grain.MapDataset, local_batch: int, num_threads: int,
                 prefetch: int) -> grain.DatasetIterator:
  batched = dataset.batch(local_batch, drop_remainder=True)
  options = grain.ReadOptions(num_threads=num_threads, prefetch_buffer_size=prefetch)
  return iter(batched.to_iter_dataset(options))


def make_train_iterator(source: Any, *, global_batch_size: int, seed: int,
                        process_index: int | None = None, process_count: int | None = None,
                        random_flip: bool = False, dequantize: bool = False,
                        random_crop: tuple[int, int] | None = None,
                        num_threads: int = DEFAULT_NUM_THREADS,
                        prefetch: int = DEFAULT_PREFETCH) -> grain.DatasetIterator:
  """An endless, reshuffled-every-epoch iterator over this process's rows of each global batch.

  Args:
    source: random-access source (len, [i] -> {"image": uint8 [H,W,C], "label": int}).
      A source with `domains` (unpaired data, `sources.UnpairedSource`) yields
      {"image_a", "image_b", "label"}, each domain reshuffled on its own
      (`_independent_domains`).
    global_batch_size: B, the batch summed over all processes; must divide by the process
      count and be at most len(source).
    seed: the only input that determines the stream (shuffle order and augmentation).
    process_index, process_count: this process's place; default jax.process_index() and
      jax.process_count().
    random_flip: mirror each image left-right with probability 1/2.
    dequantize: uniform dequantization (transforms.dequantize) instead of x / 127.5 - 1.
    random_crop: (h, w): a random window of each image of that size, before the flip
      (None: the images as read).
    num_threads: grain threads that assemble batches (0: in the caller's thread).
    prefetch: number of batches grain prepares ahead.

  Returns:
    A grain DatasetIterator (with get_state/set_state) yielding
      {"image": float32 [b, H, W, C] in [-1, 1], "label": int32 [b]}, b = B / process_count.
  """
  process_index, process_count = _resolve_processes(process_index, process_count)
  local_batch = _local_batch_size(global_batch_size, process_count)
  if global_batch_size > len(source):
    raise ValueError(
        f"global_batch_size {global_batch_size} exceeds the {len(source)} examples of the "
        "dataset.")
  shuffle_seed, augment_seed = _derive_seeds(seed)
  domains = getattr(source, "domains", None)
  if domains:
    stream = _independent_domains(domains, shuffle_seed)
  else:
    stream = grain.MapDataset.source(source).shuffle(seed=shuffle_seed).repeat(None)
  stream = stream.random_map(ToModelInput(random_flip=random_flip, dequantize=dequantize,
                                          random_crop=random_crop), seed=augment_seed)
  rows = ProcessRowsMapDataset(stream, global_batch_size=global_batch_size,
                               process_index=process_index, process_count=process_count)
  return _to_iterator(rows, local_batch, num_threads, prefetch)


def _independent_domains(domains: dict[str, Any], shuffle_seed: int) -> grain.MapDataset:
  """Unpaired data: element k = {key: k-th image of that domain's own stream, "label": 0}.

  Each domain (e.g. "image_a", "image_b" of `sources.UnpairedSource`) is reshuffled every
  epoch of its own length with its own seed, so which A meets which B changes every
  epoch and the two domains may differ in size.
  """
  streams = []
  for i, domain in enumerate(domains.values()):
    seed = int(np.random.SeedSequence([shuffle_seed, i]).generate_state(1)[0])
    streams.append(grain.MapDataset.source(domain).shuffle(seed=seed).repeat(None))
  keys = tuple(domains)
  return grain.experimental.ZipMapDataset(streams).map(
      lambda parts: {**{k: e["image"] for k, e in zip(keys, parts)}, "label": np.int32(0)})


def make_eval_iterator(source: Any, *, global_batch_size: int,
                       process_index: int | None = None, process_count: int | None = None,
                       dequantize: bool = False, seed: int = 0,
                       num_threads: int = DEFAULT_NUM_THREADS,
                       prefetch: int = DEFAULT_PREFETCH) -> grain.DatasetIterator:
  """One ordered pass over the source in ceil(N / B) global batches, with a validity mask.

  Global batch t holds examples t*B .. t*B + B - 1; past N the rows repeat examples from
  the start and are masked out. Each process takes its b = B / n rows as in training.

  Args:
    source: random-access source, as for make_train_iterator.
    global_batch_size: B, summed over processes; must divide by the process count.
    process_index, process_count: default jax.process_index() and jax.process_count().
    dequantize: dequantize with noise fixed by `seed` (the same on every pass), e.g. for
      bits/dim; otherwise x / 127.5 - 1. Never flipped or shuffled.
    seed: dequantization seed.
    num_threads, prefetch: as for make_train_iterator.

  Returns:
    A grain DatasetIterator over ceil(N / B) batches
      {"image": float32 [b, H, W, C], "label": int32 [b], "mask": bool [b]}.
  """
  process_index, process_count = _resolve_processes(process_index, process_count)
  local_batch = _local_batch_size(global_batch_size, process_count)
  num_batches = -(-len(source) // global_batch_size)
  padded = PadWithMaskMapDataset(grain.MapDataset.source(source),
                                 num_batches * global_batch_size)
  stream = padded.random_map(ToModelInput(dequantize=dequantize),
                             seed=_derive_seeds(seed)[1])
  rows = ProcessRowsMapDataset(stream, global_batch_size=global_batch_size,
                               process_index=process_index, process_count=process_count)
  return _to_iterator(rows, local_batch, num_threads, prefetch)


def build_train_iterator_from_config(
    cfg: Any, *, global_batch_size: int, seed: int, process_index: int | None = None,
    process_count: int | None = None,
    source_and_info: tuple[Any, sources_lib.DatasetInfo] | None = None,
) -> tuple[grain.DatasetIterator, sources_lib.DatasetInfo]:
  """make_train_iterator over build_source(cfg, "train").

  Reads cfg fields random_flip, dequantize, num_threads, prefetch, and load_size with
  image_size (a random image_size crop of images read at load_size:
  sources.train_crop_size), plus the source fields, see sources.build_source. `source_and_info` reuses a source already opened by
  build_source(cfg, "train") (opening a large folder or tfds dataset is not free).

  Returns:
    (iterator, info) with info describing the train split.
  """
  source, info = source_and_info or sources_lib.build_source(cfg, "train")
  get = sources_lib.get_field
  iterator = make_train_iterator(
      source, global_batch_size=global_batch_size, seed=seed, process_index=process_index,
      process_count=process_count, random_flip=bool(get(cfg, "random_flip", False)),
      dequantize=bool(get(cfg, "dequantize", False)),
      random_crop=sources_lib.train_crop_size(cfg),
      num_threads=int(get(cfg, "num_threads", DEFAULT_NUM_THREADS)),
      prefetch=int(get(cfg, "prefetch", DEFAULT_PREFETCH)))
  return iterator, info


def build_eval_iterator_from_config(
    cfg: Any, *, global_batch_size: int, process_index: int | None = None,
    process_count: int | None = None, dequantize: bool | None = None,
    seed: int = 0) -> tuple[grain.DatasetIterator, sources_lib.DatasetInfo]:
  """make_eval_iterator over build_source(cfg, "eval"): one pass over the eval split.

  `dequantize` None follows cfg.dequantize (so likelihoods are measured as trained).

  Returns:
    (iterator, info) with info describing the eval split.
  """
  source, info = sources_lib.build_source(cfg, "eval")
  get = sources_lib.get_field
  if dequantize is None:
    dequantize = bool(get(cfg, "dequantize", False))
  iterator = make_eval_iterator(
      source, global_batch_size=global_batch_size, process_index=process_index,
      process_count=process_count, dequantize=dequantize, seed=seed,
      num_threads=int(get(cfg, "num_threads", DEFAULT_NUM_THREADS)),
      prefetch=int(get(cfg, "prefetch", DEFAULT_PREFETCH)))
  return iterator, info
