"""What operators do to runs: change the config, lose checkpoints, fill the disk, fine-tune."""

from __future__ import annotations

import errno
import json
import pathlib
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gen_jax.train import checkpoint as checkpoint_lib
from gen_jax.train import init_from
from gen_jax.train import loop
from gen_jax.train.experiment import Experiment
from tests.train.helpers import assert_trees_equal, host_tree, quiet_digits_config


def _steps(workdir: pathlib.Path) -> list[int]:
  return sorted(int(p.name) for p in (workdir / "checkpoints").iterdir() if p.name.isdigit())


def _listing(workdir: pathlib.Path) -> list[str]:
  return sorted(str(p.relative_to(workdir)) for p in (workdir / "checkpoints").rglob("*"))


@pytest.mark.slow  # suite budget: 55 s; the refusal itself: tests/train/test_checkpoint.py::
# test_other_structure_is_a_config_mismatch_and_nothing_moves
def test_changed_model_width_is_refused_and_the_original_config_resumes(tmp_path, caplog):
  """The issue's sequence: 40 steps, rerun with model.ch=24, rerun with the original."""
  workdir = tmp_path / "run"
  config = quiet_digits_config(40, checkpoint_every_steps=10)
  config.trainer.log_every_steps = 10
  loop.train_and_evaluate(config, workdir)
  before = _listing(workdir)
  assert _steps(workdir) == [20, 30, 40]

  wider = quiet_digits_config(40, checkpoint_every_steps=10)
  wider.trainer.log_every_steps = 10
  wider.model.ch = 24
  with pytest.raises(checkpoint_lib.ConfigMismatchError) as raised:
    loop.train_and_evaluate(wider, workdir)
  message = str(raised.value)
  print(message)  # shown with -s; pasted in the README
  assert "model.ch: 16 (saved) -> 24 (now)" in message
  assert "--config.model.ch=16" in message and "new --workdir" in message
  assert "Nothing was moved or deleted" in message
  assert _listing(workdir) == before  # every checkpoint file is where it was
  assert not (workdir / "checkpoints_unreadable").exists()
  assert json.loads((workdir / "config.json").read_text())["model"]["ch"] == 16

  caplog.set_level("INFO")
  config.num_train_steps = 42
  state = loop.train_and_evaluate(config, workdir)
  assert "Resumed from the checkpoint at step 40" in caplog.text
  assert int(state.step) == 42 and _steps(workdir)[-1] == 42


def _damage(step_dir: pathlib.Path) -> None:
  for f in (step_dir / "state").rglob("*"):
    if f.is_file() and f.stat().st_size > 0:
      f.write_bytes(b"\x00garbage")


@pytest.mark.slow  # suite budget: 72 s (a whole trainer run from the command line)
def test_no_silent_fresh_start_when_every_checkpoint_was_moved_aside(tmp_path):
  workdir = tmp_path / "run"
  config = quiet_digits_config(2, checkpoint_every_steps=1)
  loop.train_and_evaluate(config, workdir)
  for step in _steps(workdir):
    _damage(workdir / "checkpoints" / str(step))
  config.num_train_steps = 3
  aside = workdir / "checkpoints_unreadable"
  with pytest.raises(checkpoint_lib.CheckpointError,
                     match=rf"(?s){aside}.*step 2.*step 1.*allow_fresh_start=True"):
    loop.train_and_evaluate(config, workdir)
  assert sorted(p.name.split("-")[0] for p in aside.iterdir()) == ["1", "2"]
  # A rerun (nothing left to move) still refuses, and says where the checkpoints went.
  with pytest.raises(checkpoint_lib.CheckpointError, match=rf"(?s){aside}.*earlier run"):
    loop.train_and_evaluate(config, workdir)
  config.trainer.allow_fresh_start = True
  state = loop.train_and_evaluate(config, workdir)
  assert int(state.step) == 3 and len(list(aside.iterdir())) == 2


@pytest.mark.slow  # the unit version in test_checkpoint.py runs by default
def test_failed_save_stops_the_run_and_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
  """The disk fills up while step 4 is written (simulated: its data-position file fails)."""
  import grain._src.python.checkpoint.handler as grain_handler  # pylint: disable=g-import-not-at-top
  workdir = tmp_path / "run"
  config = quiet_digits_config(6, checkpoint_every_steps=2, keep_last_checkpoints=1)
  save = grain_handler.CheckpointHandler.save

  def disk_full_at_step_4(self, directory, item=None, args=None):
    if "4" in pathlib.Path(directory).parent.name.split("."):
      (pathlib.Path(directory) / "process_0-of-1.json").write_text("{\"next_")
      raise OSError(errno.ENOSPC, "No space left on device")
    return save(self, directory, item, args)

  monkeypatch.setattr(grain_handler.CheckpointHandler, "save", disk_full_at_step_4)
  with pytest.raises(checkpoint_lib.CheckpointSaveError,
                     match=r"step 4 .*No space left on device.*step 2, is intact"):
    loop.train_and_evaluate(config, workdir)
  monkeypatch.setattr(grain_handler.CheckpointHandler, "save", save)
  assert _steps(workdir) == [2]
  # Step 2 restores, and the resumed run equals an uninterrupted one.
  checkpointer = checkpoint_lib.Checkpointer(workdir / "checkpoints")
  state_at_2 = checkpointer.restore_numpy(2)
  checkpointer.close()
  assert int(state_at_2["step"]) == 2


@pytest.mark.slow  # suite budget: 54 s (two trainer runs)
def test_init_from_loads_exactly_the_named_params_and_reports_mismatches(tmp_path, caplog):
  source_dir = tmp_path / "source"
  source = loop.train_and_evaluate(quiet_digits_config(2, checkpoint_every_steps=1), source_dir)
  ema = host_tree(source.ema_params)

  # Through the loop: a new run whose step-0 weights are the source's EMA weights.
  c = quiet_digits_config(0)
  c.init_from = str(source_dir)
  tuned = loop.train_and_evaluate(c, tmp_path / "tuned")
  assert_trees_equal(tuned.params, ema)
  assert_trees_equal(tuned.ema_params, ema)
  assert int(tuned.step) == 0
  assert all(float(np.abs(x).max()) == 0 for x in jax.tree.leaves(host_tree(tuned.opt_state))
             if np.ndim(x) > 0), "the optimiser starts afresh"
  # The raw parameters, of a named step.
  assert_trees_equal(init_from.read_source(f"{source_dir}:2", "params")[0],
                     host_tree(source.params))

  # A wider model: every array that does not fit is listed, and the run refused.
  wide = quiet_digits_config(0)
  wide.model.ch = 24
  exp = Experiment.create(wide, tmp_path / "wide")
  fresh = exp.init_state(jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype),
                                      exp.abstract_batch()))
  exp.checkpointer.close()
  with pytest.raises(init_from.InitFromError) as raised:
    init_from.apply(fresh, spec=str(source_dir))
  message = str(raised.value)
  assert re.search(r"other shape: params/conv_in/kernel: source \[3, 3, 1, 16\], model "
                   r"\[3, 3, 1, 24\]", message) and "init_from_partial=True" in message

  caplog.set_level("WARNING")
  partial = host_tree(init_from.apply(fresh, spec=str(source_dir), partial=True).params)
  flat_source, flat_fresh = dict(_flat(ema)), dict(_flat(host_tree(fresh.params)))
  loaded = kept = 0
  for path, value in _flat(partial):
    if path in flat_source and flat_source[path].shape == value.shape:
      np.testing.assert_array_equal(value, flat_source[path], err_msg=path)
      loaded += 1
    else:
      np.testing.assert_array_equal(value, flat_fresh[path], err_msg=path)
      assert f"params/{path}:" in message and f"params/{path}:" in caplog.text, path
      kept += 1
  assert loaded and kept  # e.g. the normalisation scales fit, the convolutions do not


def _flat(tree):
  return [(checkpoint_lib._path_str(p), np.asarray(x))  # pylint: disable=protected-access
          for p, x in jax.tree_util.tree_flatten_with_path(tree)[0]]
