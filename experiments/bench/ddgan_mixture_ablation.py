"""Diagnostics of the toy DDGAN on the 25-Gaussian grid (issue 10, bug 6): ablation runs.

Trains configs/gan/ddgan_toy_eight_gaussians.py (or any toy GAN config) on fresh draws of
a mixture, optionally with the generator and/or discriminator replaced by the small
variants below, and prints every --chunk steps:

* gap: mean d_real - d_fake over the chunk's last 100 steps (a GAN discriminator that
  resolves the modes shows a growing gap; a stalled one stays at ~0.00x);
* EMA chain samples: modes covered and the high-quality fraction; raw_hq: the same with
  the raw (non-EMA) generator;
* x0hq@t: high-quality fraction of the EMA generator's x0 prediction from REAL x_t, per t
  (t = 0 is the final step: from real x_0 it must land on the modes);
* gap@t: d_real - d_fake per t on one batch.

Variants (a Python dict of keyword arguments, --g for `ToyG`, --d for `ToyD`):
  ToyG: act relu|silu|..., zmode raw (z concatenated) | map (LatentEmbedding),
        tmode embed (TimeEmbedding) | onehot | scalar | none, xt_in (sees x_t),
        bound (output_bound), per_t (one MLP per timestep).
  ToyD: tmode embed (TimeEmbedding added per layer, as MLPDiscriminator) | onehot (input) |
        none, zero_t (zero-initialised per-layer time projections), xt_in (sees x_t),
        zero_xt (zero-initialised first-layer weights on x_t), per_t (one MLP per t).
--tprobs trains on a non-uniform distribution of t (e.g. 1,0,0,0: only the final step),
by substituting the `jax.random.randint` that DDGAN.update draws t with (a diagnostic
hack, not an option of the method). The recorded runs are in gan_mixture_coverage_cpu.md.

    python experiments/bench/ddgan_mixture_ablation.py --steps=2000 --chunk=1000 \
        --g="dict(act='relu', tmode='onehot', bound=3.0)" --d="dict(xt_in=False)" \
        --tprobs=1,0,0,0
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import pathlib
import time

import flax.linen as nn
import jax
import jax.numpy as jnp

from gen_jax.data import DatasetInfo, toy
from gen_jax.gan import monitoring
from gen_jax.methods.base import build_method
from gen_jax.methods.gan import D as D_KEY, G as G_KEY
from gen_jax.core.state import update_ema
from gen_jax.nets import gan as gnets

REPO = pathlib.Path(__file__).resolve().parents[2]
ACTS = dict(relu=nn.relu, silu=nn.silu, lrelu=lambda x: nn.leaky_relu(x, 0.2), elu=nn.elu,
            tanh=jnp.tanh)


def load_config(relpath: str, overrides: list[str]):
  path = REPO / "configs" / relpath
  spec = importlib.util.spec_from_file_location("cfg", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  c = module.get_config(None)
  c.unlock()
  for item in overrides:
    key, value = item.split("=", 1)
    node = c
    *parents, leaf = key.split(".")
    for p in parents:
      node = node[p]
    node[leaf] = eval(value)  # pylint: disable=eval-used
  return c


class ToyG(nn.Module):
  """x0 = G(x_t, t, z) [B, 2]: an MLP with the inputs chosen by the fields."""

  hidden: tuple = (128, 128, 128)
  act: str = "relu"
  zmode: str = "raw"
  tmode: str = "embed"
  T: int = 4
  bound: float = 0.0
  xt_in: bool = True
  num_classes: int = 0
  per_t: bool = False

  @nn.compact
  def __call__(self, x_t, t, z, y=None, *, train):
    onehot = jax.nn.one_hot(t.astype(jnp.int32), self.T)
    if self.per_t:
      kw = dict(hidden=self.hidden, act=self.act, zmode=self.zmode, tmode="none", T=self.T,
                bound=self.bound, xt_in=self.xt_in)
      outs = jnp.stack([ToyG(**kw, name=f"head{i}")(x_t, t, z, y, train=train)
                        for i in range(self.T)], 1)
      return jnp.sum(outs * onehot[:, :, None], 1)
    parts = [x_t] if self.xt_in else []
    if self.zmode == "raw":
      parts.append(z)
    elif self.zmode == "map":
      zz = gnets.LatentEmbedding(64, 2)(z)
    if self.tmode == "embed":
      e = gnets.TimeEmbedding(64)(t)
      parts.append(e + zz if self.zmode == "map" else e)
    else:
      if self.zmode == "map":
        parts.append(zz)
      if self.tmode == "onehot":
        parts.append(onehot)
      elif self.tmode == "scalar":
        parts.append((t / max(self.T - 1, 1))[:, None])
    h = jnp.concatenate(parts, 1)
    for w in self.hidden:
      h = ACTS[self.act](nn.Dense(w)(h))
    return gnets.bounded_output(nn.Dense(x_t.shape[-1])(h), self.bound)


class ToyD(nn.Module):
  """D(concat[x_{t-1}, x_t], t) -> logits [B]: a leaky-ReLU MLP (MLPDiscriminator's layout)."""

  hidden: tuple = (128, 128, 128)
  tmode: str = "embed"
  T: int = 4
  xt_in: bool = True
  num_classes: int = 0
  time_embed_dim: int = 64
  zero_t: bool = False
  zero_xt: bool = False
  act: str = "lrelu"
  per_t: bool = False

  @nn.compact
  def __call__(self, x, y=None, t=None, *, train):
    if self.per_t:
      kw = dict(hidden=self.hidden, tmode="none", T=self.T, xt_in=self.xt_in,
                zero_xt=self.zero_xt, act=self.act)
      outs = jnp.stack([ToyD(**kw, name=f"head{i}")(x, y, t, train=train)
                        for i in range(self.T)], 1)
      return jnp.sum(outs * jax.nn.one_hot(t.astype(jnp.int32), self.T), 1)
    if not self.xt_in:
      x = x[:, :x.shape[1] // 2]
    h = x
    if self.tmode == "onehot":
      h = jnp.concatenate([h, jax.nn.one_hot(t.astype(jnp.int32), self.T)], 1)
    temb = gnets.TimeEmbedding(64)(t) if self.tmode == "embed" else None
    t_init = nn.initializers.zeros if self.zero_t else nn.initializers.lecun_normal()
    for i, w in enumerate(self.hidden):
      if i == 0 and self.zero_xt and self.xt_in:
        d = x.shape[1] // 2
        h = (nn.Dense(w)(jnp.concatenate([h[:, :d], h[:, 2 * d:]], 1))
             + nn.Dense(w, use_bias=False, kernel_init=nn.initializers.zeros)(h[:, d:2 * d]))
      else:
        h = nn.Dense(w)(h)
      if temb is not None:
        h = h + nn.Dense(w, kernel_init=t_init)(temb)
      h = ACTS[self.act](h)
    return nn.Dense(1)(h)[:, 0]


def substitute_t_distribution(probs: jax.Array) -> None:
  """Makes DDGAN.update draw t from `probs` instead of uniformly (diagnostics only)."""
  import gen_jax.methods.ddgan as ddgan_module  # pylint: disable=g-import-not-at-top

  class _Random:
    def __getattr__(self, name):
      return getattr(jax.random, name)

    def randint(self, key, shape, lo, hi):
      del lo, hi
      return jax.random.categorical(key, jnp.log(probs + 1e-30), shape=shape).astype(jnp.int32)

  class _Jax:
    random = _Random()

    def __getattr__(self, name):
      return getattr(jax, name)

  ddgan_module.jax = _Jax()


def per_t_report(method, state, batch, modes, std, num_timesteps) -> str:
  """x0hq@t (EMA G from real x_t) and gap@t (raw G, current D) for each t."""
  x0 = jnp.concatenate([batch(jax.random.key(77 + i))["image"] for i in range(4)])
  hq, gaps = [], []
  for tt in range(num_timesteps):
    t = jnp.full((x0.shape[0],), tt, jnp.int32)
    x_prev, x_t = method.q_pair(jax.random.key(78), x0, t)
    _, x0h, _ = method.fake_prev(state.ema_params[G_KEY], state.model_state[G_KEY],
                                 jax.random.key(79), x_t, t, None, train=False)
    hq.append(float(monitoring.mode_metrics(x0h, modes, std)["high_quality"]))
    fake, _, _ = method.fake_prev(state.params[G_KEY], state.model_state[G_KEY],
                                  jax.random.key(80), x_t, t, None, train=False)
    d = lambda v: method.discriminate(state.params[D_KEY], state.model_state[D_KEY], v, x_t,
                                      t, None, train=False)[0]
    gaps.append(float(jnp.mean(d(x_prev)) - jnp.mean(d(fake))))
  return ("x0hq@t " + ",".join(f"{v:.2f}" for v in hq) + " gap@t "
          + ",".join(f"{v:.3f}" for v in gaps))


def main():
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--config", default="gan/ddgan_toy_eight_gaussians.py")
  p.add_argument("--data", default="twenty_five_gaussians")
  p.add_argument("--steps", type=int, default=2000)
  p.add_argument("--chunk", type=int, default=500)
  p.add_argument("--seed", type=int, default=0)
  p.add_argument("--set", action="append", default=[], help="config override key=value")
  p.add_argument("--g", default="", help="ToyG keyword arguments as a Python dict")
  p.add_argument("--d", default="", help="ToyD keyword arguments as a Python dict")
  p.add_argument("--scale", type=float, default=1.0, help="scales the mixture (means, std)")
  p.add_argument("--tprobs", default="", help="training distribution of t, e.g. 1,0,0,0")
  a = p.parse_args()
  dist = toy.TOY_DISTRIBUTIONS.get(a.data)
  modes = jnp.asarray(dist.modes) * a.scale
  std = dist.mode_std * a.scale
  k = modes.shape[0]
  c = load_config(a.config, a.set)
  c.data.name = a.data
  method = build_method(c, DatasetInfo((2,), k, 20_000))
  is_ddgan = c.method.name == "ddgan"
  num_timesteps = int(c.method.num_timesteps) if is_ddgan else 1
  if a.g:
    method = dataclasses.replace(method, generator=ToyG(T=num_timesteps, **eval(a.g)))
  if a.d:
    method = dataclasses.replace(method, discriminator=ToyD(T=num_timesteps, **eval(a.d)))
  if a.tprobs:
    substitute_t_distribution(jnp.asarray([float(v) for v in a.tprobs.split(",")]))
  b = c.batch_size

  def batch(key):
    kc, kn = jax.random.split(key)
    comp = jax.random.randint(kc, (b,), 0, k)
    return {"image": modes[comp] + std * jax.random.normal(kn, (b, 2)), "label": comp}

  state = jax.jit(method.init)(jax.random.key(a.seed), batch(jax.random.key(a.seed)))

  @jax.jit
  def train(state, key):
    def body(s, kk):
      new, m = method.update(s, batch(jax.random.fold_in(kk, 1)), kk)
      new = update_ema(new.replace(step=s.step + 1), c.ema.decay, c.ema.warmup)
      return new, m["d_real"] - m["d_fake"]
    return jax.lax.scan(body, state, jax.random.split(key, a.chunk))

  @jax.jit
  def evaluate(state):
    s = method.sample(state, jax.random.key(5), 2000).samples
    out = {f"ema_{n}": v for n, v in monitoring.mode_metrics(s, modes, std).items()}
    raw = method.sample(state.replace(ema_params=state.params), jax.random.key(5), 2000)
    out["raw_hq"] = monitoring.mode_metrics(raw.samples, modes, std)["high_quality"]
    return out

  print(f"# config={a.config} set={a.set} g={a.g} d={a.d} scale={a.scale} "
        f"tprobs={a.tprobs} T={num_timesteps}", flush=True)
  key = jax.random.key(a.seed + 1)
  start = time.time()
  for i in range(a.steps // a.chunk):
    state, gaps = train(state, jax.random.fold_in(key, i))
    ev = evaluate(state)
    extra = (" " + per_t_report(method, state, batch, modes, std, num_timesteps)
             if is_ddgan else "")
    print(f"step {(i + 1) * a.chunk:5d} gap {float(jnp.mean(gaps[-100:])):.3f} "
          f"ema modes {float(ev['ema_modes_covered']):.0f} "
          f"hq {float(ev['ema_high_quality']):.3f} raw_hq {float(ev['raw_hq']):.3f}"
          f"{extra} ({time.time() - start:.0f}s)", flush=True)


if __name__ == "__main__":
  main()
