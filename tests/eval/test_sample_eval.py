"""Eval mode with sample metrics: periodic curve, resumable --mode=eval, stats files, protocols."""

import json

import numpy as np
import pytest

from gen_jax.eval import stats as stats_lib
from gen_jax.train import evaluation, loop
from tests.train.helpers import load_config


def _stats(protocol, seed=0, n=50, d=4):
  x = np.random.default_rng(seed).normal(size=(n, d))
  return stats_lib.from_features(x, protocol)


def test_protocol_mismatch_between_stats_files_is_refused(tmp_path):
  base = stats_lib.make_protocol({"feature_extractor": "inception_fid_2015_12_05",
                                  "weights_sha256": "ab" * 32, "preprocessing": "tf1",
                                  "layer": "pool3", "input_shape": [32, 32, 3]},
                                 source="dataset", dataset="cifar10", split="train")
  a = stats_lib.save(tmp_path / "a.npz", _stats(base, 0))
  b = stats_lib.save(tmp_path / "b.npz", _stats({**base, "split": "test"}, 1))
  result = stats_lib.compare_files(a, b)  # split/count differ: recorded, comparable
  loaded_a, loaded_b = stats_lib.load(a), stats_lib.load(b)
  assert loaded_a.protocol["count"] == 50 and loaded_a.protocol["gen_jax_version"]
  from gen_jax.eval import metrics
  assert result["fid"] == pytest.approx(metrics.frechet_distance(
      loaded_a.mu, loaded_a.sigma, loaded_b.mu, loaded_b.sigma))
  other = {**base, "feature_extractor": "classifier", "weights_sha256": "cd" * 32,
           "preprocessing": "uint8 -> x/127.5-1"}
  c = stats_lib.save(tmp_path / "c.npz", _stats(other, 2))
  with pytest.raises(stats_lib.ProtocolMismatchError) as err:
    stats_lib.compare_files(a, c)
  message = str(err.value)
  for field in ("feature_extractor", "weights_sha256", "preprocessing"):
    assert field in message
  assert "layer" not in message and "split" not in message
  assert stats_lib.main(["stats", str(a), str(c)]) == 1


def _toy_config(**eval_fields):
  c = load_config("ddpm/toy_eight_gaussians.py")
  c.trainer.sample_every_steps = 0
  c.trainer.eval_every_steps = 2
  c.eval.metrics = ("fid", "kid", "pr", "dc")
  c.eval.feature_extractor = "identity"
  c.eval.periodic_num_samples = 32
  c.eval.num_samples = 40
  c.eval.sample_batch_size = 16
  c.eval.reference_count = 200
  c.eval.kid_subset_size = 16
  for k, v in eval_fields.items():
    c.eval[k] = v
  return c


def test_periodic_curve_and_resumable_eval_on_toy_data(tmp_path, monkeypatch):
  config = _toy_config()
  loop.train_and_evaluate(config, tmp_path)
  for step in (2, 4):  # the periodic evaluation: a point of the curve at each eval step
    record = json.loads((tmp_path / "eval" / f"{step}.json").read_text())
    assert np.isfinite(record["results"]["fid"]) and record["results"]["num_samples"] == 32
    assert record["sample_metrics_protocol"]["feature_protocol"]["feature_extractor"] == "identity"
  assert list(tmp_path.glob("events.out.tfevents*"))
  assert len(list((tmp_path / "eval").glob("reference_train_*.npz"))) == 1  # cached once

  full = loop.run_eval(config, tmp_path)
  assert 0 <= full["precision"] <= 1 and 0 <= full["coverage"] <= 1 and full["fid"] > 0
  assert not (tmp_path / "eval" / "partial_4").exists()

  # Interrupt the next evaluation after two of its three sample chunks ...
  real_generate, calls = evaluation.generate, []

  def flaky_generate(*args, **kwargs):
    calls.append(1)
    if len(calls) == 3:
      raise KeyboardInterrupt("simulated preemption")
    return real_generate(*args, **kwargs)

  monkeypatch.setattr(evaluation, "generate", flaky_generate)
  with pytest.raises(KeyboardInterrupt):
    loop.run_eval(config, tmp_path)
  assert len(list((tmp_path / "eval" / "partial_4").glob("chunk_*.npz"))) == 2
  # ... then resume: only the missing chunk is drawn, and the numbers are the same.
  calls.clear()
  monkeypatch.setattr(evaluation, "generate", lambda *a, **k: (calls.append(1), real_generate(*a, **k))[1])
  resumed = loop.run_eval(config, tmp_path)
  assert len(calls) == 1
  assert resumed == full
  record = json.loads((tmp_path / "eval" / "4.json").read_text())
  assert record["sample_metrics_protocol"]["num_samples"] == 40 and record["seed"] == config.seed


@pytest.mark.slow  # suite budget: 75 s; classifier features: tests/eval/test_classifier.py, the refusal:
# tests/eval/test_stats_protocol.py
def test_stats_mode_classifier_features_and_mismatch_refusal(tmp_path):
  cls = load_config("classifier/digits.py")
  cls.trainer.sample_every_steps = 0
  cls.trainer.eval_every_steps = 0
  loop.train_and_evaluate(cls, tmp_path / "cls")

  config = load_config("ddpm/digits.py")
  config.trainer.sample_every_steps = 0
  config.trainer.eval_every_steps = 0
  config.eval.metrics = ("fid", "is", "pr")
  config.eval.feature_extractor = "classifier"
  config.eval.classifier_workdir = str(tmp_path / "cls")
  config.eval.num_samples = 24
  config.eval.is_splits = 2
  config.eval.reference_stats = str(tmp_path / "digits_train.npz")
  path = loop.run_stats(config, tmp_path / "run")
  ref = stats_lib.load(path)
  assert ref.protocol["feature_extractor"] == "classifier" and ref.count == 64
  assert ref.protocol["split"] == "train" and ref.features.shape == (64, 16)
  loop.train_and_evaluate(config, tmp_path / "run")
  results = loop.run_eval(config, tmp_path / "run")
  assert np.isfinite(results["fid"]) and 1.0 <= results["is"] <= 10.0
  # The same reference file with another feature extractor is refused.
  config.eval.feature_extractor = "identity"
  with pytest.raises(stats_lib.ProtocolMismatchError, match="feature_extractor"):
    loop.run_eval(config, tmp_path / "run")


def test_stats_mode_from_the_command_line(tmp_path):
  import os
  import subprocess
  import sys
  from tests.train.helpers import REPO
  out = subprocess.run(
      [sys.executable, "-m", "gen_jax.main", "--config=configs/ddpm/digits.py:smoke",
       f"--workdir={tmp_path}", "--mode=stats", "--config.eval.feature_extractor=identity",
       "--config.eval.reference_split=eval", "--config.eval.reference_count=0"],
      cwd=REPO, env=dict(os.environ), capture_output=True, text=True, timeout=600)
  assert out.returncode == 0, out.stderr[-3000:]
  stats = stats_lib.load(tmp_path / "stats" / "digits_test_identity.npz")
  assert stats.count == 297 and stats.mu.shape == (64,) and stats.features is None
  assert stats.protocol["split"] == "test" and stats.protocol["feature_extractor"] == "identity"
