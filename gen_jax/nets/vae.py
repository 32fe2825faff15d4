"""Encoder-decoder networks of the VAE family: an MLP (vectors, small images) and a
convolutional net (MNIST, CIFAR-10) with a global latent vector.

Every VAE network has the same three entry points (`methods/vae.py` calls them through
`apply(..., method=...)`):

  encode(x)   x [B, *data_shape] in [-1, 1] -> (mean, logvar), each [B, *latent_shape]
  decode(z)   z [B, *latent_shape] -> likelihood parameters [B, *data_shape[:-1],
              out_channels] (see `gen_jax.vae.likelihoods`)
  __call__(x) decode(encode(x).mean): builds every parameter at init

`data_shape` and `out_channels` are filled in by the method from the data and the
likelihood; the config gives only the widths and the latent size.
"""

from __future__ import annotations

import math
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from gen_jax.nets.layers import default_init


class _VAENet(nn.Module):
  """Shared `__call__`: decode the posterior mean (used to create the parameters)."""

  def __call__(self, x: jax.Array, *, train: bool = False) -> jax.Array:
    mean, _ = self.encode(x, train=train)
    return self.decode(mean, train=train)

  def _check_input(self, x: jax.Array) -> None:
    if tuple(x.shape[1:]) != tuple(self.data_shape):
      raise ValueError(f"{type(self).__name__} was built for data of shape "
                       f"{tuple(self.data_shape)}; got a batch of shape {x.shape}.")


class MLPVAE(_VAENet):
  """Fully connected encoder and decoder (swish hidden layers).

  features=() on both sides gives linear maps: the probabilistic-PCA VAE.

  Attributes:
    data_shape: shape of one example, (D,) or (H, W, C) (flattened by the encoder).
    out_channels: decoder parameters per position (the last axis of its output).
    latent_dim: size Z of the latent vector.
    encoder_features: hidden widths of the encoder.
    decoder_features: hidden widths of the decoder.
  """

  data_shape: Sequence[int] = (2,)
  out_channels: int = 4
  latent_dim: int = 2
  encoder_features: Sequence[int] = (64, 64)
  decoder_features: Sequence[int] = (64, 64)

  def setup(self):
    self.encoder_layers = [nn.Dense(f, kernel_init=default_init)
                           for f in self.encoder_features]
    self.encoder_out = nn.Dense(2 * self.latent_dim, kernel_init=default_init)
    self.decoder_layers = [nn.Dense(f, kernel_init=default_init)
                           for f in self.decoder_features]
    positions = math.prod(tuple(self.data_shape)[:-1])
    self.decoder_out = nn.Dense(positions * self.out_channels, kernel_init=default_init)

  def encode(self, x: jax.Array, *, train: bool = False):
    """x [B, *data_shape] -> (mean, logvar) [B, latent_dim]."""
    del train
    self._check_input(x)
    h = x.reshape(x.shape[0], -1)
    for layer in self.encoder_layers:
      h = nn.swish(layer(h))
    mean, logvar = jnp.split(self.encoder_out(h), 2, axis=-1)
    return mean, logvar

  def decode(self, z: jax.Array, *, train: bool = False) -> jax.Array:
    """z [B, latent_dim] -> [B, *data_shape[:-1], out_channels]."""
    del train
    h = z
    for layer in self.decoder_layers:
      h = nn.swish(layer(h))
    out = self.decoder_out(h)
    return out.reshape(z.shape[0], *tuple(self.data_shape)[:-1], self.out_channels)


class ConvVAE(_VAENet):
  """Convolutional encoder/decoder around a latent vector (MNIST, CIFAR-10).

  Encoder: per width in `channels`, a stride-2 3x3 conv and a 3x3 conv (swish), then
  Dense(hidden) and Dense(2 Z). Decoder: the mirror image, Dense to the smallest feature
  map, then per level nearest-neighbour 2x upsampling and two 3x3 convs, and a 3x3 conv
  to `out_channels`. H and W must be divisible by 2^len(channels) (28 -> 14 -> 7).

  Attributes:
    data_shape: (H, W, C).
    out_channels: decoder parameters per pixel.
    latent_dim: size Z of the latent vector.
    channels: widths of the resolution levels (each halves H and W).
    hidden: width of the dense layer between the feature map and the latent (0: none).
  """

  data_shape: Sequence[int] = (28, 28, 1)
  out_channels: int = 1
  latent_dim: int = 16
  channels: Sequence[int] = (32, 64)
  hidden: int = 256

  def _bottom(self) -> tuple[int, int]:
    h, w = tuple(self.data_shape)[:2]
    f = 2 ** len(self.channels)
    if h % f or w % f:
      raise ValueError(f"ConvVAE with {len(self.channels)} levels needs H and W divisible by "
                       f"{f}; got data of shape {tuple(self.data_shape)}. Change "
                       "model.channels (one entry per level) or data.image_size.")
    return h // f, w // f

  def encode(self, x: jax.Array, *, train: bool = False):
    """x [B, H, W, C] -> (mean, logvar) [B, latent_dim]."""
    del train
    self._check_input(x)
    self._bottom()
    return self._encoder(x)

  def decode(self, z: jax.Array, *, train: bool = False) -> jax.Array:
    """z [B, latent_dim] -> [B, H, W, out_channels]."""
    del train
    return self._decoder(z)

  def setup(self):
    self._encoder = _ConvEncoder(self.channels, self.hidden, self.latent_dim)
    bottom = self._bottom()
    self._decoder = _ConvDecoder(self.channels, self.hidden, bottom, self.out_channels)


class _ConvEncoder(nn.Module):
  channels: Sequence[int]
  hidden: int
  latent_dim: int

  @nn.compact
  def __call__(self, x):
    h = x
    for i, ch in enumerate(self.channels):
      h = nn.swish(nn.Conv(ch, (3, 3), strides=(2, 2), kernel_init=default_init,
                           name=f"down{i}")(h))
      h = nn.swish(nn.Conv(ch, (3, 3), kernel_init=default_init, name=f"conv{i}")(h))
    h = h.reshape(h.shape[0], -1)
    if self.hidden:
      h = nn.swish(nn.Dense(self.hidden, kernel_init=default_init, name="hidden")(h))
    mean, logvar = jnp.split(nn.Dense(2 * self.latent_dim, kernel_init=default_init,
                                      name="latent")(h), 2, axis=-1)
    return mean, logvar


class _ConvDecoder(nn.Module):
  channels: Sequence[int]
  hidden: int
  bottom: tuple[int, int]
  out_channels: int

  @nn.compact
  def __call__(self, z):
    h = z
    if self.hidden:
      h = nn.swish(nn.Dense(self.hidden, kernel_init=default_init, name="hidden")(h))
    top = self.channels[-1]
    h = nn.swish(nn.Dense(self.bottom[0] * self.bottom[1] * top, kernel_init=default_init,
                          name="project")(h))
    h = h.reshape(z.shape[0], *self.bottom, top)
    for i, ch in reversed(list(enumerate(self.channels))):
      h = jnp.repeat(jnp.repeat(h, 2, axis=1), 2, axis=2)
      h = nn.swish(nn.Conv(ch, (3, 3), kernel_init=default_init, name=f"up{i}")(h))
      h = nn.swish(nn.Conv(ch, (3, 3), kernel_init=default_init, name=f"conv{i}")(h))
    return nn.Conv(self.out_channels, (3, 3), kernel_init=default_init, name="out")(h)
