"""Latent diffusion vs pixel-space DDPM at the same image size: train step, memory, sampling.

For each dataset it builds, as the trainer does (`build_method`, `step.make_train_step`
with EMA and the loop's metrics), the pixel-space DDPM of configs/ddpm/<dataset>.py and
the latent model of configs/latent_diffusion/<dataset>.py over the first stage of
configs/latent_diffusion/autoencoder_<dataset>.py, and prints a markdown table:

    python experiments/bench/latent_bench.py                    # mnist, batch 32
    python experiments/bench/latent_bench.py --datasets=mnist,cifar10 --batch_size=8

The first stage is written, not trained (its initial state saved as a checkpoint of a run
with config.json and a recorded latent std, in a temporary directory): speed and memory do
not depend on its weights. Batches are synthetic uniform images of the dataset's shape.

Per model: parameters (trainable; the latent model's frozen first stage apart), train-step
compile time, median train-step time and images/s (the latent step includes encoding the
batch with the first stage), XLA's memory analysis of the compiled train step (arguments
+ temporaries: what the step needs on a device besides the program), and sampling: median
seconds for --sample_batch images with DDIM of --ddim_steps steps (the latent model's
includes decoding), with its compiled memory.

Flags: --datasets, --batch_size, --steps (timed), --warmup, --sample_batch, --ddim_steps,
--sample_repeats, --markdown_out, --smoke (the ':smoke' configs: checks the script quickly). The persistent compilation cache is off.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
_REPO = Path(__file__).resolve().parents[2]
if str(_REPO) not in sys.path:
  sys.path.insert(0, str(_REPO))

from absl import app, flags  # noqa: E402

_DATASETS = flags.DEFINE_string("datasets", "mnist", "Comma-separated: mnist, cifar10.")
_BATCH = flags.DEFINE_integer("batch_size", 32, "Global batch of one train step.")
_STEPS = flags.DEFINE_integer("steps", 5, "Timed train steps.")
_WARMUP = flags.DEFINE_integer("warmup", 1, "Untimed train steps / sampling calls first.")
_SAMPLE_BATCH = flags.DEFINE_integer("sample_batch", 32, "Images per sampling call.")
_DDIM_STEPS = flags.DEFINE_integer("ddim_steps", 50, "DDIM steps (network evaluations).")
_SAMPLE_REPEATS = flags.DEFINE_integer("sample_repeats", 2, "Timed sampling calls.")
_MARKDOWN_OUT = flags.DEFINE_string("markdown_out", None, "Also write the table to this file.")
_SMOKE = flags.DEFINE_bool("smoke", False, "The configs' ':smoke' variants (a quick check).")

_SHAPES = {"mnist": (28, 28, 1), "cifar10": (32, 32, 3)}


def _timed(fn, repeats: int) -> list[float]:
  import jax  # pylint: disable=g-import-not-at-top
  out = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(fn())
    out.append(time.perf_counter() - start)
  return out


def _memory(compiled) -> float:
  m = compiled.memory_analysis()
  return float(m.argument_size_in_bytes + m.temp_size_in_bytes)


def _write_first_stage(dataset: str, workdir: Path) -> None:
  """An initialised first-stage run: checkpoint 1, config.json, eval/1.json (std 1)."""
  import jax  # pylint: disable=g-import-not-at-top
  from gen_jax.data import DatasetInfo  # pylint: disable=g-import-not-at-top
  from gen_jax.methods.vae import build_vae  # pylint: disable=g-import-not-at-top
  from gen_jax.train.checkpoint import Checkpointer  # pylint: disable=g-import-not-at-top
  from tests.train.helpers import load_config  # pylint: disable=g-import-not-at-top

  c = load_config(f"latent_diffusion/autoencoder_{dataset}.py", "smoke" if _SMOKE.value else None)
  method = build_vae(c, DatasetInfo(_SHAPES[dataset], 0, 0))
  state = jax.jit(method.init)(jax.random.key(0), None)
  config = json.loads(c.to_json_best_effort())
  checkpointer = Checkpointer(workdir / "checkpoints", asynchronous=False, config=config)
  checkpointer.save(1, state)
  checkpointer.wait()
  checkpointer.close()
  (workdir / "config.json").write_text(json.dumps(config))
  (workdir / "eval").mkdir()
  (workdir / "eval" / "1.json").write_text(json.dumps({"results": {"latent_std": 1.0}}))


def bench(relpath: str, dataset: str, first_stage: Path | None) -> dict:
  import jax  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  from gen_jax.core import sharding as sharding_lib  # pylint: disable=g-import-not-at-top
  from gen_jax.data import DatasetInfo  # pylint: disable=g-import-not-at-top
  from gen_jax.methods.base import build_method  # pylint: disable=g-import-not-at-top
  from gen_jax.train import step as step_lib  # pylint: disable=g-import-not-at-top
  from tests.train.helpers import load_config  # pylint: disable=g-import-not-at-top

  c = load_config(relpath, "smoke" if _SMOKE.value else None)
  c.batch_size = _BATCH.value
  c.sample.ddim.num_steps = _DDIM_STEPS.value
  if first_stage is not None:
    c.latent.autoencoder_workdir = str(first_stage)
  shape = _SHAPES[dataset]
  method = build_method(c, DatasetInfo(shape, 10, 50_000))
  mesh = sharding_lib.make_mesh(0)
  rng = np.random.default_rng(0)
  batch = sharding_lib.make_global_batch(
      {"image": rng.uniform(-1, 1, (c.batch_size, *shape)).astype(np.float32),
       "label": rng.integers(0, 10, (c.batch_size,)).astype(np.int32)}, mesh)
  rep = sharding_lib.replicated(mesh)
  state = jax.jit(method.init, out_shardings=rep)(jax.random.key(0), batch)
  params = sum(x.size for x in jax.tree.leaves(state.params))
  frozen = sum(x.size for x in jax.tree.leaves(state.model_state))

  names = step_lib.metric_names(method, state, batch, jax.random.key(1))
  collection = step_lib.metrics_collection(names)
  train_step = step_lib.make_train_step(method, collection, mesh, c.ema.decay, c.ema.warmup)
  acc = step_lib.empty_like_collection(collection, mesh)
  start = time.perf_counter()
  compiled = train_step.lower(state, batch, jax.random.key(1), acc).compile()
  compile_s = time.perf_counter() - start
  train_mem = _memory(compiled)
  times = []
  for i in range(_WARMUP.value + _STEPS.value):
    t0 = time.perf_counter()
    state, acc, metrics, _ = compiled(state, batch, jax.random.key(1), acc)
    jax.block_until_ready(metrics)
    if i >= _WARMUP.value:
      times.append(time.perf_counter() - t0)
  step_s = statistics.median(times)

  n = _SAMPLE_BATCH.value
  sample = jax.jit(lambda s, k: method.sample(s, k, n).samples)
  start = time.perf_counter()
  sample_compiled = sample.lower(state, jax.random.key(2)).compile()
  sample_compile_s = time.perf_counter() - start
  sample_mem = _memory(sample_compiled)
  _timed(lambda: sample_compiled(state, jax.random.key(2)), _WARMUP.value)
  sample_s = statistics.median(_timed(lambda: sample_compiled(state, jax.random.key(2)),
                                      _SAMPLE_REPEATS.value))
  example = tuple(getattr(method, "latent_shape", shape))
  return dict(config=relpath, example=example, params=params, frozen=frozen,
              compile_s=compile_s, step_ms=1e3 * step_s, ips=c.batch_size / step_s,
              train_mem=train_mem, sample_compile_s=sample_compile_s, sample_s=sample_s,
              sample_ips=n / sample_s, sample_mem=sample_mem)


def main(argv):
  del argv
  import jax  # pylint: disable=g-import-not-at-top
  jax.config.update("jax_enable_compilation_cache", False)
  load_before = os.getloadavg()
  rows = []
  for dataset in [d.strip() for d in _DATASETS.value.split(",") if d.strip()]:
    rows.append(bench(f"ddpm/{dataset}.py", dataset, None))
    with tempfile.TemporaryDirectory() as tmp:
      _write_first_stage(dataset, Path(tmp) / "first_stage")
      rows.append(bench(f"latent_diffusion/{dataset}.py", dataset, Path(tmp) / "first_stage"))
  load = os.getloadavg()
  dev = jax.devices()
  mib = lambda b: f"{b / 2**20:.0f}"
  lines = [
      f"devices: {len(dev)} x {dev[0].device_kind} ({jax.default_backend()}); jax "
      f"{jax.__version__}; train batch {_BATCH.value}, timed steps {_STEPS.value} after "
      f"{_WARMUP.value} warm-up; sampling {_SAMPLE_BATCH.value} images with DDIM-"
      f"{_DDIM_STEPS.value}, {_SAMPLE_REPEATS.value} timed calls",
      "",
      "| config | example shape | params (frozen first stage) | train compile s | step ms "
      "(median) | train images/s | train step MiB | sample compile s | sample s | "
      "sample images/s | sample MiB |",
      "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
  for r in rows:
    frozen = f" (+{r['frozen'] / 1e6:.2f}M)" if r["frozen"] else ""
    lines.append(
        f"| {r['config']} | {'x'.join(map(str, r['example']))} | "
        f"{r['params'] / 1e6:.2f}M{frozen} | {r['compile_s']:.1f} | {r['step_ms']:.0f} | "
        f"{r['ips']:.1f} | {mib(r['train_mem'])} | {r['sample_compile_s']:.1f} | "
        f"{r['sample_s']:.2f} | {r['sample_ips']:.1f} | {mib(r['sample_mem'])} |")
  lines += ["", "MiB: XLA memory analysis of the compiled program, arguments + temporaries.",
            f"load average (1, 5, 15 min) before: {load_before[0]:.2f}, {load_before[1]:.2f}, "
            f"{load_before[2]:.2f}; after: {load[0]:.2f}, {load[1]:.2f}, {load[2]:.2f}"]
  table = "\n".join(lines)
  print(table)
  if _MARKDOWN_OUT.value:
    Path(_MARKDOWN_OUT.value).write_text(table + "\n")


if __name__ == "__main__":
  app.run(main)
