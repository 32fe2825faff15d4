"""Checkpoints: the train state and the data-iterator position, saved with orbax.

One `orbax.checkpoint.CheckpointManager` per run, under `<workdir>/checkpoints/<step>/`,
holding three items:
  state  the TrainState (every array, restored onto the mesh's shardings);
  data   the grain iterator state of every process (so data order resumes exactly);
  meta   JSON: step, seed and a fingerprint of the config.

Saving is asynchronous; `keep_last` recent checkpoints are kept plus every step that is a
multiple of `keep_every`. A checkpoint that cannot be read is moved aside (to
`<workdir>/checkpoints_unreadable/`, never deleted) and the previous one is used instead.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import time
from typing import Any

import grain
import jax
import orbax.checkpoint as ocp
from absl import logging


class CheckpointError(RuntimeError):
  """No checkpoint in a directory that has some could be restored."""


class Checkpointer:
  """Saves and restores (state, data iterator) pairs for one run directory."""

  def __init__(self, directory: str | os.PathLike, *, keep_last: int = 3,
               keep_every: int | None = None, asynchronous: bool = True):
    self.directory = pathlib.Path(directory).absolute()
    self._options = ocp.CheckpointManagerOptions(
        max_to_keep=keep_last,
        keep_period=keep_every or None,
        enable_async_checkpointing=asynchronous,
        create=True,
        cleanup_tmp_directories=True,
    )
    self._manager = self._new_manager()

  def _new_manager(self) -> ocp.CheckpointManager:
    return ocp.CheckpointManager(self.directory, options=self._options)

  def all_steps(self) -> list[int]:
    return sorted(self._manager.all_steps())

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def save(self, step: int, state: Any, data_iterator: Any = None, meta: dict | None = None) -> None:
    """Starts saving `state` (and the iterator position) as checkpoint `step`."""
    items = dict(state=ocp.args.StandardSave(state),
                 meta=ocp.args.JsonSave({"step": int(step), **(meta or {})}))
    if data_iterator is not None:
      items["data"] = grain.checkpoint.CheckpointSave(data_iterator)
    self._manager.save(step, args=ocp.args.Composite(**items), force=True)

  def restore(self, step: int, abstract_state: Any, data_iterator: Any = None) -> Any:
    """Restores checkpoint `step` onto `abstract_state`'s shapes, dtypes and shardings.

    The data iterator, if given, is moved to the saved position in place.
    """
    items = dict(state=ocp.args.StandardRestore(abstract_state))
    if data_iterator is not None:
      items["data"] = grain.checkpoint.CheckpointRestore(data_iterator)
    restored = self._manager.restore(step, args=ocp.args.Composite(**items))
    return restored["state"]

  def restore_latest(self, abstract_state: Any, data_iterator: Any = None) -> tuple[Any, int] | None:
    """Restores the newest readable checkpoint; returns (state, step), or None if there is none.

    An unreadable checkpoint (truncated, corrupted, written by an incompatible model) is
    moved to `<directory>_unreadable/` with a warning, and the next older one is tried.
    """
    steps = self.all_steps()
    for step in reversed(steps):
      try:
        state = self.restore(step, abstract_state, data_iterator)
      except Exception as e:  # pylint: disable=broad-except
        aside = self._move_aside(step)
        logging.warning(
            "Checkpoint at step %d in %s could not be restored (%s: %s). It was moved to %s "
            "and the previous checkpoint will be used instead.",
            step, self.directory, type(e).__name__, str(e)[:500], aside)
        continue
      return state, step
    if steps:
      raise CheckpointError(
          f"None of the checkpoints {steps} in {self.directory} could be restored (each was "
          f"moved to {self.directory}_unreadable/). If the model or config changed since they "
          "were written, train in a new --workdir or restore the original config.")
    return None

  def _move_aside(self, step: int) -> pathlib.Path:
    target = pathlib.Path(f"{self.directory}_unreadable") / f"{step}-{int(time.time())}"
    if jax.process_index() == 0:
      target.parent.mkdir(parents=True, exist_ok=True)
      shutil.move(str(self.directory / str(step)), target)
    if jax.process_count() > 1:
      from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
      multihost_utils.sync_global_devices(f"checkpoint_move_aside_{step}")
    self._manager.close()
    self._manager = self._new_manager()
    return target

  def wait(self) -> None:
    """Blocks until every asynchronous save has finished."""
    self._manager.wait_until_finished()

  def close(self) -> None:
    self._manager.wait_until_finished()
    self._manager.close()
