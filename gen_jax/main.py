"""Command-line entry for every family.

    python -m gen_jax.main --config=configs/ddpm/cifar10.py --workdir=runs/ddpm_c10 \
        [--import=my_project.losses ...] [--config.optim.learning_rate=1e-4 ...] \
        [--mode=train|sample|eval|stats]

--import (repeatable) imports a module of yours (a dotted name found on sys.path, or a .py
file) before the config is read, so whatever it registers (a loss, a sampler, a network,
a method, ...) can be chosen by name in the config or with --config.<field>=<name>.

--mode=stats computes the reference feature statistics of a dataset split (see
`loop.run_stats`); --mode=eval adds the sample metrics listed in config.eval.metrics.

A mistake in the command line or the config (an unknown field, a value outside a field's
allowed values, a dataset that is not prepared) is reported in one line, without a
traceback, and nothing is written.

SIGTERM or SIGINT during training finishes the current step, writes a checkpoint and exits
with status 75 (rerun the same command to resume); see gen_jax/train/preemption.py.

Multi-host: add --distributed (JAX detects TPU pods, SLURM, Open MPI, Kubernetes), or
give --coordinator_address, --num_processes and --process_id explicitly.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging as pylogging
import os
import pathlib
import re
import sys

from absl import app, flags, logging
from ml_collections import config_flags

from configs import common as config_common
from gen_jax import xla_flags
from gen_jax.core.registry import UnknownNameError

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Experiment config file (configs/<family>/<dataset>.py[:arg]).",
    lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Run directory: checkpoints, logs, samples.")
_MODE = flags.DEFINE_enum("mode", "train", ["train", "sample", "eval", "stats"], "What to do.")
_IMPORTS = flags.DEFINE_multi_string(
    "import", [], "A module of yours to import before the config is read (dotted name on "
    "sys.path, or a .py file), so that what it registers is selectable by name. Repeatable.")
_DISTRIBUTED = flags.DEFINE_bool(
    "distributed", False, "Call jax.distributed.initialize() (multi-host / multi-process).")
_COORDINATOR = flags.DEFINE_string("coordinator_address", None, "host:port of process 0.")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "Number of JAX processes.")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "Index of this JAX process.")

flags.mark_flags_as_required(["config", "workdir"])

# Registry-backed config fields, checked once the user's modules are imported:
# dotted path -> (module, attribute holding the allowed names).
_REGISTRY_FIELDS = {
    "method.name": ("gen_jax.methods", "METHODS"),
    "data.source": ("gen_jax.data", "SOURCES"),
    "optim.name": ("gen_jax.core.optim", "OPTIMIZERS"),
    "optim.schedule": ("gen_jax.core.optim", "LR_SCHEDULES"),
    "eval.feature_extractor": ("gen_jax.eval.features", "FEATURE_EXTRACTORS"),
    "eval.metrics": ("gen_jax.eval.metrics", "SAMPLE_METRICS"),
}


class UserError(Exception):
  """A mistake the user fixes on the command line; printed as one line, no traceback."""


def import_user_module(name: str):
  """Imports `name`: a dotted module name on sys.path, or the path of a .py file.

  Raises:
    UserError: the module itself is not found (an error inside it propagates as is).
  """
  if name.endswith(".py") or os.sep in name:
    path = pathlib.Path(name)
    if not path.is_file():
      raise UserError(f"--import={name}: no such file.")
    module_name = path.stem
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module
  try:
    return importlib.import_module(name)
  except ModuleNotFoundError as e:
    if e.name and (name == e.name or name.startswith(e.name + ".")):
      raise UserError(f"--import={name}: no module named {e.name!r} on sys.path (run from the "
                      "directory that contains it, or add it to PYTHONPATH).") from None
    raise


def _flag_values(argv: list[str], name: str) -> list[str]:
  """Values of --name=value / --name value in argv (before absl parses them)."""
  values = []
  for i, arg in enumerate(argv):
    if arg in (f"--{name}", f"-{name}") and i + 1 < len(argv):
      values.append(argv[i + 1])
    elif re.match(rf"^--?{name}=", arg):
      values.append(arg.split("=", 1)[1])
  return values


def _override_paths(argv: list[str]) -> list[str]:
  """Dotted paths of the --config.<path>[=value] overrides in argv."""
  paths = []
  for arg in argv:
    match = re.match(r"^--?(?:no)?config\.([^=]+)", arg)
    if match:
      paths.append(match.group(1))
  return paths


def _diagnose_overrides(argv: list[str]) -> None:
  """Raises UserError naming the first override path that is not a field of the config."""
  files = _flag_values(argv, "config")
  if not files:
    return
  config_file, _, arg = files[-1].partition(":")
  try:
    spec = importlib.util.spec_from_file_location("_gen_jax_config_check", config_file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = module.get_config(arg) if arg else module.get_config()
  except Exception:  # pylint: disable=broad-except
    return  # the config file itself fails: its own error is more useful
  for path in _override_paths(argv):
    try:
      config_common.check_field_path(config, path)
    except config_common.ConfigError as e:
      raise UserError(str(e)) from None


def validate_config(config) -> None:
  """Checks enumerated and registry-backed fields; raises ConfigError listing allowed values."""
  config_common.check_choices(config, config_common.CHOICES)  # before the slow imports
  config_common.check_choices(config, {
      path: tuple(getattr(importlib.import_module(module), attribute))
      for path, (module, attribute) in _REGISTRY_FIELDS.items()})


def parse_flags(argv: list[str]) -> list[str]:
  """absl's flag parsing with the user's modules imported first and one-line errors."""
  # Before anything (a user module, a config file) can start JAX's backend;
  # GEN_JAX_XLA_CPU_DEFAULTS=0 turns the defaults off.
  xla_flags.apply_defaults()
  try:
    for name in _flag_values(argv, "import"):
      import_user_module(name)
    try:
      rest = flags.FLAGS(argv)
    except Exception as error:  # pylint: disable=broad-except
      _diagnose_overrides(argv)
      if isinstance(error, flags.Error):  # one line, except a config file's own traceback
        raise UserError(str(error).strip()) from None
      raise
    config = _CONFIG.value
    try:
      config.keys()
    except IOError:
      path = _flag_values(argv, "config")[-1].split(":", 1)[0]
      raise UserError(f"cannot load --config={path}: no such file.") from None
    validate_config(config)
    for stage in (config.cascade.stages.values() if "cascade" in config else ()):
      validate_config(stage)  # a cascade config: each stage's own fields
  except (UserError, config_common.ConfigError) as e:
    sys.stderr.write(f"error: {e}\n")
    sys.exit(2)
  return rest


def _hide_accelerators_from_tensorflow() -> None:
  """TensorFlow (imported by clu and tfds) must not reserve GPU memory that JAX needs."""
  try:
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    tf.config.set_visible_devices([], "GPU")
  except Exception:  # pylint: disable=broad-except
    pass  # no TensorFlow, or it already initialised its devices


class _QuietLibraries(pylogging.Filter):
  """Drops orbax's per-save INFO chatter (dozens of lines per checkpoint); keeps warnings."""

  def filter(self, record: pylogging.LogRecord) -> bool:
    return record.levelno >= pylogging.WARNING or "/orbax/" not in record.pathname


def main(argv) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  logging.get_absl_handler().addFilter(_QuietLibraries())
  _hide_accelerators_from_tensorflow()
  from gen_jax.data import DatasetNotPreparedError  # pylint: disable=g-import-not-at-top
  from gen_jax.core.sample import UnsupportedSampleRequest  # pylint: disable=g-import-not-at-top
  from gen_jax.core import sharding  # pylint: disable=g-import-not-at-top
  if _DISTRIBUTED.value or _COORDINATOR.value:
    sharding.initialize_distributed(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)
  from gen_jax.train import loop  # pylint: disable=g-import-not-at-top
  from gen_jax.train import preemption  # pylint: disable=g-import-not-at-top
  config = _CONFIG.value
  logging.info("Mode %s, workdir %s, imports %s, config:\n%s", _MODE.value, _WORKDIR.value,
               _IMPORTS.value, config)
  run = {"train": loop.train_and_evaluate, "sample": loop.run_sample,
         "stats": loop.run_stats, "eval": loop.run_eval}[_MODE.value]
  if "cascade" in config:  # a base stage and super-resolution stages (train/cascade.py)
    from gen_jax.train import cascade  # pylint: disable=g-import-not-at-top
    run = cascade.MODES[_MODE.value]
  try:
    run(config, _WORKDIR.value)
  except preemption.Preempted as e:
    logging.warning("%s Exiting with status %d.", e, preemption.EXIT_CODE)
    sys.exit(preemption.EXIT_CODE)
  except DatasetNotPreparedError as e:  # the message says how to provide the data
    logging.flush()
    sys.stderr.write(f"error: {e}\n")
    sys.exit(1)
  except UnknownNameError as e:  # a name in the config (a loss, a sampler, ...) not registered
    logging.flush()
    sys.stderr.write(f"error: {e} (a name in the config, or --import the module that "
                     "registers it)\n")
    sys.exit(2)
  except UnsupportedSampleRequest as e:  # e.g. a temperature asked of a GAN
    logging.flush()
    sys.stderr.write(f"error: {e}\n")
    sys.exit(2)


if __name__ == "__main__":
  app.run(main, flags_parser=parse_flags)
