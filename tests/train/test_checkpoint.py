"""Checkpointer: retention policy, exact restore of state and data position, corrupt fallback."""

import errno
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gen_jax import data
from gen_jax.train.checkpoint import (Checkpointer, CheckpointSaveError, ConfigMismatchError,
                                      config_diff)
from gen_jax.core.state import TrainState


def _state(value: float) -> TrainState:
  return TrainState.create({"w": jnp.full((3,), value)}, opt_state={"m": jnp.zeros(3)})


def _abstract():
  return jax.eval_shape(lambda: _state(0.0))


def test_keeps_last_n_plus_every_kth(tmp_path):
  ckpt = Checkpointer(tmp_path, keep_last=2, keep_every=4, asynchronous=True)
  for step in range(1, 11):
    ckpt.save(step, _state(step))
  ckpt.wait()
  assert ckpt.all_steps() == [4, 8, 9, 10]
  ckpt.close()


def test_restores_state_and_data_position_exactly(tmp_path):
  source, _ = data.build_source({"source": "digits"}, "train")
  it = data.make_train_iterator(source, global_batch_size=16, seed=3, num_threads=0)
  for _ in range(3):
    next(it)
  ckpt = Checkpointer(tmp_path)
  ckpt.save(3, _state(1.5), it)
  expected_next = next(it)
  ckpt.close()

  fresh = data.make_train_iterator(source, global_batch_size=16, seed=3, num_threads=0)
  restored, step = Checkpointer(tmp_path).restore_latest(_abstract(), fresh)
  assert step == 3
  np.testing.assert_array_equal(restored.params["w"], np.full(3, 1.5))
  batch = next(fresh)
  np.testing.assert_array_equal(batch["image"], expected_next["image"])
  np.testing.assert_array_equal(batch["label"], expected_next["label"])


def test_unreadable_latest_is_moved_aside_and_previous_used(tmp_path):
  ckpt = Checkpointer(tmp_path / "ckpt")
  ckpt.save(1, _state(1.0))
  ckpt.save(2, _state(2.0))
  ckpt.close()
  for f in (tmp_path / "ckpt" / "2" / "state").rglob("*"):
    if f.is_file():
      f.write_bytes(b"not a checkpoint")
  ckpt = Checkpointer(tmp_path / "ckpt")
  restored, step = ckpt.restore_latest(_abstract())
  assert step == 1 and float(restored.params["w"][0]) == 1.0
  assert [p.name.split("-")[0] for p in (tmp_path / "ckpt_unreadable").iterdir()] == ["2"]
  # Training can continue and write step 2 again.
  ckpt.save(2, _state(3.0))
  ckpt.close()
  assert Checkpointer(tmp_path / "ckpt").restore_latest(_abstract())[1] == 2


def test_no_checkpoint_gives_none(tmp_path):
  assert Checkpointer(tmp_path).restore_latest(_abstract()) is None


def _wide_abstract():
  return jax.eval_shape(lambda: TrainState.create({"w": jnp.zeros(4)},
                                                  opt_state={"m": jnp.zeros(4)}))


def test_other_structure_is_a_config_mismatch_and_nothing_moves(tmp_path):
  ckpt = Checkpointer(tmp_path / "ckpt", config={"model": {"ch": 16}, "seed": 0})
  ckpt.save(1, _state(1.0))
  ckpt.close()
  files = sorted(p for p in (tmp_path / "ckpt").rglob("*"))
  ckpt = Checkpointer(tmp_path / "ckpt", config={"model": {"ch": 24}, "seed": 0})
  with pytest.raises(ConfigMismatchError) as raised:
    ckpt.restore_latest(_wide_abstract())
  message = str(raised.value)
  assert "params/w: saved float32[3], now float32[4]" in message
  assert "model.ch: 16 (saved) -> 24 (now)" in message and "seed" not in message
  assert sorted(p for p in (tmp_path / "ckpt").rglob("*")) == files
  assert not (tmp_path / "ckpt_unreadable").exists()
  # The matching structure still restores.
  assert ckpt.restore_latest(_abstract())[1] == 1
  ckpt.close()


def test_config_diff_lists_nested_fields():
  old = {"model": {"ch": 16, "ch_mult": [1, 2]}, "seed": 0}
  new = {"model": {"ch": 16, "ch_mult": [1, 2, 2], "dropout": 0.1}, "seed": 0}
  assert config_diff(old, new) == [("model.ch_mult", [1, 2], [1, 2, 2]),
                                   ("model.dropout", "<absent>", 0.1)]


def test_failed_save_keeps_the_previous_checkpoint_restorable(tmp_path, monkeypatch):
  import grain._src.python.checkpoint.handler as grain_handler  # pylint: disable=g-import-not-at-top
  source, _ = data.build_source({"source": "digits"}, "train")
  it = data.make_train_iterator(source, global_batch_size=16, seed=3, num_threads=0)
  ckpt = Checkpointer(tmp_path / "ckpt", keep_last=1)
  ckpt.save(1, _state(1.0), it)

  def no_space(self, directory, item=None, args=None):
    raise OSError(errno.ENOSPC, "No space left on device")

  monkeypatch.setattr(grain_handler.CheckpointHandler, "save", no_space)
  with pytest.raises(CheckpointSaveError, match=r"step 2 .*Errno 28.*step 1, is intact"):
    ckpt.save(2, _state(2.0), it)
    ckpt.wait()
  ckpt.close()  # does not raise the same failure again
  monkeypatch.undo()
  restored, step = Checkpointer(tmp_path / "ckpt").restore_latest(_abstract())
  assert step == 1 and float(restored.params["w"][0]) == 1.0


def test_checkpoint_without_fingerprint_is_still_recognised_as_a_mismatch(tmp_path):
  """Checkpoints written before fingerprints: orbax's recorded shapes decide."""
  ckpt = Checkpointer(tmp_path / "ckpt")
  ckpt.save(1, _state(1.0))
  ckpt.close()
  meta_file = tmp_path / "ckpt" / "1" / "meta" / "metadata"
  meta_file.write_text(json.dumps({"step": 1, "seed": 0}))  # the older meta
  ckpt = Checkpointer(tmp_path / "ckpt")
  with pytest.raises(ConfigMismatchError, match=r"params/w: saved float32\[3\], now float32\[4\]"):
    ckpt.restore_latest(_wide_abstract())
  assert ckpt.restore_latest(_abstract())[1] == 1
  ckpt.close()
