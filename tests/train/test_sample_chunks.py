"""--mode=sample in resumable chunks (`train/chunks.py`, `evaluation.generate_chunked`)."""

from __future__ import annotations

import shutil

import jax
import numpy as np
import pytest

from gen_jax.train import chunks, loop
from gen_jax.train.experiment import Experiment
from tests.train.helpers import quiet_digits_config


class _Interrupted(Exception):
  """A run killed part-way (pytest treats a real KeyboardInterrupt as the end of the session)."""


def test_run_chunks_resumes_only_the_missing_chunks(tmp_path):
  calls = []

  def produce(i):
    calls.append(i)
    if i == 2 and len(calls) == 3:
      raise _Interrupted  # the first run dies while drawing chunk 2
    return {"x": np.full((2,), i)}

  with pytest.raises(_Interrupted):
    chunks.run_chunks(4, produce, partial_dir=tmp_path / "p", meta={"a": 1})
  result = chunks.run_chunks(4, produce, partial_dir=tmp_path / "p", meta={"a": 1})
  assert calls == [0, 1, 2, 2, 3] and result.resumed == 2
  np.testing.assert_array_equal(result.arrays["x"], [0, 0, 1, 1, 2, 2, 3, 3])
  # Other settings: the kept chunks are discarded and everything is drawn again.
  chunks.run_chunks(4, produce, partial_dir=tmp_path / "p", meta={"a": 2})
  assert calls[5:] == [0, 1, 2, 3]


def _counting_sample_fn(monkeypatch, calls, fail_at=None):
  original = Experiment.sample_fn

  def sample_fn(self, *args, **kwargs):
    fn = original(self, *args, **kwargs)

    def counted(*a, **k):
      calls.append(self.mesh.devices.size)
      if fail_at is not None and len(calls) == fail_at:
        raise _Interrupted
      return fn(*a, **k)
    return counted

  monkeypatch.setattr(Experiment, "sample_fn", sample_fn)


def test_interrupted_sampling_on_1_device_equals_uninterrupted_on_8(tmp_path, monkeypatch):
  """Deterministic DDIM: 2 batches of 8 sharded over 8 devices; then on 1 device, killed
  in the second batch and rerun: only the second batch is drawn, the files are equal."""
  assert jax.device_count() == 8
  c = quiet_digits_config(1, checkpoint_every_steps=1)
  c.sample.num_samples, c.sample.batch_size = 16, 8
  assert c.sample.sampler == "ddim" and c.sample.ddim.eta == 0.0
  loop.train_and_evaluate(c, tmp_path / "a")
  shutil.copytree(tmp_path / "a", tmp_path / "b")
  reference = np.load(loop.run_sample(c, tmp_path / "a"))["images"]
  assert reference.shape == (16, 8, 8, 1)

  c.trainer.num_devices = 1
  calls = []
  _counting_sample_fn(monkeypatch, calls, fail_at=2)
  with pytest.raises(_Interrupted):
    loop.run_sample(c, tmp_path / "b")
  assert [p.name for p in (tmp_path / "b" / "samples" / "partial_1").glob("chunk_*")] == [
      "chunk_00000.npz"]
  monkeypatch.undo()
  calls.clear()
  _counting_sample_fn(monkeypatch, calls)
  resumed = np.load(loop.run_sample(c, tmp_path / "b"))["images"]
  assert calls == [1]  # one device, one batch: the done batch is not redrawn
  assert not (tmp_path / "b" / "samples" / "partial_1").exists()
  assert (tmp_path / "b" / "samples" / "final_1.png").exists()
  diff = np.abs(resumed.astype(int) - reference.astype(int))
  assert diff.max() <= 1 and (diff > 0).mean() < 0.01, (diff.max(), (diff > 0).mean())
