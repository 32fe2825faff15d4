"""Protocol differences (split, count, dataset) are reported or refused; external files.

`python -m gen_jax.eval.stats` and `--mode=eval` (loop.run_eval) both report what two sets
of statistics describe differently, refuse a different dataset (and, in --mode=eval, a
reference of another split than the config's) unless explicitly allowed, and record the
sampler's settings and the KID subset size used. TTUR/ADM files serve FID only.
"""

import json

import numpy as np
import pytest

from gen_jax.eval import metrics as metrics_lib
from gen_jax.eval import stats as stats_lib
from gen_jax.train import loop
from tests.train.helpers import load_config

_FEATURES = {"feature_extractor": "identity", "weights_sha256": "", "preprocessing": "x",
             "layer": "data", "input_shape": [4]}


def _file(tmp_path, name, seed, n, **description):
  x = np.random.default_rng(seed).normal(size=(n, 4))
  protocol = stats_lib.make_protocol(_FEATURES, source="dataset", **description)
  return stats_lib.save(tmp_path / name, stats_lib.from_features(x, protocol))


def test_stats_command_reports_split_and_count_differences(tmp_path, capsys):
  a = _file(tmp_path, "a.npz", 0, 50, dataset="cifar10", split="train")
  b = _file(tmp_path, "b.npz", 1, 40, dataset="cifar10", split="test")
  assert stats_lib.main(["stats", a, b]) == 0
  out, err = capsys.readouterr()
  result = json.loads(out)
  assert result["protocol_differences"] == {"split": ["train", "test"], "count": [50, 40]}
  assert "split" in err and "count" in err
  sa, sb = stats_lib.load(a), stats_lib.load(b)
  assert result["fid"] == pytest.approx(
      metrics_lib.frechet_distance(sa.mu, sa.sigma, sb.mu, sb.sigma))


def test_stats_command_refuses_different_datasets_unless_allowed(tmp_path, capsys):
  a = _file(tmp_path, "a.npz", 0, 50, dataset="cifar10", split="train")
  b = _file(tmp_path, "b.npz", 1, 50, dataset="svhn", split="train")
  assert stats_lib.main(["stats", a, b]) == 1
  _, err = capsys.readouterr()
  assert "dataset" in err and "'cifar10'" in err and "--allow_protocol_differences" in err
  assert stats_lib.main(["stats", a, b, "--allow_protocol_differences"]) == 0
  assert json.loads(capsys.readouterr()[0])["protocol_differences"] == {
      "dataset": ["cifar10", "svhn"]}


def test_external_statistics_formats(tmp_path):
  mu, sigma = np.arange(3.0), np.eye(3)
  np.savez(tmp_path / "fid_stats_x.npz", mu=mu, sigma=sigma)
  np.savez(tmp_path / "ref_batch.npz", arr_0=np.zeros((2, 4, 4, 3), np.uint8), mu=mu,
           sigma=sigma, mu_s=mu[:2], sigma_s=np.eye(2))
  for name, fmt in (("fid_stats_x.npz", "ttur"), ("ref_batch.npz", "adm")):
    ext = stats_lib.load_external(tmp_path / name, fmt, "declared: 3-d test statistics")
    np.testing.assert_array_equal(ext.mu, mu)
    assert ext.protocol["source"] == "external" and ext.protocol["external_format"] == fmt
    assert ext.features is None
  with pytest.raises(ValueError, match="declare"):
    stats_lib.load_external(tmp_path / "fid_stats_x.npz", "ttur", "")
  with pytest.raises(ValueError, match="not a gen_jax statistics file"):
    stats_lib.load(tmp_path / "fid_stats_x.npz")  # never read as gen_jax's own


def _toy(workdir=None, **eval_fields):
  c = load_config("ddpm/toy_eight_gaussians.py")
  c.trainer.sample_every_steps = 0
  c.trainer.eval_every_steps = 0
  c.eval.metrics = ("fid", "kid")
  c.eval.feature_extractor = "identity"
  c.eval.num_samples = 24
  c.eval.sample_batch_size = 8
  c.eval.reference_count = 48
  c.eval.kid_subset_size = 1000
  for k, v in eval_fields.items():
    c.eval[k] = v
  return c


def test_eval_mode_reports_and_refuses_protocol_differences(tmp_path):
  train = _toy()
  loop.train_and_evaluate(train, tmp_path)
  # Reference statistics of the test split (count 40), while the config asks for train/48.
  stats_path = str(tmp_path / "test_split.npz")
  loop.run_stats(_toy(reference_split="eval", reference_count=40,
                      reference_stats=stats_path), tmp_path)
  with pytest.raises(stats_lib.ProtocolMismatchError, match="split") as err:
    loop.run_eval(_toy(reference_stats=stats_path), tmp_path)
  assert "eval.allow_protocol_differences=True" in str(err.value)

  results = loop.run_eval(_toy(reference_stats=stats_path, allow_protocol_differences=True),
                          tmp_path)
  record = json.loads((tmp_path / "eval" / "4.json").read_text())["sample_metrics_protocol"]
  assert record["protocol_differences"] == {"split": ["test", "train"], "count": [40, 48]}
  assert record["counts"] == {"reference": 40, "samples": 24}
  # The KID subset size actually used: min(requested, reference, samples).
  assert record["kid"] == {"subsets": 5, "subset_size": 1000, "subset_size_used": 24}
  # The sampler's settings as the method uses them, and its cost.
  sampler = record["sampler"]
  assert sampler["sampler"] == "ddim" and sampler["num_steps"] == 5 and sampler["eta"] == 0.0
  assert sampler["guidance_scale"] == 0.0 and sampler["clip_x0"] is False
  assert record["nfe_per_sample"] == 5
  assert np.isfinite(results["fid"])

  # The same mu/sigma as a TTUR file give the same FID, recorded as external.
  ref = stats_lib.load(stats_path)
  np.savez(tmp_path / "fid_stats_toy.npz", mu=ref.mu, sigma=ref.sigma)
  external = _toy(reference_stats=str(tmp_path / "fid_stats_toy.npz"), metrics=("fid",),
                  reference_stats_format="ttur",
                  reference_stats_protocol="identity features of 40 test points")
  ext_results = loop.run_eval(external, tmp_path)
  assert ext_results["fid"] == pytest.approx(results["fid"], rel=1e-6)
  record = json.loads((tmp_path / "eval" / "4.json").read_text())["sample_metrics_protocol"]
  assert record["reference"]["source"] == "external"
  assert record["reference"]["declared_protocol"] == "identity features of 40 test points"
  assert record["reference_stats_format"] == "ttur"
  # ... and refused for metrics that need features.
  external.eval.metrics = ("fid", "kid")
  with pytest.raises(ValueError, match=r"\['kid'\] need the reference features"):
    loop.run_eval(external, tmp_path)
