"""Autoregressive models as a family: PixelCNN, gated PixelCNN, PixelCNN++ and WaveNet.

Exact likelihood p(x) = prod_i p(x_i | x_<i) in a fixed order: raster order over pixels
(and R -> G -> B inside a pixel) for images [H, W, C], time order for audio [T, 1]. The
network (`config.model.name` in `gen_jax.nets.NETS`) outputs every conditional in one
pass; `update` minimises the NLL, `evaluate` reports it exactly, `sample` draws
ancestrally on device in one `lax` loop.

Images. The pipeline gives x = u / 127.5 - 1 for 8-bit pixels u (data.dequantize must be
False: the model is a distribution over the 256 values, not a density). Likelihoods
(`method.likelihood`):
  categorical  a 256-way softmax per channel (PixelCNN, gated PixelCNN); the network is
               channel-conditional, so channel c of a pixel sees channels < c;
  dlm          the discretized logistic mixture of `method.num_mix` components over the
               whole pixel, channel-conditional means for RGB (PixelCNN++).
  bits/dim = -log2 p(x) / (H W C)   (no dequantization term: the likelihood is discrete).

Audio (data.source = audio_folder | audio_tones: float waveforms [T, 1] in [-1, 1]). The
waveform is mu-law companded and quantised to 256 codes (`autoregressive.mu_law`), and the
model is a distribution over the codes:
  categorical  a 256-way softmax (WaveNet); the network input is the one-hot code;
  dlm          a discretized logistic mixture over the 256 codes placed evenly on [-1, 1]
               (the companded axis); the network input is that value.
  bits per sample = -log2 p(codes) / T, the same discrete variable for both likelihoods.
Samples are decoded back to waveforms [n, T, 1].

Class conditioning (`method.class_conditional`): the dataset's labels condition every
layer (PixelCNN class embeddings; WaveNet global conditioning); samples cycle through the
classes (sample i has label i mod K).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from gen_jax.autoregressive import mu_law, sampling
from gen_jax.distributions import discretized_logistic as dlm
from gen_jax.methods.base import METHODS, Batch, Method, Metrics, single_network_step
from gen_jax.nets import build_net
from gen_jax.nets.wavenet import WaveNet
from gen_jax.core.sample import SampleOutput, SampleSpec
from gen_jax.core.optim import build_optimizer, learning_rate_schedule
from gen_jax.core import precision
from gen_jax.core.state import TrainState

LIKELIHOODS = ("categorical", "dlm")
NUM_CODES = 256


@dataclasses.dataclass(frozen=True)
class AutoregressiveMethod(Method):
  """Attributes:
    net: an image network ([B, H, W, C] -> [B, H, W, C, 256] or [B, H, W, P]) or a WaveNet.
    optimizer: optax transformation.
    data_shape: (H, W, C) for images, (T, 1) for audio.
    likelihood: "categorical" or "dlm".
    num_mix: mixture components of "dlm".
    num_classes: labels conditioning the model (0: unconditional).
    lr_schedule: for logging.
  """

  net: nn.Module
  optimizer: optax.GradientTransformation
  data_shape: tuple[int, ...]
  likelihood: str = "categorical"
  num_mix: int = 10
  num_classes: int = 0
  lr_schedule: Any = None

  @property
  def is_audio(self) -> bool:
    return len(self.data_shape) == 2

  @property
  def num_dims(self) -> int:
    """Discrete variables per example: H W C, or T samples."""
    return math.prod(self.data_shape)

  # ---------------------------------------------------------------- data <-> codes

  def codes(self, x: jax.Array) -> jax.Array:
    """int32 codes 0..255: pixels [B, H, W, C], or mu-law codes [B, T] of a waveform."""
    if self.is_audio:
      return mu_law.encode(x[..., 0])
    return jnp.clip(jnp.round((x + 1.0) * 127.5), 0, 255).astype(jnp.int32)

  def net_input(self, codes: jax.Array) -> jax.Array:
    """What the network reads: grid values [B, H, W, C]; one-hot [B, T, 256] or [B, T, 1]."""
    if not self.is_audio:
      return codes.astype(jnp.float32) / 127.5 - 1.0
    if self.likelihood == "categorical":
      return jax.nn.one_hot(codes, NUM_CODES, dtype=jnp.float32)
    return mu_law.codes_to_unit(codes)[..., None]

  def decode(self, codes: jax.Array) -> jax.Array:
    """Codes -> model-space data: images in [-1, 1], waveforms [B, T, 1]."""
    if self.is_audio:
      return mu_law.decode(codes)[..., None]
    return codes.astype(jnp.float32) / 127.5 - 1.0

  # ---------------------------------------------------------------- likelihood

  def apply(self, params, inputs: jax.Array, labels, *, rng: jax.Array | None = None):
    """Network outputs for inputs; dropout is on when `rng` is given (training)."""
    labels = labels if self.num_classes else None
    if rng is None:
      return self.net.apply({"params": params}, inputs, labels, False)
    return self.net.apply({"params": params}, inputs, labels, True, rngs={"dropout": rng})

  def log_prob_from_outputs(self, out: jax.Array, codes: jax.Array) -> jax.Array:
    """log p(x) [B] (nats) of codes given the network outputs on them."""
    axes = tuple(range(1, codes.ndim))
    if self.likelihood == "categorical":
      logp = jnp.take_along_axis(jax.nn.log_softmax(out, -1), codes[..., None], -1)[..., 0]
      return jnp.sum(logp, axis=axes)
    if self.is_audio:
      values = mu_law.codes_to_unit(codes)[..., None]
    else:
      values = self.net_input(codes)
      axes = tuple(range(1, codes.ndim - 1))
    return jnp.sum(dlm.log_prob(values, out, num_mix=self.num_mix), axis=axes)

  def log_prob(self, params, batch: Batch, rng: jax.Array | None = None) -> jax.Array:
    """Exact log p(x) [B] in nats of a batch (dropout when `rng` is given)."""
    x = batch["image"]
    if tuple(x.shape[1:]) != self.data_shape:
      raise ValueError(f"The model was built for data of shape {self.data_shape}; got a "
                       f"batch of shape {x.shape}.")
    codes = self.codes(x)
    out = self.apply(params, self.net_input(codes), batch.get("label"), rng=rng)
    return self.log_prob_from_outputs(out, codes)

  def bits_per_dim(self, log_prob: jax.Array) -> jax.Array:
    return -log_prob / (self.num_dims * math.log(2.0))

  # ---------------------------------------------------------------- contract

  def init(self, rng: jax.Array, batch: Batch) -> TrainState:
    x = jnp.zeros((1, *self.data_shape), jnp.float32)
    labels = jnp.zeros((1,), jnp.int32) if self.num_classes else None
    params = self.net.init({"params": rng}, self.net_input(self.codes(x)), labels,
                           False)["params"]
    return TrainState.create(params, self.optimizer.init(params))

  def update(self, state: TrainState, batch: Batch, rng: jax.Array) -> tuple[TrainState, Metrics]:
    name = "bits_per_sample" if self.is_audio else "bpd"

    def loss_fn(params):
      loss = jnp.mean(self.bits_per_dim(self.log_prob(params, batch, rng)))
      return loss, {name: loss}

    return single_network_step(state, loss_fn, self.optimizer, self.lr_schedule)

  def evaluate(self, state: TrainState, batch: Batch, rng: jax.Array) -> Metrics:
    """Exact per-example bits/dim (images) or bits per sample (audio), EMA parameters."""
    del rng
    bits = self.bits_per_dim(self.log_prob(state.ema_params, batch))
    name = "bits_per_sample" if self.is_audio else "bpd"
    return {name: bits, "loss": bits}

  def sample_labels(self, num_samples: int, labels: jax.Array | None = None):
    """The class labels [n] of a class-conditional model: `labels`, or 0..K-1 cycled."""
    if not self.num_classes:
      return None
    return jnp.arange(num_samples) % self.num_classes if labels is None else labels

  def sample(self, state: TrainState, rng: jax.Array, num_samples: int,
             spec: SampleSpec = SampleSpec()) -> SampleOutput:
    """Ancestral samples from the EMA parameters (images [n, H, W, C] or waves [n, T, 1]).

    Reads `spec.labels` (class-conditional models); honours no other request.
    """
    spec.refuse_unsupported("autoregressive", [])
    if self.is_audio:
      codes, _ = self.generate(state.ema_params, rng, num_samples, cached=True,
                               labels=spec.labels)
      return SampleOutput(samples=self.decode(codes), nfe=self.data_shape[0])
    return self.sample_images(state.ema_params, rng, num_samples, labels=spec.labels)

  # ---------------------------------------------------------------- samplers

  def sample_images(self, params, rng: jax.Array, num_samples: int,
                    labels: jax.Array | None = None) -> SampleOutput:
    """Pixel by pixel (channel by channel for a categorical likelihood) in one lax loop."""
    h, w, c = self.data_shape
    labels = self.sample_labels(num_samples, labels)
    categorical = self.likelihood == "categorical"

    def draw(out, x_ij, key):
      if categorical:  # out [B, C, 256]: every channel drawn, the loop keeps the current one
        codes = jax.random.categorical(key, out, axis=-1)
        return codes.astype(jnp.float32) / 127.5 - 1.0
      del x_ij
      return dlm.sample(key, out, num_channels=c, num_mix=self.num_mix)

    x = sampling.sample_raster(lambda x: self.apply(params, x, labels), draw,
                               (num_samples, h, w, c), rng, channel_steps=categorical)
    steps = h * w * (c if categorical else 1)
    return SampleOutput(samples=x, nfe=steps)

  def _draw_code(self, out: jax.Array, key: jax.Array):
    """(code [B], network input features [B, F]) drawn from one step's output [B, P]."""
    if self.likelihood == "categorical":
      code = jax.random.categorical(key, out, axis=-1)
    else:
      unit = dlm.sample(key, out, num_channels=1, num_mix=self.num_mix)[..., 0]
      code = jnp.round((unit + 1.0) * (mu_law.MU / 2.0)).astype(jnp.int32)
    return code, self.net_input(code)

  def generate(self, params, rng: jax.Array, num_samples: int, *, cached: bool = True,
               labels: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
    """WaveNet: (codes [n, T], per-step outputs [n, T, P]) drawn step by step.

    cached=True runs `WaveNet.step` with ring buffers (O(layers) per step); False re-runs
    the network on the last receptive field at every step. Same rng, same samples.
    """
    if not isinstance(self.net, WaveNet):
      raise ValueError("generate() is for WaveNet audio models; images use sample_images().")
    (t, _), n = self.data_shape, num_samples
    labels = self.sample_labels(n, labels)
    features = NUM_CODES if self.likelihood == "categorical" else 1
    if cached:
      def step_fn(x_in, cache):
        return self.net.apply({"params": params}, x_in, cache, labels, method=WaveNet.step)

      cache = self.net.init_cache(n, features)
      return sampling.generate_cached(step_fn, cache, self._draw_code,
                                      jnp.zeros((n, features)), t, rng)
    return sampling.generate_naive(lambda inputs: self.apply(params, inputs, labels),
                                   self._draw_code, self.net_input, (n,), jnp.int32, t,
                                   self.net.receptive_field, rng)


IMAGE_NETS = ("pixelcnn", "gated_pixelcnn", "pixelcnn_pp")
_FILLED_BY_METHOD = ("data_channels", "num_outputs", "channel_conditional", "num_classes")


@METHODS.register("autoregressive")
def build_autoregressive(config, info) -> AutoregressiveMethod:
  """The method from config.model (network), config.method (likelihood, num_mix,
  class_conditional) and config.optim; the network's output size comes from the data."""
  m = config.method
  likelihood = str(m.likelihood)
  if likelihood not in LIKELIHOODS:
    raise ValueError(f"method.likelihood must be one of {LIKELIHOODS}, not {likelihood!r}.")
  shape = tuple(int(d) for d in info.image_shape)
  model = dict(config.model)
  name = model.pop("name")
  model["dtype"] = precision.compute_dtype(config)
  clash = sorted(set(model) & set(_FILLED_BY_METHOD))
  if clash:
    raise ValueError(f"config.model must not set {clash}: the autoregressive method derives "
                     "them from the data and method.likelihood / method.class_conditional.")
  num_classes = int(info.num_classes) if m.class_conditional else 0
  if m.class_conditional and num_classes < 2:
    raise ValueError(f"method.class_conditional=True needs labelled data; the dataset "
                     f"reports num_classes={info.num_classes}.")
  num_mix = int(m.num_mix)
  if len(shape) == 3:
    if name not in IMAGE_NETS:
      raise ValueError(f"Images [H, W, C] need an image network {IMAGE_NETS}, not {name!r}.")
    if config.data.dequantize:
      raise ValueError("Autoregressive image models are distributions over the 256 pixel "
                       "values; set data.dequantize=False.")
    categorical = likelihood == "categorical"
    if name == "pixelcnn_pp" and categorical:
      raise ValueError("pixelcnn_pp predicts whole pixels; use method.likelihood='dlm'.")
    outputs = NUM_CODES if categorical else dlm.num_params(shape[-1], num_mix)
    net = build_net(name, data_channels=shape[-1], num_outputs=outputs,
                    channel_conditional=categorical, num_classes=num_classes, **model)
  elif len(shape) == 2:
    if name != "wavenet":
      raise ValueError(f"Audio [T, 1] needs model.name='wavenet', not {name!r}.")
    if shape[-1] != 1:
      raise ValueError(f"WaveNet models mono audio [T, 1]; got clips of shape {shape}.")
    outputs = NUM_CODES if likelihood == "categorical" else dlm.num_params(1, num_mix)
    net = build_net(name, num_outputs=outputs, num_classes=num_classes, **model)
  else:
    raise ValueError(f"Autoregressive models need images [H, W, C] or audio [T, 1]; the "
                     f"data has shape {shape}.")
  return AutoregressiveMethod(
      net=net, optimizer=build_optimizer(config.optim, config.num_train_steps),
      data_shape=shape, likelihood=likelihood, num_mix=num_mix, num_classes=num_classes,
      lr_schedule=learning_rate_schedule(config.optim, config.num_train_steps))
