"""Mode coverage of the toy GAN and DDGAN configs on the 8- and 25-Gaussian mixtures.

Trains each config for --steps updates (+ EMA) in one jitted scan on fresh draws of the
mixture (seed 0), then draws --num_samples EMA samples (after the method's
prepare_sampling, e.g. BigGAN's standing statistics) and prints, per (config, data,
steps): modes covered (a mode counts when a sample lies within 3 std of it) and the
high-quality fraction (samples within 3 std of some mode), the protocol of VEEGAN /
PacGAN (gen_jax.gan.monitoring). The keys, batches and EMA are those of the coverage tests
(tests/gan/test_gan_method.py::_train_on_mixture), which compile with XLA's backend
optimisations off, so a number here can differ slightly from the test's.

    python experiments/bench/gan_mixture_coverage.py \
        --configs=gan/toy_eight_gaussians.py,gan/ddgan_toy_eight_gaussians.py \
        --data=eight_gaussians,twenty_five_gaussians --steps=2000
"""

from __future__ import annotations

import argparse
import importlib.util
import pathlib
import time

import jax
import jax.numpy as jnp

from gen_jax.data import DatasetInfo, toy
from gen_jax.gan import monitoring
from gen_jax.methods.base import build_method
from gen_jax.core.state import update_ema

REPO = pathlib.Path(__file__).resolve().parents[2]


def load_config(relpath: str, overrides: list[str]):
  """configs/<relpath> ("gan/x.py" or with its argument, "gan/x.py:lr=5e-4"), overridden."""
  relpath, _, arg = relpath.partition(":")
  path = REPO / "configs" / relpath
  spec = importlib.util.spec_from_file_location(f"cfg_{path.stem}", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  c = module.get_config(arg or None)
  for item in overrides:
    key, value = item.split("=", 1)
    node = c
    *parents, leaf = key.split(".")
    for p in parents:
      node = node[p]
    node[leaf] = type(node[leaf])(eval(value))  # pylint: disable=eval-used
  return c


def coverage(config_name: str, data: str, steps: int, num_samples: int, seed: int,
             overrides: list[str]) -> dict[str, float]:
  """Trains `config_name` on the mixture `data` for `steps` updates; EMA sample metrics."""
  dist = toy.TOY_DISTRIBUTIONS.get(data)
  modes = jnp.asarray(dist.modes)
  k = modes.shape[0]
  c = load_config(config_name, overrides)
  c.data.name = data
  method = build_method(c, DatasetInfo((2,), k, 20_000))
  b = c.batch_size

  def batch(key):
    kc, kn = jax.random.split(key)
    comp = jax.random.randint(kc, (b,), 0, k)
    return {"image": modes[comp] + dist.mode_std * jax.random.normal(kn, (b, 2)),
            "label": comp.astype(jnp.int32)}

  state = jax.jit(method.init)(jax.random.key(seed), batch(jax.random.key(seed)))

  @jax.jit
  def train(state, key):
    def body(s, kk):
      new, _ = method.update(s, batch(jax.random.fold_in(kk, 1)), kk)
      return update_ema(new.replace(step=s.step + 1), c.ema.decay, c.ema.warmup,
                        c.ema.get("start", 0)), None
    state, _ = jax.lax.scan(body, state, jax.random.split(key, steps))
    state = method.prepare_sampling(state, jax.random.key(6))  # BigGAN: standing statistics
    samples = method.sample(state, jax.random.key(5), num_samples).samples
    return monitoring.mode_metrics(samples, modes, dist.mode_std)

  return {n: float(v) for n, v in train(state, jax.random.key(seed + 1)).items()}


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--configs", default="gan/toy_eight_gaussians.py,"
                      "gan/ddgan_toy_eight_gaussians.py")
  parser.add_argument("--data", default="eight_gaussians,twenty_five_gaussians")
  parser.add_argument("--steps", default="2000")
  parser.add_argument("--num_samples", type=int, default=2000)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--set", action="append", default=[],
                      help="config override, e.g. --set=method.r1_gamma=0.05")
  args = parser.parse_args()
  print(f"jax {jax.__version__}; {jax.device_count()} x {jax.devices()[0].platform}; "
        f"seed {args.seed}; {args.num_samples} EMA samples; overrides {args.set}\n")
  print("| config | data | steps | modes covered | high quality | wall s |")
  print("| --- | --- | ---: | ---: | ---: | ---: |")
  for config_name in args.configs.split(","):
    for data in args.data.split(","):
      for steps in map(int, args.steps.split(",")):
        start = time.time()
        m = coverage(config_name, data, steps, args.num_samples, args.seed, args.set)
        k = len(toy.TOY_DISTRIBUTIONS.get(data).modes)
        print(f"| {config_name} | {data} | {steps} | {m['modes_covered']:.0f}/{k} | "
              f"{m['high_quality']:.3f} | {time.time() - start:.0f} |", flush=True)


if __name__ == "__main__":
  main()
