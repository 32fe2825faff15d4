"""Resumable work in chunks: each chunk's arrays saved as soon as they exist, progress + ETA.

Used by `--mode=sample` (`evaluation.generate_chunked`: chunks of samples) and by the
sample metrics of `--mode=eval` (`sample_metrics.SampleEvaluator`: chunks of features).

`run_chunks(num_chunks, produce, partial_dir=..., meta=...)` calls `produce(i)` for every
chunk i whose file partial_dir/chunk_<i>.npz does not exist yet and loads the others, so an
interrupted run redraws exactly the missing chunks: when chunk i depends only on i (its
key is fold_in(key, i)), the result equals an uninterrupted run's. `meta` (JSON) describes
what the chunks were made with; a folder written with other settings is discarded. Every
process calls `produce` (sampling is a collective over every device of every process);
process 0 writes the files (atomically: a temporary file, then a rename), and every
process reads them back (a shared file system, as for checkpoints).
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import shutil
import time
from typing import Any, Callable

import jax
import numpy as np
from absl import logging

META_FILE = "meta.json"
_LOG_EVERY_S = 30.0


@dataclasses.dataclass(frozen=True)
class ChunkResult:
  """arrays: each key's chunks concatenated on axis 0; resumed: chunks loaded from disk;
  rate: chunks per second produced in this call, excluding the first (compilation), or
  NaN when fewer than two were produced."""
  arrays: dict[str, np.ndarray]
  resumed: int
  rate: float


def _normalised(meta: dict[str, Any]) -> Any:
  return json.loads(json.dumps(meta, sort_keys=True, default=str))


def prepare_dir(partial_dir: pathlib.Path, meta: dict[str, Any]) -> None:
  """Creates `partial_dir` with `meta`; discards it first when it holds other settings."""
  meta_path = partial_dir / META_FILE
  if meta_path.is_file() and json.loads(meta_path.read_text()) != _normalised(meta):
    logging.warning("Discarding %s: it was written with different settings.", partial_dir)
    if jax.process_index() == 0:
      shutil.rmtree(partial_dir)
  if jax.process_index() == 0:
    partial_dir.mkdir(parents=True, exist_ok=True)
    meta_path.write_text(json.dumps(_normalised(meta), sort_keys=True))


def discard_dir(partial_dir: pathlib.Path) -> None:
  """Removes `partial_dir` (call once the final result is written)."""
  if jax.process_index() == 0 and partial_dir.exists():
    shutil.rmtree(partial_dir)


def run_chunks(num_chunks: int, produce: Callable[[int], dict[str, np.ndarray]], *,
               partial_dir: pathlib.Path | None = None, meta: dict[str, Any] | None = None,
               what: str = "chunks") -> ChunkResult:
  """Produces or loads chunks 0 .. num_chunks - 1 (see the module docstring).

  Args:
    num_chunks: how many chunks.
    produce: i -> {name: array [n_i, ...]}, the same keys for every chunk.
    partial_dir: where the chunks are kept (None: in memory only, nothing resumes).
    meta: the settings the chunks depend on (required with `partial_dir`).
    what: what a chunk holds, for the progress log.
  """
  if partial_dir is not None:
    if meta is None:
      raise ValueError("run_chunks needs `meta` (the chunks' settings) with a partial_dir.")
    prepare_dir(partial_dir, meta)
  outs: dict[str, list[np.ndarray]] = {}
  resumed = produced = 0
  start = last_log = None
  for i in range(num_chunks):
    path = partial_dir / f"chunk_{i:05d}.npz" if partial_dir is not None else None
    if path is not None and path.is_file():
      with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
      resumed += 1
    else:
      arrays = {k: np.asarray(v) for k, v in produce(i).items()}
      produced += 1
      if path is not None and jax.process_index() == 0:
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(tmp, **arrays)
        os.replace(tmp, path)
      now = time.perf_counter()
      if start is None:
        start = last_log = now  # the first chunk's time includes compilation
      elif now - last_log >= _LOG_EVERY_S or i == num_chunks - 1:
        last_log = now
        rate = (produced - 1) / (now - start)
        eta = (num_chunks - 1 - i) / rate
        logging.info("%s %d/%d done (%d resumed), %.2f chunks/s, ETA %.0f s.",
                     what, i + 1, num_chunks, resumed, rate, eta)
    for k, v in arrays.items():
      outs.setdefault(k, []).append(v)
  if resumed:
    logging.info("Resumed %d of %d %s from %s.", resumed, num_chunks, what, partial_dir)
  elapsed = time.perf_counter() - start if start is not None else 0.0
  rate = (produced - 1) / elapsed if produced > 1 and elapsed > 0 else float("nan")
  return ChunkResult({k: np.concatenate(v) for k, v in outs.items()}, resumed, rate)
