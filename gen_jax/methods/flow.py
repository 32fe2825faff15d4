"""Normalizing flows as a family: exact likelihood training, bits/dim, temperature sampling.

Dinh et al. NICE (2015) and RealNVP (2017); Kingma & Dhariwal, Glow (2018); Papamakarios
et al., MAF (2017). The architecture is `config.model.name` in `gen_jax.flows.FLOWS`.

Likelihood of 8-bit images (uniform dequantization, Theis et al. 2016). The pipeline
(data.dequantize=True) gives x = 2 (u + U) / 256 - 1 in [-1, 1) for pixels u in 0..255 and
U ~ U[0, 1). The flow is a density p_x over [-1, 1)^D. With v = u + U in [0, 256)^D,
x = v / 128 - 1, so dx/dv = 1/128 per dimension and

  p_v(v) = p_x(x) * 128^(-D),      -log p_v(v) = -log p_x(x) + D log 128,

and by Jensen -log2 P(u) <= E_U[-log2 p_v(u + U)], so the reported

  bits/dim = (-log p_x(x) + D log 128) / (D ln 2)

is an upper bound on the discrete model's code length. A uniform p_x = 2^(-D) gives
exactly 8 bits/dim. With `num_bits = n < 8` (Glow's 5-bit runs) the method reduces the
data itself: u_n = floor((x + 1) 2^n / 2) = floor(u / 2^(8-n)) (exact, since U < 1), then
x_n = 2 (u_n + U') / 2^n - 1 with fresh noise U', and D log 128 becomes D log(2^n / 2).

Vector data (data.source = "toy2d", [B, D]) is continuous: the loss and the metrics are the
negative log-likelihood in nats per example, with no dequantization.

Sampling draws z ~ N(0, T^2 I) and inverts the flow; the temperature T defaults to
`config.sample.temperature` and `sample(..., SampleSpec(temperature=T))` overrides it.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp
import optax

from gen_jax.flows import Flow, build_flow
from gen_jax.methods.base import METHODS, Batch, Method, Metrics, single_network_step
from gen_jax.core.sample import SampleOutput, SampleSpec
from gen_jax.core.optim import build_optimizer, learning_rate_schedule
from gen_jax.core import precision
from gen_jax.core.state import TrainState


def bits_per_dim(nll_model: jax.Array, dim: int, num_bits: int = 8) -> jax.Array:
  """Bits/dim of n-bit data from the NLL (nats) of a density over [-1, 1)^dim.

  x = 2 v / 2^n - 1 with v in [0, 2^n) the dequantized pixel, so
  -log p_v = -log p_x + dim * log(2^n / 2) and bits/dim = that / (dim ln 2).
  """
  return (nll_model + dim * math.log(2.0 ** num_bits / 2.0)) / (dim * math.log(2.0))


def reduce_bits(x: jax.Array, num_bits: int, rng: jax.Array) -> jax.Array:
  """Dequantized 8-bit data in [-1, 1) -> dequantized `num_bits` data in [-1, 1)."""
  if num_bits == 8:
    return x
  levels = 2 ** num_bits
  u = jnp.clip(jnp.floor((x + 1.0) * (levels / 2.0)), 0, levels - 1)
  noise = jax.random.uniform(rng, x.shape, x.dtype)
  return 2.0 * (u + noise) / levels - 1.0


@dataclasses.dataclass(frozen=True)
class FlowMethod(Method):
  """A normalizing flow trained by exact maximum likelihood.

  Attributes:
    flow: the `Flow` (a bijector data -> latent over a standard normal base).
    optimizer: optax transformation of the parameters.
    data_shape: (H, W, C) for images, (D,) for vectors.
    discrete: the data are dequantized 8-bit images (losses in bits/dim) rather than
      continuous vectors (losses in nats).
    num_bits: bits per pixel the data are reduced to (8: none).
    temperature: default sampling temperature.
    lr_schedule: the learning rate as a function of the step, for logging.
  """

  flow: Flow
  optimizer: optax.GradientTransformation
  data_shape: tuple[int, ...]
  discrete: bool = True
  num_bits: int = 8
  temperature: float = 1.0
  lr_schedule: Any = None

  @property
  def dim(self) -> int:
    return math.prod(self.data_shape)

  def _inputs(self, batch: Batch, rng: jax.Array) -> jax.Array:
    x = batch["image"]
    if tuple(x.shape[1:]) != self.data_shape:
      raise ValueError(f"The flow was built for data of shape {self.data_shape}; got a batch "
                       f"of shape {x.shape}.")
    return reduce_bits(x, self.num_bits, rng) if self.discrete else x

  def log_prob(self, params, model_state, x: jax.Array) -> jax.Array:
    """Exact log-density [B] (nats) of x [B, ...] in model coordinates."""
    return self.flow.apply({"params": params, **model_state}, x, method=Flow.log_prob)

  def per_example_loss(self, params, model_state, batch: Batch, rng: jax.Array) -> jax.Array:
    """Bits/dim [B] of images, or NLL [B] in nats of vector data."""
    nll = -self.log_prob(params, model_state, self._inputs(batch, rng))
    return bits_per_dim(nll, self.dim, self.num_bits) if self.discrete else nll

  # ---------------------------------------------------------------- contract

  def init(self, rng: jax.Array, batch: Batch) -> TrainState:
    """Parameters from a forward pass over `batch`: actnorm layers initialise from it.

    Called by the trainer on the first global batch (inside jit, so the statistics are
    global over devices) and only when no checkpoint exists.
    """
    rng_data, rng_params = jax.random.split(rng)
    variables = dict(self.flow.init({"params": rng_params}, self._inputs(batch, rng_data),
                                    method=Flow.log_prob))
    params = variables.pop("params")
    return TrainState.create(params, self.optimizer.init(params), model_state=variables)

  def update(self, state: TrainState, batch: Batch, rng: jax.Array) -> tuple[TrainState, Metrics]:
    def loss_fn(params):
      loss = jnp.mean(self.per_example_loss(params, state.model_state, batch, rng))
      return loss, {("bpd" if self.discrete else "nll"): loss}

    return single_network_step(state, loss_fn, self.optimizer, self.lr_schedule)

  def sample(self, state: TrainState, rng: jax.Array, num_samples: int,
             spec: SampleSpec = SampleSpec()) -> SampleOutput:
    """Inverts the flow (EMA parameters) on z ~ N(0, T^2 I); images are clipped to [-1, 1].

    T is `spec.temperature`, by default the configured one; flows are unconditional.
    """
    spec.refuse_unsupported("flow", ["temperature"])
    t = self.temperature if spec.temperature is None else spec.temperature
    noise = jax.random.normal(rng, (num_samples, *self.data_shape), jnp.float32)
    x = self.flow.apply({"params": state.ema_params, **state.model_state}, noise, t,
                        method=Flow.sample_from_noise)
    return SampleOutput(samples=jnp.clip(x, -1.0, 1.0) if self.discrete else x, nfe=1)

  def evaluate(self, state: TrainState, batch: Batch, rng: jax.Array) -> Metrics:
    """Per-example bits/dim (images) or NLL and log-likelihood in nats (vectors), EMA params."""
    loss = self.per_example_loss(state.ema_params, state.model_state, batch, rng)
    if self.discrete:
      return {"bpd": loss, "loss": loss}
    return {"nll": loss, "log_likelihood": -loss, "loss": loss}


@METHODS.register("flow")
def build_flow_method(config, info) -> FlowMethod:
  """A FlowMethod from `config.model` (architecture), `config.method`, `config.optim`."""
  shape = tuple(int(d) for d in info.image_shape)
  discrete = len(shape) == 3
  if discrete and not config.data.dequantize:
    raise ValueError(
        "A flow's likelihood of 8-bit images needs dequantized data (a density over discrete "
        "values is unbounded); set data.dequantize=True.")
  num_bits = int(config.method.num_bits)
  if not 1 <= num_bits <= 8:
    raise ValueError(f"method.num_bits must be in 1..8, got {num_bits}.")
  if num_bits != 8 and not discrete:
    raise ValueError("method.num_bits applies to 8-bit images only; set it to 8 for vector data.")
  model_kwargs = dict(config.model)
  name = model_kwargs.pop("name")
  return FlowMethod(
      flow=Flow(build_flow(name, dtype=precision.compute_dtype(config), **model_kwargs)),
      optimizer=build_optimizer(config.optim, config.num_train_steps),
      data_shape=shape,
      discrete=discrete,
      num_bits=num_bits,
      temperature=float(config.sample.temperature),
      lr_schedule=learning_rate_schedule(config.optim, config.num_train_steps),
  )
