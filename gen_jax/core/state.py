"""The train state shared by every family, and the EMA of its parameters.

Every family keeps its whole training state in one `TrainState` pytree, so the trainer
can jit, shard, checkpoint and restore it without knowing what is inside:

* `params`: the trainable parameters (a GAN keeps `{"generator": ..., "discriminator": ...}`);
* `opt_state`: the optimiser state(s) (a GAN keeps one per network);
* `ema_params`: an exponential moving average of `params`, used for sampling and evaluation;
* `model_state`: non-trainable variable collections (batch statistics, spectral-norm power
  iteration vectors, a flow's data-dependent initialisation), `{}` when there are none.
"""

from __future__ import annotations

from typing import Any

import flax
import jax
import jax.numpy as jnp
import optax

PyTree = Any


@flax.struct.dataclass
class TrainState:
  """Everything that changes during training; a pytree of arrays only.

  Attributes:
    step: int32 scalar, the number of optimisation steps taken.
    params: trainable parameters.
    opt_state: optimiser state(s).
    ema_params: exponential moving average of `params` (same structure).
    model_state: non-trainable variable collections, `{}` if the family has none.
  """

  step: jax.Array
  params: PyTree
  opt_state: PyTree
  ema_params: PyTree
  model_state: PyTree

  @classmethod
  def create(cls, params: PyTree, opt_state: PyTree, model_state: PyTree | None = None) -> "TrainState":
    """A state at step 0 whose EMA starts equal to the parameters."""
    return cls(
        step=jnp.zeros((), jnp.int32),
        params=params,
        opt_state=opt_state,
        ema_params=jax.tree.map(jnp.copy, params),
        model_state={} if model_state is None else model_state,
    )


def ema_decay(step: jax.Array, decay: float, warmup: bool, start: int = 0) -> jax.Array:
  """The EMA decay used after `step` updates.

  With warm-up the decay is min(decay, (1 + step) / (10 + step)), as TensorFlow's
  ExponentialMovingAverage with `num_updates`: early averages forget the random
  initialisation quickly, and the configured decay is reached after ~10 / (1 - decay) steps.
  With `start` > 0 the decay is 0 (the EMA copies the parameters) while step < start, as
  BigGAN-PyTorch's `ema_start` (its ema.update(itr) with itr the number of G steps taken).
  """
  decay = jnp.asarray(decay, jnp.float32)
  if warmup:
    s = step.astype(jnp.float32)
    decay = jnp.minimum(decay, (1.0 + s) / (10.0 + s))
  if start:
    decay = jnp.where(step < start, 0.0, decay)
  return decay


def update_ema(state: TrainState, decay: float, warmup: bool, start: int = 0) -> TrainState:
  """ema <- d * ema + (1 - d) * params, with d from `ema_decay(state.step)`.

  decay == 0 makes the EMA a copy of the parameters (EMA disabled).
  """
  d = ema_decay(state.step, decay, warmup, start)
  ema = optax.incremental_update(state.params, state.ema_params, step_size=1.0 - d)
  return state.replace(ema_params=ema)
