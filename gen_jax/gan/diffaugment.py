"""DiffAugment: differentiable augmentations applied to everything the discriminator sees.

Zhao, Liu, Lin, Zhu & Han, "Differentiable Augmentation for Data-Efficient GAN Training"
(NeurIPS 2020). The same policy (a sequence of registered transforms) is applied to real
and generated images, each example with its own random parameters, and gradients flow
through it to the generator. Images are NHWC in [-1, 1].

Transforms (`DIFF_AUGMENTS`), as in the reference implementation:
* "color": brightness x + (u - 0.5); saturation (x - mean_c) * 2u + mean_c; contrast
  (x - mean) * (u + 0.5) + mean, with u ~ U[0, 1) per example and per factor
  (mean_c: the per-pixel channel mean, mean: the per-image mean);
* "translation": shift by an integer number of pixels in [-H/8, H/8] (and W) per example,
  filling with zeros;
* "cutout": zero a square of side H/2 (W/2) at a random position per example.
"""

from __future__ import annotations

from typing import Callable, Sequence

import jax
import jax.numpy as jnp

from gen_jax.core.registry import Registry

Array = jax.Array
Augment = Callable[[Array, Array], Array]  # (rng, x [B, H, W, C]) -> same shape

DIFF_AUGMENTS: Registry[Augment] = Registry("DiffAugment transform")


def _uniform(rng: Array, b: int) -> Array:
  return jax.random.uniform(rng, (b, 1, 1, 1), jnp.float32)


@DIFF_AUGMENTS.register("color")
def color(rng: Array, x: Array) -> Array:
  r1, r2, r3 = jax.random.split(rng, 3)
  b = x.shape[0]
  x = x + (_uniform(r1, b) - 0.5)
  mean_c = jnp.mean(x, axis=3, keepdims=True)
  x = (x - mean_c) * (_uniform(r2, b) * 2.0) + mean_c
  mean = jnp.mean(x, axis=(1, 2, 3), keepdims=True)
  return (x - mean) * (_uniform(r3, b) + 0.5) + mean


def translate(x: Array, shift_h: Array, shift_w: Array, pad: tuple[int, int]) -> Array:
  """Shifts each image by (shift_h, shift_w) int [B] pixels (|shift| <= pad), zero fill.

  out[i, h, w] = x[i, h - shift_h[i], w - shift_w[i]] where that index is inside the image.
  """
  ph, pw = pad
  _, height, width, _ = x.shape
  padded = jnp.pad(x, ((0, 0), (ph, ph), (pw, pw), (0, 0)))

  def one(img, sh, sw):
    return jax.lax.dynamic_slice(img, (ph - sh, pw - sw, 0), (height, width, img.shape[-1]))

  return jax.vmap(one)(padded, shift_h, shift_w)


@DIFF_AUGMENTS.register("translation")
def translation(rng: Array, x: Array, ratio: float = 0.125) -> Array:
  b, height, width, _ = x.shape
  ph, pw = int(height * ratio + 0.5), int(width * ratio + 0.5)
  rh, rw = jax.random.split(rng)
  sh = jax.random.randint(rh, (b,), -ph, ph + 1)
  sw = jax.random.randint(rw, (b,), -pw, pw + 1)
  return translate(x, sh, sw, (ph, pw))


@DIFF_AUGMENTS.register("cutout")
def cutout(rng: Array, x: Array, ratio: float = 0.5) -> Array:
  b, height, width, _ = x.shape
  ch, cw = int(height * ratio + 0.5), int(width * ratio + 0.5)
  rh, rw = jax.random.split(rng)
  # Top-left corner of the square, as the reference: centre in [0, H + 1 - ch % 2).
  oh = jax.random.randint(rh, (b, 1, 1), 0, height + (1 - ch % 2)) - ch // 2
  ow = jax.random.randint(rw, (b, 1, 1), 0, width + (1 - cw % 2)) - cw // 2
  hh = jnp.arange(height)[None, :, None]
  ww = jnp.arange(width)[None, None, :]
  inside = (hh >= oh) & (hh < oh + ch) & (ww >= ow) & (ww < ow + cw)
  return x * (1.0 - inside.astype(x.dtype))[..., None]


def diff_augment(rng: Array, x: Array, policy: Sequence[str]) -> Array:
  """Applies the transforms named in `policy`, in order, each with its own key.

  Args:
    rng: PRNG key; real and fake batches should use different keys (each example gets
      independent parameters, the *distribution* of transforms is what is shared).
    x: [B, H, W, C] images.
    policy: names in `DIFF_AUGMENTS`, e.g. ("color", "translation", "cutout").

  Raises:
    ValueError: if x is not a batch of images while the policy is non-empty.
  """
  if not policy:
    return x
  if x.ndim != 4:
    raise ValueError(f"DiffAugment works on images [B, H, W, C]; got shape {x.shape}. Set "
                     "method.diffaugment='' for vector (e.g. 2-D toy) data.")
  keys = jax.random.split(rng, len(policy))
  for key, name in zip(keys, policy):
    x = DIFF_AUGMENTS.get(name)(key, x)
  return x


def parse_policy(policy: str | Sequence[str]) -> tuple[str, ...]:
  """'color,translation,cutout' (or a sequence) -> a validated tuple of names."""
  names = tuple(p.strip() for p in policy.split(",")) if isinstance(policy, str) else tuple(policy)
  names = tuple(n for n in names if n)
  for n in names:
    DIFF_AUGMENTS.get(n)
  return names
