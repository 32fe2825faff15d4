"""Image grids: turn a batch of generated images into one PNG."""

from __future__ import annotations

import math
import os

import numpy as np
from PIL import Image


def to_uint8(images: np.ndarray) -> np.ndarray:
  """Images in [-1, 1] (any float dtype) -> uint8 in [0, 255], rounding to nearest."""
  images = np.asarray(images, np.float32)
  return np.clip(np.round((images + 1.0) * 127.5), 0, 255).astype(np.uint8)


def make_grid(images: np.ndarray, num_cols: int | None = None, padding: int = 1) -> np.ndarray:
  """Tiles [N, H, W, C] images (uint8, or float in [-1, 1]) into one uint8 [H', W', C] image.

  Rows are filled left to right; missing cells and the `padding` pixels between cells are
  black. num_cols defaults to ceil(sqrt(N)).
  """
  images = np.asarray(images)
  if images.ndim != 4:
    raise ValueError(f"make_grid expects [N, H, W, C] images, got shape {images.shape}.")
  if images.dtype != np.uint8:
    images = to_uint8(images)
  n, h, w, c = images.shape
  num_cols = num_cols or max(1, math.ceil(math.sqrt(n)))
  num_rows = math.ceil(n / num_cols)
  grid = np.zeros((num_rows * (h + padding) + padding, num_cols * (w + padding) + padding, c), np.uint8)
  for i in range(n):
    r, col = divmod(i, num_cols)
    top, left = padding + r * (h + padding), padding + col * (w + padding)
    grid[top:top + h, left:left + w] = images[i]
  return grid


def save_png(path: str | os.PathLike, image: np.ndarray, upscale: int = 1) -> None:
  """Writes a uint8 [H, W, C] image (C = 1 or 3) as PNG, optionally enlarged (nearest)."""
  image = np.asarray(image)
  if upscale > 1:
    image = image.repeat(upscale, axis=0).repeat(upscale, axis=1)
  if image.shape[-1] == 1:
    image = image[..., 0]
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  Image.fromarray(image).save(path)
