"""Benchmark of the evaluation pieces: feature extraction speed and metric compute time.

    python experiments/bench/eval_bench.py                       # CPU defaults, ~4 minutes
    python experiments/bench/eval_bench.py --inception_batches=50,200 --kid_subsets=100 \
        --pr_features=10000                                      # on a GPU

Prints a markdown table:
  * FID Inception-v3 feature extraction (uint8 32x32x3 CIFAR-size input, resize to 299
    included) in images/s at a few batch sizes, with its compile time. Random weights
    (`inception.random_variables`): speed does not depend on the values.
  * Host statistics (mean + float64 covariance) of N x 2048 features, and the float64
    Frechet distance (two 2048x2048 eigendecompositions), for N = 10k and 50k.
  * KID (100 subsets of 1000 in the standard protocol): timed with --kid_subsets subsets
    and scaled linearly to 100 (stated in the table); the cost does not depend on N.
  * Precision/recall k-NN (k=3) on --pr_features real and fake features of dim 2048,
    scaled quadratically to 10k and 50k (stated).
  * The classifier feature extractor (configs/classifier/mnist.py network, 28x28x1) in
    images/s.
Every timed call ends with `jax.block_until_ready` (or a host transfer); each row takes the
median of --repeats calls after one untimed call. The `uptime` load average is recorded:
this machine's CPU is shared.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

_REPO = Path(__file__).resolve().parents[2]
if str(_REPO) not in sys.path:
  sys.path.insert(0, str(_REPO))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from gen_jax.eval import features as features_lib  # noqa: E402
from gen_jax.eval import inception, metrics  # noqa: E402
from gen_jax.nets.classifier import ClassifierCNN  # noqa: E402
from gen_jax.core import sharding  # noqa: E402


def _time(fn, repeats: int) -> float:
  fn()
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    fn()
    times.append(time.perf_counter() - start)
  return statistics.median(times)


def main() -> None:
  p = argparse.ArgumentParser()
  p.add_argument("--inception_batches", default="1,8,32")
  p.add_argument("--classifier_batch", type=int, default=512)
  p.add_argument("--kid_subsets", type=int, default=5)
  p.add_argument("--pr_features", type=int, default=2000)
  p.add_argument("--stats_sizes", default="10000,50000")
  p.add_argument("--repeats", type=int, default=2)
  p.add_argument("--markdown_out", default="")
  args = p.parse_args()
  jax.config.update("jax_enable_compilation_cache", False)
  rows = []
  mesh = sharding.make_mesh()
  devices = f"{jax.device_count()} x {jax.devices()[0].device_kind}"
  rng = np.random.default_rng(0)

  variables = inception.random_variables(0)
  apply = inception.make_apply_fn("tf1")
  for b in [int(x) for x in args.inception_batches.split(",")]:
    n = mesh.devices.size
    b = max(n, -(-b // n) * n)
    ext = features_lib.FeatureExtractor("inception", {}, 2048, True, apply, variables, mesh,
                                        batch_size=b)
    images = rng.integers(0, 256, (b, 32, 32, 3), dtype=np.uint8)
    start = time.perf_counter()
    ext(images)
    compile_s = time.perf_counter() - start
    t = _time(lambda: ext(images), args.repeats)
    rows.append((f"Inception-v3 features, batch {b} (32x32 -> 299)", f"{b / t:.2f} images/s",
                 f"first call (compile + run) {compile_s:.1f} s; {t:.2f} s per batch"))

  for n in [int(x) for x in args.stats_sizes.split(",")]:
    feats = rng.normal(size=(n, 2048)).astype(np.float32)
    t = _time(lambda f=feats: metrics.feature_statistics(f), 1)
    rows.append((f"mean + covariance of {n:,} x 2048 features (float64, host)", f"{t:.2f} s", ""))
    del feats
  mu, sigma = metrics.feature_statistics(rng.normal(size=(5000, 2048)))
  mu2, sigma2 = metrics.feature_statistics(rng.normal(size=(5000, 2048)) + 0.1)
  t = _time(lambda: metrics.frechet_distance(mu, sigma, mu2, sigma2), args.repeats)
  rows.append(("Frechet distance, D = 2048 (float64 eigh, host)", f"{t:.2f} s",
               "independent of N: FID from 10k or 50k features costs stats + this"))

  feats_r = rng.normal(size=(10000, 2048)).astype(np.float32)
  feats_f = rng.normal(size=(10000, 2048)).astype(np.float32)
  k = args.kid_subsets
  t = _time(lambda: metrics.kid(feats_r, feats_f, num_subsets=k, subset_size=1000,
                                subsets_per_call=k), 1)
  rows.append(("KID, 100 subsets of 1000, D = 2048", f"{t * 100 / k:.1f} s",
               f"measured {k} subsets ({t:.2f} s), scaled x{100 / k:g}; N-independent"))

  m = args.pr_features
  t = _time(lambda: metrics.precision_recall(feats_r[:m], feats_f[:m], k=3, mesh=mesh), 1)
  rows.append((f"precision/recall k=3, {m:,} vs {m:,}, D = 2048", f"{t:.2f} s",
               f"scaled (N^2): 10k ~ {t * (10000 / m) ** 2:.0f} s, "
               f"50k ~ {t * (50000 / m) ** 2:.0f} s"))

  net = ClassifierCNN(num_classes=10, ch=32, ch_mult=(1, 2), hidden=128)
  params = net.init(jax.random.key(0), jnp.zeros((1, 28, 28, 1)))["params"]

  def cls_apply(v, x):
    f, logits = net.apply({"params": v}, features_lib._to_model_space(x))  # pylint: disable=protected-access
    return {"pool": f, "logits": logits}

  b = args.classifier_batch
  ext = features_lib.FeatureExtractor("classifier", {}, 128, True, cls_apply, params, mesh,
                                      batch_size=b)
  images = rng.integers(0, 256, (b, 28, 28, 1), dtype=np.uint8)
  t = _time(lambda: ext(images), args.repeats + 1)
  rows.append((f"classifier features (mnist config net), batch {b}", f"{b / t:.0f} images/s", ""))

  load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
  lines = [f"Devices: {devices}; jax {jax.__version__}; load: `{load}`", "",
           "| what | result | notes |", "| --- | --- | --- |"]
  lines += [f"| {a} | {b_} | {c} |" for a, b_, c in rows]
  text = "\n".join(lines)
  print(text)
  if args.markdown_out:
    Path(args.markdown_out).write_text(
        "# eval_bench.py\n\n`python experiments/bench/eval_bench.py`\n\n" + text + "\n")


if __name__ == "__main__":
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  main()
