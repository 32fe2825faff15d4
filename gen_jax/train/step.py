"""The jitted training step: the method's update plus what every family shares.

`make_train_step` wraps `method.update` with the step counter, the EMA update, a finiteness
flag over every metric, and a clu metrics collection that averages the metrics between
two log steps on device; it is jitted once with the state donated and explicit shardings.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
from clu import metrics as clu_metrics

from gen_jax.methods.base import Method
from gen_jax.core import sharding as sharding_lib
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


def make_train_step(method: Method, collection: type[clu_metrics.Collection], mesh,
                    ema_decay: float, ema_warmup: bool, ema_start: int = 0) -> Callable:
  """Returns jitted `step(state, batch, loop_key, acc) -> (state, acc, metrics, finite)`.

  The step's random key is `fold_in(loop_key, state.step)`, so a resumed run draws exactly
  the keys an uninterrupted one would, with no key in the checkpoint.
  `finite` is a bool scalar: every metric of this step is finite.
  """

  def step(state: TrainState, batch, loop_key, acc):
    rng = jax.random.fold_in(loop_key, state.step)
    new_state, metrics = method.update(state, batch, rng)
    new_state = update_ema(new_state.replace(step=state.step + 1), ema_decay, ema_warmup,
                           ema_start)
    finite = jnp.all(jnp.stack([jnp.all(jnp.isfinite(v)) for v in metrics.values()]))
    acc = acc.merge(collection.single_from_model_output(**metrics))
    return new_state, acc, metrics, finite

  rep = sharding_lib.replicated(mesh)
  data = sharding_lib.batch_sharding(mesh)
  return jax.jit(step, in_shardings=(rep, data, rep, rep),
                 out_shardings=(rep, rep, rep, rep), donate_argnums=(0, 3))


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


