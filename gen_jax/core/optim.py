"""Optimisers from the config: optax transformations with warm-up, decay and clipping.

Config fields (`config.optim`, or a sub-config such as a GAN's `optim_g`):
  name: "adam" | "adamw" | "adamax" | "sgd" | "rmsprop"
  learning_rate: peak learning rate.
  warmup_steps: linear warm-up from 0 to the peak (0 disables).
  schedule: "constant" | "cosine" | "linear" decay after the warm-up, over the run;
    "constant_then_linear" holds the peak for the first half, then decays linearly to 0.
  b1, b2, eps: Adam-family moments; momentum (sgd): heavy-ball momentum, 0 for plain SGD.
  weight_decay: decoupled weight decay (adamw).
  grad_clip_norm: clip the global gradient norm to this value (0 disables).
"""

from __future__ import annotations

from typing import Any, Mapping

import jax
import jax.numpy as jnp
import optax

from gen_jax.core.registry import Registry

OPTIMIZERS: Registry = Registry("optimizer")
LR_SCHEDULES: Registry = Registry("learning-rate schedule")

OPTIMIZERS.add("adam", lambda lr, c: optax.adam(lr, b1=c["b1"], b2=c["b2"], eps=c["eps"]))
OPTIMIZERS.add("adamw", lambda lr, c: optax.adamw(
    lr, b1=c["b1"], b2=c["b2"], eps=c["eps"], weight_decay=c["weight_decay"]))
OPTIMIZERS.add("adamax", lambda lr, c: optax.adamax(lr, b1=c["b1"], b2=c["b2"], eps=c["eps"]))
OPTIMIZERS.add("sgd", lambda lr, c: optax.sgd(lr, momentum=c["momentum"] or None))
OPTIMIZERS.add("rmsprop", lambda lr, c: optax.rmsprop(lr, eps=c["eps"]))

LR_SCHEDULES.add("constant", lambda peak, steps: optax.constant_schedule(peak))
LR_SCHEDULES.add("cosine", lambda peak, steps: optax.cosine_decay_schedule(peak, max(steps, 1)))
LR_SCHEDULES.add("linear", lambda peak, steps: optax.linear_schedule(peak, 0.0, max(steps, 1)))
# Constant for the first half of the steps, then linear to 0 over the second half (CycleGAN:
# "the same learning rate for the first 100 epochs, linearly decayed to zero over the next 100").
LR_SCHEDULES.add("constant_then_linear", lambda peak, steps: optax.join_schedules(
    [optax.constant_schedule(peak),
     optax.linear_schedule(peak, 0.0, max(steps - steps // 2, 1))], [steps // 2]))

_DEFAULTS = dict(b1=0.9, b2=0.999, eps=1e-8, momentum=0.0, weight_decay=0.0,
                 warmup_steps=0, schedule="constant", grad_clip_norm=0.0)


def learning_rate_schedule(cfg: Mapping[str, Any], num_train_steps: int) -> optax.Schedule:
  """Linear warm-up to `learning_rate`, then the named decay over the remaining steps."""
  c = {**_DEFAULTS, **dict(cfg)}
  warmup = int(c["warmup_steps"])
  decay = LR_SCHEDULES.get(c["schedule"])(c["learning_rate"], num_train_steps - warmup)
  if warmup <= 0:
    return decay
  ramp = optax.linear_schedule(0.0, c["learning_rate"], warmup)
  return optax.join_schedules([ramp, decay], [warmup])


def build_optimizer(cfg: Mapping[str, Any], num_train_steps: int,
                    updates_per_step: int = 1) -> optax.GradientTransformation:
  """The optax transformation described by `cfg` (see the module docstring).

  The schedule (warm-up and decay) is one of training steps. `updates_per_step` > 1 is for
  an optimiser applied several times per training step (a GAN discriminator with n_dis
  steps per generator step): its k-th training step's updates all use the schedule's value
  at k, so it warms up and decays with the training steps (Miyato et al.'s SNGAN code and
  WGAN-GP decay both networks per generator iteration).
  """
  c = {**_DEFAULTS, **dict(cfg)}
  if c["learning_rate"] <= 0:
    raise ValueError(f"optim.learning_rate must be positive, got {c['learning_rate']}.")
  if int(updates_per_step) < 1:
    raise ValueError(f"updates_per_step must be >= 1, got {updates_per_step}.")
  schedule = learning_rate_schedule(c, num_train_steps)
  per = int(updates_per_step)
  lr = schedule if per == 1 else (lambda count: schedule(count // per))
  tx = OPTIMIZERS.get(c["name"])(lr, c)
  if c["grad_clip_norm"] and c["grad_clip_norm"] > 0:
    tx = optax.chain(optax.clip_by_global_norm(c["grad_clip_norm"]), tx)
  return tx


# The norms of `apply_gradients` that describe the update applied (not one batch's gradient).
APPLIED_UPDATE_METRICS = ("param_norm", "update_norm")


def apply_gradients(
    tx: optax.GradientTransformation, grads, opt_state, params, prefix: str = ""
) -> tuple[Any, Any, dict[str, jax.Array]]:
  """One optimiser step; returns (params, opt_state, norms).

  The norms (`grad_norm`, `param_norm`, `update_norm`, each prefixed with `prefix`) are the
  global L2 norms the trainer checks for NaN/Inf and logs.
  """
  updates, opt_state = tx.update(grads, opt_state, params)
  new_params = optax.apply_updates(params, updates)
  norms = {
      f"{prefix}grad_norm": optax.tree.norm(grads),
      f"{prefix}param_norm": optax.tree.norm(new_params),
      f"{prefix}update_norm": optax.tree.norm(updates),
  }
  return new_params, opt_state, jax.tree.map(lambda x: x.astype(jnp.float32), norms)
