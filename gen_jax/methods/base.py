"""The family contract: the pure functions every generative family provides.

The trainer (`gen_jax.train.loop`) knows nothing about diffusion, GANs or flows. It calls
a `Method`, which is a frozen bag of static pieces (networks, schedules, optimisers) and
pure functions of arrays:

  init(rng, batch)              -> TrainState   data-dependent init may use the batch
  update(state, batch, rng)     -> (TrainState, metrics)   one optimisation step
  sample(state, rng, n, spec)   -> SampleOutput             images in [-1, 1], NFE
  evaluate(state, batch, rng)   -> per-example metrics      e.g. loss, bits/dim
  summarize_eval(results)       -> results      split averages -> reported metrics (optional)
  figures(state, batch, rng)    -> {name: (images, columns)}  extra PNG grids (optional)

`update` owns everything family-specific: a GAN alternates its discriminator and
generator steps with two optimisers inside it; a flow returns its exact NLL as the loss.
The trainer adds what is common: jit with sharding, donation, the step counter, EMA,
NaN checks, metrics, checkpoints and sample grids.

`sample` is asked one `SampleSpec` (labels, temperature, guidance scale, truncation,
sampler overrides): each family reads the fields it understands and refuses, by name, every
other request with `spec.refuse_unsupported(<family>, [<fields it honours>])`, before any
work, so that the trainer can check a request up front (`jax.eval_shape`).

`update` returns scalar metrics; every one of them is checked for NaN/Inf by the trainer.
It must include `loss`, and the global norms from `train.optim.apply_gradients`.
`evaluate` returns per-example values of shape [B] (the trainer masks padded rows and
averages them over the evaluation split).
"""

from __future__ import annotations

import abc
import dataclasses
from typing import Any, Mapping

import jax
import jax.numpy as jnp
import optax

from gen_jax.core.registry import Registry
from gen_jax.core.sample import SampleOutput, SampleSpec
from gen_jax.core.optim import apply_gradients
from gen_jax.core.state import TrainState

Batch = Mapping[str, jax.Array]  # {"image": float [B,H,W,C] in [-1,1], "label": int32 [B], ...}
Metrics = dict[str, jax.Array]

METHODS: Registry = Registry("method")


class Method(abc.ABC):
  """Base class of a generative family; subclasses are frozen dataclasses."""

  @abc.abstractmethod
  def init(self, rng: jax.Array, batch: Batch) -> TrainState:
    """Initial train state (params, optimiser state, EMA, model state)."""

  @abc.abstractmethod
  def update(self, state: TrainState, batch: Batch, rng: jax.Array) -> tuple[TrainState, Metrics]:
    """One optimisation step on `batch`; must not touch `state.step` or `state.ema_params`."""

  @abc.abstractmethod
  def sample(self, state: TrainState, rng: jax.Array, num_samples: int,
             spec: SampleSpec = SampleSpec()) -> SampleOutput:
    """`num_samples` images [n, H, W, C] in [-1, 1] from the EMA parameters, as `spec` asks.

    Raises ValueError (from `spec.refuse_unsupported`) for a request the family cannot
    honour; `spec.labels`, when given, are int32 [num_samples].
    """

  def prepare_sampling(self, state: TrainState, rng: jax.Array) -> TrainState:
    """`state` made ready for `sample` and `evaluate`; the trainer calls it before each
    sample grid, evaluation and sampling run (e.g. BigGAN's standing statistics of the
    EMA generator, kept in model_state). Default: `state` unchanged."""
    del rng
    return state

  def evaluate(self, state: TrainState, batch: Batch, rng: jax.Array) -> Metrics:
    """Per-example evaluation metrics, each of shape [B]. Default: none."""
    del state, batch, rng
    return {}

  def summarize_eval(self, results: dict[str, float]) -> dict[str, float]:
    """The reported metrics from the split averages of `evaluate` (host floats).

    For metrics that are not averages: a family returns per-example moments from
    `evaluate` and combines them here (e.g. a VAE's active units). Default: unchanged.
    """
    return results

  def figures(self, state: TrainState, batch: Batch, rng: jax.Array) -> dict[str, Any]:
    """Extra image grids from an evaluation batch, {name: (images [N, H, W, C] in [-1, 1],
    number of columns)}, written by --mode=sample and --mode=eval as PNGs (e.g. a VAE's
    reconstructions). Default: none."""
    del state, batch, rng
    return {}

  # Why this family cannot accumulate gradients (None: it can, through its `optimizer`).
  grad_accumulation_refusal: str | None = None

  def with_grad_accumulation(self, steps: int) -> "Method":
    """This method with an optimiser that applies the mean gradient of `steps` updates.

    The trainer (`train/step.py`) calls `update` once per micro-batch; the wrapped
    optimiser (`optax.MultiSteps`) accumulates the gradients, leaves the parameters
    unchanged on the first steps - 1 calls and applies the mean gradient on the last, which
    is the update of the whole batch when the loss is a mean over examples. Families with
    one optimiser in a field named `optimizer` get this for free; others must refuse.

    Raises:
      ValueError: steps < 1, or the family cannot accumulate (the reason is given).
    """
    steps = int(steps)
    if steps < 1:
      raise ValueError(f"config.grad_accum_steps must be >= 1, got {steps}.")
    if steps == 1:
      return self
    fields = {f.name for f in dataclasses.fields(self)} if dataclasses.is_dataclass(self) else ()
    reason = self.grad_accumulation_refusal
    if reason is None and "optimizer" not in fields:
      reason = "it has no single optimiser to accumulate into"
    if reason is not None:
      raise ValueError(f"config.grad_accum_steps={steps} is not supported by "
                       f"{type(self).__name__}: {reason}. Set config.grad_accum_steps=1 and "
                       "lower the batch size (or use more devices) to save memory.")
    accumulating = optax.MultiSteps(self.optimizer, every_k_schedule=steps)
    return dataclasses.replace(self, optimizer=accumulating.gradient_transformation())


def build_method(config: Any, info: Any) -> Method:
  """The method named `config.method.name`, built from the config and the dataset's info.

  Each family registers a factory `(config, info) -> Method` in `METHODS`; importing
  `gen_jax.methods` registers all of them. With `config.grad_accum_steps` > 1 the method's
  optimiser accumulates gradients (`Method.with_grad_accumulation`).
  """
  from gen_jax import methods as _  # pylint: disable=g-import-not-at-top,unused-import
  method = METHODS.get(config.method.name)(config, info)
  return method.with_grad_accumulation(config.get("grad_accum_steps", 1))


def single_network_step(state: TrainState, loss_fn, optimizer: Any,
                        lr_schedule: Any = None) -> tuple[TrainState, Metrics]:
  """One gradient step of a family that trains one network on one loss.

  Args:
    state: the train state; `state.params` are the network's parameters.
    loss_fn: params -> (scalar loss, dict of scalar auxiliary metrics).
    optimizer: the optax transformation that owns `state.opt_state`.
    lr_schedule: step -> learning rate, logged as `learning_rate` when given.

  Returns:
    (state with new params and opt_state, metrics): `loss`, the auxiliary metrics, and the
    gradient/parameter/update norms of `apply_gradients`.
  """
  (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
  params, opt_state, norms = apply_gradients(optimizer, grads, state.opt_state, state.params)
  metrics = {"loss": loss, **aux, **norms}
  if lr_schedule is not None:
    metrics["learning_rate"] = jnp.asarray(lr_schedule(state.step), jnp.float32)
  return state.replace(params=params, opt_state=opt_state), metrics
