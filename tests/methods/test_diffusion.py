"""The one diffusion method: its presets ("ddpm", "score_sde") are the "diffusion" method with
their fields filled in; the two CIFAR-10 DDPM configs are one; `sample` reads a SampleSpec.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from gen_jax.core.sample import SampleSpec
from gen_jax.data import DatasetInfo
from gen_jax.methods import build_method
from gen_jax.methods.diffusion import FIELDS
from tests.train.helpers import load_config

TOY_INFO = DatasetInfo(image_shape=(2,), num_classes=8, num_examples=100)


def test_the_two_cifar10_ddpm_configs_are_one():
  for smoke in ("", ",smoke"):
    ddpm = load_config("ddpm/cifar10.py", smoke.strip(",") or None)
    sde = load_config("score_sde/cifar10.py", f"variant=vp_ddpm{smoke}")
    assert sde.to_dict() == ddpm.to_dict(), smoke
  c = load_config("ddpm/cifar10.py", None)  # Ho et al. 2020 / diffusion_tf's run_cifar.py
  assert (c.num_train_steps, c.data.dequantize, c.method.num_timesteps) == (800_000, False, 1000)
  assert (c.sample.sampler, c.sample.ancestral.variance) == ("ancestral", "fixed_large")


def _as_diffusion(c: ml_collections.ConfigDict, fields: dict) -> ml_collections.ConfigDict:
  """`c` with config.method replaced by the "diffusion" method's `fields`."""
  c = c.copy_and_resolve_references()
  c.unlock()
  c.method = ml_collections.ConfigDict(dict(name="diffusion", **fields))
  return c


def _same_method(a, b):
  skip = {"optimizer", "lr_schedule", "loss_kwargs", "process"}
  for f in dataclasses.fields(a):
    if f.name not in skip:
      assert getattr(a, f.name) == getattr(b, f.name), f.name
  assert jax.tree.structure(a.process) == jax.tree.structure(b.process)
  assert all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a.process),
                                                    jax.tree.leaves(b.process)))


@pytest.mark.parametrize("preset", ["ddpm", "score_sde"])
def test_a_preset_is_the_diffusion_method_with_its_fields(preset):
  """Built by its preset name or as "diffusion" with the fields spelled out, a config gives
  the same model and the same loss (same parameters, same key)."""
  if preset == "ddpm":
    c = load_config("ddpm/toy_eight_gaussians.py", "smoke")
    m = c.method
    fields = dict(process="chain", beta_schedule=m.beta_schedule,
                  num_timesteps=m.num_timesteps, prediction=m.prediction, loss=m.loss)
  else:
    c = load_config("score_sde/toy2d.py", "smoke")
    m = c.method
    fields = dict(process="vpsde", beta_min=m.beta_min, beta_max=m.beta_max,
                  num_scales=m.num_scales, time_input="time", loss="dsm", weighting="sigma2",
                  reduce_mean=False, eps=m.eps, likelihood=m.likelihood.to_dict())
  assert set(fields) <= set(FIELDS)
  a, b = build_method(c, TOY_INFO), build_method(_as_diffusion(c, fields), TOY_INFO)
  _same_method(a, b)
  batch = {"image": jax.random.normal(jax.random.key(0), (8, 2))}
  state = a.init(jax.random.key(1), batch)
  loss = lambda m: jax.jit(lambda p: m.loss_terms(p, batch, jax.random.key(2), train=True))
  np.testing.assert_array_equal(loss(a)(state.params), loss(b)(state.params))


def test_unknown_diffusion_field_is_named():
  c = _as_diffusion(load_config("ddpm/toy_eight_gaussians.py", "smoke"), dict(sde="vpsde"))
  with pytest.raises(ValueError, match="Unknown method field.*sde.*its fields"):
    build_method(c, TOY_INFO)


def test_sample_reads_the_spec_and_refuses_the_rest():
  c = load_config("ddpm/toy_eight_gaussians.py", "smoke")
  method = build_method(c, TOY_INFO)
  state = method.init(jax.random.key(0), {"image": jnp.zeros((1, 2))})
  sample = lambda m, spec: jax.jit(lambda s: m.sample(s, jax.random.key(1), 4, spec))(state)
  # Another sampler by name equals the method configured with it.
  by_spec = sample(method, SampleSpec(sampler="ancestral"))
  configured = sample(dataclasses.replace(method, sampler="ancestral", sampler_kwargs={}),
                      SampleSpec())
  np.testing.assert_array_equal(by_spec.samples, configured.samples)
  assert by_spec.nfe == c.method.num_timesteps
  assert sample(method, SampleSpec(sampler_options={"num_steps": 3})).nfe == 3
  with pytest.raises(ValueError, match="'diffusion' family cannot honour.*temperature"):
    method.sample(state, jax.random.key(1), 4, SampleSpec(temperature=0.7))
  with pytest.raises(ValueError, match="needs a class-conditional model"):
    method.sample(state, jax.random.key(1), 4, SampleSpec(guidance_scale=2.0))
