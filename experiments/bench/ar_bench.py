"""Benchmark of the autoregressive family: PixelCNN++ training and sampling, WaveNet sampling.

    python experiments/bench/ar_bench.py --markdown_out=experiments/bench/ar_bench_cpu.md

PixelCNN++ on CIFAR-10 shapes (32x32x3, configs/autoregressive/pixelcnnpp_cifar10.py;
`--nr_filters` / `--nr_resnet` shrink it for a CPU): training images/s of the jitted
`method.update` (forward, backward, Adam) at `--batch_size`, and the time to sample a batch
of `--sample_batch` images pixel by pixel (1,024 network evaluations in one lax loop).
Sampling is measured end to end when `--full_sample` is set; otherwise one network
evaluation at the sample batch is timed and multiplied by 1,024 (the loop adds only a
dynamic slice per step), and the table says so.

WaveNet (configs/autoregressive/wavenet_audio_folder.py: 30 layers, dilations 1..512 x 3,
receptive field 3,071 samples) generating one second of 16 kHz audio (16,000 steps) at
`--wave_batch`: the cached generator (`WaveNet.step` with ring buffers) is timed end to
end; the naive generator re-runs the network on a receptive-field window at every step,
whose cost per step is constant, so one step is timed and multiplied by 16,000 (a full
naive run on a CPU would take hours). Random weights (speed does not depend on them);
every timed call ends in `jax.block_until_ready`; compile time is reported apart.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
_REPO = Path(__file__).resolve().parents[2]
if str(_REPO) not in sys.path:
  sys.path.insert(0, str(_REPO))

from absl import app, flags  # noqa: E402

_BATCH = flags.DEFINE_integer("batch_size", 8, "PixelCNN++ training batch.")
_STEPS = flags.DEFINE_integer("steps", 3, "Timed PixelCNN++ train steps (after one warm-up).")
_FILTERS = flags.DEFINE_integer("nr_filters", 160, "PixelCNN++ filters (paper: 160).")
_RESNET = flags.DEFINE_integer("nr_resnet", 5, "PixelCNN++ blocks per scale (paper: 5).")
_SAMPLE_BATCH = flags.DEFINE_integer("sample_batch", 16, "PixelCNN++ images per sample batch.")
_FULL_SAMPLE = flags.DEFINE_bool("full_sample", False, "Time the whole 1,024-step sampler.")
_WAVE_BATCH = flags.DEFINE_integer("wave_batch", 1, "WaveNet sequences generated at once.")
_SECONDS = flags.DEFINE_float("seconds", 1.0, "Seconds of 16 kHz audio for the WaveNet rows.")
_OUT = flags.DEFINE_string("markdown_out", None, "Also write the table to this file.")


def _timed(fn, *args, repeats=1):
  import jax  # pylint: disable=g-import-not-at-top
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - start)
  return min(times)


def _compile(fn, *args):
  import jax  # pylint: disable=g-import-not-at-top
  start = time.perf_counter()
  compiled = jax.jit(fn).lower(*args).compile()
  return compiled, time.perf_counter() - start


def main(argv):
  del argv
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top

  from gen_jax.data import DatasetInfo  # pylint: disable=g-import-not-at-top
  from gen_jax.methods.autoregressive import build_autoregressive  # pylint: disable=g-import-not-at-top
  from tests.train.helpers import load_config  # pylint: disable=g-import-not-at-top

  jax.config.update("jax_enable_compilation_cache", False)
  rows = [("machine", f"{jax.devices()[0].device_kind} x{jax.device_count()}, "
           f"{os.cpu_count()} CPUs visible (shared with other jobs)")]

  # ------------------------------------------------------------------ PixelCNN++
  c = load_config("autoregressive/pixelcnnpp_cifar10.py", None)
  c.model.nr_filters = _FILTERS.value
  c.model.nr_resnet = _RESNET.value
  method = build_autoregressive(c, DatasetInfo((32, 32, 3), 10, 50_000))
  state = method.init(jax.random.key(0), None)
  n_params = sum(p.size for p in jax.tree.leaves(state.params))
  rows.append(("PixelCNN++ model", f"{_FILTERS.value} filters, {_RESNET.value} blocks/scale, "
               f"3 scales, 10 logistics: {n_params / 1e6:.2f}M parameters"))
  rng = np.random.default_rng(0)
  b = _BATCH.value
  batch = {"image": jnp.asarray(rng.integers(0, 256, (b, 32, 32, 3)) / 127.5 - 1.0,
                                jnp.float32), "label": jnp.zeros((b,), jnp.int32)}
  update, t_compile = _compile(method.update, state, batch, jax.random.key(1))
  state, _ = update(state, batch, jax.random.key(1))
  jax.block_until_ready(state)
  t_steps = []
  for i in range(_STEPS.value):
    start = time.perf_counter()
    state, metrics = update(state, batch, jax.random.key(2 + i))
    jax.block_until_ready(state)
    t_steps.append(time.perf_counter() - start)
  step = float(np.median(t_steps))
  rows.append(("PixelCNN++ train step compile", f"{t_compile:.1f} s"))
  rows.append(("PixelCNN++ train step", f"{step:.2f} s at batch {b} (median of "
               f"{_STEPS.value}): **{b / step:.2f} images/s**"))

  state = state.replace(ema_params=state.params)
  n = _SAMPLE_BATCH.value
  if _FULL_SAMPLE.value:
    sample, t_c = _compile(lambda s, r: method.sample(s, r, n).samples, state,
                           jax.random.key(3))
    t = _timed(sample, state, jax.random.key(3))
    rows.append(("PixelCNN++ sample a batch", f"{t:.1f} s for {n} images (measured, "
                 f"1,024 steps; compile {t_c:.1f} s): {n / t:.3f} images/s"))
  else:
    x = jnp.zeros((n, 32, 32, 3))
    forward, t_c = _compile(lambda p, x: method.apply(p, x, None), state.params, x)
    t = _timed(forward, state.params, x, repeats=3)
    rows.append(("PixelCNN++ one network evaluation", f"{t:.3f} s at batch {n} "
                 f"(compile {t_c:.1f} s)"))
    rows.append(("PixelCNN++ sample a batch", f"~{1024 * t:.0f} s for {n} images "
                 f"(extrapolated: 1,024 x one evaluation): {n / (1024 * t):.4f} images/s"))

  # ------------------------------------------------------------------ WaveNet
  c = load_config("autoregressive/wavenet_audio_folder.py", None)
  length = int(round(16000 * _SECONDS.value))
  method = build_autoregressive(c, DatasetInfo((length, 1), 4, 1000))
  state = method.init(jax.random.key(0), None)
  params = state.params
  n_params = sum(p.size for p in jax.tree.leaves(params))
  r = method.net.receptive_field
  rows.append(("WaveNet model", f"{len(c.model.dilations)} layers, receptive field {r} "
               f"samples, {n_params / 1e6:.2f}M parameters, batch {_WAVE_BATCH.value}"))
  wb = _WAVE_BATCH.value
  cached, t_c = _compile(lambda p, k: method.generate(p, k, wb, cached=True)[0], params,
                         jax.random.key(4))
  t_cached = _timed(cached, params, jax.random.key(4))
  rows.append(("WaveNet cached generator", f"**{t_cached:.1f} s** for {length} samples "
               f"(measured; compile {t_c:.1f} s): {length * wb / t_cached:.0f} samples/s, "
               f"{1e3 * t_cached / length:.2f} ms/step"))
  labels = method.sample_labels(wb)
  window = jnp.zeros((wb, r + 1, 256))

  def naive_step(p, w, k):
    out = method.apply(p, w, labels)[:, -1]
    return method._draw_code(out, k)[0]  # pylint: disable=protected-access

  step_fn, t_c = _compile(naive_step, params, window, jax.random.key(5))
  t_step = _timed(step_fn, params, window, jax.random.key(5), repeats=3)
  rows.append(("WaveNet naive generator", f"~**{t_step * length:.0f} s** for {length} "
               f"samples (extrapolated: {length} x {1e3 * t_step:.1f} ms per step on a "
               f"{r + 1}-sample window; compile {t_c:.1f} s)"))
  rows.append(("WaveNet speed-up, cached vs naive", f"{t_step * length / t_cached:.0f}x"))

  table = ["| quantity | value |", "| --- | --- |"] + [f"| {k} | {v} |" for k, v in rows]
  text = "\n".join(table)
  print(text)
  if _OUT.value:
    Path(_OUT.value).write_text(
        "# ar_bench.py on CPU\n\nCommand: `python experiments/bench/ar_bench.py "
        + " ".join(sys.argv[1:]) + "`\n\n" + text + "\n")


if __name__ == "__main__":
  app.run(main)
