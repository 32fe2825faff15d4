"""The trainer's sampling requests: SampleSpec labels over batches, conditional sampling."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from gen_jax.core.sample import SampleSpec, UnsupportedSampleRequest
from gen_jax.train import evaluation, loop
from gen_jax.train.experiment import Experiment, sample_spec_from_config
from tests.train.helpers import load_config


def test_generate_splits_the_labels_of_the_request_over_the_batches(tmp_path):
  c = load_config("gan/toy_eight_gaussians.py")
  c.method.class_conditional = True
  exp = Experiment.create(c, tmp_path)
  batch = {"image": jnp.zeros((c.batch_size, 2)), "label": jnp.zeros((c.batch_size,), jnp.int32)}
  state = exp.init_state(batch)
  key = jax.random.key(3)
  labels = np.array([7, 1, 2, 3, 4, 5], np.int32)
  x, _, _ = evaluation.generate(exp, state, 6, 4, key, SampleSpec(labels=labels))
  # Batch i draws with fold_in(key, i) and labels[4i:4i + 4], the last batch cycled.
  draw = lambda i, y: exp.method.sample(state, jax.random.fold_in(key, i), 4,
                                        SampleSpec(labels=jnp.asarray(y, jnp.int32))).samples
  expected = np.concatenate([draw(0, labels[:4]), draw(1, [4, 5, 7, 1])])[:6]
  np.testing.assert_allclose(x, expected, rtol=1e-5, atol=1e-6)
  with pytest.raises(ValueError, match=r"labels of shape \[3\]; expected one per sample, \[6\]"):
    evaluation.generate(exp, state, 6, 4, key, SampleSpec(labels=labels[:3]))


def test_the_config_request_leaves_defaults_to_the_family():
  c = load_config("flows/maf_two_moons.py")
  assert sample_spec_from_config(c.sample) == SampleSpec(temperature=1.0)
  c = load_config("ddpm/digits.py")  # guidance_scale 0: the unguided model, no request
  assert sample_spec_from_config(c.sample).requested() == []
  c.sample.guidance_scale = 2.0
  c.sample.truncation = 0.5
  assert sample_spec_from_config(c.sample) == SampleSpec(guidance_scale=2.0, truncation=0.5)


def test_conditional_sampling_is_refused_by_a_family_without_the_pc_sampler(tmp_path):
  c = load_config("gan/toy_eight_gaussians.py")
  with c.unlocked():
    c.sample.condition = ml_collections.ConfigDict(dict(kind="inpaint", images="", mask=""))
    c.sample.pc = ml_collections.ConfigDict(dict(snr=0.1))
  with pytest.raises(UnsupportedSampleRequest,
                     match=r"'gan' family cannot honour .*sampler, sampler_options"):
    loop.run_sample(c, tmp_path)  # no checkpoint: refused before the restore
