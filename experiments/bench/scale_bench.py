"""Step time and peak memory of one train step: fp32 vs bf16, remat vs none, fsdp vs replicated.

Builds the method the trainer builds (`build_method`, here the DDPM CIFAR-10 UNet, 35.7M
parameters) and the trainer's jitted step (`train.step.make_train_step`, EMA included)
for each variant, compiles it ahead of time and reads XLA's own memory figures from
`compiled.memory_analysis()` (per device: arguments + outputs + temporaries - donated
aliases, the peak the compiler planned), then times a few steps:

    python experiments/bench/scale_bench.py                       # the recorded table
    python experiments/bench/scale_bench.py --smoke                # a tiny UNet, seconds

Rows: the precision (`config.precision`), remat (`config.model.remat`), mesh
(`config.mesh`; the process runs with 8 host devices, the first rows use one of them) and
gradient accumulation (`config.grad_accum_steps`). Columns: compile seconds, median step
seconds, images/s, parameter bytes per device, XLA's planned peak per device (MiB) and
its temporaries (activations) per device.

Flags: --config (under configs/), --batch_size, --steps (timed), --warmup, --rows
(comma-separated row names, default all), --smoke, --markdown_out; --residuals prints
instead the bytes the network's backward pass keeps with and without remat (traced only).
`train_step_report` is also used by gpu_suite.py.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
  os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                             " --xla_force_host_platform_device_count=8").strip()
_REPO = Path(__file__).resolve().parents[2]
if str(_REPO) not in sys.path:
  sys.path.insert(0, str(_REPO))

from absl import app, flags  # noqa: E402

_CONFIG = flags.DEFINE_string("config", "ddpm/cifar10.py", "Config path under configs/.")
_BATCH = flags.DEFINE_integer("batch_size", 8, "Global batch of one train step.")
_STEPS = flags.DEFINE_integer("steps", 3, "Timed train steps.")
_WARMUP = flags.DEFINE_integer("warmup", 1, "Untimed train steps first.")
_ROWS = flags.DEFINE_string("rows", "", "Comma-separated row names (default: all).")
_SMOKE = flags.DEFINE_bool("smoke", False, "A tiny UNet (seconds), to check the script.")
_MARKDOWN_OUT = flags.DEFINE_string("markdown_out", None, "Also write the table to this file.")
_RESIDUALS = flags.DEFINE_bool(
    "residuals", False, "Only print the bytes the UNet's backward pass keeps (JAX's "
    "saved residuals, traced, nothing compiled) with and without remat.")

# name: (precision, remat, number of devices, mesh, grad_accum_steps)
ROWS = {
    "fp32": ("fp32", False, 1, "", 1),
    "bf16": ("bf16", False, 1, "", 1),
    "fp32 remat": ("fp32", True, 1, "", 1),
    "bf16 remat": ("bf16", True, 1, "", 1),
    "fp32 accum 4": ("fp32", False, 1, "", 4),
    "fp32 replicated x8": ("fp32", False, 8, "data=8", 1),
    "fp32 fsdp=4 x8": ("fp32", False, 8, "data=2,fsdp=4", 1),
    "fp32 fsdp=8 x8": ("fp32", False, 8, "data=1,fsdp=8", 1),
}

_SHAPES = {"cifar10": ((32, 32, 3), 10), "mnist": ((28, 28, 1), 10), "digits": ((8, 8, 1), 10)}


def load_config(relpath: str, arg=None):
  from tests.train.helpers import load_config as load  # pylint: disable=g-import-not-at-top
  return load(relpath, arg)


def build(config, num_devices: int) -> dict:
  """The method, mesh, a synthetic global batch and the initialised (sharded) state."""
  import jax  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  from gen_jax.core import sharding as sharding_lib  # pylint: disable=g-import-not-at-top
  from gen_jax.data import DatasetInfo  # pylint: disable=g-import-not-at-top
  from gen_jax.methods.base import build_method  # pylint: disable=g-import-not-at-top

  name = config.data.name or config.data.source
  shape, classes = _SHAPES[name]
  method = build_method(config, DatasetInfo(shape, classes, 50_000))
  mesh = sharding_lib.make_mesh(num_devices, shape=config.get("mesh", ""))
  rng = np.random.default_rng(0)
  b = config.batch_size
  batch = sharding_lib.make_global_batch(
      {"image": rng.uniform(-1, 1, (b, *shape)).astype(np.float32),
       "label": rng.integers(0, classes, (b,)).astype(np.int32)}, mesh)
  abstract = jax.eval_shape(method.init, jax.random.key(0), batch)
  shardings = sharding_lib.state_shardings(abstract, mesh)
  state = jax.jit(method.init, out_shardings=shardings)(jax.random.key(0), batch)
  return dict(method=method, mesh=mesh, batch=batch, state=state, shardings=shardings)


def train_step_report(config, num_devices: int, steps: int, warmup: int) -> dict:
  """Builds, compiles and times the trainer's step for `config` on `num_devices` devices.

  Returns a dict: params (count), compile_s, step_s (median), images_per_s, flops (XLA's
  cost analysis of the lowered step, per device), param_bytes (per device), peak_bytes and
  temp_bytes (XLA's memory analysis, per device).
  """
  import jax  # pylint: disable=g-import-not-at-top
  from gen_jax.core import sharding as sharding_lib  # pylint: disable=g-import-not-at-top
  from gen_jax.train import step as step_lib  # pylint: disable=g-import-not-at-top

  built = build(config, num_devices)
  method, mesh, batch, state = built["method"], built["mesh"], built["batch"], built["state"]
  shardings = built["shardings"]
  b = config.batch_size
  names = step_lib.metric_names(method, state, batch, jax.random.key(1))
  collection = step_lib.metrics_collection(names)
  train_step = step_lib.make_train_step(
      method, collection, mesh, config.ema.decay, config.ema.warmup,
      grad_accum_steps=config.get("grad_accum_steps", 1), state_sharding=shardings)
  acc = step_lib.empty_like_collection(collection, mesh)
  start = time.perf_counter()
  lowered = train_step.lower(state, batch, jax.random.key(1), acc)
  compiled = lowered.compile()
  compile_s = time.perf_counter() - start
  mem = compiled.memory_analysis()
  peak = temp = float("nan")
  if mem is not None:
    temp = mem.temp_size_in_bytes
    peak = (mem.argument_size_in_bytes + mem.output_size_in_bytes + temp
            - mem.alias_size_in_bytes)
  # The FLOPs of the program before the backend rewrites it: on GPUs the compiled program's
  # convolutions are library calls that XLA's cost analysis counts as zero FLOPs.
  cost = lowered.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  flops = float((cost or {}).get("flops", float("nan")))
  for _ in range(warmup):
    state, acc, _, _ = compiled(state, batch, jax.random.key(1), acc)
  times = []
  for _ in range(steps):
    t0 = time.perf_counter()
    state, acc, metrics, _ = compiled(state, batch, jax.random.key(1), acc)
    jax.block_until_ready(metrics)
    times.append(time.perf_counter() - t0)
  step_s = statistics.median(times) if times else float("nan")
  return dict(params=sum(x.size for x in jax.tree.leaves(state.params)),
              compile_s=compile_s, step_s=step_s, images_per_s=b / step_s, flops=flops,
              param_bytes=max(sharding_lib.bytes_per_device(state.params).values()),
              peak_bytes=peak, temp_bytes=temp)


def smoke_model(config) -> None:
  """Shrinks a UNet config to a test-sized model (for --smoke)."""
  config.model.ch = 16
  config.model.ch_mult = (1, 2)
  config.model.num_res_blocks = 1
  config.model.num_groups = 8


def row_config(relpath: str, row: str, batch_size: int, smoke: bool):
  precision, remat, _, mesh, accum = ROWS[row]
  c = load_config(relpath)
  c.unlock()
  c.batch_size = batch_size
  c.precision = precision
  c.model.remat = remat
  c.mesh = mesh
  c.grad_accum_steps = accum
  if smoke:
    smoke_model(c)
  return c


def residual_report(relpath: str, batch_size: int) -> list[str]:
  """What the backward pass of the config's network keeps, with and without remat.

  `jax`'s saved residuals of sum(net(x, t)) at the batch size (parameters included, since
  the backward pass needs the kernels): the activations remat stops storing, independent
  of how a backend schedules them.
  """
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  from jax._src.ad_checkpoint import saved_residuals  # pylint: disable=g-import-not-at-top
  from gen_jax import nets  # pylint: disable=g-import-not-at-top

  c = load_config(relpath)
  shape, _ = _SHAPES[c.data.name or c.data.source]
  x, t = jnp.ones((batch_size, *shape)), jnp.ones((batch_size,))
  out = []
  for remat in (False, True):
    kwargs = {**dict(c.model), "remat": remat}
    net = nets.build_net(kwargs.pop("name"), **kwargs)
    params = jax.eval_shape(lambda: net.init({"params": jax.random.key(0)}, x, t,
                                             train=False))["params"]
    params = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), params)
    loss = lambda p: jnp.sum(net.apply({"params": p}, x, t, train=True,
                                       rngs={"dropout": jax.random.key(1)}))
    res = saved_residuals(loss, params)
    total = sum(int(np.prod(a.shape)) * a.dtype.itemsize for a, _ in res)
    p_bytes = sum(int(np.prod(a.shape)) * 4 for a in jax.tree.leaves(params))
    out.append(f"remat={remat}: {len(res)} saved residuals, {total / 2 ** 20:.1f} MiB "
               f"(parameters {p_bytes / 2 ** 20:.1f} MiB, activations "
               f"{(total - p_bytes) / 2 ** 20:.1f} MiB)")
  return out


def _mib(x: float) -> str:
  return "n/a" if x != x else f"{x / 2 ** 20:.1f}"


def main(argv):
  del argv
  import jax  # pylint: disable=g-import-not-at-top
  jax.config.update("jax_enable_compilation_cache", False)
  if _RESIDUALS.value:
    print("\n".join(residual_report(_CONFIG.value, _BATCH.value)))
    return
  names = [r.strip() for r in _ROWS.value.split(",") if r.strip()] or list(ROWS)
  lines = [f"config {_CONFIG.value}, batch {_BATCH.value}, {_STEPS.value} timed steps after "
           f"{_WARMUP.value} warm-up; jax {jax.__version__}, {jax.devices()[0].platform}",
           "",
           "| variant | mesh | compile s | step s | images/s | param MiB/device "
           "| peak MiB/device | temp MiB/device |",
           "| --- | --- | --- | --- | --- | --- | --- | --- |"]
  print("\n".join(lines), flush=True)
  for name in names:
    c = row_config(_CONFIG.value, name, _BATCH.value, _SMOKE.value)
    r = train_step_report(c, ROWS[name][2], _STEPS.value, _WARMUP.value)
    mesh = ROWS[name][3] or "1 device"
    line = (f"| {name} | {mesh} | {r['compile_s']:.1f} | {r['step_s']:.3f} | "
            f"{r['images_per_s']:.2f} | {_mib(r['param_bytes'])} | {_mib(r['peak_bytes'])} | "
            f"{_mib(r['temp_bytes'])} |")
    print(line, flush=True)
    lines.append(line)
    if _MARKDOWN_OUT.value:  # after every row: a long run leaves what it measured
      Path(_MARKDOWN_OUT.value).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
  app.run(main)
