"""The README's "Adding a loss" and "Adding a sampler" snippets run as written: each is one
registered function, and one config line selects it in a real method."""

from __future__ import annotations

import pathlib
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gen_jax.data import DatasetInfo
from gen_jax.diffusion.losses import DIFFUSION_LOSSES
from gen_jax.methods import build_method
from gen_jax.samplers import SAMPLERS
from gen_jax.diffusion.sde_losses import WEIGHTINGS
from tests.train.helpers import load_config

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"
TOY = DatasetInfo(image_shape=(2,), num_classes=8, num_examples=100)


def _snippets(heading: str) -> list[str]:
  """The python blocks of the README paragraph that starts with `**heading**`."""
  text = README.read_text()
  section = text[text.index(f"**{heading}**"):]
  section = section[:section.index("\n**", len(heading) + 4)]  # up to the next paragraph
  return re.findall(r"```python\n(.*?)```", section, re.S)


@pytest.fixture
def scratch_registries(monkeypatch):
  for registry in (DIFFUSION_LOSSES, WEIGHTINGS, SAMPLERS):
    monkeypatch.setattr(registry, "_entries", dict(registry._entries))


def _method_and_state(config_path, **overrides):
  c = load_config(config_path, "smoke")
  for key, value in overrides.items():
    section, field = key.split(".")
    c[section][field] = value
  method = build_method(c, TOY)
  return method, method.init(jax.random.key(0), {"image": jnp.zeros((1, 2))})


def _loss(config_path, **overrides) -> float:
  method, state = _method_and_state(config_path, **overrides)
  batch = {"image": jax.random.normal(jax.random.key(1), (8, 2)),
           "label": jnp.zeros((8,), jnp.int32)}
  return float(jnp.mean(method.loss_terms(state.params, batch, jax.random.key(2), train=True)))


def test_adding_a_loss_and_a_weighting(scratch_registries):
  for code in _snippets("Adding a loss"):
    exec(code, {})  # pylint: disable=exec-used
  assert "huber" in DIFFUSION_LOSSES and "min_snr_5" in WEIGHTINGS
  assert np.isfinite(_loss("ddpm/toy_eight_gaussians.py", **{"method.loss": "huber"}))
  base = _loss("score_sde/toy2d.py")
  weighted = _loss("score_sde/toy2d.py", **{"method.weighting": "min_snr_5"})
  assert np.isfinite(weighted) and weighted != base


@pytest.mark.parametrize("config", ["ddpm/toy_eight_gaussians.py", "score_sde/toy2d.py"])
def test_adding_a_sampler(scratch_registries, config):
  (code,) = _snippets("Adding a sampler")
  exec(code, {})  # pylint: disable=exec-used
  method, state = _method_and_state(config, **{"sample.sampler": "one_step"})
  out = method.sample(state, jax.random.key(3), 4)
  assert out.nfe == 1 and out.samples.shape == (4, 2)
  assert np.all(np.isfinite(np.asarray(out.samples)))
