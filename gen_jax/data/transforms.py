"""Per-example image transforms in NumPy: uint8 pixels in, model-ready float32 out.

All functions take one example image of shape [H, W, C] (no batch axis). Randomness comes
from an explicit `np.random.Generator`, which grain's `random_map` seeds from the element
index so that a pipeline is reproducible and resumable.

Two maps from uint8 to [-1, 1] are used, and they differ by less than one bin (2/256):

  to_float:    x = u / 127.5 - 1                 (0 -> -1, 255 -> +1 exactly)
  dequantize:  x = 2 (u + U[0, 1)) / 256 - 1     (bin u covers [2u/256 - 1, 2(u+1)/256 - 1))

The dequantized map is the one under which a continuous density over [-1, 1) is a density
over 8-bit images (bits/dim); its mean over the noise is `bin_centre(u)`, not `to_float(u)`.
"""

from __future__ import annotations

import numpy as np
import PIL.Image


def to_float(image: np.ndarray) -> np.ndarray:
  """Maps uint8 pixels [..., H, W, C] in 0..255 to float32 in [-1, 1] by u / 127.5 - 1."""
  return np.asarray(image, np.float32) / np.float32(127.5) - np.float32(1.0)


def random_flip(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
  """Mirrors an image [H, W, C] left-right with probability 1/2 (one draw from `rng`)."""
  if rng.random() < 0.5:
    return image[:, ::-1]
  return image


def random_crop(image: np.ndarray, size: tuple[int, int],
                rng: np.random.Generator) -> np.ndarray:
  """A [h, w] window of an image [H, W, C] at a uniformly random offset (two draws).

  The official CycleGAN code's 'resize_and_crop' crop (after resizing to load_size).
  """
  h, w = size
  if image.shape[0] < h or image.shape[1] < w:
    raise ValueError(f"Cannot crop {size} from an image of shape {image.shape}; "
                     "data.load_size must be at least data.image_size.")
  top = int(rng.integers(0, image.shape[0] - h + 1))
  left = int(rng.integers(0, image.shape[1] - w + 1))
  return image[top:top + h, left:left + w]


def bin_centre(image: np.ndarray) -> np.ndarray:
  """The centre of each pixel's dequantization bin, float32 2 (u + 1/2) / 256 - 1."""
  return (2.0 * np.asarray(image, np.float32) + 1.0) / 256.0 - 1.0


def dequantize(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
  """Uniform dequantization of uint8 pixels [H, W, C] to float32 in [-1, 1).

  x = (u + U[0, 1)) / 256 in [0, 1), then 2x - 1. Every value stays inside its own 8-bit
  bin [2u/256 - 1, 2(u+1)/256 - 1): float32 rounding could land a draw close to 1 on the
  upper edge, so results are clipped to just below it.
  """
  u = np.asarray(image, np.float32)
  noise = rng.random(u.shape, dtype=np.float32)
  x = (2.0 * (u + noise)) / np.float32(256.0) - np.float32(1.0)
  upper = (2.0 * (u + 1.0)) / np.float32(256.0) - np.float32(1.0)  # exact in float32
  return np.minimum(x, np.nextafter(upper, np.float32(-np.inf))).astype(np.float32)


def image_hw(size: int | tuple[int, int] | list[int] | None) -> tuple[int, int] | None:
  """data.image_size as (height, width): an int n means (n, n); None stays None."""
  if size is None:
    return None
  if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
    hw = (int(size), int(size))
  elif isinstance(size, (tuple, list)) and len(size) == 2 and all(
      isinstance(d, (int, np.integer)) and not isinstance(d, bool) for d in size):
    hw = (int(size[0]), int(size[1]))
  else:
    raise ValueError(f"data.image_size must be an int or (height, width), not {size!r}.")
  if min(hw) < 1:
    raise ValueError(f"data.image_size must be positive, got {size!r}.")
  return hw


def center_crop_resize(image: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
  """Crops the central region of a uint8 image [H, W, C] with the aspect ratio of `size`
  and resizes it to [h, w, C], where (h, w) = `size` (an int means a square).

  Resizing uses PIL bilinear, which is antialiased when shrinking (PIL widens the filter
  by the scale factor). An image of the target aspect ratio is only resized; an image
  already of the target size is returned unchanged. C must be 1 or 3.
  """
  h, w, c = image.shape
  out_h, out_w = image_hw(size)
  if (h, w) == (out_h, out_w):
    return image
  # The largest central crop with aspect out_w / out_h (compared without rounding).
  if w * out_h > h * out_w:
    crop_h, crop_w = h, max(1, round(h * out_w / out_h))
  else:
    crop_h, crop_w = max(1, round(w * out_h / out_w)), w
  top, left = (h - crop_h) // 2, (w - crop_w) // 2
  crop = image[top:top + crop_h, left:left + crop_w]
  if c == 1:
    pil = PIL.Image.fromarray(np.ascontiguousarray(crop[..., 0]))
  elif c == 3:
    pil = PIL.Image.fromarray(np.ascontiguousarray(crop))
  else:
    raise ValueError(f"Can only resize images with 1 or 3 channels, got shape {image.shape}.")
  resized = np.asarray(pil.resize((out_w, out_h), PIL.Image.BILINEAR), np.uint8)
  return resized.reshape(out_h, out_w, c)
