"""The training loop: sharded == single device, resumed == uninterrupted, and bad input."""

from __future__ import annotations

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gen_jax.methods import diffusion
from gen_jax.methods.base import METHODS
from gen_jax.train import loop
from gen_jax.train.step import NonFiniteError
from tests.train.helpers import (assert_trees_close, assert_trees_equal, host_tree,
                                 quiet_digits_config)


def sgd_config(num_devices: int):
  c = quiet_digits_config(num_train_steps=3, num_devices=num_devices, checkpoint_every_steps=0)
  c.optim.name = "sgd"
  c.optim.learning_rate = 0.05
  c.optim.grad_clip_norm = 0.0
  c.optim.warmup_steps = 0
  c.optim.schedule = "constant"
  return c


def test_eight_devices_equal_one_device_with_sgd(tmp_path):
  assert jax.device_count() == 8
  one = loop.train_and_evaluate(sgd_config(1), tmp_path / "one")
  eight = loop.train_and_evaluate(sgd_config(8), tmp_path / "eight")
  assert int(one.step) == int(eight.step) == 3
  assert_trees_close(one.params, eight.params, rtol=1e-4, atol=1e-6)
  assert_trees_close(one.ema_params, eight.ema_params, rtol=1e-4, atol=1e-6)
  # The parameters really moved, so the comparison is not vacuous.
  init = loop.train_and_evaluate(_zero_steps(), tmp_path / "zero")
  moved = [np.abs(a - b).max() for a, b in zip(jax.tree.leaves(host_tree(one.params)),
                                               jax.tree.leaves(host_tree(init.params)))]
  assert max(moved) > 1e-4


def _zero_steps():
  c = sgd_config(1)
  c.num_train_steps = 0
  return c


def test_changed_config_on_resume_keeps_the_old_config(tmp_path):
  loop.train_and_evaluate(quiet_digits_config(1, checkpoint_every_steps=1), tmp_path)
  loop.train_and_evaluate(quiet_digits_config(2, checkpoint_every_steps=1), tmp_path)
  (old,) = tmp_path.glob("config.*.json")
  assert json.loads(old.read_text())["num_train_steps"] == 1
  assert json.loads((tmp_path / "config.json").read_text())["num_train_steps"] == 2


@pytest.mark.slow  # suite budget: 58 s; the fallback itself: tests/train/test_checkpoint.py::
# test_unreadable_latest_is_moved_aside_and_previous_used
def test_corrupt_latest_checkpoint_falls_back_to_previous(tmp_path, caplog):
  workdir = tmp_path / "run"
  loop.train_and_evaluate(quiet_digits_config(4, checkpoint_every_steps=2), workdir)
  # Damage every array file of the newest checkpoint.
  damaged = 0
  for f in (workdir / "checkpoints" / "4" / "state").rglob("*"):
    if f.is_file() and f.stat().st_size > 0:
      f.write_bytes(b"\x00garbage")
      damaged += 1
  assert damaged
  caplog.set_level("WARNING")
  state = loop.train_and_evaluate(quiet_digits_config(6, checkpoint_every_steps=2), workdir)
  assert int(state.step) == 6
  assert "step 4" in caplog.text and "could not be restored" in caplog.text
  aside = list((tmp_path / "run" / "checkpoints_unreadable").glob("4-*"))
  assert len(aside) == 1, "the unreadable checkpoint must be kept, not deleted"
  # It resumed from step 2: the same result as an uninterrupted 6-step run.
  straight = loop.train_and_evaluate(quiet_digits_config(6, checkpoint_every_steps=2),
                                     tmp_path / "straight")
  assert_trees_equal(straight.params, state.params)


@dataclasses.dataclass(frozen=True)
class _NaNFromStep3(diffusion.Diffusion):
  """DDPM whose loss becomes NaN from the third update on (a stand-in for a diverging run)."""

  def update(self, state, batch, rng):
    state, metrics = super().update(state, batch, rng)
    metrics["loss"] = jnp.where(state.step >= 2, jnp.nan, metrics["loss"])
    return state, metrics


if "test_nan_from_step3" not in METHODS:
  METHODS.add("test_nan_from_step3",
              lambda config, info: _NaNFromStep3(**{
                  f.name: getattr(diffusion.build_ddpm(config, info), f.name)
                  for f in dataclasses.fields(diffusion.Diffusion)}))


def test_nan_loss_stops_the_run_and_keeps_good_checkpoints(tmp_path):
  c = quiet_digits_config(6, checkpoint_every_steps=1)
  c.method.name = "test_nan_from_step3"
  with pytest.raises(NonFiniteError, match=r"step 3 produced non-finite loss.*last checkpoint \(step 2\)"):
    loop.train_and_evaluate(c, tmp_path)
  steps = sorted(int(p.name) for p in (tmp_path / "checkpoints").iterdir() if p.name.isdigit())
  assert steps == [1, 2]


def test_sample_and_eval_modes_write_their_files(tmp_path):
  c = quiet_digits_config(2, checkpoint_every_steps=2)
  loop.train_and_evaluate(c, tmp_path)
  npz = loop.run_sample(c, tmp_path)
  images = np.load(npz)["images"]
  assert images.shape == (c.sample.num_samples, 8, 8, 1) and images.dtype == np.uint8
  assert (tmp_path / "samples" / "final_2.png").exists()
  results = loop.run_eval(c, tmp_path)
  assert results["num_examples"] == c.batch_size  # smoke: one evaluation batch
  assert np.isfinite(results["loss"]) and np.isfinite(results["vlb_bpd"])
  record = json.loads((tmp_path / "eval" / "2.json").read_text())
  assert record["step"] == 2 and record["results"]["loss"] == pytest.approx(results["loss"])


def test_sample_mode_without_checkpoint_says_how_to_fix(tmp_path):
  with pytest.raises(FileNotFoundError, match="train first with --mode=train"):
    loop.run_sample(quiet_digits_config(2), tmp_path)
