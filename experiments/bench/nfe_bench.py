"""Sample quality against NFE on an MNIST DDPM: DDIM, EDM Heun, DPM-Solver++(2M) and the
progressively distilled student, scored by the offline classifier Frechet distance.

    python experiments/bench/nfe_bench.py --teacher_workdir=runs/mnist_v \\
      --student_workdir=runs/mnist_pd --classifier_workdir=runs/cls_mnist \\
      --real_path=../shared/data/mnist/t10k-images-idx3-ubyte.gz --nfe=4,8,16,35 \\
      --num_samples=2000

Prints a markdown table, one row per sampler and one column per requested NFE. Each cell
is the Frechet distance between --num_samples samples and the first --num_real real images
in the penultimate-feature space of the classifier run (`gen_jax.eval.features`, the
"classifier" extractor; `gen_jax.eval.metrics.frechet_distance`), with the NFE actually
spent in brackets where it differs from the column's:

* ddim: deterministic DDIM (eta = 0, uniform spacing), S = NFE steps.
* heun: `edm_heun` on the chain (steps in x/alpha against sigma/alpha), nfe = 2n - 1, so
  n = (NFE + 1) // 2 grid points: 3/7/15/35 evaluations for the 4/8/16/35 columns.
* dpm_solver_2m: DPM-Solver++(2M), S = NFE steps.
* student: the progressive-distillation run's student of S = NFE DDIM steps, read from the
  checkpoint that ends the phase producing an S-step student (the run must keep those
  checkpoints: trainer.checkpoint_every_steps = steps_per_phase and keep_last_checkpoints
  >= the number of phases); "-" where no phase produced S steps (e.g. 35).

Every sampler gets the same rng per batch (--seed) and uses the teacher's EMA
parameters (the student its own); DDIM and DPM-Solver++ clip their x0 estimate to [-1, 1]
(the run's sample.clip_x0), Heun has no such option; final samples are clipped by
`Diffusion.sample`.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import subprocess
import sys
import time
import types

_REPO = pathlib.Path(__file__).resolve().parents[2]
if str(_REPO) not in sys.path:
  sys.path.insert(0, str(_REPO))

import jax  # noqa: E402
import numpy as np  # noqa: E402

from gen_jax.core.sample import SampleSpec  # noqa: E402
from gen_jax.data import sources  # noqa: E402
from gen_jax.eval import features as features_lib  # noqa: E402
from gen_jax.eval import metrics  # noqa: E402
from gen_jax.methods import pretrained  # noqa: E402

SAMPLERS = ("ddim", "heun", "dpm_solver_2m", "student")


def sampler_request(name: str, nfe: int) -> SampleSpec:
  """The SampleSpec that spends about `nfe` evaluations with sampler `name` (teacher)."""
  if name == "ddim":
    return SampleSpec(sampler="ddim", sampler_options={"num_steps": nfe, "eta": 0.0})
  if name == "heun":
    return SampleSpec(sampler="edm_heun", sampler_options={"num_steps": (nfe + 1) // 2})
  if name == "dpm_solver_2m":
    return SampleSpec(sampler="dpm_solver_2m", sampler_options={"num_steps": nfe})
  raise ValueError(f"unknown sampler {name!r}; choose from {', '.join(SAMPLERS)}.")


def student_checkpoints(workdir: str) -> dict[int, int]:
  """{student steps: checkpoint step} of the phase ends kept in a distillation run."""
  config = json.loads((pathlib.Path(workdir) / "config.json").read_text())
  m = config["method"]
  per = int(m["steps_per_phase"])
  phases = (int(m["teacher_steps"]) // int(m["student_steps"])).bit_length() - 1
  kept = {int(p.name) for p in (pathlib.Path(workdir) / "checkpoints").iterdir()
          if p.name.isdigit()}
  return {int(m["teacher_steps"]) >> (p + 1): per * (p + 1) for p in range(phases)
          if per * (p + 1) in kept}


def draw(method, params, spec: SampleSpec, num: int, batch: int, seed: int):
  """num samples [num, H, W, C] in [-1, 1] and the NFE per sample."""
  state = types.SimpleNamespace(ema_params=params)
  fn = jax.jit(lambda key: method.sample(state, key, batch, spec))
  out, nfe = [], 0
  for i in range(-(-num // batch)):
    res = fn(jax.random.fold_in(jax.random.key(seed), i))
    out.append(np.asarray(res.samples))
    nfe = res.nfe
  return np.concatenate(out)[:num], nfe


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--teacher_workdir", required=True)
  p.add_argument("--student_workdir", default="")
  p.add_argument("--classifier_workdir", required=True)
  p.add_argument("--real_path", required=True, help="MNIST IDX images (the reference set)")
  p.add_argument("--nfe", default="4,8,16,35")
  p.add_argument("--samplers", default=",".join(SAMPLERS))
  p.add_argument("--num_samples", type=int, default=2000)
  p.add_argument("--num_real", type=int, default=10000)
  p.add_argument("--batch_size", type=int, default=500)
  p.add_argument("--seed", type=int, default=0)
  a = p.parse_args(argv)
  nfes = [int(n) for n in a.nfe.split(",")]
  names = a.samplers.split(",")

  real = sources.read_idx(a.real_path)[: a.num_real, ..., None]
  info = sources.DatasetInfo(tuple(real.shape[1:]), 0, len(real))
  mesh = jax.sharding.Mesh(np.array(jax.devices()), ("data",))
  extractor = features_lib.build_feature_extractor(
      {"feature_extractor": "classifier", "classifier_workdir": a.classifier_workdir},
      info.image_shape, mesh)
  real_x = real.astype(np.float32) / 127.5 - 1.0
  mu_r, cov_r = metrics.feature_statistics(extractor(real_x)["pool"])

  def fd(samples):
    mu, cov = metrics.feature_statistics(extractor(samples)["pool"])
    return metrics.frechet_distance(mu_r, cov_r, mu, cov)

  def load(workdir, kinds, step=None):
    return pretrained.load_run(workdir, info, method_names=kinds, role="nfe_bench",
                               train_hint="see the module docstring", step=step)

  teacher = load(a.teacher_workdir, ("diffusion", "ddpm"))
  rows, t0 = {}, time.time()

  def progress(name, n, cell):
    print(f"# {name} NFE {n}: FD {cell[0]:.2f} (nfe {cell[1]}) at {time.time() - t0:.0f} s",
          file=sys.stderr, flush=True)

  for name in names:
    cells = {}
    if name == "student":
      kept = student_checkpoints(a.student_workdir) if a.student_workdir else {}
      for n in nfes:
        if n in kept:
          run = load(a.student_workdir, ("progressive_distillation",), step=kept[n])
          x, nfe = draw(run.method, run.params, SampleSpec(sampler_options={"num_steps": n}),
                        a.num_samples, a.batch_size, a.seed)
          cells[n] = (fd(x), nfe)
          progress(name, n, cells[n])
    else:
      for n in nfes:
        x, nfe = draw(teacher.method, teacher.params, sampler_request(name, n),
                      a.num_samples, a.batch_size, a.seed)
        cells[n] = (fd(x), nfe)
        progress(name, n, cells[n])
    rows[name] = cells
    print(f"# {name} done at {time.time() - t0:.0f} s", file=sys.stderr, flush=True)

  load_avg = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
  print(f"Classifier Frechet distance (lower is better) of {a.num_samples} samples vs "
        f"{len(real)} real MNIST test images; teacher step {teacher.step}; "
        f"{time.time() - t0:.0f} s on {jax.devices()[0].platform} ({load_avg}).\n")
  print("| sampler | " + " | ".join(f"NFE {n}" for n in nfes) + " |")
  print("|---|" + "---|" * len(nfes))
  for name, cells in rows.items():
    out = []
    for n in nfes:
      if n not in cells:
        out.append("-")
      else:
        v, used = cells[n]
        out.append(f"{v:.2f}" + ("" if used == n else f" ({used})"))
    print(f"| {name} | " + " | ".join(out) + " |")
  return 0


if __name__ == "__main__":
  sys.exit(main())
