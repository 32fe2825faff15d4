"""Checkpointer: retention policy, exact restore of state and data position, corrupt fallback."""

import jax
import jax.numpy as jnp
import numpy as np

from gen_jax import data
from gen_jax.train.checkpoint import Checkpointer
from gen_jax.train.state import TrainState


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
