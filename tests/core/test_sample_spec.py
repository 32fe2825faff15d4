"""SampleSpec: a family refuses, by name, every sampling request it cannot honour."""

import jax
import pytest

from gen_jax.core.sample import SampleSpec


def test_default_spec_requests_nothing():
  assert SampleSpec().requested() == []
  SampleSpec().refuse_unsupported("gan", [])


def test_labels_are_never_refused_and_set_fields_are_listed():
  spec = SampleSpec(labels=[0, 1], temperature=0.7, sampler_options={"num_steps": 10})
  assert spec.requested() == ["temperature", "sampler_options"]
  spec.refuse_unsupported("flow", ["temperature", "sampler_options"])


def test_unsupported_request_names_the_field_and_the_family():
  with pytest.raises(ValueError, match=r"'flow' family cannot honour .*truncation"):
    SampleSpec(truncation=0.5, temperature=0.8).refuse_unsupported("flow", ["temperature"])


def test_a_traced_value_is_a_request():
  """A temperature swept under jit is an array tracer, which cannot be compared to {}."""
  seen = []
  jax.jit(lambda t: seen.append(SampleSpec(temperature=t).requested()) or t)(0.5)
  assert seen == [["temperature"]]
