"""Benchmark of GAN configs: generator forward speed, sampling speed and training steps/s.

For each config it builds the method the trainer builds (`build_method` with the
dataset's shape), a synthetic batch of the config's shape (speed does not depend on pixel
values), and the trainer's jitted train step (`step.make_train_step`, EMA included) on every
visible device, then prints a markdown table:

    python experiments/bench/gan_bench.py                 # dcgan, sngan, ddgan, biggan
    python experiments/bench/gan_bench.py --configs=gan/sngan.py --batch_size=64 --steps=20
    python experiments/bench/gan_bench.py --configs=cyclegan/folders.py:size=128  # CycleGAN
    python experiments/bench/gan_bench.py --configs=gan/stylegan2_folder.py:resolution=64

Per config: parameters of G and D; train-step compile time (lower + compile); median time
of a train step (one generator step and its n_dis discriminator steps), steps/s and
training images/s (batch x steps/s: real images the discriminator sees per second);
generator images/s for ONE forward pass of the EMA generator (batch --sample_batch);
images/s of the full sampler (1 forward for a GAN, T for a DDGAN) and its NFE.

Flags: --configs (comma-separated paths under configs/, each with an optional ":arg" as on
the command line, e.g. gan/stylegan2_folder.py:resolution=64), --batch_size (global batch of one
train step, i.e. n_dis slices for a GAN; default the config's), --steps (timed train
steps), --warmup (untimed steps and sampling calls first), --sample_batch, --repeats
(timed generator calls), --markdown_out. The persistent compilation cache is off.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
_REPO = Path(__file__).resolve().parents[2]
if str(_REPO) not in sys.path:
  sys.path.insert(0, str(_REPO))

from absl import app, flags  # noqa: E402

_CONFIGS = flags.DEFINE_string("configs", "gan/dcgan.py,gan/sngan.py,gan/ddgan.py,"
                               "gan/biggan_cifar10.py",
                               "Comma-separated config paths under configs/.")
_BATCH = flags.DEFINE_integer("batch_size", None, "Global batch of one train step.")
_STEPS = flags.DEFINE_integer("steps", 10, "Timed train steps.")
_WARMUP = flags.DEFINE_integer("warmup", 1, "Untimed train steps / generator calls first.")
_SAMPLE_BATCH = flags.DEFINE_integer("sample_batch", 64, "Images per generator call.")
_REPEATS = flags.DEFINE_integer("repeats", 5, "Timed generator / sampler calls.")
_MARKDOWN_OUT = flags.DEFINE_string("markdown_out", None, "Also write the table to this file.")

_SHAPES = {"cifar10": ((32, 32, 3), 10), "mnist": ((28, 28, 1), 10),
           "fashion_mnist": ((28, 28, 1), 10), "eight_gaussians": ((2,), 8)}


def _timed(fn, repeats: int) -> list[float]:
  import jax  # pylint: disable=g-import-not-at-top
  out = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(fn())
    out.append(time.perf_counter() - start)
  return out


def _time_train_step(method, c, mesh, state, batch) -> tuple[object, float, float]:
  """(state after the timed steps, compile seconds, median step seconds) of the trainer's
  jitted train step (EMA included) on `batch`."""
  import jax  # pylint: disable=g-import-not-at-top
  from gen_jax.train import step as step_lib  # pylint: disable=g-import-not-at-top

  names = step_lib.metric_names(method, state, batch, jax.random.key(1))
  collection = step_lib.metrics_collection(names)
  train_step = step_lib.make_train_step(method, collection, mesh, c.ema.decay, c.ema.warmup,
                                        int(c.ema.get("start", 0)))
  acc = step_lib.empty_like_collection(collection, mesh)
  start = time.perf_counter()
  compiled = train_step.lower(state, batch, jax.random.key(1), acc).compile()
  compile_s = time.perf_counter() - start
  for _ in range(_WARMUP.value):
    state, acc, _, _ = compiled(state, batch, jax.random.key(1), acc)
  times = []
  for _ in range(_STEPS.value):
    t0 = time.perf_counter()
    state, acc, metrics, _ = compiled(state, batch, jax.random.key(1), acc)
    jax.block_until_ready(metrics)
    times.append(time.perf_counter() - t0)
  return state, compile_s, statistics.median(times)


def bench_config(relpath: str) -> dict:
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  from gen_jax.data import DatasetInfo  # pylint: disable=g-import-not-at-top
  from gen_jax.methods.base import build_method  # pylint: disable=g-import-not-at-top
  from gen_jax.core import sharding as sharding_lib  # pylint: disable=g-import-not-at-top
  from tests.train.helpers import load_config  # pylint: disable=g-import-not-at-top

  path, _, arg = relpath.partition(":")
  c = load_config(path, arg or None)
  if _BATCH.value:
    c.batch_size = _BATCH.value
  if c.data.source == "folder":  # an image folder at the config's resolution, one class
    shape, classes = (c.data.image_size, c.data.image_size, 3), 1
  else:
    shape, classes = _SHAPES[c.data.name]
  method = build_method(c, DatasetInfo(shape, classes, 50_000))
  mesh = sharding_lib.make_mesh(0)
  rng = np.random.default_rng(0)
  batch = sharding_lib.make_global_batch(
      {"image": rng.uniform(-1, 1, (c.batch_size, *shape)).astype(np.float32),
       "label": rng.integers(0, classes, (c.batch_size,)).astype(np.int32)}, mesh)
  rep = sharding_lib.replicated(mesh)
  state = jax.jit(method.init, out_shardings=rep)(jax.random.key(0), batch)
  g_params = sum(x.size for x in jax.tree.leaves(state.params["generator"]))
  d_params = sum(x.size for x in jax.tree.leaves(state.params["discriminator"]))
  state, compile_s, step_s = _time_train_step(method, c, mesh, state, batch)

  n = _SAMPLE_BATCH.value
  z = jax.random.normal(jax.random.key(2), (n, method.z_dim))
  y = jnp.arange(n) % classes if method.num_classes else None
  g_vars = state.model_state["generator"]
  if method.__class__.__name__ == "DDGAN":
    x = jax.random.normal(jax.random.key(3), (n, *shape))
    t = jnp.full((n,), 3.0)
    forward = jax.jit(lambda p: method.generator.apply({"params": p, **g_vars}, x, t, z, y,
                                                       train=False))
  else:
    # StyleGAN2 draws its noise inputs from the "noise" stream; other nets ignore it.
    forward = jax.jit(lambda p: method.generator.apply({"params": p, **g_vars}, z, y,
                                                       train=False,
                                                       rngs={"noise": jax.random.key(5)}))
  sample = jax.jit(lambda s, k: method.sample(s, k, n).samples)
  g = state.ema_params["generator"]
  _timed(lambda: forward(g), _WARMUP.value + 1)
  fwd_s = statistics.median(_timed(lambda: forward(g), _REPEATS.value))
  _timed(lambda: sample(state, jax.random.key(4)), _WARMUP.value + 1)
  smp_s = statistics.median(_timed(lambda: sample(state, jax.random.key(4)), _REPEATS.value))
  nfe = method.sample(state, jax.random.key(4), 2).nfe
  n_dis = getattr(method, "n_dis", 1)
  return dict(config=relpath, g_params=g_params, d_params=d_params, batch=c.batch_size,
              n_dis=n_dis, compile_s=compile_s, step_ms=1e3 * step_s, steps_per_s=1 / step_s,
              fwd_ips=n / fwd_s, sample_ips=n / smp_s, nfe=nfe)


def bench_cyclegan(relpath: str) -> dict:
  """The CycleGAN row: "cyclegan/folders.py:size=128" (a config path with its argument).

  A train step is one generator step (both generators) and one discriminator step (both
  discriminators) on batch_size pairs; "G params" / "D params" count both networks of
  each kind; G forward and sampling are one generator on --sample_batch images and the
  translation A -> B -> A (two generator passes per image, NFE 2).
  """
  import jax  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  from gen_jax.data import DatasetInfo  # pylint: disable=g-import-not-at-top
  from gen_jax.methods.base import build_method  # pylint: disable=g-import-not-at-top
  from gen_jax.core import sharding as sharding_lib  # pylint: disable=g-import-not-at-top
  from tests.train.helpers import load_config  # pylint: disable=g-import-not-at-top

  path, _, arg = relpath.partition(":")
  c = load_config(path, arg or None)
  if _BATCH.value:
    c.batch_size = _BATCH.value
  size = int(c.data.image_size)
  shape = (size, size, 3)
  method = build_method(c, DatasetInfo(shape, 0, 1000, image_keys=("image_a", "image_b")))
  mesh = sharding_lib.make_mesh(0)
  rng = np.random.default_rng(0)
  batch = sharding_lib.make_global_batch(
      {"image_a": rng.uniform(-1, 1, (c.batch_size, *shape)).astype(np.float32),
       "image_b": rng.uniform(-1, 1, (c.batch_size, *shape)).astype(np.float32),
       "label": np.zeros((c.batch_size,), np.int32)}, mesh)
  rep = sharding_lib.replicated(mesh)
  state = jax.jit(method.init, out_shardings=rep)(jax.random.key(0), batch)
  g_params = sum(x.size for x in jax.tree.leaves(state.params["generator"]))
  d_params = sum(x.size for x in jax.tree.leaves(state.params["discriminator"]))
  state, compile_s, step_s = _time_train_step(method, c, mesh, state, batch)

  n = _SAMPLE_BATCH.value
  x = jax.random.uniform(jax.random.key(2), (n, *shape), minval=-1.0, maxval=1.0)
  g = state.ema_params["generator"]["a_to_b"]
  forward = jax.jit(lambda p: method.generator.apply({"params": p}, x))
  translate = jax.jit(lambda s: method.translate(s, x, "a_to_b"))
  _timed(lambda: forward(g), _WARMUP.value + 1)
  fwd_s = statistics.median(_timed(lambda: forward(g), _REPEATS.value))
  _timed(lambda: translate(state), _WARMUP.value + 1)
  smp_s = statistics.median(_timed(lambda: translate(state), _REPEATS.value))
  return dict(config=relpath, g_params=g_params, d_params=d_params, batch=c.batch_size,
              n_dis=1, compile_s=compile_s, step_ms=1e3 * step_s, steps_per_s=1 / step_s,
              fwd_ips=n / fwd_s, sample_ips=n / smp_s, nfe=2)


def main(argv):
  del argv
  import jax  # pylint: disable=g-import-not-at-top
  jax.config.update("jax_enable_compilation_cache", False)
  rows = [(bench_cyclegan if p.strip().startswith("cyclegan/") else bench_config)(p.strip())
          for p in _CONFIGS.value.split(",") if p.strip()]
  load = os.getloadavg()
  dev = jax.devices()
  lines = [
      f"devices: {len(dev)} x {dev[0].device_kind} ({jax.default_backend()}); jax "
      f"{jax.__version__}; load average before/after: see below; "
      f"timed steps {_STEPS.value}, warm-up {_WARMUP.value}, generator batch "
      f"{_SAMPLE_BATCH.value}",
      "",
      "| config | G params | D params | batch (n_dis) | train-step compile s | step ms "
      "(median) | train steps/s | train images/s | G forward images/s | sampling images/s "
      "(NFE) |",
      "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
  for r in rows:
    lines.append(
        f"| {r['config']} | {r['g_params'] / 1e6:.2f}M | {r['d_params'] / 1e6:.2f}M | "
        f"{r['batch']} ({r['n_dis']}) | {r['compile_s']:.1f} | {r['step_ms']:.0f} | "
        f"{r['steps_per_s']:.3f} | {r['batch'] * r['steps_per_s']:.3g} | "
        f"{r['fwd_ips']:.3g} | {r['sample_ips']:.3g} ({r['nfe']}) |")
  lines.append("")
  lines.append(f"load average (1, 5, 15 min) at the end: {load[0]:.2f}, {load[1]:.2f}, "
               f"{load[2]:.2f}")
  table = "\n".join(lines)
  print(table)
  if _MARKDOWN_OUT.value:
    Path(_MARKDOWN_OUT.value).write_text(table + "\n")


if __name__ == "__main__":
  app.run(main)
