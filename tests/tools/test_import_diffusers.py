"""Tests of the diffusers UNet2DModel importer (gen_jax.tools.import_diffusers).

The fixtures in ../shared/data/diffusers_unet/ are two small diffusers checkpoints with
fixed inputs and the outputs diffusers computed for them (see their README).
"""

from __future__ import annotations

import importlib.util
import json
import math
import pathlib
import subprocess
import sys

import jax
import numpy as np
import pytest
from safetensors.numpy import load_file

from gen_jax.nets.unet import UNet
from gen_jax.tools import import_diffusers as imp

FIXTURES = ("ddpm_conventions", "diffusers_defaults")


def _fixture(shared_data, name: str) -> pathlib.Path:
  folder = shared_data / "diffusers_unet" / name
  if not folder.is_dir():
    pytest.skip(f"{folder} is absent")
  return folder


def _forward_errors(folder: pathlib.Path, **option_overrides) -> np.ndarray:
  """Max abs difference [4] (one per stored timestep) of gen_jax's UNet vs diffusers'."""
  unet_cfg, sched_cfg, weights = imp.read_folder(folder)
  kwargs, _, _ = imp.check_supported(unet_cfg, sched_cfg)
  net = UNet(out_channels=3, **kwargs)
  io = np.load(folder / "io.npz")
  x = io["x_nchw"].transpose(0, 2, 3, 1)
  t = io["t"].astype(np.float32)
  abstract = jax.eval_shape(lambda: net.init(jax.random.key(0), x, t, train=False))["params"]
  params = imp.convert_weights(load_file(str(weights)), abstract, len(kwargs["ch_mult"]))
  net = UNet(out_channels=3, **{**kwargs, **option_overrides})
  # Full float32 matmuls and convolutions also on GPUs, whose default may be TF32.
  with jax.default_matmul_precision("float32"):
    out = np.asarray(net.apply({"params": params}, x, t, train=False))
  ref = io["eps_nchw"].transpose(0, 2, 3, 1)
  return np.abs(out - ref).reshape(len(t), -1).max(axis=1)


@pytest.mark.parametrize("name", FIXTURES)
def test_imported_forward_pass_equals_diffusers(shared_data, name):
  errors = _forward_errors(_fixture(shared_data, name))
  print(f"{name}: max abs error per timestep (0, 10, 500, 999): {errors}")
  assert errors.shape == (4,)
  assert np.all(errors < 1e-4), errors


@pytest.mark.slow
def test_each_diffusers_option_matters(shared_data):
  """Resetting any one of the new UNet options to its default moves the output away from
  diffusers' (by > 1e-3, or 10x the matched error for the GroupNorm epsilon, whose effect
  on these activations is ~4e-5)."""
  folder = _fixture(shared_data, "diffusers_defaults")
  matched = _forward_errors(folder).max()
  defaults = dict(norm_eps=1e-6, attn_head_dim=None, downsample_padding="same",
                  flip_sin_to_cos=False, freq_shift=1.0)
  for field, value in defaults.items():
    threshold = 10 * matched if field == "norm_eps" else 1e-3
    assert _forward_errors(folder, **{field: value}).max() > threshold, field


def _copy_fixture(src: pathlib.Path, dst: pathlib.Path, unet=None, scheduler=None):
  dst.mkdir()
  (dst / imp.WEIGHTS).symlink_to(src / imp.WEIGHTS)
  for name, changes in ((imp.UNET_CONFIG, unet), (imp.SCHEDULER_CONFIG, scheduler)):
    cfg = json.loads((src / name).read_text())
    cfg.update(changes or {})
    (dst / name).write_text(json.dumps(cfg))
  return dst


UNSUPPORTED_UNET = dict(
    class_embed_type="timestep",
    down_block_types=["DownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D", "DownBlock2D"],
    upsample_type="resnet",
    out_channels=6,
    cross_attention_dim=512)
UNSUPPORTED_SCHEDULER = dict(beta_schedule="scaled_linear", variance_type="learned_range")


def test_unsupported_config_is_refused_listing_each_field(shared_data, tmp_path):
  folder = _copy_fixture(_fixture(shared_data, "ddpm_conventions"), tmp_path / "src",
                         UNSUPPORTED_UNET, UNSUPPORTED_SCHEDULER)
  workdir = tmp_path / "run"
  with pytest.raises(imp.UnsupportedConfigError) as info:
    imp.import_folder(folder, workdir)
  message = str(info.value)
  print(message)
  for field in [*UNSUPPORTED_UNET, *UNSUPPORTED_SCHEDULER]:
    assert f"{field}=" in message or f"{field}[" in message, field
  assert "down_block_types[1]='CrossAttnDownBlock2D'" in message
  assert len(info.value.problems) == len(UNSUPPORTED_UNET) + len(UNSUPPORTED_SCHEDULER)
  assert not workdir.exists()


def test_command_line_refuses_and_writes_nothing(shared_data, tmp_path):
  folder = _copy_fixture(_fixture(shared_data, "ddpm_conventions"), tmp_path / "src",
                         dict(num_class_embeds=10))
  workdir = tmp_path / "run"
  proc = subprocess.run(
      [sys.executable, "-m", "gen_jax.tools.import_diffusers", str(folder),
       f"--workdir={workdir}"], capture_output=True, text=True, timeout=300,
      cwd=pathlib.Path(__file__).parents[2])
  assert proc.returncode != 0
  assert "num_class_embeds=10" in proc.stderr
  assert not workdir.exists()


def test_weights_that_do_not_fit_are_refused(shared_data, tmp_path):
  folder = _fixture(shared_data, "ddpm_conventions")
  unet_cfg, sched_cfg, weights = imp.read_folder(folder)
  kwargs, image_shape, _ = imp.check_supported(unet_cfg, sched_cfg)
  net = UNet(out_channels=3, **kwargs)
  x = np.zeros((1, *image_shape), np.float32)
  abstract = jax.eval_shape(
      lambda: net.init(jax.random.key(0), x, np.zeros((1,), np.float32), train=False))["params"]
  tensors = load_file(str(weights))
  tensors["extra.weight"] = tensors.pop("conv_in.weight")
  with pytest.raises(ValueError, match=r"no tensor 'conv_in.weight'(.|\n)*'extra.weight'"):
    imp.convert_weights(tensors, abstract, len(kwargs["ch_mult"]))


def _load_config_py(path: pathlib.Path):
  spec = importlib.util.spec_from_file_location("imported_config", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config()


@pytest.fixture
def imported(shared_data, tmp_path):
  """(fixture folder, import result) of ddpm_conventions imported into a new workdir."""
  folder = _fixture(shared_data, "ddpm_conventions")
  return folder, imp.import_folder(folder, tmp_path / "run")


@pytest.mark.slow  # suite budget: 36 s; the imported network's forward pass is checked by
# test_imported_forward_pass_equals_diffusers
def test_import_writes_a_gen_jax_workdir(imported):
  """config.json, the config.py that --config gets (rebuilding the same config) and a
  checkpoint whose params and EMA params are the diffusers weights."""
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top

  folder, result = imported
  workdir = result.workdir
  config = _load_config_py(workdir / "config.py")
  assert json.loads(config.to_json_best_effort()) == json.loads(
      (workdir / "config.json").read_text()) == json.loads(result.config.to_json_best_effort())
  assert config.model.norm_eps == 1e-6 and config.model.downsample_padding == "same"
  assert config.model.attn_resolutions == (8,) and config.model.ch_mult == (1, 1, 2, 2)
  assert config.method.beta_schedule == "linear" and config.method.num_timesteps == 1000
  assert config.sample.sampler == "ancestral" and config.sample.ancestral.variance == (
      "fixed_small") and config.sample.clip_x0

  raw = ocp.StandardCheckpointer().restore(workdir / "checkpoints" / "0" / "state")
  weights = load_file(str(folder / imp.WEIGHTS))
  for tree in (raw["params"], raw["ema_params"]):
    np.testing.assert_array_equal(tree["conv_in"]["kernel"],
                                  weights["conv_in.weight"].transpose(2, 3, 1, 0))
    # diffusers counts up blocks from the bottom: up_blocks.2 is gen_jax's level 1.
    np.testing.assert_array_equal(tree["up_1_attn_1"]["q"]["kernel"],
                                  weights["up_blocks.2.attentions.1.to_q.weight"].T)
  meta = json.loads((workdir / "checkpoints" / "0" / "meta" / "metadata").read_text())
  assert meta["imported_from"] == str(folder.absolute()) and meta["step"] == 0

  with pytest.raises(FileExistsError, match="already holds checkpoints"):
    imp.import_folder(folder, workdir)


@pytest.mark.slow
def test_import_then_sample_with_the_real_sample_mode(imported):
  """Samples from the imported workdir through `loop.run_sample` (what --mode=sample runs).

  Slow: ~60 s on 2 loaded cores, mostly compiling the 4-level UNet.
  """
  from gen_jax.train import loop  # pylint: disable=g-import-not-at-top

  _, result = imported
  config = _load_config_py(result.workdir / "config.py")
  config.sample.num_samples = 2
  config.sample.batch_size = 2
  config.sample.sampler = "ddim"
  config.sample.ddim.num_steps = 1
  images = np.load(loop.run_sample(config, result.workdir))["images"]
  assert images.shape == (2, 16, 16, 3) and images.dtype == np.uint8
  assert images.std() > 0


def _diffusers_cosine_betas(steps: int, max_beta: float = 0.999) -> np.ndarray:
  """diffusers' betas_for_alpha_bar (beta_schedule="squaredcos_cap_v2"), in NumPy."""
  abar = lambda t: math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2
  return np.array([min(1 - abar((i + 1) / steps) / abar(i / steps), max_beta)
                   for i in range(steps)])


def test_scheduler_mapping():
  """Schedules gen_jax has are mapped onto their registered names (same betas); others and
  mismatched linear end points are refused."""
  from gen_jax.diffusion.schedules import BETA_SCHEDULES  # pylint: disable=g-import-not-at-top
  problems = []
  cosine = imp.method_settings(dict(beta_schedule="squaredcos_cap_v2", num_train_timesteps=400,
                                    prediction_type="v_prediction", variance_type="fixed_large",
                                    clip_sample=False), problems)
  assert not problems
  assert cosine == dict(num_timesteps=400, beta_schedule="cosine", prediction="v",
                        variance="fixed_large", clip_x0=False)
  np.testing.assert_allclose(BETA_SCHEDULES.get("cosine")(400), _diffusers_cosine_betas(400),
                             rtol=1e-10)
  linear = imp.method_settings(dict(num_train_timesteps=500, beta_start=2e-4, beta_end=0.04,
                                    prediction_type="sample"), problems)
  assert not problems and linear["beta_schedule"] == "linear" and linear["prediction"] == "x0"
  np.testing.assert_allclose(BETA_SCHEDULES.get("linear")(500), np.linspace(2e-4, 0.04, 500))
  imp.method_settings(dict(beta_end=0.012), problems)
  assert len(problems) == 1 and "beta_end=0.012" in problems[0]
