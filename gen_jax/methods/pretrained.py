"""Another run's trained model, read from its workdir: a guidance classifier, a teacher.

A method that builds on a trained run (classifier guidance reads a noisy classifier;
distillation reads its teacher) points at that run's workdir: its config.json rebuilds the
method, its newest checkpoint gives the EMA parameters, read-only. Every problem is a
`PretrainedRunError` naming the workdir, what it was needed for and the fix.
"""

from __future__ import annotations

import json
import pathlib
from typing import Any, NamedTuple

import jax
import ml_collections
import orbax.checkpoint as ocp

from gen_jax.methods.base import Method, build_method


class PretrainedRunError(ValueError):
  """A workdir that cannot serve as the trained run a config points at."""


class CheckpointDoesNotFit(Exception):
  """The checkpoint at `step` could not be restored into the given method's state."""

  def __init__(self, step: int, cause: Exception):
    super().__init__(f"{type(cause).__name__}: {str(cause)[:300]}")
    self.step = step


def restore_train_state(checkpoint_dir: pathlib.Path, method: Method,
                        step: int | None = None) -> tuple[Any, int | None]:
  """(train state, step) of another run, read-only, on the first device.

  The state's structure is `method.init`'s (traced, not run). Returns (None, None) when
  `checkpoint_dir` holds no checkpoint.

  Raises:
    LookupError: `step` is given and not saved (the message lists the saved steps).
    CheckpointDoesNotFit: the checkpoint is unreadable or has another structure.
  """
  manager = ocp.CheckpointManager(checkpoint_dir,
                                  options=ocp.CheckpointManagerOptions(read_only=True))
  try:
    if step is not None and step not in manager.all_steps():
      raise LookupError(f"{checkpoint_dir} holds no checkpoint at step {step}; it holds "
                        f"{sorted(manager.all_steps())}.")
    step = manager.latest_step() if step is None else step
    if step is None:
      return None, None
    device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    abstract = jax.tree.map(
        lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=device),
        jax.eval_shape(method.init, jax.random.key(0), None))
    try:
      state = manager.restore(
          step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract)))["state"]
    except Exception as e:  # pylint: disable=broad-except
      raise CheckpointDoesNotFit(step, e) from e
  finally:
    manager.close()
  return state, int(step)


class PretrainedRun(NamedTuple):
  """config (of the run), method (rebuilt), params (EMA, on device), step."""

  config: ml_collections.ConfigDict
  method: Method
  params: Any
  step: int


def load_run(workdir: str | pathlib.Path, info: Any, *, method_names: tuple[str, ...],
             role: str, train_hint: str, step: int | None = None) -> PretrainedRun:
  """The newest checkpoint (or the one at `step`) of the run in `workdir`, rebuilt for the
  dataset `info`.

  Args:
    workdir: the run's directory (config.json, checkpoints/).
    info: the `DatasetInfo` the run's method is rebuilt with (shape, classes).
    method_names: the accepted config.method.name values of that run.
    role: what the run is for, for messages ("the guidance classifier").
    train_hint: the command that trains such a run, for messages.
    step: the checkpoint step to read (None: the newest).

  Raises:
    PretrainedRunError: missing workdir, config.json or checkpoint, another kind of run, or
      a checkpoint that does not fit the rebuilt method.
  """
  workdir = pathlib.Path(workdir or "")
  path = workdir / "config.json"
  if not str(workdir) or not path.is_file():
    raise PretrainedRunError(
        f"{role}: the workdir {str(workdir)!r} holds no config.json. Train it first "
        f"({train_hint}) and point the config at its --workdir.")
  try:
    config = ml_collections.ConfigDict(json.loads(path.read_text()))
  except (OSError, json.JSONDecodeError) as e:
    raise PretrainedRunError(f"{role}: {path} is unreadable ({type(e).__name__}: {e}).") from e
  name = config.get("method", {}).get("name")
  if name not in method_names:
    raise PretrainedRunError(f"{role}: {workdir} is a {name!r} run; expected a run of "
                             f"method {' or '.join(map(repr, method_names))} ({train_hint}).")
  try:
    method = build_method(config, info)
  except ValueError as e:
    raise PretrainedRunError(f"{role}: the run in {workdir} cannot be rebuilt for this data "
                             f"({e}).") from e
  try:
    state, step = restore_train_state(workdir / "checkpoints", method, step)
  except LookupError as e:
    raise PretrainedRunError(f"{role}: {e}") from e
  except CheckpointDoesNotFit as e:
    raise PretrainedRunError(
        f"{role}: the checkpoint at step {e.step} of {workdir} does not fit the model its "
        f"config.json builds for this data ({e}).") from e
  if state is None:
    raise PretrainedRunError(f"{role}: {workdir / 'checkpoints'} holds no checkpoint; "
                             f"train it first ({train_hint}).")
  return PretrainedRun(config, method, state.ema_params, int(step))
