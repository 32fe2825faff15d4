"""config.trainer.writers: TensorBoard by default, Weights & Biases (offline here) on request."""

from __future__ import annotations

import json
import pathlib
import struct
import sys

import numpy as np
import pytest

from gen_jax.train import writers
from tests.train.helpers import quiet_digits_config


def _history(path: pathlib.Path) -> list[dict]:
  """The history rows of an offline .wandb file (a leveldb-style log of protobuf records)."""
  from wandb.proto import wandb_internal_pb2  # pylint: disable=g-import-not-at-top
  data, pos, block, rows, buffer = path.read_bytes(), 7, 32768, [], b""  # 7: file header
  while pos + 7 <= len(data):
    if block - pos % block < 7:  # a block's tail too short for a header is padding
      pos += block - pos % block
      continue
    length, kind = struct.unpack("<HB", data[pos + 4:pos + 7])  # after a 4-byte CRC
    buffer += data[pos + 7:pos + 7 + length]
    pos += 7 + length
    if kind in (1, 4):  # a full record, or the last fragment of one
      record = wandb_internal_pb2.Record()
      record.ParseFromString(buffer)
      buffer = b""
      if record.WhichOneof("record_type") == "history":
        rows.append({"/".join(i.nested_key) or i.key: json.loads(i.value_json)
                     for i in record.history.item})
  return rows


def test_unknown_writer_is_an_error_naming_the_choices(tmp_path):
  c = quiet_digits_config()
  c.trainer.writers = ("tensorboard", "mlflow")
  with pytest.raises(ValueError, match=r"unknown \['mlflow'\].*tensorboard.*wandb"):
    writers.create_writer(c, tmp_path)


def test_wandb_without_the_extra_says_how_to_install(tmp_path, monkeypatch):
  monkeypatch.setitem(sys.modules, "wandb", None)  # import fails as if not installed
  c = quiet_digits_config()
  c.trainer.writers = ("wandb",)
  with pytest.raises(ImportError, match=r"pip install -e '\.\[wandb\]'"):
    writers.create_writer(c, tmp_path)


def test_wandb_offline_run_records_the_metrics_and_resumes_the_same_run(tmp_path, monkeypatch):
  pytest.importorskip("wandb")
  monkeypatch.setenv("WANDB_SILENT", "true")
  c = quiet_digits_config()
  c.trainer.writers = ("wandb",)
  c.trainer.wandb.mode = "offline"
  writer = writers.create_writer(c, tmp_path, asynchronous=False)
  writer.write_scalars(1, {"train/loss": 0.75})
  writer.write_scalars(2, {"train/loss": 0.5})
  writer.write_images(2, {"samples": np.zeros((2, 8, 8, 1), np.uint8)})
  writer.close()
  run_id = (tmp_path / "wandb_run_id.txt").read_text()
  (run_file,) = (tmp_path / "wandb").glob(f"offline-run-*-{run_id}/run-{run_id}.wandb")
  history = _history(run_file)
  assert [(h["_step"], h["train/loss"]) for h in history] == [(1, 0.75), (2, 0.5)]
  assert history[1]["samples/count"] == 2 and b"num_train_steps" in run_file.read_bytes()

  writer = writers.create_writer(c, tmp_path, asynchronous=False)  # a resumed run
  writer.write_scalars(3, {"train/loss": 0.25})
  writer.close()
  assert (tmp_path / "wandb_run_id.txt").read_text() == run_id
  assert len(list((tmp_path / "wandb").glob(f"offline-run-*-{run_id}"))) == 2
