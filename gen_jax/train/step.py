"""The jitted training step: the method's update plus what every family shares.

`make_train_step` wraps `method.update` with the step counter, the EMA update, a finiteness
flag over every metric, and a clu metrics collection that averages the metrics between
two log steps on device; it is jitted once with the state donated and explicit shardings.

Gradient accumulation (`config.grad_accum_steps` = k > 1): the global batch is cut into k
micro-batches (micro-batch i holds rows i, i + k, i + 2k, ..., so every device keeps its
share of each) and `method.update` runs on each in a `lax.scan`, with the step key folded
with i. The method's optimiser was wrapped by `Method.with_grad_accumulation`: it applies
the mean of the k gradients on the last micro-step, i.e. the update of the whole batch.
Only one micro-batch's activations are alive at a time.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
from clu import metrics as clu_metrics

from gen_jax.methods.base import Method
from gen_jax.core import sharding as sharding_lib
from gen_jax.core.optim import APPLIED_UPDATE_METRICS
from gen_jax.core.state import TrainState, update_ema


class NonFiniteError(FloatingPointError):
  """A training step produced a NaN or infinite loss, norm or other metric."""


def metrics_collection(metric_names: list[str]) -> type[clu_metrics.Collection]:
  """A clu Collection that averages each scalar metric over the steps it has seen."""
  return clu_metrics.Collection.create(
      **{name: clu_metrics.Average.from_output(name) for name in metric_names})


def metric_names(method: Method, abstract_state: TrainState, abstract_batch: Any, key: jax.Array) -> list[str]:
  """Names of the scalar metrics `method.update` returns (traced, nothing computed)."""
  _, metrics = jax.eval_shape(method.update, abstract_state, abstract_batch, key)
  for name, value in metrics.items():
    if value.shape != ():
      raise ValueError(f"{type(method).__name__}.update returned metric {name!r} of shape "
                       f"{value.shape}; update metrics must be scalars.")
  return sorted(metrics)


def micro_batches(batch: Any, steps: int) -> Any:
  """[B, ...] arrays -> [steps, B / steps, ...]; micro-batch i holds rows i, i + steps, ..."""

  def split(x):
    if x.shape[0] % steps:
      raise ValueError(f"The batch of {x.shape[0]} rows does not split into "
                       f"config.grad_accum_steps={steps} micro-batches; choose a batch size "
                       f"divisible by {steps}.")
    return jnp.swapaxes(x.reshape(x.shape[0] // steps, steps, *x.shape[1:]), 0, 1)

  return jax.tree.map(split, batch)


def accumulated_update(method: Method, steps: int) -> Callable:
  """`update(state, batch, rng)` running `method.update` on `steps` micro-batches in turn.

  The metrics are averaged over the micro-batches, except those describing the applied
  update (`APPLIED_UPDATE_METRICS`: param_norm, update_norm), taken from the last one.
  `grad_norm` is the mean of the micro-batch gradient norms (not the norm of their mean).
  """
  if steps == 1:
    return method.update

  def update(state: TrainState, batch, rng):
    def body(s, inputs):
      micro, i = inputs
      return method.update(s, micro, jax.random.fold_in(rng, i))

    state, metrics = jax.lax.scan(body, state, (micro_batches(batch, steps), jnp.arange(steps)))
    last = lambda name: name.endswith(APPLIED_UPDATE_METRICS)
    return state, {k: v[-1] if last(k) else jnp.mean(v, axis=0) for k, v in metrics.items()}

  return update


def make_train_step(method: Method, collection: type[clu_metrics.Collection], mesh,
                    ema_decay: float, ema_warmup: bool, ema_start: int = 0,
                    grad_accum_steps: int = 1, state_sharding: Any = None) -> Callable:
  """Returns jitted `step(state, batch, loop_key, acc) -> (state, acc, metrics, finite)`.

  The step's random key is `fold_in(loop_key, state.step)`, so a resumed run draws exactly
  the keys an uninterrupted one would, with no key in the checkpoint.
  `finite` is a bool scalar: every metric of this step is finite.
  `grad_accum_steps` > 1 needs a method built with that setting (see the module docstring).
  `state_sharding`: the train state's shardings (`sharding.state_shardings`); None
  replicates it.
  """
  update = accumulated_update(method, int(grad_accum_steps))

  def step(state: TrainState, batch, loop_key, acc):
    rng = jax.random.fold_in(loop_key, state.step)
    new_state, metrics = update(state, batch, rng)
    new_state = update_ema(new_state.replace(step=state.step + 1), ema_decay, ema_warmup,
                           ema_start)
    finite = jnp.all(jnp.stack([jnp.all(jnp.isfinite(v)) for v in metrics.values()]))
    acc = acc.merge(collection.single_from_model_output(**metrics))
    return new_state, acc, metrics, finite

  rep = sharding_lib.replicated(mesh)
  data = sharding_lib.batch_sharding(mesh)
  st = rep if state_sharding is None else state_sharding
  return jax.jit(step, in_shardings=(st, data, rep, rep),
                 out_shardings=(st, rep, rep, rep), donate_argnums=(0, 3))


def check_finite(step: int, finite: jax.Array, metrics: dict[str, jax.Array],
                 last_checkpoint_step: int | None) -> None:
  """Raises NonFiniteError naming the step and its metrics if `finite` is False."""
  if bool(finite):
    return
  values = {k: float(v) for k, v in jax.device_get(metrics).items()}
  bad = sorted(k for k, v in values.items() if not jnp.isfinite(v))
  saved = (f"The last checkpoint (step {last_checkpoint_step}) was written before this step and "
           "is intact; the run will resume from it." if last_checkpoint_step is not None
           else "No checkpoint was written.")
  raise NonFiniteError(
      f"Training step {step} produced non-finite {', '.join(bad)} "
      f"(metrics: {', '.join(f'{k}={v:.4g}' for k, v in sorted(values.items()))}). "
      f"Nothing from this step was saved. {saved} Common fixes: lower optim.learning_rate, "
      "set optim.grad_clip_norm (e.g. 1.0), lengthen optim.warmup_steps, or check the data "
      "for NaNs.")


def empty_like_collection(collection: type[clu_metrics.Collection], mesh) -> Any:
  """An empty metrics accumulator placed on the mesh (replicated)."""
  return jax.device_put(collection.empty(), sharding_lib.replicated(mesh))


