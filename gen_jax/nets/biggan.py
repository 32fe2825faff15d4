"""BigGAN networks (Brock et al., "Large Scale GAN Training for High Fidelity Natural
Image Synthesis", ICLR 2019), after the official BigGAN-PyTorch (BigGAN.py, layers.py).

Registered in `gen_jax.nets.NETS` (by `gen_jax/nets/__init__.py`):

  "biggan_generator"      z [B, Z], y [B] | None -> images [B, H, W, C] in [-1, 1]
  "biggan_discriminator"  x [B, H, W, C], y [B] | None -> logits [B]
  "biggan_mlp_generator"  z [B, Z], y [B] | None -> [B, *out_shape]: the same conditioning
                          (hierarchical z, shared embedding, conditional BN, SN) in an MLP,
                          for 2-D toy data

Generator. z is split into len(blocks) + 1 equal chunks ("hierarchical latents", skip-z):
the first feeds the linear layer that makes the 4x4 bottom map, chunk i + 1 conditions
block i. With a shared class embedding (shared_dim > 0) every conditional batch norm of
block i reads c_i = [shared(y), z_{i+1}] and computes

    BN(h) * (1 + W_gain c_i) + W_bias c_i      (W_gain, W_bias: linear, no bias, SN),

so one [num_classes, shared_dim] embedding serves all layers instead of a per-class
gain and bias in each. Blocks (G ResBlock, Fig. 15b): CBN-ReLU-up2x-conv3-CBN-ReLU-conv3,
plus an up2x-conv1x1 shortcut; self-attention (SAGAN, `SelfAttention`) after the block
whose output has an `attention` resolution; then BN-ReLU-conv3-tanh. Channels per block:
ch * ch_mult, by default the official tables (`G_CH_MULT`); spectral norm on every
convolution and linear layer of G and D (not on G's embedding, as in the official code).

Discriminator: SNGAN's residual blocks (`gan.DBlock`, the first one "optimised", the
others pre-activated, wide: hidden channels = output channels), channels ch * ch_mult,
self-attention after the block with an `attention` output resolution, ReLU, global sum
pooling, linear output plus the projection term <embed(y), h> (Miyato & Koyama 2018).

Deviations from BigGAN-PyTorch:
* NHWC layout and Flax's parameter layouts; the bottom linear layer's outputs are
  reshaped to [B, 4, 4, C] (a permutation of PyTorch's view to [B, C, 4, 4]).
* Spectral norm is flax's SpectralNorm (one power iteration per training call, u kept in
  the "spectral" collection; epsilon 1e-12 where the launch scripts use SN_eps 1e-6 /
  1e-8); D's power iteration is updated in its own steps only (see methods/gan.py).
* Z must be divisible by the number of chunks (the official code silently shortens z to
  a multiple); hierarchical latents need a shared embedding when class-conditional (the
  official code cannot run hier without G_shared either).
* Without a shared embedding (BigGAN-PyTorch's G_shared=False, its CIFAR script) the
  gain and bias are per-class embeddings read as 1 + E_gain[y] and E_bias[y], as there.
* An unconditional generator (num_classes = 0, not in the official code) conditions its
  batch norms on the z chunks alone, or uses plain learned-affine batch norm.
* D's attention placement uses each block's real output resolution; the official
  32x32 table labels all four CIFAR blocks "16" (no CIFAR config uses attention there).
* Initialisation `weight_init`: "ortho" (flax orthogonal over the [fan_in, out] reshaped kernel,
  i.e. orthonormal output filters like torch.nn.init.orthogonal_ on weight.view(out, -1)),
  "N02" (normal, std 0.02) or "xavier"; biases start at 0 (PyTorch's default is uniform).
* Cross-replica (sync) batch norm is the only behaviour: under jit the statistics are
  those of the global batch (see methods/gan.py).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from gen_jax.nets import gan
from gen_jax.nets.gan import _check_out_shape, _projection_head, _sn

INITS = {
    "ortho": nn.initializers.orthogonal(),
    "N02": nn.initializers.normal(0.02),
    "xavier": nn.initializers.xavier_uniform(),
}

# Output channel multipliers of the generator's blocks, by output resolution (G_arch); the
# bottom 4x4 map has ch * mult[0] channels.
G_CH_MULT = {32: (4, 4, 4), 64: (16, 8, 4, 2), 128: (16, 8, 4, 2, 1),
             256: (16, 8, 8, 4, 2, 1), 512: (16, 8, 8, 4, 2, 1, 1)}
# The discriminator's blocks (D_arch): output channel multipliers and downsampling.
D_CH_MULT = {32: (4, 4, 4, 4), 64: (1, 2, 4, 8, 16), 128: (1, 2, 4, 8, 16, 16),
             256: (1, 2, 4, 8, 8, 16, 16)}
D_DOWN = {32: (True, True, False, False), 64: (True,) * 4 + (False,),
          128: (True,) * 5 + (False,), 256: (True,) * 6 + (False,)}


def _init(name: str):
  if name not in INITS:
    raise ValueError(f"Unknown BigGAN init {name!r}; use one of {sorted(INITS)}.")
  return INITS[name]


def _table(table: dict, resolution: int, what: str):
  if resolution not in table:
    raise ValueError(f"No default BigGAN {what} for resolution {resolution}; known: "
                     f"{sorted(table)}. Set it explicitly for this size.")
  return table[resolution]


def split_latent(z: jax.Array, num_chunks: int) -> list[jax.Array]:
  """z [B, Z] -> num_chunks arrays [B, Z / num_chunks] (hierarchical latents)."""
  if z.shape[-1] % num_chunks:
    raise ValueError(f"Hierarchical latents split z into {num_chunks} equal chunks (one for "
                     f"the input layer and one per block), but z has {z.shape[-1]} dims; set "
                     f"method.z_dim to a multiple of {num_chunks} (BigGAN 128px: 120 = 6 x 20).")
  return jnp.split(z, num_chunks, axis=-1)


class ConditionalBN(nn.Module):
  """BigGAN's class-conditional batch norm (`layers.ccbn`): BN(x) (1 + gain) + bias.

  c [B, C] (a vector: shared embedding and/or z chunk) -> gain, bias by linear maps
  without bias (spectrally normalised when `spectral_norm`); or, with num_classes > 0,
  c int [B] -> gain, bias by per-class embeddings; c None -> plain batch norm with a
  learned affine map (`gan.ConditionalBatchNorm` with one shared gain and bias).
  """

  num_classes: int = 0
  spectral_norm: bool = True
  kernel_init: Any = INITS["ortho"]
  momentum: float = 0.9
  epsilon: float = 1e-5

  @nn.compact
  def __call__(self, x: jax.Array, c: jax.Array | None, *, train: bool) -> jax.Array:
    if c is None:
      return gan.ConditionalBatchNorm(0, self.momentum, self.epsilon, name="affine")(
          x, None, train=train)
    ch = x.shape[-1]
    h = nn.BatchNorm(use_running_average=not train, momentum=self.momentum,
                     epsilon=self.epsilon, use_scale=False, use_bias=False, name="bn")(x)
    if self.num_classes:
      embed = lambda name: nn.Embed(self.num_classes, ch, embedding_init=self.kernel_init,
                                    name=name)
      gain, bias = embed("gain")(c), embed("bias")(c)
    else:
      linear = lambda name: _sn(nn.Dense(ch, use_bias=False, kernel_init=self.kernel_init,
                                         name=name), self.spectral_norm, train)
      gain, bias = linear("gain")(c), linear("bias")(c)
    shape = (x.shape[0],) + (1,) * (x.ndim - 2) + (ch,)
    return h * (1.0 + gain.reshape(shape)) + bias.reshape(shape)


class SelfAttention(nn.Module):
  """SAGAN's self-attention as in BigGAN-PyTorch (`layers.Attention`), x [B, H, W, C].

  theta, phi, g: 1x1 convs (no bias) to C/8, C/8, C/2 channels; phi and g max-pooled 2x2;
  beta = softmax over keys of theta phi^T; out = x + gamma * conv1x1(beta g) with gamma a
  learned scalar starting at 0 (the block starts as the identity).
  """

  spectral_norm: bool = True
  kernel_init: Any = INITS["ortho"]

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    b, height, width, ch = x.shape
    if ch % 8 or height % 2 or width % 2:
      raise ValueError(f"SelfAttention needs channels divisible by 8 and even H, W; got "
                       f"{x.shape}. Move `attention` to another resolution or widen `ch`.")
    conv = lambda out, name: _sn(nn.Conv(out, (1, 1), use_bias=False,
                                         kernel_init=self.kernel_init, name=name),
                                 self.spectral_norm, train)
    pool = lambda v: nn.max_pool(v, (2, 2), strides=(2, 2))
    theta = conv(ch // 8, "theta")(x).reshape(b, height * width, ch // 8)
    phi = pool(conv(ch // 8, "phi")(x)).reshape(b, -1, ch // 8)
    g = pool(conv(ch // 2, "g")(x)).reshape(b, -1, ch // 2)
    beta = jax.nn.softmax(jnp.einsum("bqc,bkc->bqk", theta, phi), axis=-1)
    o = jnp.einsum("bqk,bkc->bqc", beta, g).reshape(b, height, width, ch // 2)
    gamma = self.param("gamma", nn.initializers.zeros, ())
    return x + gamma * conv(ch, "o")(o)


def block_conditions(z_chunks: Sequence[jax.Array], y: jax.Array | None, num_blocks: int,
                     num_classes: int, shared_dim: int, kernel_init) -> tuple[list, int]:
  """(c_i for each block, num_classes for ConditionalBN); call inside a compact module.

  With a shared embedding, c_i = [shared(y), z_{i+1}] (hierarchical) or shared(y); without
  one, c_i = y (per-class gains) or the z chunk alone (unconditional, hierarchical) or None.
  """
  hierarchical = len(z_chunks) > 0
  if num_classes and y is None:
    raise ValueError("A class-conditional BigGAN generator (num_classes > 0) needs labels y [B].")
  if num_classes and not shared_dim:
    if hierarchical:
      raise ValueError("Hierarchical latents concatenate z chunks to a shared class embedding; "
                       "set shared_dim > 0 (BigGAN: 128) or hierarchical=False.")
    return [y] * num_blocks, num_classes
  parts = []
  if num_classes:
    shared = nn.Embed(num_classes, shared_dim, embedding_init=kernel_init, name="shared")(y)
    parts = [shared]
  if hierarchical:
    return [jnp.concatenate(parts + [zc], axis=-1) for zc in z_chunks], 0
  return [parts[0] if parts else None] * num_blocks, 0


class GBlock(nn.Module):
  """BigGAN generator block: CBN-ReLU-up-conv3-CBN-ReLU-conv3 + up-conv1x1 shortcut."""

  out_ch: int
  num_classes: int = 0
  spectral_norm: bool = True
  kernel_init: Any = INITS["ortho"]
  bn_momentum: float = 0.9
  bn_epsilon: float = 1e-5

  @nn.compact
  def __call__(self, x, c, *, train: bool):
    bn = lambda name: ConditionalBN(self.num_classes, self.spectral_norm, self.kernel_init,
                                    self.bn_momentum, self.bn_epsilon, name=name)
    conv = lambda k, name: _sn(nn.Conv(self.out_ch, (k, k), kernel_init=self.kernel_init,
                                       name=name), self.spectral_norm, train)
    up = lambda v: jnp.repeat(jnp.repeat(v, 2, axis=1), 2, axis=2)
    h = up(nn.relu(bn("bn_1")(x, c, train=train)))
    h = conv(3, "conv_1")(h)
    h = conv(3, "conv_2")(nn.relu(bn("bn_2")(h, c, train=train)))
    return h + conv(1, "shortcut")(up(x))


class BigGANGenerator(nn.Module):
  """BigGAN generator (see the module docstring); z [B, Z], y [B] | None -> [B, H, W, C].

  Attributes:
    out_shape: (H, W, C) with H = W = bottom * 2 ** len(ch_mult).
    ch: width multiplier (BigGAN 128px: 96; CIFAR-10: 64).
    ch_mult: output channel multipliers of the blocks; None: `G_CH_MULT[H]`.
    attention: block output resolutions followed by self-attention (128px: (64,)).
    num_classes: > 0 for class-conditional batch norm.
    shared_dim: size of the shared class embedding (BigGAN: 128); 0: per-class gains.
    hierarchical: split z over the input layer and the blocks (skip-z).
    spectral_norm: SN on every convolution and linear layer.
    weight_init: "ortho" | "N02" | "xavier".
    bn_momentum, bn_epsilon: batch-norm running-average decay (0.9 = PyTorch's 0.1) and
      variance floor; standing statistics run the net with bn_momentum = 0.
    bottom: side of the first feature map.
  """

  out_shape: Sequence[int] = (128, 128, 3)
  ch: int = 96
  ch_mult: Sequence[int] | None = None
  attention: Sequence[int] = (64,)
  num_classes: int = 0
  shared_dim: int = 128
  hierarchical: bool = True
  spectral_norm: bool = True
  weight_init: str = "ortho"
  bn_momentum: float = 0.9
  bn_epsilon: float = 1e-5
  bottom: int = 4

  @nn.compact
  def __call__(self, z: jax.Array, y: jax.Array | None = None, *, train: bool) -> jax.Array:
    _check_out_shape(self, z)
    height, width, channels = self.out_shape
    mult = tuple(self.ch_mult or _table(G_CH_MULT, height, "generator ch_mult"))
    if height != width or height != self.bottom * 2 ** len(mult):
      raise ValueError(f"BigGANGenerator makes square images of side bottom * 2**len(ch_mult) "
                       f"= {self.bottom * 2 ** len(mult)}; got out_shape {self.out_shape}.")
    kinit = _init(self.weight_init)
    chunks = split_latent(z, len(mult) + 1) if self.hierarchical else [z]
    conds, bn_classes = block_conditions(chunks[1:], y, len(mult), self.num_classes,
                                         self.shared_dim, kinit)
    c0 = self.ch * mult[0]
    h = _sn(nn.Dense(self.bottom ** 2 * c0, kernel_init=kinit, name="linear"),
            self.spectral_norm, train)(chunks[0])
    h = h.reshape(z.shape[0], self.bottom, self.bottom, c0)
    for i, m in enumerate(mult):
      h = GBlock(self.ch * m, bn_classes, self.spectral_norm, kinit, self.bn_momentum,
                 self.bn_epsilon, name=f"block_{i}")(h, conds[i], train=train)
      if h.shape[1] in self.attention:
        h = SelfAttention(self.spectral_norm, kinit, name=f"attention_{i}")(h, train=train)
    h = nn.relu(gan.ConditionalBatchNorm(0, self.bn_momentum, self.bn_epsilon,
                                         name="bn_out")(h, None, train=train))
    h = _sn(nn.Conv(channels, (3, 3), kernel_init=kinit, name="conv_out"),
            self.spectral_norm, train)(h)
    return jnp.tanh(h)


class BigGANDiscriminator(nn.Module):
  """BigGAN discriminator (see the module docstring); x [B, H, W, C], y | None -> [B].

  Attributes:
    ch: width multiplier (128px: 96; CIFAR-10: 64).
    ch_mult, down: per block output channel multipliers and 2x downsampling; None: the
      official tables `D_CH_MULT[H]`, `D_DOWN[H]`.
    attention: block output resolutions followed by self-attention (128px: (64,)).
    num_classes: > 0 adds the projection term.
    spectral_norm: SN on every weight.
    weight_init: "ortho" | "N02" | "xavier".
  """

  ch: int = 96
  ch_mult: Sequence[int] | None = None
  down: Sequence[bool] | None = None
  attention: Sequence[int] = (64,)
  num_classes: int = 0
  spectral_norm: bool = True
  weight_init: str = "ortho"

  @nn.compact
  def __call__(self, x: jax.Array, y: jax.Array | None = None, t: jax.Array | None = None, *,
               train: bool) -> jax.Array:
    if x.ndim != 4:
      raise ValueError(f"BigGANDiscriminator expects images [B, H, W, C], got {x.shape}.")
    if t is not None:
      raise ValueError("BigGANDiscriminator takes no timesteps; disable method.diffusion.")
    mult = tuple(self.ch_mult or _table(D_CH_MULT, x.shape[1], "discriminator ch_mult"))
    down = tuple(self.down or _table(D_DOWN, x.shape[1], "discriminator down"))
    if len(mult) != len(down):
      raise ValueError(f"ch_mult {mult} and down {down} must have one entry per block.")
    kinit = _init(self.weight_init)
    h = x
    for i, (m, d) in enumerate(zip(mult, down)):
      h = gan.DBlock(self.ch * m, d, first=(i == 0), spectral_norm=self.spectral_norm,
                     kernel_init=kinit, name=f"block_{i}")(h, None, train=train)
      if h.shape[1] in self.attention:
        h = SelfAttention(self.spectral_norm, kinit, name=f"attention_{i}")(h, train=train)
    h = jnp.sum(nn.relu(h), axis=(1, 2))
    return _projection_head(self, h, y, self.num_classes, self.spectral_norm, train,
                            kernel_init=kinit)


class BigGANMLPGenerator(nn.Module):
  """BigGAN's generator conditioning in an MLP for 2-D toy data; z [B, Z] -> [B, *out_shape].

  z splits into len(hidden) + 1 chunks (hierarchical): chunk 0 feeds the first linear
  layer, chunk i + 1 (with the shared class embedding, when conditional) conditions the
  batch norm before hidden layer i's ReLU; linear layers are spectrally normalised.
  Layers: Dense(hidden[0]), then per i: CBN, ReLU, Dense(hidden[i + 1] or the output).
  Attributes as `BigGANGenerator`.
  """

  out_shape: Sequence[int] = (2,)
  hidden: Sequence[int] = (128, 128, 128)
  num_classes: int = 0
  shared_dim: int = 0
  hierarchical: bool = True
  spectral_norm: bool = True
  weight_init: str = "ortho"
  bn_momentum: float = 0.9
  bn_epsilon: float = 1e-5

  @nn.compact
  def __call__(self, z: jax.Array, y: jax.Array | None = None, *, train: bool) -> jax.Array:
    _check_out_shape(self, z)
    kinit = _init(self.weight_init)
    n = len(self.hidden)
    chunks = split_latent(z, n + 1) if self.hierarchical else [z]
    conds, bn_classes = block_conditions(chunks[1:], y, n, self.num_classes, self.shared_dim,
                                         kinit)
    dense = lambda width, name: _sn(nn.Dense(width, kernel_init=kinit, name=name),
                                    self.spectral_norm, train)
    h = dense(self.hidden[0], "dense_0")(chunks[0])
    widths = list(self.hidden[1:]) + [math.prod(self.out_shape)]
    for i, width in enumerate(widths):
      h = ConditionalBN(bn_classes, self.spectral_norm, kinit, self.bn_momentum,
                        self.bn_epsilon, name=f"bn_{i}")(h, conds[i], train=train)
      h = dense(width, f"dense_{i + 1}" if i + 1 < n else "out")(nn.relu(h))
    return h.reshape((z.shape[0], *self.out_shape))
