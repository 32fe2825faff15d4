"""--mode=sample for translation families (CycleGAN): both directions, side-by-side grids.

    python -m gen_jax.main --config=configs/cyclegan/folders.py --workdir=runs/h2z \
        --mode=sample --config.sample.inputs_a=photos/horses --config.sample.inputs_b=zebras

Inputs per direction: `config.sample.inputs_a` (domain A, translated A -> B -> A) and
`config.sample.inputs_b` (domain B, translated B -> A -> B), each a folder of image files
(PNG/JPEG/BMP), center-cropped and resized to the model's image size; an empty field
reads the evaluation split of that domain (data.eval_path_a / eval_split_a, ...). The
first config.sample.num_samples images of each are used, config.sample.batch_size at a
time.

Outputs, per direction d in {a_to_b, b_to_a}:
  samples/translate_<d>_<step>.npz  "inputs", "translated", "reconstructed": uint8
                                    [N, H, W, C]
  samples/translate_<d>_<step>.png  a grid of (input | translated | reconstructed)
                                    triples, four triples per row (16 triples at most)

The family provides `translate(state, images, direction, spec) -> {"translated",
"reconstructed"}` (methods/cyclegan.py).
"""

from __future__ import annotations

import math
import pathlib

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging

from gen_jax import data as data_lib
from gen_jax.core.state import TrainState
from gen_jax.data import transforms
from gen_jax.eval import images as images_lib
from gen_jax.train.experiment import Experiment

DIRECTIONS = {"a_to_b": ("inputs_a", "image_a"), "b_to_a": ("inputs_b", "image_b")}
TRIPLES_PER_ROW = 4
MAX_TRIPLES_SHOWN = 16


def load_inputs(config: ml_collections.ConfigDict, exp: Experiment, field: str,
                domain_key: str, limit: int) -> np.ndarray:
  """uint8 [N, H, W, C]: the first `limit` images of config.sample.<field> or of the eval split."""
  shape = tuple(exp.info.image_shape)
  path = config.sample.get(field, "")
  if path:
    folder = pathlib.Path(path)
    if not folder.is_dir():
      raise FileNotFoundError(f"config.sample.{field}={path!r} is not a folder of images.")
    source = data_lib.FolderSource(folder, image_size=shape[:2],
                                   color_mode="grayscale" if shape[-1] == 1 else "rgb")
  else:
    source, _ = data_lib.build_source(config.data, "eval")
    source = source.domains[domain_key]
  count = min(limit, len(source))
  return np.stack([source[i]["image"] for i in range(count)])


def grid_of_triples(inputs: np.ndarray, translated: np.ndarray,
                    reconstructed: np.ndarray) -> np.ndarray:
  """uint8 figure: (input | translated | reconstructed) triples, TRIPLES_PER_ROW per row."""
  n = min(len(inputs), MAX_TRIPLES_SHOWN)
  cells = np.stack([inputs[:n], translated[:n], reconstructed[:n]], axis=1)
  cells = cells.reshape(3 * n, *inputs.shape[1:])
  return images_lib.make_grid(cells, num_cols=3 * min(n, TRIPLES_PER_ROW))


def run(config: ml_collections.ConfigDict, exp: Experiment, state: TrainState,
        step: int) -> str:
  """Translates both directions' inputs; returns the first .npz path written."""
  method = exp.method
  num, batch = int(config.sample.num_samples), int(config.sample.batch_size)
  folder = exp.workdir / "samples"
  paths = []
  for direction, (field, domain_key) in DIRECTIONS.items():
    inputs = load_inputs(config, exp, field, domain_key, num)
    translate = jax.jit(lambda s, x, d=direction: method.translate(s, x, d, exp.sample_spec))
    outs = {"translated": [], "reconstructed": []}
    for i in range(math.ceil(len(inputs) / batch)):
      chunk = jnp.asarray(transforms.to_float(inputs[i * batch:(i + 1) * batch]))
      for key, value in translate(state, chunk).items():
        outs[key].append(images_lib.to_uint8(np.asarray(jax.device_get(value))))
    translated = np.concatenate(outs["translated"])
    reconstructed = np.concatenate(outs["reconstructed"])
    npz = folder / f"translate_{direction}_{step}.npz"
    if jax.process_index() == 0:
      folder.mkdir(parents=True, exist_ok=True)
      np.savez_compressed(npz, inputs=inputs, translated=translated,
                          reconstructed=reconstructed)
      images_lib.save_png(folder / f"translate_{direction}_{step}.png",
                          grid_of_triples(inputs, translated, reconstructed),
                          upscale=max(1, 128 // inputs.shape[1]))
    logging.info("Translated %d images %s (and back) with the checkpoint at step %d into %s.",
                 len(inputs), direction, step, npz)
    paths.append(str(npz))
  return paths[0]
