"""(low-resolution, high-resolution) image pairs with named, linear resampling operators.

Super-resolution and cascaded diffusion (Saharia et al. 2021, SR3; Ho et al. 2021, CDM)
train on pairs (D x, x) of a high-resolution image x [H, W, C] and its downsampled
version D x [H / f, W / f, C]. Every operator here is linear and separable: one
matrix A_h [h_out, h_in] acts on the rows and one A_w [w_out, w_in] on the columns of each
channel, out[i, j, c] = sum_{k, l} A_h[i, k] x[k, l, c] A_w[j, l]. Each matrix is built
once (`resize_matrix`) and the same matrices serve NumPy (the data source, per example)
and JAX (on device, per batch), so the low-resolution images of a cascade's base stage
and the conditions of its super-resolution stage come from one operator.

Downsampling (`DOWNSAMPLERS`), by an integer factor f:
  area                 the mean of each f x f block (box filter; `tf.image.resize` "area",
                       PIL BOX at integer factors); exact for piecewise-constant images.
  bilinear_antialias   the triangle (bilinear) filter widened by f, weights renormalised
                       at the borders (`jax.image.resize(method="linear", antialias=True)`,
                       as PIL BILINEAR and `tf.image.resize(antialias=True)` reduce).
Upsampling (`UPSAMPLERS`), how the condition is brought to the high resolution before it
is concatenated to the network input: nearest | bilinear | bicubic
(`jax.image.resize` "nearest" | "linear" | "cubic", half-pixel centres as in TF2/PIL).

Pairs are formed from any image source: `low_res_pairs(images)` on a batch (on device,
after the pipeline's flips, so a pair is always consistent), and the `downsampled` data
source (`data.source="downsampled"`) serves D x of another source's images as uint8,
for the base stage of a cascade:

  data.source = "downsampled"
  data.downsample_source = "tfds"     # the wrapped source (any name in SOURCES), whose
  data.name = "cifar10"               # own fields (name, path, image_size, ...) apply
  data.downsample_factor = 4
  data.downsample_method = "area"

The source rounds D x to 8 bits (at most half a grey level, 1/255 in [-1, 1], from the
float D x the super-resolution stage is conditioned on).
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gen_jax.data import sources as sources_lib
from gen_jax.data import transforms

DOWNSAMPLERS = ("area", "bilinear_antialias")
UPSAMPLERS = {"nearest": "nearest", "bilinear": "linear", "bicubic": "cubic"}


def _check_choice(kind: str, name: str, choices) -> None:
  if name not in choices:
    raise ValueError(f"Unknown {kind} {name!r}; choose one of {', '.join(choices)}.")


@functools.lru_cache(maxsize=None)
def resize_matrix(size_in: int, size_out: int, method: str) -> np.ndarray:
  """The float32 matrix [size_out, size_in] of a 1-D resampling (rows: output pixels).

  `method` is a name in DOWNSAMPLERS (size_out < size_in, size_in a multiple of it) or in
  UPSAMPLERS (size_out > size_in).
  """
  if method == "area":
    if size_in % size_out:
      raise ValueError(f"area downsampling needs an integer factor; {size_in} -> {size_out}.")
    f = size_in // size_out
    return np.kron(np.eye(size_out), np.full((1, f), 1.0 / f)).astype(np.float32)
  if method != "bilinear_antialias":
    _check_choice("resampling", method, (*DOWNSAMPLERS, *UPSAMPLERS))
  kernel = "linear" if method == "bilinear_antialias" else UPSAMPLERS[method]
  with jax.ensure_compile_time_eval():  # a constant, also when first asked inside jit
    eye = jnp.eye(size_in, dtype=jnp.float32)
    return np.asarray(jax.image.resize(eye, (size_out, size_in), kernel,
                                       antialias=method == "bilinear_antialias"))


def _resize(images, size: tuple[int, int], method: str):
  """images [..., H, W, C] (np or jnp) -> [..., h, w, C] by the separable operator."""
  *_, h_in, w_in, _ = images.shape
  a_h = resize_matrix(int(h_in), int(size[0]), method)
  a_w = resize_matrix(int(w_in), int(size[1]), method)
  xp = np if isinstance(images, np.ndarray) else jnp
  return xp.einsum("ik,...klc,jl->...ijc", a_h, images, a_w).astype(images.dtype)


def low_res_shape(shape: tuple[int, ...], factor: int) -> tuple[int, int, int]:
  """(H / f, W / f, C) of an image shape (H, W, C); H and W must be multiples of f."""
  if len(shape) != 3:
    raise ValueError(f"Super-resolution needs images [H, W, C]; got shape {tuple(shape)}.")
  h, w, c = (int(d) for d in shape)
  factor = int(factor)
  if factor < 2 or h % factor or w % factor:
    raise ValueError(f"The downsampling factor {factor} must be >= 2 and divide the image size "
                     f"{h}x{w}; set data.image_size or method.factor accordingly.")
  return h // factor, w // factor, c


def downsample(images, factor: int, method: str = "area"):
  """D x: images [..., H, W, C] (np or jnp, float) -> [..., H / f, W / f, C]."""
  _check_choice("downsampling", method, DOWNSAMPLERS)
  h, w, _ = low_res_shape(images.shape[-3:], factor)
  return _resize(images, (h, w), method)


def upsample(images, factor: int, method: str = "bicubic"):
  """images [..., h, w, C] -> [..., f h, f w, C] by `method` in UPSAMPLERS."""
  _check_choice("upsampling", method, tuple(UPSAMPLERS))
  *_, h, w, _ = images.shape
  return _resize(images, (int(h) * factor, int(w) * factor), method)


def low_res_pairs(images, factor: int, method: str = "area"):
  """(D x [B, H/f, W/f, C], x [B, H, W, C]) of a batch of high-resolution images."""
  return downsample(images, factor, method), images


class DownsampledSource:
  """Another source's images downsampled by `factor` with `method`, rounded to uint8.

  `source[i]` is {**inner[i], "image": uint8 round(D inner[i]["image"])}; `info` has the
  low-resolution image shape.
  """

  def __init__(self, inner: Any, factor: int, method: str):
    _check_choice("downsampling", method, DOWNSAMPLERS)
    self.inner, self.factor, self.method = inner, int(factor), method
    info = inner.info
    self.info = sources_lib.DatasetInfo(
        image_shape=low_res_shape(info.image_shape, factor), num_classes=info.num_classes,
        num_examples=info.num_examples)

  def __len__(self) -> int:
    return len(self.inner)

  def __getitem__(self, index: int) -> dict[str, Any]:
    example = self.inner[index]
    image = transforms.to_float(example["image"])
    low = downsample(image, self.factor, self.method)
    pixels = np.clip(np.rint((low + 1.0) * 127.5), 0, 255).astype(np.uint8)
    return {**example, "image": pixels}


@sources_lib.SOURCES.register("downsampled")
def _downsampled_from_config(cfg: Any, split: str) -> DownsampledSource:
  inner_name = sources_lib.get_field(cfg, "downsample_source", "")
  if not inner_name or inner_name == "downsampled":
    raise ValueError("data.source='downsampled' needs data.downsample_source, the source whose "
                     "images it downsamples (e.g. tfds, folder, digits).")
  inner_cfg = dict(cfg.items()) if hasattr(cfg, "items") else dict(vars(cfg))
  inner_cfg["source"] = inner_name
  inner, _ = sources_lib.build_source(inner_cfg, split)
  return DownsampledSource(inner, int(sources_lib.get_field(cfg, "downsample_factor", 0)),
                           sources_lib.get_field(cfg, "downsample_method", "area"))
