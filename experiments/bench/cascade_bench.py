"""Benchmark: sampling time of a cascade, stage by stage, against one model at the final size.

    python experiments/bench/cascade_bench.py                     # CIFAR-10 8 -> 32 configs
    python experiments/bench/cascade_bench.py --steps=20 --batch=16 --repeats=3
    python experiments/bench/cascade_bench.py --smoke              # tiny models, seconds

Builds, from the configs as written (randomly initialised parameters: speed does not
depend on their values),
  * the base stage of configs/cascade/cifar10_8to32.py:stage=base (8x8 DDPM UNet),
  * its super-resolution stage (:stage=sr, 32x32 UNet on 3 + 3 + 1 input channels),
  * the single-stage model at the final resolution, configs/ddpm/cifar10.py (Ho et al.'s
    35.7M-parameter 32x32 UNet),
and times `sample` of `--batch` images with DDIM at `--steps` network evaluations per
stage (and for the single model), each compiled first (compile time reported apart) and
then run `--repeats` times (median wall time, `jax.block_until_ready`). The cascade row is
one jitted function sampling the base and then the SR stage (`methods/cascade.py`).

Data: synthetic uint8 CIFAR-shaped images in a temporary .npz (the SR stage's grid
condition and the DatasetInfo; nothing is trained). Prints a markdown table.
"""

from __future__ import annotations

import argparse
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

import jax  # noqa: E402
import numpy as np  # noqa: E402

from gen_jax.data import build_source  # noqa: E402
from gen_jax.methods import build_method  # noqa: E402
from gen_jax.methods.cascade import Cascade  # noqa: E402
from tests.train.helpers import load_config  # noqa: E402


def _configs(smoke: bool, steps: int, npz: str):
  arg = "smoke," if smoke else ""
  out = {}
  for name, (rel, a) in {"base 8x8": ("cascade/cifar10_8to32.py", arg + "stage=base"),
                         "SR 8->32": ("cascade/cifar10_8to32.py", arg + "stage=sr"),
                         "single 32x32": ("ddpm/cifar10.py", arg.rstrip(","))}.items():
    c = load_config(rel, a or None)
    with c.unlocked():
      c.data.source = "downsampled" if c.data.source == "downsampled" else "npz"
      if c.data.source == "downsampled":
        c.data.downsample_source = "npz"
      c.data.path = c.data.eval_path = npz
      c.sample.sampler = "ddim"
      c.sample.ddim.num_steps = steps
      c.sample.grid_size = 8
    out[name] = c
  return out


def _params(tree) -> int:
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))


def _time(fn, args, repeats: int) -> tuple[float, float]:
  """(compile seconds, median run seconds) of jitted fn(*args)."""
  t0 = time.perf_counter()
  compiled = jax.jit(fn).lower(*args).compile()
  compile_s = time.perf_counter() - t0
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    jax.block_until_ready(compiled(*args))
    times.append(time.perf_counter() - t0)
  return compile_s, statistics.median(times)


def main() -> None:
  parser = argparse.ArgumentParser()
  parser.add_argument("--steps", type=int, default=10, help="DDIM steps (NFE) per stage")
  parser.add_argument("--batch", type=int, default=8)
  parser.add_argument("--repeats", type=int, default=2)
  parser.add_argument("--smoke", action="store_true", help="the configs' tiny smoke models")
  args = parser.parse_args()
  jax.config.update("jax_enable_compilation_cache", False)
  tmp = tempfile.mkdtemp()
  npz = os.path.join(tmp, "images.npz")
  rng = np.random.default_rng(0)
  np.savez(npz, images=rng.integers(0, 256, (16, 32, 32, 3), dtype=np.uint8),
           labels=np.zeros(16, np.int64))
  methods, states = {}, {}
  for i, (name, c) in enumerate(_configs(args.smoke, args.steps, npz).items()):
    _, info = build_source(c.data, "train")
    methods[name] = build_method(c, info)
    states[name] = jax.jit(methods[name].init)(jax.random.key(i), None)
  key = jax.random.key(0)
  n, rows = args.batch, []
  low = jax.random.uniform(key, (n, 8, 8, 3), minval=-1.0, maxval=1.0)
  base, sr_m, single = (methods[k] for k in ("base 8x8", "SR 8->32", "single 32x32"))
  cases = [
      ("base 8x8", lambda s, r: base.sample(s, r, n).samples, states["base 8x8"]),
      ("SR 8->32", lambda s, r: sr_m.sample_given(s, r, low).samples, states["SR 8->32"]),
  ]
  cascade = Cascade((base, sr_m))
  cascade_state = cascade.state_of([states["base 8x8"], states["SR 8->32"]])
  cases.append(("cascade (base + SR)", lambda s, r: cascade.sample(s, r, n).samples,
                cascade_state))
  cases.append(("single 32x32", lambda s, r: single.sample(s, r, n).samples,
                states["single 32x32"]))
  params = {"base 8x8": _params(states["base 8x8"].params),
            "SR 8->32": _params(states["SR 8->32"].params),
            "single 32x32": _params(states["single 32x32"].params)}
  params["cascade (base + SR)"] = params["base 8x8"] + params["SR 8->32"]
  nfe = {"cascade (base + SR)": 2 * args.steps}
  for name, fn, state in cases:
    compile_s, run_s = _time(fn, (state, key), args.repeats)
    rows.append((name, params[name], nfe.get(name, args.steps), compile_s, run_s))
  print(f"batch {n}, DDIM {args.steps} steps per stage, {jax.devices()[0].platform}, "
        f"{'smoke models' if args.smoke else 'configs as written'}, median of {args.repeats}")
  print()
  print("| model | params | NFE / image | compile (s) | sampling (s) | ms / image |")
  print("| --- | ---: | ---: | ---: | ---: | ---: |")
  for name, p, e, c, r in rows:
    print(f"| {name} | {p / 1e6:.2f}M | {e} | {c:.1f} | {r:.2f} | {1000 * r / n:.0f} |")


if __name__ == "__main__":
  main()
