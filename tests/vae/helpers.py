"""Small VAE methods built from the configs, and a plain training loop, for the tests."""

from __future__ import annotations

import jax
import ml_collections
import numpy as np

from gen_jax.data import DatasetInfo
from gen_jax.methods.vae import build_vae
from tests.train.helpers import load_config


def small_vae(relpath: str, shape, *, model=None, likelihood=None, kl=None, optim=None,
              num_train_steps=None, **method):
  """The smoke config's VAE for data of `shape`, with overrides, built directly.

  `num_train_steps` sets the length of the learning-rate schedule.
  """
  c = load_config(relpath, "smoke")
  with c.unlocked():
    if num_train_steps:
      c.num_train_steps = num_train_steps
    for k, v in (model or {}).items():
      c.model[k] = v
    if likelihood is not None:
      c.method.likelihood = ml_collections.ConfigDict(likelihood)
    for k, v in (kl or {}).items():
      c.method.kl[k] = v
    for k, v in (optim or {}).items():
      c.optim[k] = v
    for k, v in method.items():
      c.method[k] = v
  return build_vae(c, DatasetInfo(tuple(shape), 0, 64))


def train(method, batches, steps, seed=0):
  """`steps` updates of `method` on batches(step); EMA parameters set to the final ones."""
  state = method.init(jax.random.key(seed), None)
  update = jax.jit(method.update, donate_argnums=0)
  for step in range(steps):
    state, metrics = update(state, batches(step), jax.random.key(step))
    state = state.replace(step=state.step + 1)
  assert np.isfinite(float(metrics["loss"]))
  return state.replace(ema_params=state.params)


def mean_eval(method, state, batch, num_keys=1):
  """Split averages of `evaluate` over `num_keys` evaluation keys, summarised."""
  evaluate = jax.jit(method.evaluate)
  sums = {}
  for i in range(num_keys):
    for k, v in evaluate(state, batch, jax.random.key(1000 + i)).items():
      sums[k] = sums.get(k, 0.0) + float(np.mean(v)) / num_keys
  return method.summarize_eval(sums)
