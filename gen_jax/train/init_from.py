"""Starting a new run from another run's parameters (fine-tuning): `config.init_from`.

    --config.init_from=runs/ddpm_digits          # its newest checkpoint
    --config.init_from=runs/ddpm_digits:750      # checkpoint 750
    --config.init_from_weights=ema|params        # its EMA (default) or raw parameters
    --config.init_from_partial=True              # allow some parameters not to be loaded

Only a run that starts from step 0 is initialised this way; a run that resumes from its own
checkpoint ignores `init_from`. Parameters are matched by their path ("unet/down_0/conv/
kernel"); every one that is missing in the source or has another shape is listed, and the
run is refused unless `init_from_partial` is set, in which case those keep their fresh
initialisation. The loaded weights become both the parameters and the EMA; the optimiser
state and the step start afresh. Non-trainable state (batch statistics, spectral-norm
vectors, a flow's data-dependent initialisation) is taken from the source the same way.
"""

from __future__ import annotations

import dataclasses
import pathlib
from typing import Any

import jax
import numpy as np
from absl import logging

from gen_jax.train import checkpoint as checkpoint_lib
from gen_jax.core.state import TrainState

WEIGHTS = ("ema", "params")


class InitFromError(ValueError):
  """The source of config.init_from does not exist or does not fit this model."""


def parse_spec(spec: str) -> tuple[pathlib.Path, int | None]:
  """"<workdir>[:<step>]" -> (workdir, step or None for the newest checkpoint)."""
  head, sep, tail = spec.rpartition(":")
  if sep and tail.isdigit():
    return pathlib.Path(head).expanduser(), int(tail)
  return pathlib.Path(spec).expanduser(), None


def read_source(spec: str, weights: str) -> tuple[dict, dict, int, pathlib.Path]:
  """(params, model_state, step, checkpoint directory) of `spec` as NumPy trees."""
  if weights not in WEIGHTS:
    raise InitFromError(f"init_from_weights must be one of {WEIGHTS}, not {weights!r}.")
  workdir, step = parse_spec(spec)
  directory = workdir / "checkpoints"
  if not directory.is_dir():
    raise InitFromError(f"config.init_from={spec!r}: {directory} does not exist; give the "
                        "--workdir of a trained run, optionally with :<step>.")
  checkpointer = checkpoint_lib.Checkpointer(directory, asynchronous=False)
  try:
    steps = checkpointer.all_steps()
    if not steps:
      raise InitFromError(f"config.init_from={spec!r}: {directory} holds no checkpoint.")
    if step is None:
      step = steps[-1]
    elif step not in steps:
      raise InitFromError(f"config.init_from={spec!r}: there is no checkpoint {step} in "
                          f"{directory}; it has steps {steps}.")
    saved = checkpointer.restore_numpy(step)
  finally:
    checkpointer.close()
  key = "ema_params" if weights == "ema" else "params"
  return saved[key], saved.get("model_state") or {}, step, directory


@dataclasses.dataclass
class MergeReport:
  """Which arrays of the new model came from the source, and which could not."""
  loaded: list[str]
  missing: list[str]  # in the new model, not in the source
  mismatched: list[str]  # in both with another shape ("path: source S, model M")
  unused: list[str]  # in the source, not in the new model
  cast: list[str]  # loaded with a dtype conversion

  @property
  def complete(self) -> bool:
    return not (self.missing or self.mismatched)


def merge(target: Any, source: Any, prefix: str = "") -> tuple[Any, MergeReport]:
  """`target` with every array replaced by the source array of the same path and shape.

  Args:
    target: the fresh model's tree (arrays, any nesting of dicts).
    source: the other run's tree (NumPy arrays, nested dicts).
    prefix: prepended to the reported paths ("params/", "model_state/").

  Returns:
    (merged tree of NumPy arrays with target's structure and dtypes, report).
  """
  flat_source = {checkpoint_lib._path_str(p): x  # pylint: disable=protected-access
                 for p, x in jax.tree_util.tree_flatten_with_path(source)[0]}
  report = MergeReport([], [], [], [], [])
  used = set()

  def pick(path, x):
    name = checkpoint_lib._path_str(path)  # pylint: disable=protected-access
    label = prefix + name
    if name not in flat_source:
      report.missing.append(label)
      return np.asarray(x)
    used.add(name)
    y = np.asarray(flat_source[name])
    if y.shape != tuple(x.shape):
      report.mismatched.append(f"{label}: source {list(y.shape)}, model {list(x.shape)}")
      return np.asarray(x)
    if y.dtype != x.dtype:
      report.cast.append(f"{label}: {y.dtype} -> {x.dtype}")
    report.loaded.append(label)
    return y.astype(x.dtype)

  merged = jax.tree_util.tree_map_with_path(pick, jax.device_get(target))
  report.unused = sorted(prefix + k for k in set(flat_source) - used)
  return merged, report


def apply(state: TrainState, *, spec: str, weights: str = "ema", partial: bool = False,
          sharding: Any = None) -> TrainState:
  """A fresh `state` whose parameters (and EMA, and model_state) come from run `spec`.

  Raises:
    InitFromError: the source is missing, or some parameters are missing or of another
      shape and `partial` is False (every such parameter is listed).
  """
  source_params, source_model_state, step, directory = read_source(spec, weights)
  params, report = merge(state.params, source_params, "params/")
  model_state, state_report = merge(state.model_state, source_model_state, "model_state/")
  for field in dataclasses.fields(MergeReport):
    getattr(report, field.name).extend(getattr(state_report, field.name))
  problems = ([f"  missing in the source: {p}" for p in report.missing]
              + [f"  other shape: {p}" for p in report.mismatched])
  what = f"the {weights} weights of step {step} in {directory}"
  if problems and not partial:
    raise InitFromError(
        f"config.init_from: {len(problems)} arrays of this model cannot be loaded from "
        f"{what} ({len(report.loaded)} can):\n" + "\n".join(problems) +
        "\nSet --config.init_from_partial=True to load the matching ones and initialise "
        "these afresh, or make the model config match the source run's.")
  for line in problems:
    logging.warning("init_from: not loaded (fresh initialisation instead):%s", line[1:])
  for line in report.cast:
    logging.info("init_from: converted %s", line)
  if report.unused:
    logging.info("init_from: %d source arrays are not used: %s", len(report.unused),
                 ", ".join(report.unused[:20]))
  logging.info("init_from: loaded %d arrays from %s.", len(report.loaded), what)

  def place(tree):
    if sharding is None:
      return jax.tree.map(jax.numpy.asarray, tree)
    return jax.tree.map(
        lambda x: jax.make_array_from_callback(x.shape, sharding, lambda index: x[index]), tree)

  params = place(params)
  return state.replace(params=params, ema_params=jax.tree.map(lambda x: x.copy(), params),
                       model_state=place(model_state))
