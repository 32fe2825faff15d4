"""Compile-time benchmark: state initialisation and train-step compilation of a config.

For each `config[|key=value,...]` it builds what the trainer builds (`Experiment.create`,
`exp.init_state` on the first batch, `step.make_train_step`), then times (a) the
initialisation (jit trace + compile + run, data-dependent for flows) and (b) lowering and
compiling the train step, both in wall-clock seconds and in this process's CPU seconds
(`time.process_time`, all threads: on a loaded machine the wall time mostly measures the
other jobs). Nothing is executed beyond the init. The persistent compilation cache is off.

    python experiments/bench/compile_bench.py --markdown_out=experiments/bench/compile_bench_cpu.md \
        --runs='configs/flows/glow_cifar10.py|model.scan_blocks=True' \
        --runs='configs/flows/glow_cifar10.py|model.scan_blocks=False'

Data: tfds datasets are replaced by random uint8 images of their shape (flow_bench.py's).
"""

from __future__ import annotations

import ast
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
_HERE = Path(__file__).resolve().parent
for p in (_HERE.parents[1], _HERE):
  if str(p) not in sys.path:
    sys.path.insert(0, str(p))

from absl import app, flags, logging  # noqa: E402

import flow_bench  # noqa: E402  (its synthetic data, config loader and flags)

_RUNS = flags.DEFINE_multi_string(
    "runs", ["configs/flows/glow_cifar10.py|model.scan_blocks=True",
             "configs/flows/glow_cifar10.py|model.scan_blocks=False"],
    "config path, then optionally '|' and comma-separated key=value overrides.")
_BATCH = flow_bench._BATCH  # --batch_size  pylint: disable=protected-access
_OUT = flow_bench._OUT  # --markdown_out  pylint: disable=protected-access


def _timed(fn):
  wall, cpu = time.perf_counter(), time.process_time()
  out = fn()
  return out, time.perf_counter() - wall, time.process_time() - cpu


def _bench(run: str, tmpdir: Path) -> dict[str, str]:
  import jax  # pylint: disable=g-import-not-at-top
  from gen_jax.core import sharding as sharding_lib  # pylint: disable=g-import-not-at-top
  from gen_jax.train import step as step_lib  # pylint: disable=g-import-not-at-top
  from gen_jax.train.experiment import Experiment  # pylint: disable=g-import-not-at-top

  path, _, overrides = run.partition("|")
  config = flow_bench._load_config(path)  # pylint: disable=protected-access
  shape = {"cifar10": (32, 32, 3), "mnist": (28, 28, 1)}.get(config.data.name)
  with config.unlocked():
    for item in filter(None, overrides.split(",")):
      key, value = item.split("=", 1)
      node = config
      *parents, leaf = key.split(".")
      for name in parents:
        node = node[name]
      node[leaf] = ast.literal_eval(value)
    config.batch_size = _BATCH.value
    if config.data.source == "tfds":
      npz = tmpdir / f"{config.data.name}.npz"
      flow_bench._synthetic_npz(  # pylint: disable=protected-access
          npz, shape, max(64, 2 * _BATCH.value))
      config.data.source, config.data.path, config.data.eval_path = "npz", str(npz), str(npz)
    config.data.num_threads = 1
  exp = Experiment.create(config, tmpdir / f"run{len(os.listdir(tmpdir))}")
  it = exp.train_iterator()
  batch = sharding_lib.make_global_batch(next(it), exp.mesh)
  state, init_wall, init_cpu = _timed(
      lambda: jax.block_until_ready(exp.init_state(batch)))
  params = sum(int(x.size) for x in jax.tree.leaves(state.params))
  names = step_lib.metric_names(exp.method, exp.abstract_state(), exp.abstract_batch(),
                                exp.loop_key)
  collection = step_lib.metrics_collection(names)
  train_step = step_lib.make_train_step(exp.method, collection, exp.mesh, config.ema.decay,
                                        config.ema.warmup)
  acc = step_lib.empty_like_collection(collection, exp.mesh)
  lowered, lower_wall, lower_cpu = _timed(
      lambda: train_step.lower(state, batch, exp.loop_key, acc))
  _, compile_wall, compile_cpu = _timed(lowered.compile)
  exp.checkpointer.close()
  return {
      "run": f"`{Path(path).stem}` {overrides}".strip(),
      "parameters": f"{params / 1e6:.2f}M",
      "init wall / CPU s": f"{init_wall:.1f} / {init_cpu:.1f}",
      "train step trace+lower wall / CPU s": f"{lower_wall:.1f} / {lower_cpu:.1f}",
      "train step compile wall / CPU s": f"{compile_wall:.1f} / {compile_cpu:.1f}",
      "total wall / CPU s": (f"{init_wall + lower_wall + compile_wall:.1f} / "
                             f"{init_cpu + lower_cpu + compile_cpu:.1f}"),
  }


def main(argv) -> None:
  del argv
  if not flags.FLAGS["verbosity"].present:
    logging.set_verbosity(logging.WARNING)
  load_before = os.getloadavg()
  import jax  # pylint: disable=g-import-not-at-top
  jax.config.update("jax_enable_compilation_cache", False)
  rows = []
  with tempfile.TemporaryDirectory(prefix="compile_bench_") as tmp:
    for run in _RUNS.value:
      rows.append(_bench(run, Path(tmp)))
      print(rows[-1], flush=True)
  load_after = os.getloadavg()
  keys = list(rows[0])
  lines = ["| " + " | ".join(keys) + " |", "|" + " --- |" * len(keys)]
  lines += ["| " + " | ".join(r[k] for k in keys) + " |" for r in rows]
  cmd = "python " + " ".join([os.path.relpath(sys.argv[0], os.getcwd())] + sys.argv[1:])
  footer = (f"\nCommand: `{cmd}`. jax {jax.__version__}; {jax.device_count()} "
            f"{jax.devices()[0].platform} device(s), host {os.cpu_count()} CPU cores, load "
            f"average {load_before[0]:.2f} before / {load_after[0]:.2f} after (other jobs "
            "share the CPU: compare the CPU seconds). Global batch "
            f"{_BATCH.value}.\n")
  table = "\n".join(lines) + "\n" + footer
  print(table, flush=True)
  if _OUT.value:
    Path(_OUT.value).write_text(table)


if __name__ == "__main__":
  app.run(main)
