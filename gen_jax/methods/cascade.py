"""Cascaded diffusion (CDM, Ho et al. 2022; Imagen; unCLIP): a base model, then SR stages.

    x^(0) ~ base(n)                          [n, h0, w0, C]
    x^(k) ~ SR_k(x^(k-1)), k = 1 .. K        [n, h0 f1 .. fk, w0 f1 .. fk, C]

Each stage is trained on its own (its own config and workdir); a `Cascade` only chains
their samplers. Its "parameters" are the tuple of the stages' EMA parameters, so the whole
cascade samples inside one jitted function, and the trainer's sampling and sample-metric
machinery (`Experiment.sample_fn`, `SampleEvaluator`) evaluates it as if it were one model
at the final resolution. The command-line pipeline (restoring each stage's workdir,
writing every stage's grid) is `gen_jax/train/cascade.py`.

The NFE of a cascade sample is the sum of the stages' network evaluations (each at its
own resolution: see experiments/bench/cascade_bench.py for what they cost).

Deviations from CDM: each super-resolution stage's sampler, step count and conditioning
level are those of its own config (CDM tunes them per stage as well); no truncation
augmentation (CDM's alternative to Gaussian noise for the 64 -> 256 stage).
"""

from __future__ import annotations

import dataclasses
import types
from typing import Sequence

import jax
import jax.numpy as jnp

from gen_jax.core.sample import SampleOutput, SampleSpec
from gen_jax.core.state import TrainState
from gen_jax.methods.base import Batch, Method
from gen_jax.methods.super_resolution import SuperResolution


def _as_state(ema_params) -> types.SimpleNamespace:
  """What a stage's `sample` reads of a train state: its EMA parameters."""
  return types.SimpleNamespace(ema_params=ema_params)


@dataclasses.dataclass(frozen=True)
class Cascade(Method):
  """A base method followed by super-resolution stages.

  Attributes:
    stages: (base, SR_1, ..., SR_K); the base is any Method, each SR_k a SuperResolution
      whose low-resolution shape is the previous stage's sample shape.
  """

  stages: tuple[Method, ...]

  def __post_init__(self):
    if len(self.stages) < 2:
      raise ValueError("A cascade needs a base stage and at least one super-resolution stage.")
    shape = tuple(getattr(self.stages[0], "example_shape", ()))
    for k, stage in enumerate(self.stages[1:], 1):
      if not isinstance(stage, SuperResolution):
        raise ValueError(f"Cascade stage {k} is a {type(stage).__name__}; every stage after "
                         "the base must be a super_resolution model.")
      if shape and stage.low_res_shape != shape:
        raise ValueError(f"Cascade stage {k} super-resolves {stage.low_res_shape} images but "
                         f"stage {k - 1} samples {shape}; match method.factor and the data.")
      shape = stage.example_shape

  @property
  def example_shape(self) -> tuple[int, ...]:
    return self.stages[-1].example_shape

  def state_of(self, stage_states: Sequence[TrainState]) -> TrainState:
    """The cascade's state from the stages' restored states (their EMA parameters)."""
    params = tuple(s.ema_params for s in stage_states)
    return TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=(),
                      ema_params=params, model_state={})

  def init(self, rng: jax.Array, batch: Batch) -> TrainState:
    """Fresh stage parameters (shapes for restoring; a cascade is never trained as one)."""
    keys = jax.random.split(rng, len(self.stages))
    return self.state_of([m.init(k, batch) for m, k in zip(self.stages, keys)])

  def update(self, state, batch, rng):
    raise NotImplementedError("A cascade is not trained as one model: train each stage with "
                              "its own config (--mode=train on the cascade config does).")

  def sample_stages(self, state: TrainState, rng: jax.Array, num_samples: int,
                    spec: SampleSpec = SampleSpec()) -> list[SampleOutput]:
    """Every stage's SampleOutput: the base's num_samples, then each super-resolved.

    `spec` (labels, sampler overrides, ...) is the base stage's request; the SR stages
    sample as their configs say.
    """
    keys = jax.random.split(rng, len(self.stages))
    outs = [self.stages[0].sample(_as_state(state.ema_params[0]), keys[0], num_samples, spec)]
    for k, stage in enumerate(self.stages[1:], 1):
      outs.append(stage.sample_given(_as_state(state.ema_params[k]), keys[k],
                                     outs[-1].samples))
    return outs

  def sample(self, state: TrainState, rng: jax.Array, num_samples: int,
             spec: SampleSpec = SampleSpec()) -> SampleOutput:
    """The final stage's samples; nfe is the sum over the stages."""
    outs = self.sample_stages(state, rng, num_samples, spec)
    return SampleOutput(samples=outs[-1].samples, nfe=sum(o.nfe for o in outs))
