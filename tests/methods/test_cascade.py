"""The cascade pipeline: stages trained in their workdirs, chained, every grid written.

The default test runs the pipeline's wiring (train each stage, restore, chain, write every
stage's samples; the cascade's sample metrics) with a per-pixel network, so that it costs
seconds; the slow test runs the real smoke configs from the command line.
"""

from __future__ import annotations

import json
import subprocess
import sys

import flax.linen as nn
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from gen_jax import nets
from gen_jax.methods.cascade import Cascade
from gen_jax.train import cascade
from tests.train.helpers import REPO, load_config


class _PerPixel(nn.Module):
  """A 1x1-convolution network (x [B, H, W, C_in], t [B]) -> [B, H, W, out_channels]."""
  out_channels: int
  num_classes: int = 0
  features: int = 8

  @nn.compact
  def __call__(self, x, t, y=None, *, train=False):
    del y, train
    h = nn.Dense(self.features)(x) + nn.Dense(self.features)(
        jnp.log1p(t.astype(jnp.float32))[:, None])[:, None, None]
    return nn.Dense(self.out_channels)(nn.silu(h))


if "test_per_pixel" not in nets.NETS.names():
  nets.NETS.add("test_per_pixel", _PerPixel)


def _cheap_cascade() -> ml_collections.ConfigDict:
  c = load_config("cascade/folder_16to64.py", "smoke,stage=cascade")
  for stage in c.cascade.stages.values():
    with stage.unlocked():
      stage.model = ml_collections.ConfigDict(dict(name="test_per_pixel"))
      stage.num_train_steps = 1
      stage.trainer.sample_every_steps = 0
      stage.trainer.eval_every_steps = 0
      stage.trainer.checkpoint_every_steps = 1
      stage.sample.ddim.num_steps = 2
  return c


def test_cascade_pipeline_trains_restores_chains_and_writes_every_stage(tmp_path):
  config = _cheap_cascade()
  states = cascade.train(config, tmp_path)
  assert [int(s.step) for s in states] == [1, 1]
  assert (tmp_path / "base" / "checkpoints" / "1").is_dir()
  assert (tmp_path / "sr" / "checkpoints" / "1").is_dir()
  paths = cascade.run_sample(config, tmp_path)
  shapes = [np.load(p)["images"].shape for p in paths]
  assert shapes == [(8, 8, 8, 1), (8, 32, 32, 1)]
  for name in ("stage0_base", "stage1_sr"):
    assert (tmp_path / "samples" / f"{name}.png").is_file()
  record = json.loads((tmp_path / "samples" / "cascade.json").read_text())
  assert [s["nfe"] for s in record["stages"]] == [2, 2]
  assert [s["resolution"] for s in record["stages"]] == [[8, 8, 1], [32, 32, 1]]
  (consistency,) = record["consistency"]
  base = np.load(paths[0])["images"].astype(np.float64) / 127.5 - 1
  final = np.load(paths[1])["images"].astype(np.float64) / 127.5 - 1
  down = final.reshape(8, 8, 4, 8, 4, 1).mean(axis=(2, 4))  # area, written out
  np.testing.assert_allclose(consistency["paired_rms"], np.sqrt(np.mean((down - base) ** 2)),
                             rtol=1e-5)
  with config.unlocked():
    config.eval.metrics = ("fid",)
    config.eval.feature_extractor = "identity"
    config.eval.num_samples = 8
  results = cascade.run_eval(config, tmp_path)
  assert np.isfinite(results["fid"])
  record = json.loads((tmp_path / "eval" / "1.json").read_text())
  assert record["sample_metrics_protocol"]["nfe_per_sample"] == 4  # 2 per stage
  assert record["sample_metrics_protocol"]["feature_protocol"]["input_shape"] == [32, 32, 1]
  assert [s["name"] for s in record["sample_metrics_protocol"]["cascade"]] == ["base", "sr"]


def test_cascade_refuses_stages_that_do_not_chain():
  config = _cheap_cascade()
  from gen_jax.data import build_source  # pylint: disable=g-import-not-at-top
  from gen_jax.methods import build_method  # pylint: disable=g-import-not-at-top
  methods = {}
  for name, stage in config.cascade.stages.items():
    _, info = build_source(stage.data, "train")
    methods[name] = build_method(stage, info)
  Cascade((methods["base"], methods["sr"]))  # chains
  with pytest.raises(ValueError, match="super_resolution"):
    Cascade((methods["base"], methods["base"]))
  with pytest.raises(ValueError, match="samples"):
    Cascade((methods["sr"], methods["sr"]))  # 32x32 samples into an 8 -> 32 stage


@pytest.mark.slow
def test_smoke_cascade_from_the_command_line_writes_every_stage_grid(tmp_path):
  """Measured ~8 min on the loaded 2-core machine (three processes, four UNet compiles)."""
  base = [sys.executable, "-m", "gen_jax.main",
          "--config=configs/cascade/folder_16to64.py:smoke,stage=cascade",
          f"--workdir={tmp_path}"]
  for extra in (["--mode=train"], ["--mode=sample"],
                ["--mode=eval", "--config.eval.metrics=('fid',)",
                 "--config.eval.feature_extractor=identity"]):
    subprocess.run(base + extra, cwd=REPO, check=True, capture_output=True)
  for name in ("stage0_base", "stage1_sr"):
    assert (tmp_path / "samples" / f"{name}.png").is_file()
    assert (tmp_path / "samples" / f"{name}.npz").is_file()
  assert np.isfinite(json.loads((tmp_path / "eval" / "4.json").read_text())["results"]["fid"])
