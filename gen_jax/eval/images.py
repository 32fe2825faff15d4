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


def scatter_image(points: np.ndarray, size: int = 256, extent: float | None = None) -> np.ndarray:
  """Draws 2-D points [N, 2] as a density plot: uint8 [size, size, 1], darker = more points.

  The square [-extent, extent]^2 is binned into size x size pixels (x to the right, y up);
  the darkness of a pixel grows with log(1 + count). `extent` defaults to 1.1 times the
  largest |coordinate| of the points (at least 1), so points that diverge stay in view.
  Faint grey lines mark the axes.
  """
  points = np.asarray(points, np.float64)
  if points.ndim != 2 or points.shape[1] != 2:
    raise ValueError(f"scatter_image expects points of shape [N, 2], got {points.shape}.")
  finite = points[np.all(np.isfinite(points), axis=1)]
  if extent is None:
    extent = max(1.0, 1.1 * float(np.max(np.abs(finite)))) if len(finite) else 1.0
  counts, _, _ = np.histogram2d(finite[:, 0], finite[:, 1], bins=size,
                                range=[[-extent, extent], [-extent, extent]])
  darkness = np.log1p(counts) / max(np.log1p(counts.max()), 1e-12)
  image = np.full((size, size), 255.0)
  axis = int(round((size - 1) / 2))
  image[axis, :] = image[:, axis] = 225.0
  image = np.minimum(image, 255.0 * (1.0 - darkness.T[::-1]))  # rows: y from top to bottom
  return image.astype(np.uint8)[..., None]


def waveform_image(waves: np.ndarray, max_rows: int = 16, width: int = 512,
                   row_height: int = 48) -> np.ndarray:
  """Draws sequences [N, T] or [N, T, 1] in [-1, 1] as stacked waveform plots: uint8
  [rows * row_height, width, 1], dark = signal. Each row shows the first `width` samples
  of one sequence (or all of a shorter one, stretched), at most `max_rows` rows."""
  waves = np.asarray(waves, np.float32)
  if waves.ndim == 3:
    waves = waves[..., 0]
  if waves.ndim != 2:
    raise ValueError(f"waveform_image expects sequences [N, T] or [N, T, 1], got {waves.shape}.")
  waves = np.nan_to_num(np.clip(waves[:max_rows], -1.0, 1.0))
  n, t = waves.shape
  cols = np.minimum((np.arange(width) * min(t, width)) // width, t - 1)
  image = np.full((n * row_height, width), 255, np.uint8)
  for r, w in enumerate(waves):
    ys = r * row_height + np.round((1.0 - w[cols]) * 0.5 * (row_height - 1)).astype(int)
    image[r * row_height + row_height // 2, :] = 220
    for c in range(width):
      lo, hi = sorted((ys[c], ys[c - 1] if c else ys[c]))
      image[lo:hi + 1, c] = 0
  return image[..., None]
