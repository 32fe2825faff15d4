"""Decoder likelihoods p(x | z) of a VAE, chosen by name (`config.method.likelihood.name`).

A decoder outputs parameters `out` [B, ..., P] for data x [B, ..., C] in [-1, 1]: P
numbers per position (a pixel of an image [B, H, W, C]; the whole vector of vector data
[B, D], whose "channels" are its D coordinates). Every likelihood gives

  log_prob(x, out, params) -> [B]   log p(x | z) in nats, summed over every dimension,
  mean(out, params)        -> x     the decoder's mean (reconstructions, samples),
  sample(rng, out, params) -> x     a draw of p(x | z),
  prepare(x, rng) -> (encoder input, target)   what the encoder sees and what is scored,

where `params` are the likelihood's own learned parameters (`init_params()`, e.g. one
shared log-scale), kept beside the network's in the train state.

Which data each one scores (the method checks the combination):

  bernoulli         binarized images: x in [-1, 1] read as p = (x + 1) / 2 and turned into
                    b in {0, 1}, dynamically (b ~ Bernoulli(p), a fresh draw every time: the
                    usual "dynamically binarized MNIST") or by thresholding p > 1/2. A
                    probability mass; bits/dim = -log p / (D ln 2).
  gaussian, laplace continuous data: dequantized images (a density; bits/dim through the
                    change of variables of `methods.flow.bits_per_dim`) or vectors (nats).
                    The log-scale is per dimension from the decoder (`scale="pixel"`, P =
                    2C), one learned scalar (`"global"`, P = C), or fixed (`"fixed"`,
                    P = C). Laplace with a global scale is the L1 reconstruction loss with
                    a learned log-variance of Rombach et al.'s autoencoder
                    (|x - m| / b + log b, up to the constant log 2).
  logistic_mixture  8-bit images on the grid 2u/255 - 1, not dequantized: the discretized
                    logistic mixture of PixelCNN++ (`gen_jax.distributions`), channel-
                    conditional for RGB; a probability mass over 256 values per channel.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp

from gen_jax.core.registry import Registry
from gen_jax.distributions import discretized_logistic as dl

LIKELIHOODS: Registry = Registry("likelihood")

_LOG_2PI = math.log(2.0 * math.pi)


def _sum_per_example(values: jax.Array) -> jax.Array:
  return jnp.sum(values.reshape(values.shape[0], -1), axis=1)


@dataclasses.dataclass(frozen=True)
class Likelihood:
  """Base class; see the module docstring for the contract.

  Attributes (class-level):
    discrete: log_prob is a probability mass of discrete data (bits/dim need no
      dequantization term).
    needs_dequantized_images: a density over images, meaningful only on dequantized data.
  """

  discrete = False
  needs_dequantized_images = False

  def num_params(self, channels: int) -> int:
    raise NotImplementedError

  def init_params(self) -> dict[str, jax.Array]:
    return {}

  def prepare(self, x: jax.Array, rng: jax.Array) -> tuple[jax.Array, jax.Array]:
    del rng
    return x, x

  def log_prob(self, x: jax.Array, out: jax.Array, params: Any) -> jax.Array:
    raise NotImplementedError

  def mean(self, out: jax.Array, params: Any) -> jax.Array:
    raise NotImplementedError

  def sample(self, rng: jax.Array, out: jax.Array, params: Any) -> jax.Array:
    raise NotImplementedError


@LIKELIHOODS.register("bernoulli")
@dataclasses.dataclass(frozen=True)
class Bernoulli(Likelihood):
  """Independent Bernoulli pixels with logits `out` [..., C] (P = C).

  Attributes:
    binarize: "dynamic" (b ~ Bernoulli((x + 1) / 2), Salakhutdinov & Murray 2008; the
      IWAE paper's protocol) or "threshold" (b = [x > 0]).
  """

  binarize: str = "dynamic"
  discrete = True

  def __post_init__(self):
    if self.binarize not in ("dynamic", "threshold"):
      raise ValueError(f"likelihood.binarize must be 'dynamic' or 'threshold', got "
                       f"{self.binarize!r}.")

  def num_params(self, channels: int) -> int:
    return channels

  def prepare(self, x, rng):
    """(encoder input 2b - 1 in {-1, 1}, target b in {0, 1})."""
    p = (x + 1.0) / 2.0
    if self.binarize == "dynamic":
      b = jax.random.bernoulli(rng, jnp.clip(p, 0.0, 1.0)).astype(x.dtype)
    else:
      b = (p > 0.5).astype(x.dtype)
    return 2.0 * b - 1.0, b

  def log_prob(self, x, out, params):
    del params
    return _sum_per_example(x * out - jax.nn.softplus(out))

  def mean(self, out, params):
    del params
    return 2.0 * jax.nn.sigmoid(out) - 1.0

  def sample(self, rng, out, params):
    del params
    return 2.0 * jax.random.bernoulli(rng, jax.nn.sigmoid(out)).astype(out.dtype) - 1.0


@dataclasses.dataclass(frozen=True)
class _LocationScale(Likelihood):
  """A location-scale density per dimension; `out` = [means C | log-scales C] or [means C].

  Attributes:
    scale: "pixel" (log-scales from the decoder), "global" (one learned scalar) or
      "fixed" (log_scale_init, not learned).
    log_scale_init: the initial (global) or fixed log-scale.
    min_log_scale: log-scales are clamped below at this value (a guard against a density
      collapsing onto one training point).
  """

  scale: str = "pixel"
  log_scale_init: float = 0.0
  min_log_scale: float = -7.0
  needs_dequantized_images = True

  def __post_init__(self):
    if self.scale not in ("pixel", "global", "fixed"):
      raise ValueError(f"likelihood.scale must be 'pixel', 'global' or 'fixed', got "
                       f"{self.scale!r}.")

  def num_params(self, channels: int) -> int:
    return 2 * channels if self.scale == "pixel" else channels

  def init_params(self):
    if self.scale == "global":
      return {"log_scale": jnp.asarray(self.log_scale_init, jnp.float32)}
    return {}

  def _split(self, out, params):
    if self.scale == "pixel":
      c = out.shape[-1] // 2
      mean, log_scale = out[..., :c], out[..., c:]
    elif self.scale == "global":
      mean, log_scale = out, params["log_scale"]
    else:
      mean, log_scale = out, jnp.asarray(self.log_scale_init, out.dtype)
    return mean, jnp.maximum(log_scale, self.min_log_scale)

  def mean(self, out, params):
    return self._split(out, params)[0]

  def log_prob(self, x, out, params):
    mean, log_scale = self._split(out, params)
    return _sum_per_example(jnp.broadcast_to(self._log_density(x, mean, log_scale), x.shape))


@LIKELIHOODS.register("gaussian")
@dataclasses.dataclass(frozen=True)
class Gaussian(_LocationScale):
  """N(x; mean, exp(log_scale)^2) per dimension."""

  @staticmethod
  def _log_density(x, mean, log_scale):
    return -0.5 * _LOG_2PI - log_scale - 0.5 * jnp.square((x - mean) * jnp.exp(-log_scale))

  def sample(self, rng, out, params):
    mean, log_scale = self._split(out, params)
    return mean + jnp.exp(log_scale) * jax.random.normal(rng, mean.shape, mean.dtype)


@LIKELIHOODS.register("laplace")
@dataclasses.dataclass(frozen=True)
class Laplace(_LocationScale):
  """Laplace(x; mean, b = exp(log_scale)) per dimension: -log p = |x - mean| / b + log 2b."""

  @staticmethod
  def _log_density(x, mean, log_scale):
    return -math.log(2.0) - log_scale - jnp.abs(x - mean) * jnp.exp(-log_scale)

  def sample(self, rng, out, params):
    mean, log_scale = self._split(out, params)
    return mean + jnp.exp(log_scale) * jax.random.laplace(rng, mean.shape, mean.dtype)


@LIKELIHOODS.register("logistic_mixture")
@dataclasses.dataclass(frozen=True)
class LogisticMixture(Likelihood):
  """The discretized logistic mixture of `gen_jax.distributions.discretized_logistic`.

  Attributes:
    num_mix: mixture components K (P = 3K for one channel, 10K for RGB).
    num_bins: grid values per channel (256 for 8-bit data).
  """

  num_mix: int = 5
  num_bins: int = 256
  discrete = True

  def num_params(self, channels: int) -> int:
    return dl.num_params(channels, self.num_mix)

  def log_prob(self, x, out, params):
    del params
    return _sum_per_example(dl.log_prob(x, out, num_mix=self.num_mix, num_bins=self.num_bins))

  def mean(self, out, params):
    """The mixture's mean per channel before discretization and clipping to [-1, 1] (then
    clipped): sum_k pi_k m_k, with RGB means conditioned inside each component k
    (m_g = mu_g + a mu_r, m_b = mu_b + b mu_r + c m_g)."""
    del params
    channels = 3 if out.shape[-1] == dl.num_params(3, self.num_mix) else 1
    logits, means, _, coeffs = dl.unpack(out, channels, self.num_mix)
    if channels == 3:
      r = means[..., 0, :]
      g = means[..., 1, :] + coeffs[..., 0, :] * r
      b = means[..., 2, :] + coeffs[..., 1, :] * r + coeffs[..., 2, :] * g
      means = jnp.stack([r, g, b], axis=-2)
    weights = jax.nn.softmax(logits, axis=-1)[..., None, :]
    return jnp.clip(jnp.sum(weights * means, -1), -1.0, 1.0)

  def sample(self, rng, out, params):
    del params
    channels = 3 if out.shape[-1] == dl.num_params(3, self.num_mix) else 1
    return dl.sample(rng, out, num_channels=channels, num_mix=self.num_mix,
                     num_bins=self.num_bins)


def build_likelihood(name: str, **options: Any) -> Likelihood:
  """The likelihood registered as `name` with its `options` (e.g. scale="global").

  Raises:
    KeyError: unknown name (the message lists the registered ones).
    ValueError: an option the likelihood does not have.
  """
  cls = LIKELIHOODS.get(name)
  valid = [f.name for f in dataclasses.fields(cls)]
  unknown = sorted(set(options) - set(valid))
  if unknown:
    raise ValueError(f"Unknown option(s) {', '.join(unknown)} for likelihood {name!r}; its "
                     f"options are: {', '.join(valid) or 'none'}.")
  return cls(**options)
