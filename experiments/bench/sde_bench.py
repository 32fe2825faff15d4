"""Benchmark of score-SDE sampling and likelihood on a CIFAR-10 network: images/s and NFE.

    python experiments/bench/sde_bench.py                       # DDPM UNet (35.7M), batch 64
    python experiments/bench/sde_bench.py \
        --config=configs/score_sde/cifar10.py:variant=vp_ddpmpp_continuous   # DDPM++ (62.9M)
    python experiments/bench/sde_bench.py --batch_size=8 --markdown_out=out.md

Every sampler's cost is NFE network evaluations plus element-wise work, so the table gives,
for the network of the config (random weights; speed does not depend on them):

* t_eval: seconds of one jitted score evaluation at the batch size (median of --repeats), and
  t_jvp: one evaluation of the likelihood's ODE drift with its Hutchinson JVP;
* a check of the extrapolation: one real sampler (Euler-Maruyama) run end to end with
  --check_steps steps, against check_steps * t_eval;
* per sampler: its NFE and the extrapolated seconds per batch (NFE * t_eval) and images/s:
  PC (reverse diffusion + 1 Langevin step, N = 1000: NFE 2000), Euler-Maruyama (N = 1000),
  DDIM (50 steps, the foundation's sampler), and the adaptive RK45 probability-flow ODE
  (rtol = atol = 1e-5). The adaptive NFE depends on the model; a random network gives a
  meaningless number, so the NFE used here is measured with the exact score of Gaussian
  data of the same shape (per-pixel mean/std of CIFAR-10-like data: a stand-in that is
  smoother than a trained model; the paper reports ~100-200 NFE for its CIFAR-10 models);
* bits/dim: seconds per image of the likelihood ODE (NFE_lik * t_jvp / batch), with NFE_lik
  measured the same way.

On this CPU, paper-size models are far too slow to run full samplers: the figures are
extrapolated from a few timed evaluations, and the table says so. Run on a GPU to measure.
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import sys
import time
from pathlib import Path

from absl import app, flags
from ml_collections import config_flags

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from gen_jax.data import DatasetInfo  # noqa: E402
from gen_jax.methods import build_method  # noqa: E402
from gen_jax.diffusion import batch_bcast, ode_likelihood  # noqa: E402
from gen_jax.samplers import euler_maruyama_sample, ode_sample  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file(
    "config", str(REPO / "configs/score_sde/cifar10.py") + ":variant=vp_ddpm", "Score-SDE config.")
_BATCH = flags.DEFINE_integer("batch_size", 64, "Sampling batch size.")
_REPEATS = flags.DEFINE_integer("repeats", 3, "Timed evaluations (after one warm-up).")
_CHECK = flags.DEFINE_integer("check_steps", 3, "Steps of the end-to-end check sampler.")
_OUT = flags.DEFINE_string("markdown_out", "", "Also write the table to this file.")

SAMPLERS = [
    # name, NFE, note
    ("PC (reverse diffusion + Langevin, N=1000, 1 corrector step)", 2000, ""),
    ("Euler-Maruyama (N=1000)", 1000, ""),
    ("DDIM (50 steps, eta=0)", 50, ""),
]


def _timed(fn, *args, repeats):
  jax.block_until_ready(fn(*args))  # compile + warm-up
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - start)
  return statistics.median(times)


def _gaussian_nfe(sde, shape):
  """NFE of the rk45 sampler and of the likelihood ODE with the exact score of Gaussian data
  N(mu, s^2) per pixel (mu, s drawn like CIFAR-10 statistics)."""
  rng = np.random.default_rng(0)
  mu = jnp.asarray(rng.uniform(-0.3, 0.1, shape[1:]), jnp.float32)[None]
  s = jnp.asarray(rng.uniform(0.4, 0.6, shape[1:]), jnp.float32)[None]

  def score(x, t):
    m, std = sde.marginal_coef(t)
    m, std = batch_bcast(m, x), batch_bcast(std, x)
    return -(x - m * mu) / (m**2 * s**2 + std**2)

  out = jax.jit(lambda r: ode_sample(score, sde, rng=r, shape=shape, prediction="score",
                                           method="rk45"))(
      jax.random.key(0))
  x = mu + s * jax.random.normal(jax.random.key(1), shape)
  lik = jax.jit(lambda x, r: ode_likelihood(score, sde, x, prediction="score", rng=r))(
      x, jax.random.key(2))
  return out.nfe, int(lik.nfe)


def main(argv):
  del argv
  config = _CONFIG.value
  b = _BATCH.value
  info = DatasetInfo(image_shape=(32, 32, 3), num_classes=10, num_examples=50_000)
  method = build_method(config, info)
  shape = (b, 32, 32, 3)
  state = jax.jit(method.init)(jax.random.key(0), {"image": jnp.zeros((1, 32, 32, 3))})
  params = state.ema_params
  n_params = sum(p.size for p in jax.tree.leaves(params))
  x = jax.random.normal(jax.random.key(1), shape)
  t = jnp.full((b,), 0.5)

  score = jax.jit(lambda p, x, t: method.model.apply(p, x, t, None, train=False))
  t_eval = _timed(score, params, x, t, repeats=_REPEATS.value)

  def drift_jvp(p, x, t, probe):
    rsde = method.sde.reverse(lambda y, s: method.model.apply(p, y, s, None, train=False),
                              probability_flow=True)
    return jax.jvp(lambda y: rsde.sde(y, t)[0], (x,), (probe,))

  probe = jax.random.rademacher(jax.random.key(2), shape, jnp.float32)
  t_jvp = _timed(jax.jit(drift_jvp), params, x, t, probe, repeats=_REPEATS.value)

  sde_small = dataclasses.replace(method.sde, N=_CHECK.value)
  em = jax.jit(lambda p, r: euler_maruyama_sample(
      lambda x, t: method.model.apply(p, x, t, None, train=False), sde_small, rng=r,
      shape=shape, prediction="score", denoise=False).samples)
  t_check = _timed(em, params, jax.random.key(3), repeats=1)

  ode_nfe, lik_nfe = _gaussian_nfe(method.sde, shape)

  load = os.getloadavg()
  rows = [
      ("device", f"{jax.devices()[0].device_kind} x{jax.device_count()} ({jax.default_backend()})"),
      ("load average (1/5/15 min)", f"{load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}"),
      ("config", f"{Path(config_flags.get_config_filename(flags.FLAGS['config'])).name}"
                 f" ({config.model.name}, {n_params / 1e6:.1f}M parameters), batch {b}"),
      ("t_eval: one score evaluation", f"{t_eval:.3f} s"),
      ("t_jvp: one likelihood drift + JVP", f"{t_jvp:.3f} s"),
      (f"check: Euler-Maruyama, {_CHECK.value} steps end to end",
       f"{t_check:.3f} s measured vs {_CHECK.value * t_eval:.3f} s = steps x t_eval"),
  ]
  table = ["| sampler | NFE | s / batch | images / s |", "| --- | ---: | ---: | ---: |"]
  for name, nfe, _ in SAMPLERS + [("Probability-flow ODE, adaptive RK45 (rtol=atol=1e-5)",
                                   ode_nfe, "")]:
    sec = nfe * t_eval
    table.append(f"| {name} | {nfe} | {sec:.1f} (extrapolated) | {b / sec:.4f} |")
  lik_sec = lik_nfe * t_jvp / b
  lines = ["| quantity | value |", "| --- | --- |"]
  lines += [f"| {k} | {v} |" for k, v in rows]
  lines += ["", *table, "",
            f"Bits/dim through the probability-flow ODE (Hutchinson, rtol=atol=1e-5): "
            f"NFE {lik_nfe}, {lik_sec:.2f} s per image (extrapolated: NFE x t_jvp / batch).",
            "",
            "Adaptive NFEs are measured with the exact score of per-pixel Gaussian data of the "
            "same shape (a random network's NFE means nothing); a trained model needs more "
            "(the paper reports ~100-200). Times other than the check row are extrapolated "
            "from timed single evaluations."]
  text = "\n".join(lines)
  print(text)
  if _OUT.value:
    Path(_OUT.value).write_text(text + "\n")


if __name__ == "__main__":
  app.run(main)
