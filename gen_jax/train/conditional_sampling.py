"""--mode=sample with `config.sample.condition`: inpainting and colorization from files.

    python -m gen_jax.main --config=configs/score_sde/cifar10.py --workdir=runs/sde_c10 \
        --mode=sample --config.sample.condition.kind=inpaint \
        --config.sample.condition.images=runs/sde_c10/samples/final_1300000.npz \
        --config.sample.condition.mask=mask.png

Inputs:
  images: an .npz file with "images" uint8 [N, H, W, C] (the format of samples/final_*.npz)
    or a folder of PNG/JPEG files, each of the model's image shape; the first
    config.sample.num_samples are used.
  mask (inpainting): a PNG of H x W (grey or RGB), white (> 127) where a pixel is known,
    black where it is filled in; every image shares it. Colorization needs no mask: only
    the grey level of each input is kept.

Outputs samples/<kind>_<step>.npz ("images": the results, "inputs": the inputs as given,
uint8 [N, H, W, C]) and samples/<kind>_<step>.png, a grid whose rows alternate inputs (unknown
pixels black; grey for colorization) and results. The family is asked, through its
`sample`, for the "pc" sampler with the options of config.sample.pc and the imputation as
the sampler's projection hook (`diffusion.controllable.Imputation`); score SDEs honour it,
other families refuse the request by name.
"""

from __future__ import annotations

import dataclasses
import pathlib

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging
from PIL import Image

from gen_jax.core.sample import SampleSpec
from gen_jax.data import transforms
from gen_jax.diffusion import controllable
from gen_jax.eval import images as images_lib
from gen_jax.train.experiment import Experiment
from gen_jax.core.state import TrainState

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


class ConditionInputError(ValueError):
  """A conditioning input (images or mask) that is missing or does not fit the model."""


def load_images(path: str, image_shape: tuple[int, int, int], limit: int) -> np.ndarray:
  """The first `limit` images of an .npz ("images") or an image folder: uint8 [N, H, W, C]."""
  source = pathlib.Path(path)
  if not path or not source.exists():
    raise ConditionInputError(
        f"config.sample.condition.images={path!r} does not exist: give an .npz with "
        "'images' uint8 [N, H, W, C] (e.g. a samples/final_<step>.npz) or a folder of PNG/JPEG "
        "files.")
  if source.is_dir():
    files = sorted(p for p in source.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)[:limit]
    if not files:
      raise ConditionInputError(f"{source} holds no PNG or JPEG files.")
    images = np.stack([_read_image(f, image_shape) for f in files])
  else:
    with np.load(source) as data:
      if "images" not in data:
        raise ConditionInputError(f"{source} has no 'images' array (it has: "
                                  f"{', '.join(data.files)}).")
      images = np.asarray(data["images"])[:limit]
  if images.dtype != np.uint8 or images.shape[1:] != tuple(image_shape):
    raise ConditionInputError(
        f"{source}: images are {images.dtype} {list(images.shape)}, the model needs uint8 "
        f"[N, {', '.join(map(str, image_shape))}].")
  return images


def _read_image(file: pathlib.Path, image_shape: tuple[int, int, int]) -> np.ndarray:
  """One image file as uint8 [H, W, C] in the model's channel count, refused if its size differs."""
  with Image.open(file) as image:
    pixels = np.asarray(image.convert("L" if image_shape[-1] == 1 else "RGB"))
  if pixels.shape[:2] != tuple(image_shape[:2]):
    raise ConditionInputError(f"{file} is {pixels.shape[1]}x{pixels.shape[0]} (WxH); the model "
                              f"needs {image_shape[1]}x{image_shape[0]}.")
  return pixels.reshape(image_shape)


def load_mask(path: str, image_shape: tuple[int, int, int]) -> np.ndarray:
  """A PNG mask as float32 [H, W, 1]: 1 where the pixel is known (white), 0 elsewhere."""
  file = pathlib.Path(path)
  if not path or not file.is_file():
    raise ConditionInputError(
        f"config.sample.condition.mask={path!r} is not a file: inpainting needs a PNG mask of "
        f"{image_shape[1]}x{image_shape[0]}, white where pixels are known.")
  mask = np.asarray(Image.open(file).convert("L"))
  if mask.shape != tuple(image_shape[:2]):
    raise ConditionInputError(f"{file} is {mask.shape[1]}x{mask.shape[0]} (WxH); the model "
                              f"needs {image_shape[1]}x{image_shape[0]}.")
  return (mask > 127).astype(np.float32)[..., None]


def sample_request(config: ml_collections.ConfigDict, base: SampleSpec) -> SampleSpec:
  """`base` (the config's request) with the "pc" sampler and config.sample.pc's options;
  `run` adds the imputation as the sampler's projection hook."""
  return dataclasses.replace(base, sampler="pc",
                             sampler_options=dict(config.sample.get("pc", {})))


def run(config: ml_collections.ConfigDict, exp: Experiment, state: TrainState,
        step: int) -> str:
  """Inpaints or colours config.sample.condition.images; returns the .npz path written."""
  cond = config.sample.condition
  image_shape = tuple(exp.info.image_shape)
  if len(image_shape) != 3 or (cond.kind == "colorize" and image_shape[-1] != 3):
    raise ConditionInputError(f"{cond.kind} needs {'RGB ' if cond.kind == 'colorize' else ''}"
                              f"images; this model's data have shape {list(image_shape)}.")
  inputs = load_images(cond.images, image_shape, int(config.sample.num_samples))
  mask = load_mask(cond.mask, image_shape) if cond.kind == "inpaint" else None
  known = jnp.asarray(transforms.to_float(inputs))

  def impute(s, key, x):
    imputation = (controllable.inpainting(x, mask) if cond.kind == "inpaint"
                  else controllable.colorization(x))
    spec = sample_request(config, exp.sample_spec)
    spec = dataclasses.replace(spec, sampler_options={**spec.sampler_options,
                                                      "project": imputation.project})
    out = exp.method.sample(s, key, x.shape[0], spec)
    return out.replace(samples=jnp.clip(imputation.finish(out.samples), -1.0, 1.0))

  out = jax.jit(impute)(state, jax.random.fold_in(exp.sample_key, step), known)
  results = images_lib.to_uint8(np.asarray(out.samples))
  shown = inputs * mask.astype(np.uint8) if mask is not None else np.repeat(
      np.round(inputs.mean(-1, keepdims=True)).astype(np.uint8), 3, axis=-1)
  folder = exp.workdir / "samples"
  npz = folder / f"{cond.kind}_{step}.npz"
  if jax.process_index() == 0:
    folder.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(npz, images=results, inputs=inputs)
    n = min(len(inputs), 16)
    rows = np.stack([shown[:n], results[:n]], axis=0).reshape(2 * n, *image_shape)
    images_lib.save_png(folder / f"{cond.kind}_{step}.png", images_lib.make_grid(rows, n),
                        upscale=max(1, 128 // image_shape[0]))
  logging.info("%s of %d images (%d network evaluations each) from the checkpoint at step %d "
               "into %s.", cond.kind, len(inputs), int(out.nfe), step, npz)
  return str(npz)
