"""Benchmark of a DDPM config: train-step compile time and speed, memory, DDIM sampling speed.

Builds the same pieces the trainer uses (`Experiment.create`, `exp.init_state` on a real
batch from the config's grain pipeline, `step.make_train_step` with the loop's metrics
collection) on every visible device, then prints a markdown table:

    python experiments/bench/ddpm_bench.py --config=configs/ddpm/digits.py
    python experiments/bench/ddpm_bench.py --config=configs/ddpm/cifar10.py \
        --batch_size=8 --steps=3 --warmup=1 --sample_batch=8 --ddim_steps=5

Flags: --steps (timed train steps), --warmup (untimed steps / sampling calls first),
--batch_size (overrides config.batch_size), --sample_batch, --ddim_steps,
--sample_repeats (timed sampling calls), --data=auto|real|synthetic, --markdown_out (also
write the table to a file), and any --config.x=y override.

Timing: the train step and the sampler are lowered and compiled explicitly
(`jitted.lower(...).compile()`), so compile time is measured apart from execution; each
timed call ends with `jax.block_until_ready`. Input batches are fetched from the pipeline
and put on the devices before the timed steps, so step times exclude the input pipeline
(its host time per batch is reported separately). The persistent compilation cache is
turned off so that compile times are real.

Data: with --data=auto, a tfds dataset that is not prepared offline is replaced by
synthetic uniform random uint8 images of the dataset's shape (from the tfds builder's
feature spec, which needs no download) written to a temporary .npz and read through
`data.source=npz`; the table says so. Speed does not depend on pixel values.
"""

from __future__ import annotations

import os
import re
import resource
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
_REPO = Path(__file__).resolve().parents[2]
if str(_REPO) not in sys.path:
  sys.path.insert(0, str(_REPO))  # config files import `configs.*`

from absl import app, flags, logging  # noqa: E402
from ml_collections import config_flags  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Experiment config file (configs/ddpm/<dataset>.py[:arg]).", lock_config=True)
_STEPS = flags.DEFINE_integer("steps", 10, "Timed train steps.")
_WARMUP = flags.DEFINE_integer("warmup", 2, "Untimed train steps (and sampling calls) first.")
_SAMPLE_BATCH = flags.DEFINE_integer("sample_batch", 64, "Images per DDIM sampling call.")
_DDIM_STEPS = flags.DEFINE_integer("ddim_steps", 50, "DDIM steps (network evaluations).")
_SAMPLE_REPEATS = flags.DEFINE_integer("sample_repeats", 3, "Timed DDIM sampling calls.")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", None, "Overrides config.batch_size (global).")
_DATA = flags.DEFINE_enum(
    "data", "auto", ["auto", "real", "synthetic"],
    "auto: the config's data, or synthetic data when a tfds dataset is not prepared; "
    "real: fail when it is missing; synthetic: always random uint8 of the data's shape.")
_MARKDOWN_OUT = flags.DEFINE_string("markdown_out", None, "Also write the table to this file.")
_DUMP_HLO = flags.DEFINE_string("dump_hlo", None, "Write the compiled train step's HLO text here.")

flags.mark_flags_as_required(["config"])

# Used only when tensorflow-datasets cannot describe the dataset: (H, W, C), classes.
_KNOWN_SHAPES = {"cifar10": ((32, 32, 3), 10), "mnist": ((28, 28, 1), 10),
                 "fashion_mnist": ((28, 28, 1), 10)}


def _hide_accelerators_from_tensorflow() -> None:
  """As gen_jax.main: TensorFlow (imported by clu and tfds) must not take GPU memory."""
  try:
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    tf.config.set_visible_devices([], "GPU")
  except Exception:  # pylint: disable=broad-except
    pass


def _tfds_shape(name: str) -> tuple[tuple[int | None, ...], int]:
  """(image shape, num_classes) from the tfds feature spec (no download), or the table."""
  try:
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
    features = tfds.builder(name).info.features
    shape = tuple(features["image"].shape)
    classes = int(getattr(features["label"], "num_classes", 0) or 0) if "label" in features else 0
    return shape, classes
  except Exception as error:  # pylint: disable=broad-except
    base = name.split(":")[0].split("/")[0]
    if base in _KNOWN_SHAPES:
      return _KNOWN_SHAPES[base]
    raise ValueError(f"Cannot tell the image shape of tfds dataset {name!r} offline "
                     f"({error}); use --data=real with prepared data.") from error


def _write_synthetic_npz(path: Path, shape, num_classes: int, num_examples: int,
                         seed: int = 0) -> None:
  import numpy as np  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(seed)
  images = rng.integers(0, 256, size=(num_examples, *shape), dtype=np.uint8)
  arrays = {"images": images}
  if num_classes:
    arrays["labels"] = rng.permutation(np.arange(num_examples) % num_classes).astype(np.int32)
  np.savez(path, **arrays)


def _prepare_data(config, tmpdir: Path) -> str:
  """Points config.data at synthetic data when asked or needed; returns a description."""
  from gen_jax import data as data_lib  # pylint: disable=g-import-not-at-top
  d = config.data
  described = f"{d.source}" + (f" '{d.name}'" if d.source == "tfds" else "")
  reason = None
  if _DATA.value == "synthetic":
    reason = "--data=synthetic"
  else:
    try:
      _, info = data_lib.build_source(d, "train")
      return f"real: {described}, train split, {info.num_examples} examples"
    except data_lib.DatasetNotPreparedError as error:
      if _DATA.value == "real":
        raise
      reason = f"tfds '{d.name}' is not prepared on this machine (offline)"
      logging.warning("Using synthetic data: %s", str(error).splitlines()[0])
  if d.source == "tfds":
    shape, classes = _tfds_shape(d.name)
  else:
    _, info = data_lib.build_source(d, "train")
    shape, classes = info.image_shape, info.num_classes
  if d.image_size is not None:
    shape = (d.image_size, d.image_size, shape[-1])
  if any(s is None for s in shape):
    raise ValueError(f"{described} has images of variable size {shape}; set "
                     "--config.data.image_size to benchmark it with synthetic data.")
  n = max(256, 2 * config.batch_size)
  path = tmpdir / "synthetic.npz"
  _write_synthetic_npz(path, shape, classes, n, seed=config.seed)
  with config.unlocked():
    d.source, d.path, d.eval_path = "npz", str(path), str(path)
  return (f"**synthetic** (uniform random uint8, {n} images of shape {tuple(shape)}, "
          f"{classes} classes) in place of {described}: {reason}")


def _median_min(values: list[float]) -> tuple[float, float]:
  return statistics.median(values), min(values)


def _fmt_s(seconds: float) -> str:
  return f"{seconds * 1e3:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def _fmt_bytes(n: float) -> str:
  return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB"


def _peak_memory(devices) -> tuple[str, float | None]:
  """(what was measured, bytes): device peak on accelerators, else the process peak RSS."""
  if devices[0].platform != "cpu":
    stats = [dev.memory_stats() or {} for dev in devices]
    peaks = [s["peak_bytes_in_use"] for s in stats if "peak_bytes_in_use" in s]
    if peaks:
      return "device peak_bytes_in_use (max over devices)", float(max(peaks))
  # ru_maxrss is in KiB on Linux (bytes on macOS).
  rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
  return "process peak RSS (getrusage; includes Python, TF/tfds imports, compiler)", float(
      rss if sys.platform == "darwin" else rss * 1024)


def _cost_flops(compiled) -> float | None:
  try:
    cost = compiled.cost_analysis()
    if isinstance(cost, (list, tuple)):
      cost = cost[0]
    flops = float(cost.get("flops", 0.0))
    return flops if flops > 0 else None
  except Exception:  # pylint: disable=broad-except
    return None


def _memory_analysis(compiled) -> str | None:
  try:
    m = compiled.memory_analysis()
    return (f"arguments {_fmt_bytes(m.argument_size_in_bytes)}, outputs "
            f"{_fmt_bytes(m.output_size_in_bytes)}, temporaries {_fmt_bytes(m.temp_size_in_bytes)}, "
            f"aliased (donated) {_fmt_bytes(m.alias_size_in_bytes)}")
  except Exception:  # pylint: disable=broad-except
    return None


def _command_line() -> str:
  env = [f"{k}={shlex.quote(os.environ[k])}" for k in ("XLA_FLAGS", "JAX_PLATFORMS",
                                                        "CUDA_VISIBLE_DEVICES")
         if os.environ.get(k)]
  argv = [os.path.relpath(sys.argv[0], os.getcwd())] + sys.argv[1:]
  return " ".join(env + ["python", shlex.join(argv)])


def main(argv) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  command = _command_line()
  if not flags.FLAGS["verbosity"].present:
    logging.set_verbosity(logging.WARNING)  # keep orbax's and grain's INFO lines out
  load_before = os.getloadavg()
  _hide_accelerators_from_tensorflow()
  import jax  # pylint: disable=g-import-not-at-top
  import jaxlib  # pylint: disable=g-import-not-at-top
  from gen_jax.core import sharding as sharding_lib  # pylint: disable=g-import-not-at-top
  from gen_jax.train import step as step_lib  # pylint: disable=g-import-not-at-top
  from gen_jax.train.experiment import Experiment  # pylint: disable=g-import-not-at-top
  from gen_jax import xla_flags  # pylint: disable=g-import-not-at-top

  jax.config.update("jax_enable_compilation_cache", False)  # measure real compiles
  config = _CONFIG.value
  if config.method.name != "ddpm":
    raise app.UsageError(f"This benchmark is for DDPM configs, not {config.method.name!r}.")
  if _STEPS.value < 1 or _SAMPLE_REPEATS.value < 1:
    raise app.UsageError("--steps and --sample_repeats must be at least 1.")
  with config.unlocked():
    if _BATCH_SIZE.value:
      config.batch_size = _BATCH_SIZE.value
    config.sample.sampler = "ddim"
    config.sample.ddim.num_steps = _DDIM_STEPS.value

  with tempfile.TemporaryDirectory(prefix="ddpm_bench_") as tmp:
    tmpdir = Path(tmp)
    data_note = _prepare_data(config, tmpdir)
    exp = Experiment.create(config, workdir=tmpdir / "run")
    devices = list(exp.mesh.devices.flat)
    batch_size = config.batch_size

    # Input: fetch every batch the benchmark uses before timing anything.
    train_iter, info = exp.train_iterator(), exp.info
    input_times, batches = [], []
    for _ in range(1 + _WARMUP.value + _STEPS.value):
      t0 = time.perf_counter()
      batch = sharding_lib.make_global_batch(next(train_iter), exp.mesh)
      jax.block_until_ready(batch)
      input_times.append(time.perf_counter() - t0)
      batches.append(batch)

    t0 = time.perf_counter()
    state = jax.block_until_ready(exp.init_state(batches[0]))
    init_s = time.perf_counter() - t0
    num_params = sum(int(x.size) for x in jax.tree.leaves(state.params))

    # The train step exactly as loop.py builds it.
    names = step_lib.metric_names(exp.method, exp.abstract_state(), exp.abstract_batch(),
                                  exp.loop_key)
    collection = step_lib.metrics_collection(names)
    train_step = step_lib.make_train_step(exp.method, collection, exp.mesh,
                                          config.ema.decay, config.ema.warmup)
    acc = step_lib.empty_like_collection(collection, exp.mesh)
    t0 = time.perf_counter()
    lowered = train_step.lower(state, batches[1], exp.loop_key, acc)
    lower_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    compiled = lowered.compile()
    compile_s = time.perf_counter() - t0
    hlo_text = compiled.as_text() or ""
    if _DUMP_HLO.value:
      Path(_DUMP_HLO.value).write_text(hlo_text)
    ynn_fusions = len(re.findall(r"calls=%?[\w.\-]+[^\n]*__ynn_fusion", hlo_text))
    ynn_convs, xla_convs = xla_flags.ynn_convolution_counts(hlo_text)
    train_flops = _cost_flops(compiled)
    train_mem = _memory_analysis(compiled)

    step_times, step_cpu_times = [], []
    finite = metrics = None
    for i, batch in enumerate(batches[1:]):
      t0, c0 = time.perf_counter(), time.process_time()
      state, acc, metrics, finite = compiled(state, batch, exp.loop_key, acc)
      jax.block_until_ready((state, acc, metrics, finite))
      if i >= _WARMUP.value:
        step_times.append(time.perf_counter() - t0)
        step_cpu_times.append(time.process_time() - c0)
    last_step = int(jax.device_get(state.step))
    step_lib.check_finite(last_step, finite, metrics, None)
    final_loss = float(jax.device_get(metrics["loss"]))
    train_peak_what, train_peak = _peak_memory(devices)

    # DDIM sampling with the EMA parameters, through the jitted sampler --mode=sample uses.
    sample_fn = exp.sample_fn(_SAMPLE_BATCH.value)
    t0 = time.perf_counter()
    sample_compiled = sample_fn.lower(state, exp.sample_key).compile()
    sample_compile_s = time.perf_counter() - t0
    sample_times, nfe = [], None
    for i in range(_WARMUP.value + _SAMPLE_REPEATS.value):
      t0 = time.perf_counter()
      out = sample_compiled(state, jax.random.fold_in(exp.sample_key, i))
      jax.block_until_ready(out.samples)
      if i >= _WARMUP.value:
        sample_times.append(time.perf_counter() - t0)
      nfe = out.nfe
    end_peak_what, end_peak = _peak_memory(devices)
    exp.checkpointer.close()

  step_med, step_min = _median_min(step_times)
  in_med, _ = _median_min(input_times)
  samp_med, samp_min = _median_min(sample_times)
  m = config.model
  dev = devices[0]
  cpu_note = ""
  if dev.platform == "cpu":
    load_after = os.getloadavg()
    cpu_note = (f"; host has {os.cpu_count()} CPU cores, load average "
                f"{load_before[0]:.2f} before / {load_after[0]:.2f} after")
  rows = [
      ("command", f"`{command}`"),
      ("devices", f"{len(devices)} x {dev.device_kind} ({dev.platform}), "
                  f"{jax.process_count()} process(es){cpu_note}"),
      ("jax / jaxlib", f"{jax.__version__} / {jaxlib.__version__}"),
      ("XLA_FLAGS", f"`{os.environ.get('XLA_FLAGS', '')}`" if os.environ.get("XLA_FLAGS")
       else "(none)"),
      ("config", f"`{config_flags.get_config_filename(flags.FLAGS['config'])}`: UNet ch "
                 f"{m.ch}, ch_mult {tuple(m.ch_mult)}, {m.num_res_blocks} res blocks, attention "
                 f"at {tuple(m.attn_resolutions)}, dropout {m.dropout}; T={config.method.num_timesteps}, "
                 f"{config.optim.name}, EMA {config.ema.decay}"),
      ("data", data_note),
      ("image shape", "x".join(str(s) for s in info.image_shape)),
      ("global batch size", f"{batch_size} ({batch_size // len(devices)} per device)"),
      ("parameters", f"{num_params:,} ({num_params / 1e6:.2f}M)"),
      ("init (jit compile + run)", _fmt_s(init_s)),
      ("train step: trace + lower", _fmt_s(lower_s)),
      ("train step: compile", _fmt_s(compile_s)),
      ("train step: time (median / min over "
       f"{len(step_times)} steps after {_WARMUP.value} warm-up)",
       f"{_fmt_s(step_med)} / {_fmt_s(step_min)}"),
      ("training images/s (batch / median step)", f"{batch_size / step_med:.1f}"),
  ]
  if train_flops:
    rows.append(("train step: XLA cost-analysis FLOPs of the per-device program (achieved rate)",
                 f"{train_flops / 1e9:.2f} GFLOP ({train_flops / step_med / 1e9:.1f} GFLOP/s)"))
  if train_mem:
    rows.append(("train step: XLA buffer sizes", train_mem))
  if dev.platform == "cpu":
    cpu_med = statistics.median(step_cpu_times)
    rows.append(("train step: process CPU time (median; cores kept busy = CPU / wall)",
                 f"{_fmt_s(cpu_med)} ({cpu_med / step_med:.2f} of {os.cpu_count()} cores)"))
    rows.append(("compiled train step: YNNPACK fusions / of them with a convolution / "
                 "convolutions left to XLA", f"{ynn_fusions} / {ynn_convs} / {xla_convs}"))
  rows += [
      ("input pipeline, host time per global batch (median, not in step time)", _fmt_s(in_med)),
      (f"peak memory after training ({train_peak_what})", _fmt_bytes(train_peak)),
      (f"DDIM-{_DDIM_STEPS.value} sampling: compile", _fmt_s(sample_compile_s)),
      (f"DDIM-{_DDIM_STEPS.value} sampling: s per batch of {_SAMPLE_BATCH.value} (median / min "
       f"over {len(sample_times)} after {_WARMUP.value} warm-up)",
       f"{samp_med:.3f} s / {samp_min:.3f} s"),
      (f"DDIM-{_DDIM_STEPS.value} sampling: images/s", f"{_SAMPLE_BATCH.value / samp_med:.2f}"),
      ("DDIM sampling: NFE per image", str(nfe)),
  ]
  rows += [
      (f"peak memory at the end ({end_peak_what})", _fmt_bytes(end_peak)),
      ("sanity", f"{last_step} steps run, last loss {final_loss:.4f}, last step's metrics finite"),
  ]
  lines = ["| quantity | value |", "| --- | --- |"]
  lines += [f"| {k} | {str(v).replace('|', '/')} |" for k, v in rows]
  table = "\n".join(lines) + "\n"
  print(table, flush=True)
  if _MARKDOWN_OUT.value:
    Path(_MARKDOWN_OUT.value).write_text(table)


if __name__ == "__main__":
  app.run(main)
