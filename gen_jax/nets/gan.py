"""GAN networks: DCGAN, SNGAN ResNets (32x32), MLPs for 2-D data, and DDGAN generators.

Registered in `gen_jax.nets.NETS` (by `gen_jax/nets/__init__.py`):

  generators      z [B, Z], y [B] | None -> samples [B, *out_shape] in [-1, 1]
    "dcgan_generator", "sngan_generator", "mlp_generator"
  discriminators  x [B, *shape], y [B] | None, t [B] | None -> logits [B]
    "dcgan_discriminator", "sngan_discriminator", "mlp_discriminator"
  DDGAN generators  x_t [B, *shape], t [B], z [B, Z], y | None -> x0 prediction, same shape
    "ddgan_unet", "ddgan_mlp"

References: Radford et al., "Unsupervised Representation Learning with Deep Convolutional
GANs" (DCGAN, 2016); Miyato et al., "Spectral Normalization for GANs" (SNGAN, ICLR 2018,
the 32x32 ResNets of its Appendix B and the "standard CNN"); Miyato & Koyama, "cGANs with
Projection Discriminator" (ICLR 2018); de Vries et al. 2017 / Dumoulin et al. 2017
(conditional batch norm); Xiao et al., "Tackling the Generative Learning Trilemma with
Denoising Diffusion GANs" (ICLR 2022).

Variable collections (kept in the train state's `model_state`):
* "batch_stats": running batch-norm statistics, updated with train=True only;
* "spectral": spectral-norm power-iteration vectors `u` and estimates `sigma`
  (`flax.linen.SpectralNorm` with collection_name="spectral"), updated with train=True.

Class conditioning: a generator with num_classes > 0 uses conditional batch norm (a
per-class gain and bias, initialised to 1 and 0 so it starts as plain batch norm); a
discriminator with num_classes > 0 adds the projection term <embed(y), phi(x)>.
Time conditioning (DDGAN and Diffusion-GAN discriminators): time_embed_dim > 0 adds an
embedding of t to every block.

Precision and memory: every network has a computation `dtype` (parameters, batch-norm and
spectral-norm statistics stay float32; outputs are float32) and the convolutional ones a
`remat` flag that recomputes each block (a DCGAN layer, an SNGAN / UNet block) in the
backward pass instead of storing its activations; remat leaves the parameters unchanged.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from gen_jax.nets import layers
from gen_jax.nets.conv_transpose import ConvTranspose, strided_conv_general_dilated

SPECTRAL = "spectral"
Dtype = Any
xavier = nn.initializers.xavier_uniform()


def _sn(layer: nn.Module, enabled: bool, update_stats: bool):
  """`layer` wrapped in spectral normalisation (power iteration state in 'spectral')."""
  if not enabled:
    return layer
  sn = nn.SpectralNorm(layer, collection_name=SPECTRAL)
  return lambda *args: sn(*args, update_stats=update_stats)


def num_upsamplings(size: int, min_bottom: int = 4) -> int:
  """The most 2x steps k with size divisible by 2**k and size / 2**k >= min_bottom."""
  k = 0
  while size % (2 ** (k + 1)) == 0 and size // 2 ** (k + 1) >= min_bottom:
    k += 1
  return k


class ConditionalBatchNorm(nn.Module):
  """Batch norm followed by a per-class (or shared) affine map, identity at init.

  y = gamma[c] * BN(x) + beta[c] with gamma initialised to 1 and beta to 0, so at
  initialisation it equals plain (non-affine) batch norm for every class.

  Attributes:
    num_classes: 0 for one shared gain/bias (ordinary batch norm).
    momentum: running-statistics decay (0.9 = PyTorch's momentum 0.1).
    epsilon: variance floor.
  """

  num_classes: int = 0
  momentum: float = 0.9
  epsilon: float = 1e-5
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, y: jax.Array | None, *, train: bool) -> jax.Array:
    """x [B, ..., C], y int [B] (needed when num_classes > 0) -> same shape as x."""
    c = x.shape[-1]
    h = nn.BatchNorm(use_running_average=not train, momentum=self.momentum,
                     epsilon=self.epsilon, use_scale=False, use_bias=False, dtype=self.dtype,
                     name="bn")(x)
    shape = (x.shape[0],) + (1,) * (x.ndim - 2) + (c,)
    if self.num_classes:
      if y is None:
        raise ValueError(f"{self.name}: a conditional batch norm needs labels y [B].")
      gamma = nn.Embed(self.num_classes, c, embedding_init=nn.initializers.ones,
                       dtype=self.dtype, name="gamma")(y)
      beta = nn.Embed(self.num_classes, c, embedding_init=nn.initializers.zeros,
                      dtype=self.dtype, name="beta")(y)
      return h * gamma.reshape(shape) + beta.reshape(shape)
    gamma = self.param("gamma", nn.initializers.ones, (c,)).astype(self.dtype)
    beta = self.param("beta", nn.initializers.zeros, (c,)).astype(self.dtype)
    shape = (1,) * (x.ndim - 1) + (c,)
    return h * gamma.reshape(shape) + beta.reshape(shape)


class TimeEmbedding(nn.Module):
  """t [B] float -> [B, dim]: sinusoidal features, Dense, leaky ReLU, Dense."""

  dim: int
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, t: jax.Array) -> jax.Array:
    h = nn.Dense(self.dim, dtype=self.dtype, name="dense_0")(
        layers.timestep_embedding(t, self.dim))
    return nn.Dense(self.dim, dtype=self.dtype, name="dense_1")(nn.leaky_relu(h, 0.2))


def _time_embedding(module: nn.Module, t: jax.Array | None, dim: int) -> jax.Array | None:
  if not dim:
    return None
  if t is None:
    raise ValueError(f"{module.name or type(module).__name__}: time_embed_dim={dim} needs "
                     "timesteps t [B]; pass t or set time_embed_dim=0.")
  dtype = getattr(module, "dtype", jnp.float32)
  return TimeEmbedding(dim, dtype=dtype, name="time_embed")(t.astype(jnp.float32))


def _projection_head(module, h: jax.Array, y: jax.Array | None, num_classes: int,
                     spectral_norm: bool, update_stats: bool, kernel_init=xavier) -> jax.Array:
  """Linear logit plus Miyato & Koyama's projection <embed(y), h>; h [B, F] -> [B] float32."""
  dtype = getattr(module, "dtype", jnp.float32)
  out = _sn(nn.Dense(1, kernel_init=kernel_init, dtype=dtype, name="linear"), spectral_norm,
            update_stats)(h)[:, 0]
  if num_classes:
    if y is None:
      raise ValueError("A projection discriminator (num_classes > 0) needs labels y [B].")
    emb = _sn(nn.Embed(num_classes, h.shape[-1], embedding_init=kernel_init, dtype=dtype,
                       name="embed"), spectral_norm, update_stats)(y)
    out = out + jnp.sum(emb.astype(jnp.float32) * h.astype(jnp.float32), axis=-1)
  return out.astype(jnp.float32)


def _check_out_shape(module, z: jax.Array) -> None:
  if z.ndim != 2:
    raise ValueError(f"{type(module).__name__}: expected latents z [B, Z], got {z.shape}.")


# ------------------------------------------------------------------------------ MLPs


class MLPGenerator(nn.Module):
  """z [B, Z] -> [B, *out_shape]; ReLU MLP with a linear output (2-D toy data).

  Attributes:
    out_shape: the sample shape, e.g. (2,).
    hidden: widths of the hidden layers.
    num_classes: > 0 adds a learned label embedding to the first hidden layer.
    batch_norm: conditional batch norm after each hidden layer.
    dtype: computation dtype.
  """

  out_shape: Sequence[int] = (2,)
  hidden: Sequence[int] = (128, 128, 128)
  num_classes: int = 0
  batch_norm: bool = False
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, z: jax.Array, y: jax.Array | None = None, *, train: bool) -> jax.Array:
    _check_out_shape(self, z)
    h = z
    for i, width in enumerate(self.hidden):
      h = nn.Dense(width, dtype=self.dtype, name=f"dense_{i}")(h)
      if i == 0 and self.num_classes:
        h = h + nn.Embed(self.num_classes, width, dtype=self.dtype, name="label_embed")(y)
      if self.batch_norm:
        h = ConditionalBatchNorm(self.num_classes, dtype=self.dtype, name=f"bn_{i}")(
            h, y, train=train)
      h = nn.relu(h)
    out = nn.Dense(math.prod(self.out_shape), dtype=self.dtype, name="out")(h)
    return out.reshape((z.shape[0], *self.out_shape)).astype(jnp.float32)


def per_step_heads(module_cls: type[nn.Module], num_steps: int, t: jax.Array, *args,
                   name: str, **fields) -> jax.Array:
  """One `module_cls(**fields)` per integer step, each applied where t equals its step.

  The heads' parameters (and spectral-norm state) are stacked on a leading axis of size
  num_steps (`flax.linen.vmap`); every head runs on the whole batch (num_steps times the
  compute of one) and row b keeps head t[b]'s output. t [B] holds integers in
  [0, num_steps) (floats are rounded); args are the heads' batched inputs.
  """
  heads = nn.vmap(module_cls, variable_axes={"params": 0, SPECTRAL: 0},
                  split_rngs={"params": True}, in_axes=None, out_axes=0,
                  axis_size=num_steps)(**fields, name=name)
  outs = heads(*args)  # [num_steps, B, ...]
  index = jnp.round(t).astype(jnp.int32)
  pick = jax.nn.one_hot(index, num_steps, dtype=outs.dtype).T  # [num_steps, B]
  return jnp.sum(outs * pick.reshape(pick.shape + (1,) * (outs.ndim - 2)), axis=0)


def _mlp_discriminator_layers(h: jax.Array, temb: jax.Array | None, hidden: Sequence[int],
                              *, spectral_norm: bool, zero_init_time: bool,
                              condition_dims: int, train: bool, dtype: Dtype) -> jax.Array:
  """MLPDiscriminator's hidden layers, h [B, F] -> [B, hidden[-1]], created in the calling
  module (dense_i, time_i and, with condition_dims > 0, condition_0 on the last
  condition_dims features, zero-initialised)."""
  h = h.astype(dtype)
  zeros = nn.initializers.zeros
  for i, width in enumerate(hidden):
    dense = _sn(nn.Dense(width, dtype=dtype, name=f"dense_{i}"), spectral_norm, train)
    if i == 0 and condition_dims:
      own, cond = h[:, :-condition_dims], h[:, -condition_dims:]
      h = dense(own) + nn.Dense(width, use_bias=False, kernel_init=zeros, dtype=dtype,
                                name=f"condition_{i}")(cond)
    else:
      h = dense(h)
    if temb is not None:
      init = zeros if zero_init_time else nn.initializers.lecun_normal()
      h = h + nn.Dense(width, kernel_init=init, dtype=dtype, name=f"time_{i}")(temb)
    h = nn.leaky_relu(h, 0.2)
  return h


class _MLPDiscriminatorHead(nn.Module):
  """One per-step discriminator: body and linear logit, x [B, F] -> [B]."""

  hidden: Sequence[int]
  spectral_norm: bool
  condition_dims: int
  train: bool
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    h = _mlp_discriminator_layers(x, None, self.hidden, spectral_norm=self.spectral_norm,
                                  zero_init_time=False, condition_dims=self.condition_dims,
                                  train=self.train, dtype=self.dtype)
    return _projection_head(self, h, None, 0, self.spectral_norm, self.train)


class MLPDiscriminator(nn.Module):
  """x [B, *shape] -> logits [B]; leaky-ReLU MLP, optional SN, projection, time embedding.

  Options for DDGAN's conditional discriminator D([x_{t-1}, x_t], t), whose input is the
  concatenation of the sample and its condition along the last axis:
  * per_step: > 0 gives one MLP per integer t in [0, per_step) (`per_step_heads`; no time
    embedding, time_embed_dim must be 0; no projection), so that the steps' real/fake
    pairs do not share one set of weights;
  * zero_init_time: the per-layer projections of the time embedding start at zero, so
    at initialisation D ignores t (the reference's blocks add the embedding inside a
    residual branch whose last convolution is zero-initialised);
  * zero_init_condition: the second half of the last axis (the condition x_t) enters the
    first layer through its own zero-initialised kernel, so at initialisation D judges
    x_{t-1} alone and learns the dependence on x_t from there.
  On the 25-Gaussian grid the toy DDGAN's discriminator stalls without per_step and
  zero_init_condition (experiments/bench/gan_mixture_coverage_cpu.md).
  """

  hidden: Sequence[int] = (128, 128, 128)
  num_classes: int = 0
  spectral_norm: bool = False
  time_embed_dim: int = 0
  per_step: int = 0
  zero_init_time: bool = False
  zero_init_condition: bool = False
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, y: jax.Array | None = None, t: jax.Array | None = None, *,
               train: bool) -> jax.Array:
    cond = 0
    if self.zero_init_condition:
      if x.shape[-1] % 2:
        raise ValueError(f"zero_init_condition needs an even last axis [sample, condition], "
                         f"got x {x.shape}.")
      half = x.shape[-1] // 2  # flatten as [all samples' features, all conditions']
      x = jnp.concatenate([x[..., :half].reshape(x.shape[0], -1),
                           x[..., half:].reshape(x.shape[0], -1)], axis=1)
      cond = x.shape[1] // 2
    h = x.reshape(x.shape[0], -1)
    if self.per_step:
      if self.time_embed_dim or self.num_classes:
        raise ValueError("MLPDiscriminator: per_step > 0 takes t as the head index; set "
                         "time_embed_dim=0 and num_classes=0.")
      if t is None:
        raise ValueError("MLPDiscriminator: per_step > 0 needs the step t [B].")
      return per_step_heads(_MLPDiscriminatorHead, self.per_step, t, h, name="heads",
                            hidden=tuple(self.hidden), spectral_norm=self.spectral_norm,
                            condition_dims=cond, train=train, dtype=self.dtype)
    temb = _time_embedding(self, t, self.time_embed_dim)
    h = _mlp_discriminator_layers(h, temb, self.hidden, spectral_norm=self.spectral_norm,
                                  zero_init_time=self.zero_init_time, condition_dims=cond,
                                  train=train, dtype=self.dtype)
    return _projection_head(self, h, y, self.num_classes, self.spectral_norm, train)


# ------------------------------------------------------------------------------ DCGAN


class DCGANGenerator(nn.Module):
  """DCGAN generator: Dense to a b x b x ch map, then (ConvT 4x4 /2, BN, ReLU) doubling the
  resolution and halving the channels until out_shape, then a 3x3 conv and tanh.

  With the defaults and out_shape (32, 32, 3) this is StudioGAN's / Miyato et al.'s CIFAR-10
  DCGAN generator (4x4x512 -> 256 -> 128 -> 64 -> 3). b = H / 2^k with k
  `num_upsamplings(H)` (4 for 32, 7 for 28).
  """

  out_shape: Sequence[int] = (32, 32, 3)
  ch: int = 512
  num_classes: int = 0
  dtype: Dtype = jnp.float32
  remat: bool = False

  @nn.compact
  def __call__(self, z: jax.Array, y: jax.Array | None = None, *, train: bool) -> jax.Array:
    _check_out_shape(self, z)
    height, width, channels = self.out_shape
    k = num_upsamplings(height)
    bh, bw = height // 2 ** k, width // 2 ** k
    cbn = lambda name: ConditionalBatchNorm(self.num_classes, dtype=self.dtype, name=name)
    h = nn.Dense(bh * bw * self.ch, dtype=self.dtype, name="linear")(z)
    h = nn.relu(cbn("bn_0")(h.reshape(z.shape[0], bh, bw, self.ch), y, train=train))

    def up(mdl, h, y, ch, i):
      h = ConvTranspose(ch, (4, 4), strides=(2, 2), padding="SAME", dtype=self.dtype,
                        name=f"deconv_{i}")(h)
      return nn.relu(cbn(f"bn_{i + 1}")(h, y, train=train))

    up = layers.maybe_remat(up, self.remat, (3, 4))
    ch = self.ch
    for i in range(k):
      ch //= 2
      h = up(self, h, y, ch, i)
    h = nn.Conv(channels, (3, 3), dtype=self.dtype, name="conv_out")(h)
    return jnp.tanh(h.astype(jnp.float32))


class DCGANDiscriminator(nn.Module):
  """Miyato et al.'s "standard CNN" discriminator (the DCGAN discriminator of StudioGAN).

  conv3x3 ch, conv4x4/2 ch, conv3x3 2ch, conv4x4/2 2ch, conv3x3 4ch, conv4x4/2 4ch,
  conv3x3 8ch (leaky ReLU 0.1 after each; optional batch norm after each conv but the
  first), flatten, Dense -> 1, optional projection. Spectral norm on every weight when
  `spectral_norm` (the SNGAN "standard CNN").
  """

  ch: int = 64
  num_classes: int = 0
  spectral_norm: bool = False
  batch_norm: bool = False
  time_embed_dim: int = 0
  dtype: Dtype = jnp.float32
  remat: bool = False

  @nn.compact
  def __call__(self, x: jax.Array, y: jax.Array | None = None, t: jax.Array | None = None, *,
               train: bool) -> jax.Array:
    if x.ndim != 4:
      raise ValueError(f"DCGANDiscriminator expects images [B, H, W, C], got {x.shape}.")
    temb = _time_embedding(self, t, self.time_embed_dim)
    specs = [(self.ch, 3, 1), (self.ch, 4, 2), (2 * self.ch, 3, 1), (2 * self.ch, 4, 2),
             (4 * self.ch, 3, 1), (4 * self.ch, 4, 2), (8 * self.ch, 3, 1)]

    def layer(mdl, h, temb, i):
      ch, k, s = specs[i]
      conv = nn.Conv(ch, (k, k), strides=(s, s), padding="SAME", dtype=self.dtype,
                     name=f"conv_{i}", conv_general_dilated=strided_conv_general_dilated)
      h = _sn(conv, self.spectral_norm, train)(h)
      if temb is not None and s == 1:
        h = h + nn.Dense(ch, dtype=self.dtype, name=f"time_{i}")(temb)[:, None, None, :]
      if self.batch_norm and i > 0:
        h = nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5,
                         dtype=self.dtype, name=f"bn_{i}")(h)
      return nn.leaky_relu(h, 0.1)

    layer = layers.maybe_remat(layer, self.remat, (3,))
    h = x.astype(self.dtype)
    for i in range(len(specs)):
      h = layer(self, h, temb, i)
    h = h.reshape(h.shape[0], -1)
    return _projection_head(self, h, y, self.num_classes, self.spectral_norm, train)


# ------------------------------------------------------------------------------ SNGAN ResNets


class GBlock(nn.Module):
  """SNGAN generator block: CBN-ReLU-up-conv3-CBN-ReLU-conv3 + (up-conv1) shortcut."""

  out_ch: int
  num_classes: int = 0
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x, y, *, train: bool):
    up = lambda v: jnp.repeat(jnp.repeat(v, 2, axis=1), 2, axis=2)
    cbn = lambda name: ConditionalBatchNorm(self.num_classes, dtype=self.dtype, name=name)
    conv = lambda k, name: nn.Conv(self.out_ch, (k, k), kernel_init=xavier, dtype=self.dtype,
                                   name=name)
    h = nn.relu(cbn("bn_1")(x, y, train=train))
    h = conv(3, "conv_1")(up(h))
    h = nn.relu(cbn("bn_2")(h, y, train=train))
    h = conv(3, "conv_2")(h)
    sc = conv(1, "shortcut")(up(x))
    return h + sc


class SNGANGenerator(nn.Module):
  """SNGAN ResNet generator (Miyato et al. 2018, Table 4 for CIFAR-10).

  z -> Dense b x b x ch -> k GBlocks (each doubles H, W) -> BN, ReLU, conv3x3, tanh, with
  k = num_upsamplings(H) (3 for 32x32: 4 -> 8 -> 16 -> 32). num_classes > 0 makes every batch
  norm class-conditional (the cGAN generator of Miyato & Koyama 2018).
  """

  out_shape: Sequence[int] = (32, 32, 3)
  ch: int = 256
  num_classes: int = 0
  dtype: Dtype = jnp.float32
  remat: bool = False

  @nn.compact
  def __call__(self, z: jax.Array, y: jax.Array | None = None, *, train: bool) -> jax.Array:
    _check_out_shape(self, z)
    height, width, channels = self.out_shape
    k = num_upsamplings(height)
    bh, bw = height // 2 ** k, width // 2 ** k
    h = nn.Dense(bh * bw * self.ch, kernel_init=xavier, dtype=self.dtype, name="linear")(z)
    h = h.reshape(z.shape[0], bh, bw, self.ch)
    block = layers.maybe_remat(
        lambda mdl, h, y, i: GBlock(self.ch, self.num_classes, dtype=self.dtype,
                                    name=f"block_{i}")(h, y, train=train), self.remat, (3,))
    for i in range(k):
      h = block(self, h, y, i)
    h = nn.relu(nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5,
                             dtype=self.dtype, name="bn_out")(h))
    h = nn.Conv(channels, (3, 3), kernel_init=xavier, dtype=self.dtype, name="conv_out")(h)
    return jnp.tanh(h.astype(jnp.float32))


class DBlock(nn.Module):
  """SNGAN discriminator block: ReLU-conv3-ReLU-conv3(-avgpool) + shortcut.

  `first` is the "optimized" first block (no leading ReLU; shortcut avgpool then conv1x1).
  """

  out_ch: int
  down: bool
  first: bool = False
  spectral_norm: bool = True
  kernel_init: Any = xavier
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x, temb, *, train: bool):
    conv = lambda ch, k, name: _sn(
        nn.Conv(ch, (k, k), kernel_init=self.kernel_init, dtype=self.dtype, name=name),
        self.spectral_norm, train)
    pool = lambda v: nn.avg_pool(v, (2, 2), strides=(2, 2)) if self.down else v
    h = x if self.first else nn.relu(x)
    h = conv(self.out_ch, 3, "conv_1")(h)
    if temb is not None:
      h = h + nn.Dense(self.out_ch, dtype=self.dtype, name="time")(temb)[:, None, None, :]
    h = conv(self.out_ch, 3, "conv_2")(nn.relu(h))
    h = pool(h)
    if self.first:
      sc = conv(self.out_ch, 1, "shortcut")(pool(x))
    elif self.down or x.shape[-1] != self.out_ch:
      sc = pool(conv(self.out_ch, 1, "shortcut")(x))
    else:
      sc = x
    return h + sc


class SNGANDiscriminator(nn.Module):
  """SNGAN ResNet discriminator (Miyato et al. 2018, Table 4): an optimised down block,
  then blocks per `down` (CIFAR-10: down, no, no), ReLU, global sum pooling, linear (and
  the projection term when num_classes > 0). Spectral norm on every weight by default.
  """

  ch: int = 128
  down: Sequence[bool] = (True, True, False, False)
  num_classes: int = 0
  spectral_norm: bool = True
  time_embed_dim: int = 0
  dtype: Dtype = jnp.float32
  remat: bool = False

  @nn.compact
  def __call__(self, x: jax.Array, y: jax.Array | None = None, t: jax.Array | None = None, *,
               train: bool) -> jax.Array:
    if x.ndim != 4:
      raise ValueError(f"SNGANDiscriminator expects images [B, H, W, C], got {x.shape}.")
    temb = _time_embedding(self, t, self.time_embed_dim)
    block = layers.maybe_remat(
        lambda mdl, h, temb, i: DBlock(self.ch, self.down[i], first=(i == 0),
                                       spectral_norm=self.spectral_norm, dtype=self.dtype,
                                       name=f"block_{i}")(h, temb, train=train),
        self.remat, (3,))
    h = x.astype(self.dtype)
    for i in range(len(self.down)):
      h = block(self, h, temb, i)
    h = jnp.sum(nn.relu(h).astype(jnp.float32), axis=(1, 2))
    return _projection_head(self, h, y, self.num_classes, self.spectral_norm, train)


# ------------------------------------------------------------------------------ DDGAN


class LatentEmbedding(nn.Module):
  """z [B, Z] -> [B, dim]: the latent's mapping network (n_mlp Dense + leaky ReLU)."""

  dim: int
  n_mlp: int = 3
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, z):
    h = z * jax.lax.rsqrt(jnp.mean(jnp.square(z), axis=1, keepdims=True) + 1e-8)  # PixelNorm
    for i in range(self.n_mlp):
      h = nn.leaky_relu(nn.Dense(self.dim, dtype=self.dtype, name=f"dense_{i}")(h), 0.2)
    return h


def bounded_output(h: jax.Array, bound: float) -> jax.Array:
  """bound * tanh(h / bound) for bound > 0 (bound 1: the DDGAN reference's final tanh), else h.

  Dividing by the bound keeps the slope 1 at 0, so only the range changes with it.
  """
  if bound < 0:
    raise ValueError(f"output_bound must be >= 0 (0: unbounded), got {bound}.")
  return bound * jnp.tanh(h / bound) if bound else h


ACTIVATIONS = dict(silu=nn.silu, relu=nn.relu)


class DDGANMLP(nn.Module):
  """DDGAN generator for vector data: (x_t, t, z) -> x0 prediction, an MLP.

  Input: concat(x_t, embed(t) + mapping(z)); `activation` hidden layers (SiLU or ReLU);
  linear output, then `bounded_output` with `output_bound` (the reference ends its
  generator with tanh for data in [-1, 1]; 2-D mixtures reach |x| ~ 2.2, hence a bound > 1
  in their configs; 0 leaves the output unbounded). The reference has no 2-D generator:
  this MLP is gen_jax's.

  per_step > 0: one such MLP per integer t in [0, per_step) (`per_step_heads`), each
  without the time embedding; z_mapping=False concatenates z itself instead of its
  mapping (used with per_step: input concat(x_t, z)). The 25-Gaussian toy config
  (configs/gan/ddgan_toy_twenty_five_gaussians.py) uses per_step, ReLU and raw z.
  """

  hidden: Sequence[int] = (128, 128, 128)
  z_dim: int = 8
  embed_dim: int = 64
  num_classes: int = 0
  output_bound: float = 0.0
  per_step: int = 0
  activation: str = "silu"
  z_mapping: bool = True
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x_t: jax.Array, t: jax.Array, z: jax.Array, y: jax.Array | None = None,
               *, train: bool) -> jax.Array:
    del train
    if self.activation not in ACTIVATIONS:
      raise ValueError(f"DDGANMLP: activation {self.activation!r} is not one of "
                       f"{sorted(ACTIVATIONS)}.")
    if self.per_step:
      if self.num_classes:
        raise ValueError("DDGANMLP: per_step > 0 has no label embedding; set num_classes=0.")
      fields = {f: getattr(self, f) for f in ("hidden", "z_dim", "embed_dim", "output_bound",
                                              "activation", "z_mapping", "dtype")}
      fields["hidden"] = tuple(self.hidden)
      return per_step_heads(_DDGANMLPHead, self.per_step, t, x_t, z, name="heads", **fields)
    dt = self.dtype
    emb = TimeEmbedding(self.embed_dim, dtype=dt, name="time_embed")(t.astype(jnp.float32))
    if self.z_mapping:
      emb = emb + LatentEmbedding(self.embed_dim, 2, dtype=dt, name="z_embed")(z)
    if self.num_classes:
      emb = emb + nn.Embed(self.num_classes, self.embed_dim, dtype=dt, name="label_embed")(y)
    cond = emb if self.z_mapping else jnp.concatenate([emb, z.astype(emb.dtype)], axis=1)
    return _ddgan_mlp_layers(self, x_t, cond)


def _ddgan_mlp_layers(mdl: nn.Module, x_t: jax.Array, cond: jax.Array) -> jax.Array:
  """DDGANMLP's layers in module `mdl`: concat(x_t, cond) -> x0 prediction like x_t."""
  dt = mdl.dtype
  h = jnp.concatenate([x_t.reshape(x_t.shape[0], -1).astype(dt), cond.astype(dt)], axis=1)
  for i, width in enumerate(mdl.hidden):
    h = ACTIVATIONS[mdl.activation](nn.Dense(width, dtype=dt, name=f"dense_{i}")(h))
  out = nn.Dense(math.prod(x_t.shape[1:]), dtype=dt, name="out")(h).reshape(x_t.shape)
  return bounded_output(out.astype(jnp.float32), mdl.output_bound)


class _DDGANMLPHead(nn.Module):
  """One per-step DDGANMLP: concat(x_t, z or mapping(z)) -> x0 prediction."""

  hidden: Sequence[int]
  z_dim: int
  embed_dim: int
  output_bound: float
  activation: str
  z_mapping: bool
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x_t: jax.Array, z: jax.Array) -> jax.Array:
    cond = (LatentEmbedding(self.embed_dim, 2, dtype=self.dtype, name="z_embed")(z)
            if self.z_mapping else z)
    return _ddgan_mlp_layers(self, x_t, cond)


class DDGANUNet(nn.Module):
  """DDGAN generator for images: a DDPM-style UNet conditioned on t and the latent z.

  The conditioning embedding is embed(t) + mapping(z) (+ label embedding), added inside
  every residual block (Xiao et al. inject z through adaptive group norm of NCSN++; the
  additive form here is the DDPM block's). Output: the x0 prediction [B, H, W, C], passed
  through tanh as in the reference (`ncsnpp_generator_adagn.py`, unless --not_use_tanh), so
  that the posterior samples use a bounded x0 in [-1, 1] (`output_bound`, 0: no tanh).
  `mid_attention` keeps the bottleneck's self-attention (off only in smoke tests).
  """

  ch: int = 128
  ch_mult: Sequence[int] = (1, 2, 2, 2)
  num_res_blocks: int = 2
  attn_resolutions: Sequence[int] = (16,)
  dropout: float = 0.0
  z_dim: int = 100
  n_mlp: int = 4
  num_groups: int = 32
  num_classes: int = 0
  mid_attention: bool = True
  output_bound: float = 1.0
  dtype: Dtype = jnp.float32
  remat: bool = False

  @nn.compact
  def __call__(self, x_t: jax.Array, t: jax.Array, z: jax.Array, y: jax.Array | None = None,
               *, train: bool) -> jax.Array:
    if x_t.ndim != 4:
      raise ValueError(f"DDGANUNet expects images [B, H, W, C], got {x_t.shape}.")
    emb_dim = 4 * self.ch
    dt = self.dtype
    emb = TimeEmbedding(emb_dim, dtype=dt, name="time_embed")(t.astype(jnp.float32))
    emb = emb + LatentEmbedding(emb_dim, self.n_mlp, dtype=dt, name="z_embed")(z)
    if self.num_classes:
      emb = emb + nn.Embed(self.num_classes, emb_dim, dtype=dt, name="label_embed")(y)
    block = layers.maybe_remat(
        lambda mdl, h, emb, ch, name: layers.ResnetBlock(
            ch, self.dropout, self.num_groups, skip_rescale=True, dtype=dt, name=name)(
                h, emb, train=train), self.remat, (3, 4))
    attn = layers.maybe_remat(
        lambda mdl, h, name: layers.AttentionBlock(num_groups=self.num_groups,
                                                   skip_rescale=True, dtype=dt, name=name)(h),
        self.remat, (2,))
    h = nn.Conv(self.ch, (3, 3), dtype=dt, name="conv_in")(x_t.astype(dt))
    skips = [h]
    for i, mult in enumerate(self.ch_mult):
      for j in range(self.num_res_blocks):
        h = block(self, h, emb, self.ch * mult, f"down_{i}_block_{j}")
        if h.shape[1] in self.attn_resolutions:
          h = attn(self, h, f"down_{i}_attn_{j}")
        skips.append(h)
      if i != len(self.ch_mult) - 1:
        h = layers.Downsample(dtype=dt, name=f"down_{i}_downsample")(h)
        skips.append(h)
    h = block(self, h, emb, h.shape[-1], "mid_block_1")
    if self.mid_attention:
      h = attn(self, h, "mid_attn")
    h = block(self, h, emb, h.shape[-1], "mid_block_2")
    for i in reversed(range(len(self.ch_mult))):
      for j in range(self.num_res_blocks + 1):
        h = jnp.concatenate([h, skips.pop()], axis=-1)
        h = block(self, h, emb, self.ch * self.ch_mult[i], f"up_{i}_block_{j}")
        if h.shape[1] in self.attn_resolutions:
          h = attn(self, h, f"up_{i}_attn_{j}")
      if i != 0:
        h = layers.Upsample(dtype=dt, name=f"up_{i}_upsample")(h)
    h = nn.swish(layers.group_norm(h.shape[-1], self.num_groups, dtype=dt,
                                   name="norm_out")(h))
    h = nn.Conv(x_t.shape[-1], (3, 3), dtype=dt, name="conv_out")(h)
    return bounded_output(h.astype(jnp.float32), self.output_bound)

