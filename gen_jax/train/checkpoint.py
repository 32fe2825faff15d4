"""Checkpoints: the train state and the data-iterator position, saved with orbax.

One `orbax.checkpoint.CheckpointManager` per run, under `<workdir>/checkpoints/<step>/`,
holding three items:
  state  the TrainState (every array, restored onto the mesh's shardings);
  data   the grain iterator state of every process (so data order resumes exactly);
  meta   JSON: step, seed, the run's config, the number of processes, and the structure
         of the state (every array's path, dtype and shape) with its SHA-256 fingerprint.

Saving is asynchronous; `keep_last` recent checkpoints are kept plus every step that is a
multiple of `keep_every`. What can go wrong, and what happens:

* The config changed so that it builds a state of another structure (a wider model, a
  new layer, another optimiser): `ConfigMismatchError` lists the differing arrays and
  config fields, before anything is restored, moved or deleted.
* A checkpoint cannot be read (truncated, corrupted files): it is moved aside to
  `<workdir>/checkpoints_unreadable/<step>-<time>/` (never deleted) and the previous one is
  used. When every checkpoint was moved aside the run does not silently start again from
  step 0: that needs `allow_fresh_start=True` (`--config.trainer.allow_fresh_start=True`).
* A save fails (disk full, no permission): `CheckpointSaveError` says so and stops the run;
  orbax writes into a temporary folder that it renames only when complete, so the previous
  checkpoint stays intact and restorable.
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import shutil
import time
from typing import Any, Mapping

import grain
import jax
import numpy as np
import orbax.checkpoint as ocp
from absl import logging

# The config fields whose differences are listed on a mismatch: at most this many.
_MAX_LISTED = 20


class CheckpointError(RuntimeError):
  """No checkpoint of a directory that has some can be used."""


class ConfigMismatchError(CheckpointError):
  """The checkpoints were written by a config that builds a state of another structure."""


class CheckpointSaveError(CheckpointError):
  """Writing a checkpoint failed (e.g. no space left on the device, no permission)."""


# ----------------------------------------------------------------------------------------
# Structure fingerprints and config differences.


def _path_str(path: tuple[Any, ...]) -> str:
  """A pytree key path as "params/down_0/conv/kernel"."""
  parts = []
  for key in path:
    for attr in ("key", "name", "idx"):
      if hasattr(key, attr):
        parts.append(str(getattr(key, attr)))
        break
    else:
      parts.append(str(key))
  return "/".join(parts)


def structure_of(tree: Any) -> dict[str, str]:
  """{path: "dtype[d0,d1,...]"} for every array of `tree` (arrays or ShapeDtypeStructs)."""
  leaves, _ = jax.tree_util.tree_flatten_with_path(tree)
  return {_path_str(path): f"{x.dtype}[{','.join(str(int(d)) for d in x.shape)}]"
          for path, x in leaves}


def fingerprint(structure: Mapping[str, str]) -> str:
  """SHA-256 of a `structure_of` dict: equal exactly when paths, dtypes and shapes agree."""
  return hashlib.sha256(json.dumps(dict(structure), sort_keys=True).encode()).hexdigest()


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
  if isinstance(tree, Mapping):
    out = {}
    for k, v in tree.items():
      out.update(_flatten(v, f"{prefix}{k}."))
    return out
  return {prefix[:-1]: tree}


def config_diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[tuple[str, Any, Any]]:
  """[(dotted field, old value, new value)] for every leaf field that differs, sorted.

  A field present on one side only has the value "<absent>" on the other.
  """
  a, b = _flatten(old), _flatten(new)
  absent = "<absent>"
  return [(k, a.get(k, absent), b.get(k, absent)) for k in sorted(set(a) | set(b))
          if a.get(k, absent) != b.get(k, absent)]


def _as_flag_value(value: Any) -> str:
  if isinstance(value, list):
    value = tuple(value)
  return repr(value) if not isinstance(value, str) else value


def _structure_differences(saved: Mapping[str, str], current: Mapping[str, str]) -> list[str]:
  out = []
  for path in sorted(set(saved) | set(current)):
    s, c = saved.get(path), current.get(path)
    if s != c:
      out.append(f"{path}: saved {s or 'absent'}, now {c or 'absent'}")
  return out


def mismatch_message(directory: pathlib.Path, step: int, meta: Mapping[str, Any],
                     current_structure: Mapping[str, str],
                     current_config: Mapping[str, Any] | None) -> str:
  """What differs between checkpoint `step` (its meta) and the current run, and what to do."""
  lines = [f"The checkpoint at step {step} in {directory} was written by a different config: "
           "the train state it holds has another structure than the one this config builds."]
  saved_processes = meta.get("process_count")
  if saved_processes is not None and saved_processes != jax.process_count():
    lines.append(f"It was written by {saved_processes} processes, this run has "
                 f"{jax.process_count()}; every process keeps its own data position.")
  saved_structure = meta.get("structure")
  if saved_structure is not None and fingerprint(saved_structure) != fingerprint(
      current_structure):
    diffs = _structure_differences(saved_structure, current_structure)
    lines.append(f"{len(diffs)} of {len(current_structure)} arrays differ, e.g.:")
    lines += [f"  {d}" for d in diffs[:5]]
  saved_config = meta.get("config")
  if saved_config is not None and current_config is not None:
    fields = config_diff(saved_config, current_config)
    if fields:
      lines.append("Config fields that differ from the config of that checkpoint:")
      lines += [f"  {k}: {_as_flag_value(old)} (saved) -> {_as_flag_value(new)} (now)"
                for k, old, new in fields[:_MAX_LISTED]]
      if len(fields) > _MAX_LISTED:
        lines.append(f"  ... and {len(fields) - _MAX_LISTED} more")
      restore = " ".join(f"--config.{k}={_as_flag_value(old)}" for k, old, _ in fields[:5]
                         if old != "<absent>")
      if restore:
        lines.append(f"(to restore them: {restore})")
    else:
      lines.append("The config fields are equal: the code that builds the model changed.")
  else:
    lines.append("(The checkpoint does not record its config; compare with "
                 f"{directory.parent / 'config.json'}.)")
  lines.append(
      "Nothing was moved or deleted. To continue this run, rerun with its original config; "
      f"to train the new config, use a new --workdir (optionally starting from these weights "
      f"with --config.init_from={directory.parent}).")
  return "\n".join(lines)


# ----------------------------------------------------------------------------------------
# The checkpointer.


class Checkpointer:
  """Saves and restores (state, data iterator) pairs for one run directory.

  Args:
    directory: where the step folders go (`<workdir>/checkpoints`).
    keep_last: recent checkpoints kept.
    keep_every: also keep every step that is a multiple of this (None: none).
    asynchronous: write in a background thread (errors surface at the next save, `wait`,
      `check_for_errors` or `close`).
    config: the run's config as a JSON-able dict; saved in every checkpoint's meta and
      compared with the saved one when a checkpoint does not fit.
  """

  def __init__(self, directory: str | os.PathLike, *, keep_last: int = 3,
               keep_every: int | None = None, asynchronous: bool = True,
               config: Mapping[str, Any] | None = None):
    self.directory = pathlib.Path(directory).absolute()
    self.aside_directory = pathlib.Path(f"{self.directory}_unreadable")
    self.config = None if config is None else dict(config)
    self._options = ocp.CheckpointManagerOptions(
        max_to_keep=keep_last,
        keep_period=keep_every or None,
        enable_async_checkpointing=asynchronous,
        create=True,
        cleanup_tmp_directories=True,
    )
    self._manager = self._new_manager()
    self._saving_step: int | None = None  # the newest save whose outcome is not yet known
    self._failed = False

  def _new_manager(self) -> ocp.CheckpointManager:
    return ocp.CheckpointManager(self.directory, options=self._options)

  def all_steps(self) -> list[int]:
    return sorted(self._manager.all_steps())

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  # -- saving ------------------------------------------------------------------------------

  def save(self, step: int, state: Any, data_iterator: Any = None,
           meta: dict | None = None) -> None:
    """Starts saving `state` (and the iterator position) as checkpoint `step`.

    Raises:
      CheckpointSaveError: this save, or the previous asynchronous one, failed.
    """
    structure = structure_of(state)
    meta = {"step": int(step), **(meta or {}), "process_count": jax.process_count(),
            "structure": structure, "structure_sha256": fingerprint(structure)}
    if self.config is not None:
      meta["config"] = self.config
    items = dict(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta))
    if data_iterator is not None:
      items["data"] = grain.checkpoint.CheckpointSave(data_iterator)
    self._guard(self._manager.wait_until_finished)
    self._saving_step = int(step)
    self._guard(lambda: self._manager.save(step, args=ocp.args.Composite(**items), force=True))

  def check_for_errors(self) -> None:
    """Raises CheckpointSaveError if an asynchronous save has failed (does not block)."""
    self._guard(self._manager.check_for_errors)

  def wait(self) -> None:
    """Blocks until every asynchronous save has finished; raises CheckpointSaveError."""
    self._guard(self._manager.wait_until_finished)

  def close(self) -> None:
    """Waits for the saves and releases the manager; a failure already raised is not repeated."""
    try:
      self.wait()
    finally:
      try:
        self._manager.close()
      except Exception:  # pylint: disable=broad-except
        if not self._failed:
          raise

  def _guard(self, fn) -> Any:
    """Runs a manager call; a save failure becomes one CheckpointSaveError (then silence)."""
    if self._failed:
      return None
    try:
      return fn()
    except Exception as e:  # pylint: disable=broad-except
      self._failed = True
      raise CheckpointSaveError(self._save_failure_message(e)) from e

  def committed_steps_on_disk(self) -> list[int]:
    """Steps whose folders are complete (orbax renames a step's folder only once written)."""
    if not self.directory.is_dir():
      return []
    return sorted(int(p.name) for p in self.directory.iterdir()
                  if p.name.isdigit() and p.is_dir())

  def _save_failure_message(self, error: Exception) -> str:
    step = self._saving_step
    intact = [s for s in self.committed_steps_on_disk() if s != step]
    previous = (f"The newest complete checkpoint, step {intact[-1]}, is intact: rerunning the "
                "same command resumes from it." if intact
                else "No earlier checkpoint exists.")
    return (f"Saving the checkpoint of step {step} to {self.directory} failed "
            f"({type(error).__name__}: {str(error)[:300]}), so the run was stopped. "
            f"{previous} Free disk space or fix the write permissions of "
            f"{self.directory} first.")

  # -- restoring ---------------------------------------------------------------------------

  def restore(self, step: int, abstract_state: Any, data_iterator: Any = None) -> Any:
    """Restores checkpoint `step` onto `abstract_state`'s shapes, dtypes and shardings.

    The data iterator, if given, is moved to the saved position in place.
    """
    items = dict(state=ocp.args.StandardRestore(abstract_state))
    if data_iterator is not None:
      items["data"] = grain.checkpoint.CheckpointRestore(data_iterator)
    restored = self._manager.restore(step, args=ocp.args.Composite(**items))
    return restored["state"]

  def read_meta(self, step: int) -> dict | None:
    """The meta item of checkpoint `step`, or None when it cannot be read."""
    try:
      restored = self._manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))
      meta = restored["meta"]
      return dict(meta) if isinstance(meta, Mapping) else None
    except Exception:  # pylint: disable=broad-except
      return None

  def restore_numpy(self, step: int) -> dict:
    """The saved state of checkpoint `step` as nested dicts of NumPy arrays on the host.

    Needs no target: the shapes and dtypes come from the checkpoint's own metadata, so it
    reads checkpoints of any model (e.g. to fine-tune from another run).
    """
    metadata = self._state_metadata(step)
    target = jax.tree.map(lambda m: np.zeros(m.shape, m.dtype), metadata)
    restored = self._manager.restore(
        step, args=ocp.args.Composite(state=ocp.args.StandardRestore(target)))
    return restored["state"]

  def check_structure(self, abstract_state: Any) -> None:
    """Raises ConfigMismatchError if a readable checkpoint was written for another structure.

    Reads only the small meta item of each checkpoint; nothing is restored or moved.
    """
    current = structure_of(abstract_state)
    current_sha = fingerprint(current)
    for step in reversed(self.all_steps()):
      meta = self.read_meta(step)
      if meta is None or "structure_sha256" not in meta:
        # Written before fingerprints: compare the shapes orbax recorded, ignoring paths.
        saved = self._orbax_structure(step)
        if saved is not None and sorted(saved.values()) != sorted(current.values()):
          raise ConfigMismatchError(mismatch_message(
              self.directory, step, {**(meta or {}), "structure": saved}, current,
              self.config))
        continue  # unreadable ones are moved aside below if their state cannot be read
      processes = meta.get("process_count", jax.process_count())
      if meta["structure_sha256"] != current_sha or processes != jax.process_count():
        raise ConfigMismatchError(
            mismatch_message(self.directory, step, meta, current, self.config))

  def _state_metadata(self, step: int) -> Any:
    """Orbax's record of the state item's tree (shapes and dtypes) in checkpoint `step`."""
    # Read with the item's handler: a manager that has not saved or restored this item in
    # this process does not know it yet.
    return ocp.StandardCheckpointHandler().metadata(self.directory / str(step) / "state")

  def _orbax_structure(self, step: int) -> dict[str, str] | None:
    """structure_of the state item from orbax's own metadata, or None if unreadable."""
    try:
      structure = structure_of(self._state_metadata(step))
    except Exception:  # pylint: disable=broad-except
      return None
    return structure or None

  def restore_latest(self, abstract_state: Any, data_iterator: Any = None, *,
                     allow_fresh_start: bool = False) -> tuple[Any, int] | None:
    """Restores the newest readable checkpoint; returns (state, step), or None if there is none.

    First every checkpoint's structure fingerprint is compared with `abstract_state`'s
    (ConfigMismatchError on a difference; nothing is touched). Then the newest one is
    restored; one that cannot be read is moved to `<directory>_unreadable/` with a warning,
    and the next older one is tried.

    Raises:
      ConfigMismatchError: the checkpoints hold a state of another structure.
      CheckpointError: there are no usable checkpoints but some were moved aside (now or
        earlier) and `allow_fresh_start` is False.
    """
    self.check_structure(abstract_state)
    steps = self.all_steps()
    failures = []
    for step in reversed(steps):
      try:
        state = self.restore(step, abstract_state, data_iterator)
      except Exception as e:  # pylint: disable=broad-except
        aside = self._move_aside(step)
        failures.append(f"step {step}: {type(e).__name__}: {str(e)[:300]} (moved to {aside})")
        logging.warning(
            "Checkpoint at step %d in %s could not be restored (%s: %s). It was moved to %s "
            "and the previous checkpoint will be used instead.",
            step, self.directory, type(e).__name__, str(e)[:500], aside)
        continue
      return state, step
    moved = sorted(p.name for p in self.aside_directory.iterdir()) if (
        self.aside_directory.is_dir()) else []
    if moved and not allow_fresh_start:
      why = ("\n".join(f"  {f}" for f in failures) if failures
             else f"  (moved there by an earlier run: {', '.join(moved)})")
      raise CheckpointError(
          f"No checkpoint in {self.directory} can be restored; the unreadable ones are in "
          f"{self.aside_directory}:\n{why}\nThe run will not silently start again from step "
          "0. To start afresh anyway, rerun with --config.trainer.allow_fresh_start=True (or "
          "use a new --workdir); to recover, repair a moved checkpoint and move it back to "
          f"{self.directory}/<step>.")
    if moved:
      logging.warning("Every checkpoint of %s was unreadable (moved to %s); starting afresh "
                      "because allow_fresh_start is set.", self.directory, self.aside_directory)
    return None

  def _move_aside(self, step: int) -> pathlib.Path:
    target = self.aside_directory / f"{step}-{int(time.time())}"
    if jax.process_index() == 0:
      target.parent.mkdir(parents=True, exist_ok=True)
      shutil.move(str(self.directory / str(step)), target)
    if jax.process_count() > 1:
      from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
      multihost_utils.sync_global_devices(f"checkpoint_move_aside_{step}")
    self._manager.close()
    self._manager = self._new_manager()
    return target
