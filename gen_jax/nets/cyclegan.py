"""CycleGAN networks: the ResNet generator and the 70x70 PatchGAN discriminator.

Zhu, Park, Isola & Efros, "Unpaired Image-to-Image Translation using Cycle-Consistent
Adversarial Networks" (ICCV 2017), following the official code
(junyanz/pytorch-CycleGAN-and-pix2pix, models/networks.py: ResnetGenerator, ResnetBlock,
NLayerDiscriminator, init_weights) with its CycleGAN defaults: ngf = ndf = 64, instance
norm without affine parameters, no dropout, weights ~ N(0, 0.02), biases 0.

Registered in `gen_jax.nets.NETS`:

  "cyclegan_resnet_generator"  x [B, H, W, C] in [-1, 1] -> [B, H, W, out_channels] in
                               [-1, 1] (H, W divisible by 4)
  "patchgan_discriminator"     x [B, H, W, C] -> logits [B, H', W', 1], one per patch
                               (30 x 30 patches of 70 x 70 pixels for a 256 x 256 input)

Generator (c7s1-64, d128, d256, R256 x num_blocks, u128, u64, c7s1-3):
  reflect-pad 3, conv 7x7 ngf, IN, ReLU;
  two downsamplings: conv 3x3 stride 2 (zero pad 1), IN, ReLU (ngf*2, ngf*4);
  num_blocks residual blocks x + [reflect-pad 1, conv 3x3, IN, ReLU, reflect-pad 1,
  conv 3x3, IN];
  two upsamplings: transposed conv 3x3 stride 2 (PyTorch padding 1, output_padding 1:
  exactly 2x), IN, ReLU (ngf*2, ngf);
  reflect-pad 3, conv 7x7 out_channels, tanh.

PatchGAN (n_layers = 3): conv 4x4/2 ndf, LReLU(0.2); conv 4x4/2 2ndf, IN, LReLU;
conv 4x4/2 4ndf, IN, LReLU; conv 4x4/1 8ndf, IN, LReLU; conv 4x4/1 1 (zero pad 1 each).

Deviations from the official code:
* The transposed convolutions are `gen_jax.nets.conv_transpose.ConvTranspose` (lax's
  convention, explicit padding (1, 2) = PyTorch's padding 1 + output_padding 1). Its kernel
  is PyTorch's flipped in space; with the symmetric N(0, 0.02) init, training is the same
  in distribution, but PyTorch checkpoints need the flip to load.
* Strided convolutions use `strided_conv_general_dilated` (the same values; a faster
  input gradient on XLA's CPU backend).
* Instance norm is computed in float32 whatever the compute dtype.
* `train` is accepted and ignored (instance norm has no running statistics and the
  CycleGAN default has no dropout), so both nets share the GAN call convention.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from gen_jax.nets.conv_transpose import ConvTranspose, strided_conv_general_dilated

Dtype = Any
normal_init = nn.initializers.normal(0.02)


def instance_norm(x: jax.Array, eps: float = 1e-5) -> jax.Array:
  """Per-example, per-channel normalisation over H, W (biased variance), no affine.

  As `torch.nn.InstanceNorm2d(affine=False, track_running_stats=False)`.
  x: [B, H, W, C] -> same shape and dtype.
  """
  h = x.astype(jnp.float32)
  mean = jnp.mean(h, axis=(1, 2), keepdims=True)
  var = jnp.mean(jnp.square(h - mean), axis=(1, 2), keepdims=True)
  return ((h - mean) * jax.lax.rsqrt(var + eps)).astype(x.dtype)


def reflect_pad(x: jax.Array, p: int) -> jax.Array:
  """Reflection padding of H and W by p (as torch.nn.ReflectionPad2d(p))."""
  return jnp.pad(x, ((0, 0), (p, p), (p, p), (0, 0)), mode="reflect")


def _conv(features: int, kernel: int, stride: int, padding, name: str, dtype: Dtype):
  return nn.Conv(features, (kernel, kernel), strides=(stride, stride), padding=padding,
                 kernel_init=normal_init, bias_init=nn.initializers.zeros, dtype=dtype,
                 conv_general_dilated=strided_conv_general_dilated, name=name)


class ResnetBlock(nn.Module):
  """x + [reflect-pad 1, conv 3x3, IN, ReLU, reflect-pad 1, conv 3x3, IN](x)."""

  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    ch = x.shape[-1]
    h = _conv(ch, 3, 1, "VALID", "conv_0", self.dtype)(reflect_pad(x, 1))
    h = nn.relu(instance_norm(h))
    h = _conv(ch, 3, 1, "VALID", "conv_1", self.dtype)(reflect_pad(h, 1))
    return x + instance_norm(h)


class ResnetGenerator(nn.Module):
  """The CycleGAN ResNet generator (module docstring); resnet_9blocks with the defaults.

  Attributes:
    out_channels: channels of the output image (3 for RGB).
    ngf: channels after the first convolution.
    num_blocks: residual blocks at 1/4 resolution (9 for 256 px, 6 for 128 px in the paper).
    dtype: compute dtype of the convolutions (parameters stay float32).
  """

  out_channels: int = 3
  ngf: int = 64
  num_blocks: int = 9
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool = False) -> jax.Array:
    del train
    if x.ndim != 4 or x.shape[1] % 4 or x.shape[2] % 4:
      raise ValueError(f"ResnetGenerator needs images [B, H, W, C] with H and W divisible by "
                       f"4 (two 2x downsamplings), got {x.shape}.")
    h = _conv(self.ngf, 7, 1, "VALID", "conv_in", self.dtype)(reflect_pad(x, 3))
    h = nn.relu(instance_norm(h))
    for i, mult in enumerate((2, 4)):
      h = _conv(self.ngf * mult, 3, 2, ((1, 1), (1, 1)), f"down_{i}", self.dtype)(h)
      h = nn.relu(instance_norm(h))
    for i in range(self.num_blocks):
      h = ResnetBlock(dtype=self.dtype, name=f"block_{i}")(h)
    for i, mult in enumerate((2, 1)):
      h = ConvTranspose(self.ngf * mult, (3, 3), strides=(2, 2), padding=((1, 2), (1, 2)),
                        kernel_init=normal_init, dtype=self.dtype, name=f"up_{i}")(h)
      h = nn.relu(instance_norm(h))
    h = _conv(self.out_channels, 7, 1, "VALID", "conv_out", self.dtype)(reflect_pad(h, 3))
    return jnp.tanh(h.astype(jnp.float32))


class PatchDiscriminator(nn.Module):
  """The CycleGAN / pix2pix PatchGAN (NLayerDiscriminator): one logit per image patch.

  With num_layers = 3 every output sees a 70 x 70 window of the input.

  Attributes:
    ndf: channels of the first convolution (doubled per layer, at most 8 ndf).
    num_layers: strided 4x4 convolutions (3: the 70 x 70 PatchGAN).
    dtype: compute dtype of the convolutions.
  """

  ndf: int = 64
  num_layers: int = 3
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool = False) -> jax.Array:
    del train
    if x.ndim != 4:
      raise ValueError(f"PatchDiscriminator expects images [B, H, W, C], got {x.shape}.")
    if min(patch_grid(x.shape[1], self.num_layers), patch_grid(x.shape[2], self.num_layers)) < 1:
      raise ValueError(f"Images of {x.shape[1]}x{x.shape[2]} are too small for a PatchGAN with "
                       f"num_layers={self.num_layers} (no patch is left); use larger images "
                       "or fewer layers.")
    pad = ((1, 1), (1, 1))
    h = nn.leaky_relu(_conv(self.ndf, 4, 2, pad, "conv_0", self.dtype)(x), 0.2)
    for n in range(1, self.num_layers + 1):
      stride = 2 if n < self.num_layers else 1
      ch = self.ndf * min(2 ** n, 8)
      h = _conv(ch, 4, stride, pad, f"conv_{n}", self.dtype)(h)
      h = nn.leaky_relu(instance_norm(h), 0.2)
    h = _conv(1, 4, 1, pad, "conv_out", self.dtype)(h)
    return h.astype(jnp.float32)


def patch_grid(size: int, num_layers: int = 3) -> int:
  """Logits per side for an input side of `size`: num_layers halvings, then two -1 convs."""
  for _ in range(num_layers):
    size //= 2  # 4x4 stride 2, pad 1
  return size - 2


def receptive_field(num_layers: int = 3) -> int:
  """The convolutions' input window (pixels) per PatchGAN logit: 70 for num_layers = 3.

  (16 for num_layers = 1, pix2pix's "16x16 PatchGAN".) Instance norm adds a dependence on
  each feature map's image-wide mean and variance on top of this window.
  """
  size = 4  # the final 4x4 conv
  strides = [2] * num_layers + [1]  # the layers before it, from the top down
  for s in reversed(strides):
    size = (size - 1) * s + 4
  return size
