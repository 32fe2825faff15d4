"""Shared helpers for the trainer tests: small configs and reading results back."""

from __future__ import annotations

import importlib.util
import pathlib

import jax
import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[2]


def load_config(relpath: str, arg: str | None = "smoke"):
  path = REPO / "configs" / relpath
  spec = importlib.util.spec_from_file_location(f"cfg_{path.parent.name}_{path.stem}", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg)


def quiet_digits_config(num_train_steps: int = 4, **trainer):
  """The digits smoke config with periodic sampling/evaluation off (faster tests)."""
  c = load_config("ddpm/digits.py")
  c.num_train_steps = num_train_steps
  c.trainer.sample_every_steps = 0
  c.trainer.eval_every_steps = 0
  c.trainer.log_every_steps = 1
  # A constant learning rate, so that runs of different lengths share their first steps.
  c.optim.schedule = "constant"
  for k, v in trainer.items():
    c.trainer[k] = v
  return c


def write_image_folder(folder: pathlib.Path, count: int, *, size: tuple[int, int] = (24, 20),
                       seed: int = 0) -> str:
  """`count` random RGB PNGs of size (H, W) in `folder` (created); returns its path."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  folder.mkdir(parents=True, exist_ok=True)
  rng = np.random.default_rng(seed)
  for i in range(count):
    pixels = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(folder / f"{i:03d}.png")
  return str(folder)


def host_tree(tree):
  return jax.tree.map(np.asarray, jax.device_get(tree))


def assert_trees_equal(a, b):
  for x, y in zip(jax.tree.leaves(host_tree(a)), jax.tree.leaves(host_tree(b)), strict=True):
    np.testing.assert_array_equal(x, y)


def assert_trees_close(a, b, rtol=1e-5, atol=1e-6):
  for x, y in zip(jax.tree.leaves(host_tree(a)), jax.tree.leaves(host_tree(b)), strict=True):
    np.testing.assert_allclose(x, y, rtol=rtol, atol=atol)


def train_smoke_first_stage(config, directory: pathlib.Path) -> None:
  """For a latent diffusion config whose first-stage workdir is unset: trains the ':smoke'
  variant of its `latent.autoencoder_config` in directory/first_stage (on the same data,
  under the caller's tfds mock) and points `config.latent.autoencoder_workdir` at it."""
  if "latent" not in config or config.latent.autoencoder_workdir:
    return
  from gen_jax.train import loop  # pylint: disable=g-import-not-at-top
  relpath = str(config.latent.autoencoder_config).removeprefix("configs/")
  first = load_config(relpath, "smoke")
  for field in ("source", "name", "path", "eval_path", "data_dir"):
    first.data[field] = config.data[field]
  first.trainer.sample_every_steps = 0
  first.trainer.eval_every_steps = first.num_train_steps  # records the latent std
  loop.train_and_evaluate(first, directory / "first_stage")
  config.latent.autoencoder_workdir = str(directory / "first_stage")
