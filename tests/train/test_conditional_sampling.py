"""--mode=sample with config.sample.condition: inpainting from files on the command line."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from gen_jax.train import conditional_sampling, loop
from tests.train.helpers import load_config

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DIGITS = ["--config.data.source=digits", "--config.num_train_steps=2"]


def _config():
  config = load_config("score_sde/mnist.py", "smoke")
  config.data.source = "digits"
  config.num_train_steps = 2
  return config


def test_inpainting_from_the_command_line_keeps_the_known_pixels(tmp_path):
  workdir = tmp_path / "run"
  loop.train_and_evaluate(_config(), workdir)
  rng = np.random.default_rng(0)
  inputs = rng.integers(0, 256, size=(4, 8, 8, 1), dtype=np.uint8)
  np.savez(tmp_path / "inputs.npz", images=inputs)
  mask = np.zeros((8, 8), np.uint8)
  mask[:, :4] = 255  # the left half is known
  Image.fromarray(mask).save(tmp_path / "mask.png")
  argv = [sys.executable, "-m", "gen_jax.main", "--config=configs/score_sde/mnist.py:smoke",
          f"--workdir={workdir}", "--mode=sample", *DIGITS,
          "--config.sample.num_samples=4", "--config.sample.condition.kind=inpaint",
          f"--config.sample.condition.images={tmp_path / 'inputs.npz'}",
          f"--config.sample.condition.mask={tmp_path / 'mask.png'}"]
  out = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=900)
  assert out.returncode == 0, out.stderr[-3000:]
  assert (workdir / "samples" / "inpaint_2.png").is_file()
  with np.load(workdir / "samples" / "inpaint_2.npz") as written:
    results, echoed = written["images"], written["inputs"]
  np.testing.assert_array_equal(echoed, inputs)
  np.testing.assert_array_equal(results[:, :, :4], inputs[:, :, :4])  # known: unchanged
  assert np.any(results[:, :, 4:] != inputs[:, :, 4:])  # unknown: filled in by the model


def test_a_mask_of_another_size_is_refused_naming_the_file(tmp_path):
  Image.fromarray(np.zeros((7, 8), np.uint8)).save(tmp_path / "mask.png")
  with pytest.raises(conditional_sampling.ConditionInputError, match=r"mask.png is 8x7"):
    conditional_sampling.load_mask(str(tmp_path / "mask.png"), (8, 8, 1))
  with pytest.raises(conditional_sampling.ConditionInputError, match="does not exist"):
    conditional_sampling.load_images(str(tmp_path / "none.npz"), (8, 8, 1), 4)
  np.savez(tmp_path / "rgb.npz", images=np.zeros((2, 8, 8, 3), np.uint8))
  with pytest.raises(conditional_sampling.ConditionInputError,
                     match=r"needs uint8 \[N, 8, 8, 1\]"):
    conditional_sampling.load_images(str(tmp_path / "rgb.npz"), (8, 8, 1), 4)


def test_mask_is_one_where_white(tmp_path):
  mask = np.array([[0, 255], [128, 127]], np.uint8)
  Image.fromarray(mask).save(tmp_path / "mask.png")
  np.testing.assert_array_equal(
      conditional_sampling.load_mask(str(tmp_path / "mask.png"), (2, 2, 1))[..., 0],
      [[0, 1], [1, 0]])
