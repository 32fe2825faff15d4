"""Benchmark of flow configs: training and bits/dim-evaluation images/s, compile times, memory.

For each config it builds what the trainer builds (`Experiment.create`, `exp.init_state` on
the first batch, `step.make_train_step`, `evaluation.make_eval_step`) on every visible
device, then times the train step and the bits/dim evaluation step:

    python experiments/bench/flow_bench.py \
        --configs=configs/flows/glow_cifar10.py,configs/flows/realnvp_cifar10.py \
        --batch_size=8 --steps=3 --warmup=1 --markdown_out=experiments/bench/flow_bench_cpu.md

Data: a config whose tfds dataset is not prepared on the machine (always, offline) reads
uniform random uint8 images of its shape from a temporary .npz (speed does not depend on
pixel values; the bits/dim printed are those of noise, ~8). Each call is lowered and
compiled explicitly, so compile time is apart from execution; every timed call ends with
`jax.block_until_ready`; batches are placed on the devices before timing. The persistent
compilation cache is off. Memory: the device allocator's peak on GPU/TPU; on CPU the
process peak RSS (cumulative over the configs, includes Python and the compiler) and XLA's
buffer sizes for the compiled train step.
"""

from __future__ import annotations

import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
_REPO = Path(__file__).resolve().parents[2]
if str(_REPO) not in sys.path:
  sys.path.insert(0, str(_REPO))

from absl import app, flags, logging  # noqa: E402

_CONFIGS = flags.DEFINE_list("configs", ["configs/flows/glow_cifar10.py",
                                         "configs/flows/realnvp_cifar10.py"], "Config files.")
_BATCH = flags.DEFINE_integer("batch_size", 8, "Global batch size for training and evaluation.")
_STEPS = flags.DEFINE_integer("steps", 3, "Timed train / eval steps.")
_WARMUP = flags.DEFINE_integer("warmup", 1, "Untimed steps first.")
_OUT = flags.DEFINE_string("markdown_out", None, "Also write the table to this file.")
_DEPTH = flags.DEFINE_integer(
    "depth", None, "Time Glow with this many steps per level instead of the config's (compile "
    "time grows with depth: 3 x 32 unrolled steps take many minutes to compile on a CPU); the "
    "table then also gives the step times scaled linearly to the config's depth.")


def _synthetic_npz(path: Path, shape, n: int = 64) -> None:
  import numpy as np  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  np.savez(path, images=rng.integers(0, 256, size=(n, *shape), dtype=np.uint8),
           labels=np.zeros((n,), np.int32))


def _peak_memory(devices) -> str:
  if devices[0].platform != "cpu":
    peaks = [(d.memory_stats() or {}).get("peak_bytes_in_use", 0) for d in devices]
    return f"{max(peaks) / 2**30:.2f} GiB (device peak)"
  rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
  return f"{rss / 2**30:.2f} GiB (process peak RSS so far)"


def _load_config(path: str):
  import importlib.util  # pylint: disable=g-import-not-at-top
  spec = importlib.util.spec_from_file_location("cfg", _REPO / path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(None)


def _bench(path: str, tmpdir: Path) -> dict[str, str]:
  import jax  # pylint: disable=g-import-not-at-top
  from gen_jax.core import sharding as sharding_lib  # pylint: disable=g-import-not-at-top
  from gen_jax.train import evaluation, step as step_lib  # pylint: disable=g-import-not-at-top
  from gen_jax.train.experiment import Experiment  # pylint: disable=g-import-not-at-top

  config = _load_config(path)
  shape = {"cifar10": (32, 32, 3), "mnist": (28, 28, 1), "fashion_mnist": (28, 28, 1)}.get(
      config.data.name)
  note = f"{config.data.source} {config.data.name}".strip()
  depth_scale = 1.0
  with config.unlocked():
    if _DEPTH.value and "depth" in config.model and config.model.depth != _DEPTH.value:
      depth_scale = config.model.depth / _DEPTH.value
      note += f"; model.depth {_DEPTH.value} timed instead of {config.model.depth}"
      config.model.depth = _DEPTH.value
    config.batch_size = _BATCH.value
    if config.data.source == "tfds":
      npz = tmpdir / f"{config.data.name}.npz"
      _synthetic_npz(npz, shape, max(64, 2 * _BATCH.value))
      config.data.source, config.data.path, config.data.eval_path = "npz", str(npz), str(npz)
      note = f"synthetic uint8 {shape} in place of tfds {config.data.name}"
    config.data.num_threads = 1
  exp = Experiment.create(config, tmpdir / Path(path).stem)
  devices = list(exp.mesh.devices.flat)
  it = exp.train_iterator()
  batches = [sharding_lib.make_global_batch(next(it), exp.mesh)
             for _ in range(1 + _WARMUP.value + _STEPS.value)]
  t0 = time.perf_counter()
  state = jax.block_until_ready(exp.init_state(batches[0]))
  init_s = time.perf_counter() - t0
  params = sum(int(x.size) for x in jax.tree.leaves(state.params))

  names = step_lib.metric_names(exp.method, exp.abstract_state(), exp.abstract_batch(), exp.loop_key)
  collection = step_lib.metrics_collection(names)
  train_step = step_lib.make_train_step(exp.method, collection, exp.mesh, config.ema.decay,
                                        config.ema.warmup)
  acc = step_lib.empty_like_collection(collection, exp.mesh)
  t0 = time.perf_counter()
  compiled = train_step.lower(state, batches[1], exp.loop_key, acc).compile()
  compile_s = time.perf_counter() - t0
  try:
    m = compiled.memory_analysis()
    buffers = (f"args {m.argument_size_in_bytes / 2**20:.0f} MiB, temps "
               f"{m.temp_size_in_bytes / 2**20:.0f} MiB")
  except Exception:  # pylint: disable=broad-except
    buffers = "n/a"
  times = []
  for i, batch in enumerate(batches[1:]):
    t0 = time.perf_counter()
    state, acc, metrics, finite = jax.block_until_ready(compiled(state, batch, exp.loop_key, acc))
    if i >= _WARMUP.value:
      times.append(time.perf_counter() - t0)
  step_s = statistics.median(times)
  train_bpd = float(metrics["bpd"])

  eval_step = evaluation.make_eval_step(exp)
  eval_batch = dict(batches[1])
  eval_batch["mask"] = jax.numpy.ones((_BATCH.value,), bool)
  eval_batch = sharding_lib.make_global_batch(jax.device_get(eval_batch), exp.mesh)
  t0 = time.perf_counter()
  eval_compiled = eval_step.lower(state, eval_batch, exp.eval_key).compile()
  eval_compile_s = time.perf_counter() - t0
  etimes = []
  for i in range(_WARMUP.value + _STEPS.value):
    t0 = time.perf_counter()
    out = jax.block_until_ready(eval_compiled(state, eval_batch, jax.random.fold_in(exp.eval_key, i)))
    if i >= _WARMUP.value:
      etimes.append(time.perf_counter() - t0)
  eval_s = statistics.median(etimes)
  exp.checkpointer.close()
  mdl = dict(config.model)
  scaled = {}
  if depth_scale != 1.0:
    scaled = {
        f"training images/s extrapolated to depth {round(depth_scale * config.model.depth)} "
        "(step time x depth ratio)": f"{_BATCH.value / (step_s * depth_scale):.2f}",
        "bpd-evaluation images/s extrapolated likewise":
            f"{_BATCH.value / (eval_s * depth_scale):.2f}",
    }
  return {
      "architecture": ", ".join(f"{k}={v}" for k, v in mdl.items()),
      "data": note,
      "devices": f"{len(devices)} x {devices[0].device_kind} ({devices[0].platform})",
      "parameters": f"{params / 1e6:.2f}M",
      "global batch": str(_BATCH.value),
      "init (data-dependent, jit compile + run)": f"{init_s:.1f} s",
      "train step compile": f"{compile_s:.1f} s",
      f"train step (median of {len(times)})": f"{step_s:.2f} s",
      "training images/s": f"{_BATCH.value / step_s:.2f}",
      "bpd-eval step compile": f"{eval_compile_s:.1f} s",
      f"bpd-eval step (median of {len(etimes)})": f"{eval_s:.2f} s",
      "bpd-evaluation images/s": f"{_BATCH.value / eval_s:.2f}",
      **scaled,
      "train step XLA buffers": buffers,
      "peak memory": _peak_memory(devices),
      "sanity (train bpd of the last step; eval bpd)":
          f"{train_bpd:.3f}; {float(out['bpd']) / float(out['num_examples']):.3f}",
  }


def main(argv) -> None:
  del argv
  if not flags.FLAGS["verbosity"].present:
    logging.set_verbosity(logging.WARNING)
  load_before = os.getloadavg()
  import jax  # pylint: disable=g-import-not-at-top
  jax.config.update("jax_enable_compilation_cache", False)
  results = {}
  with tempfile.TemporaryDirectory(prefix="flow_bench_") as tmp:
    for path in _CONFIGS.value:
      results[path] = _bench(path, Path(tmp))
  load_after = os.getloadavg()
  keys = list(dict.fromkeys(k for r in results.values() for k in r))
  lines = ["| quantity | " + " | ".join(f"`{p}`" for p in results) + " |",
           "| --- |" + " --- |" * len(results)]
  for k in keys:
    lines.append(f"| {k} | " + " | ".join(r.get(k, "-").replace("|", "/") for r in results.values()) + " |")
  cmd = "python " + " ".join([os.path.relpath(sys.argv[0], os.getcwd())] + sys.argv[1:])
  footer = (f"\nCommand: `{cmd}`. jax {jax.__version__}; host {os.cpu_count()} CPU cores, load "
            f"average {load_before[0]:.2f} before / {load_after[0]:.2f} after (other jobs share "
            "the CPU). Paper-size models at a small batch: a few steps timed, not a full run.\n")
  table = "\n".join(lines) + "\n" + footer
  print(table, flush=True)
  if _OUT.value:
    Path(_OUT.value).write_text(table)


if __name__ == "__main__":
  app.run(main)
