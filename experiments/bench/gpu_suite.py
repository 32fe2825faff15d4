"""The GPU table of issue 17 in one run (see gpu_suite.sh, which installs and calls this).

Sections (each prints its rows as soon as they are measured):
  ddpm   DDPM CIFAR-10 UNet (35.7M) train step at batch 128, fp32 and bf16: images/s,
         model FLOPs utilisation (XLA's FLOP count of the step / step time / peak), XLA's
         planned peak memory and the device's measured peak
  ddim   DDIM with 100 steps on that UNet, batch 256, fp32 and bf16: images/s
  ncsnpp NCSN++ CIFAR-10 (configs/score_sde/cifar10.py) train step at batch 64, fp32 / bf16
  glow   Glow CIFAR-10 (configs/flows/glow_cifar10.py, 3 levels x 32 steps) train step at
         batch 64, fp32 / bf16

    python experiments/bench/gpu_suite.py --steps=10 --warmup=2 --markdown_out=gpu_suite.md
    python experiments/bench/gpu_suite.py --smoke --steps=1 --warmup=0   # tiny, any device

MFU uses --peak_tflops_bf16 for bf16 rows and --peak_tflops_fp32 for fp32 rows (defaults:
H100/H200 SXM dense bf16 989 TFLOP/s, and TF32 495 TFLOP/s, the rate XLA's default fp32
matmul precision runs at on those GPUs). XLA counts a multiply-add as two FLOPs.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
_BENCH = Path(__file__).resolve().parent
if str(_BENCH) not in sys.path:
  sys.path.insert(0, str(_BENCH))

from absl import app, flags  # noqa: E402

import scale_bench  # noqa: E402  (also puts the repository on sys.path)

_SECTIONS = flags.DEFINE_string("sections", "ddpm,ddim,ncsnpp,glow", "Sections to run.")
_PRECISIONS = flags.DEFINE_string("precisions", "fp32,bf16", "Precisions of every section.")
_PEAK_BF16 = flags.DEFINE_float("peak_tflops_bf16", 989.0, "Peak dense bf16 TFLOP/s.")
_PEAK_FP32 = flags.DEFINE_float("peak_tflops_fp32", 495.0, "Peak dense fp32 (TF32) TFLOP/s.")
# Shared with scale_bench.py (defined there): --steps, --warmup, --smoke, --markdown_out.
_STEPS, _WARMUP = scale_bench._STEPS, scale_bench._WARMUP  # pylint: disable=protected-access
_SMOKE, _MARKDOWN_OUT = (scale_bench._SMOKE,  # pylint: disable=protected-access
                         scale_bench._MARKDOWN_OUT)

_SECTION_CONFIGS = {  # name: (config path, config arg, batch size)
    "ddpm": ("ddpm/cifar10.py", None, 128),
    "ncsnpp": ("score_sde/cifar10.py", None, 64),
    "glow": ("flows/glow_cifar10.py", None, 64),
}


def _config(section: str, precision: str):
  path, arg, batch = _SECTION_CONFIGS["ddpm" if section == "ddim" else section]
  c = scale_bench.load_config(path, "smoke" if _SMOKE.value else arg)
  c.unlock()
  c.precision = precision
  c.batch_size = 4 if _SMOKE.value else batch
  return c


def _device_peak_mib() -> str:
  import jax  # pylint: disable=g-import-not-at-top
  stats = jax.devices()[0].memory_stats() or {}
  peak = stats.get("peak_bytes_in_use")
  return "n/a" if peak is None else f"{peak / 2 ** 20:.0f}"


def _train_row(section: str, precision: str) -> str:
  c = _config(section, precision)
  r = scale_bench.train_step_report(c, 1, _STEPS.value, _WARMUP.value)
  peak = (_PEAK_BF16 if precision == "bf16" else _PEAK_FP32).value * 1e12
  mfu = r["flops"] / r["step_s"] / peak
  return (f"| {section} train | {precision} | {c.batch_size} | {r['params'] / 1e6:.1f}M | "
          f"{r['compile_s']:.0f} | {1e3 * r['step_s']:.1f} | {r['images_per_s']:.0f} | "
          f"{100 * mfu:.1f}% | {r['peak_bytes'] / 2 ** 20:.0f} | {_device_peak_mib()} |")


def _ddim_row(precision: str) -> str:
  import jax  # pylint: disable=g-import-not-at-top
  c = _config("ddim", precision)
  steps = 2 if _SMOKE.value else 100
  n = 4 if _SMOKE.value else 256
  c.sample.sampler = "ddim"
  c.sample.ddim.num_steps = steps
  built = scale_bench.build(c, 1)
  method, state = built["method"], built["state"]
  params = sum(x.size for x in jax.tree.leaves(state.params))
  sample = jax.jit(lambda s, k: method.sample(s, k, n).samples)
  start = time.perf_counter()
  compiled = sample.lower(state, jax.random.key(0)).compile()
  compile_s = time.perf_counter() - start
  for _ in range(_WARMUP.value):
    jax.block_until_ready(compiled(state, jax.random.key(0)))
  times = []
  for i in range(max(_STEPS.value // 3, 1)):
    t0 = time.perf_counter()
    jax.block_until_ready(compiled(state, jax.random.key(i)))
    times.append(time.perf_counter() - t0)
  s = statistics.median(times)
  return (f"| ddim-{steps} sample | {precision} | {n} | {params / 1e6:.1f}M | "
          f"{compile_s:.0f} | {1e3 * s:.0f} | {n / s:.0f} | | | {_device_peak_mib()} |")


def main(argv):
  del argv
  import jax  # pylint: disable=g-import-not-at-top
  jax.config.update("jax_enable_compilation_cache", False)
  lines = [f"{jax.devices()[0].device_kind} ({jax.devices()[0].platform}), jax "
           f"{jax.__version__}; {_STEPS.value} timed steps after {_WARMUP.value} warm-up",
           "",
           "| what | precision | batch | params | compile s | ms per step / call | images/s "
           "| MFU | XLA peak MiB | device peak MiB |",
           "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
  print("\n".join(lines), flush=True)
  for section in [s.strip() for s in _SECTIONS.value.split(",") if s.strip()]:
    for precision in [p.strip() for p in _PRECISIONS.value.split(",") if p.strip()]:
      try:
        line = _ddim_row(precision) if section == "ddim" else _train_row(section, precision)
      except Exception as e:  # pylint: disable=broad-except
        line = f"| {section} | {precision} | failed: {type(e).__name__}: {str(e)[:200]} |"
      print(line, flush=True)
      lines.append(line)
  if _MARKDOWN_OUT.value:
    Path(_MARKDOWN_OUT.value).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
  app.run(main)
