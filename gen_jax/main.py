"""Command-line entry for every family.

    python -m gen_jax.main --config=configs/ddpm/cifar10.py --workdir=runs/ddpm_c10 \
        [--config.optim.learning_rate=1e-4 ...] [--mode=train|sample|eval|stats]

--mode=stats computes the reference feature statistics of a dataset split (see
`loop.run_stats`); --mode=eval adds the sample metrics listed in config.eval.metrics.

Multi-host: add --distributed (JAX detects TPU pods, SLURM, Open MPI, Kubernetes), or
give --coordinator_address, --num_processes and --process_id explicitly.
"""

from __future__ import annotations

import logging as pylogging
import os

from absl import app, flags, logging
from ml_collections import config_flags

from gen_jax import xla_flags

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Experiment config file (configs/<family>/<dataset>.py[:arg]).",
    lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Run directory: checkpoints, logs, samples.")
_MODE = flags.DEFINE_enum("mode", "train", ["train", "sample", "eval", "stats"], "What to do.")
_DISTRIBUTED = flags.DEFINE_bool(
    "distributed", False, "Call jax.distributed.initialize() (multi-host / multi-process).")
_COORDINATOR = flags.DEFINE_string("coordinator_address", None, "host:port of process 0.")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "Number of JAX processes.")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "Index of this JAX process.")

flags.mark_flags_as_required(["config", "workdir"])


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
  xla_flags.apply_defaults()  # before JAX starts its backend; GEN_JAX_XLA_CPU_DEFAULTS=0: off
  logging.get_absl_handler().addFilter(_QuietLibraries())
  _hide_accelerators_from_tensorflow()
  from gen_jax.train import sharding  # pylint: disable=g-import-not-at-top
  if _DISTRIBUTED.value or _COORDINATOR.value:
    sharding.initialize_distributed(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)
  from gen_jax.train import loop  # pylint: disable=g-import-not-at-top
  config = _CONFIG.value
  logging.info("Mode %s, workdir %s, config:\n%s", _MODE.value, _WORKDIR.value, config)
  if _MODE.value == "train":
    loop.train_and_evaluate(config, _WORKDIR.value)
  elif _MODE.value == "sample":
    loop.run_sample(config, _WORKDIR.value)
  elif _MODE.value == "stats":
    loop.run_stats(config, _WORKDIR.value)
  else:
    loop.run_eval(config, _WORKDIR.value)


if __name__ == "__main__":
  app.run(main)
