"""`Method.sample(state, rng, n, spec)` in every non-diffusion family.

* The default `SampleSpec()` gives the same samples as the old `sample(state, rng, n)` did
  (same rng): the reference numbers below were drawn with the code before the spec.
* Explicit labels equal to the default cycle give the same samples; other labels are used.
* A request a family cannot honour is refused naming the family and the field.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gen_jax.core.sample import SampleSpec
from gen_jax.data import DatasetInfo
from gen_jax.methods.base import build_method
from tests.autoregressive.helpers import small_method
from tests.train.helpers import load_config


def _toy_batch(n=8, d=2):
  x = jax.random.normal(jax.random.key(7), (n, d))
  return {"image": x, "label": jnp.arange(n, dtype=jnp.int32) % 8}


def _perturbed(state):
  """EMA parameters away from the (partly zero) initialisation."""
  params = jax.tree.map(lambda p: p + 0.2 * jax.random.normal(jax.random.key(3), p.shape),
                        state.params)
  return state.replace(ema_params=params)


def _autoregressive():
  method = small_method("gated_pixelcnn_mnist.py", (3, 3, 1), num_classes=10,
                        class_conditional=True)
  return method, _perturbed(method.init(jax.random.key(0), None))


def _classifier():
  c = load_config("classifier/digits.py")
  method = build_method(c, DatasetInfo((8, 8, 1), 10, 100))
  batch = {"image": jnp.zeros((2, 8, 8, 1)), "label": jnp.zeros((2,), jnp.int32)}
  return method, _perturbed(method.init(jax.random.key(0), batch))


def _flow():
  c = load_config("flows/maf_two_moons.py")
  method = build_method(c, DatasetInfo((2,), 2, 100))
  return method, method.init(jax.random.key(0), _toy_batch())


def _gan():
  c = load_config("gan/toy_eight_gaussians.py")
  c.method.class_conditional = True
  method = build_method(c, DatasetInfo((2,), 8, 100))
  return method, method.init(jax.random.key(0), _toy_batch())


def _ddgan():
  c = load_config("gan/ddgan_toy_eight_gaussians.py")
  c.method.class_conditional = True
  method = build_method(c, DatasetInfo((2,), 8, 100))
  return method, method.init(jax.random.key(0), _toy_batch())


BUILDERS = {"autoregressive": _autoregressive, "classifier": _classifier, "flow": _flow,
            "gan": _gan, "ddgan": _ddgan}
NUM_SAMPLES = 4

# (first six values, float64 sum) of sample(state, key(1), 4) before the spec existed.
REFERENCE = {
    "autoregressive": ([-0.5921568274497986, 0.0745098665356636, -0.7568627595901489,
                        0.5450981259346008, -0.5999999642372131, 0.6705883145332336],
                       1.0588256977498531),
    "classifier": ([0.0984635129570961, 0.17970263957977295, -0.103900246322155,
                    0.3034261465072632, 0.01986362785100937, 0.25704705715179443],
                   -3.035665215458721),
    "ddgan": ([0.28863194584846497, -0.5545045137405396, 0.37947243452072144,
               -0.49938011169433594, 0.3713204264640808, -0.6968799233436584],
              -1.1147061437368393),
    "flow": ([-0.15443718433380127, 0.08470727503299713, -0.135980486869812,
              -0.15503625571727753, 1.266667366027832, 0.14829757809638977],
             4.198452830314636),
    "gan": ([0.8891338109970093, -1.1546021699905396, 0.8308545351028442,
             -0.9034357666969299, 0.8289768099784851, -0.5793536305427551],
            -0.05908292531967163),
}


def _draw(method, state, spec):
  out = jax.jit(lambda s: method.sample(s, jax.random.key(1), NUM_SAMPLES, spec))(state)
  return np.asarray(out.samples)


@pytest.mark.parametrize("family", sorted(BUILDERS))
def test_default_spec_draws_the_samples_of_the_old_signature(family):
  method, state = BUILDERS[family]()
  x = _draw(method, state, SampleSpec())
  head, total = REFERENCE[family]
  np.testing.assert_allclose(x.ravel()[:6], head, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(np.sum(x, dtype=np.float64), total, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("family", ["autoregressive", "classifier", "ddgan", "gan"])
def test_labels_of_the_spec_are_the_classes_drawn(family):
  method, state = BUILDERS[family]()
  sample = jax.jit(lambda s, y: method.sample(s, jax.random.key(1), NUM_SAMPLES,
                                              SampleSpec(labels=y)).samples)
  cycle = np.asarray(sample(state, jnp.arange(NUM_SAMPLES, dtype=jnp.int32)))
  np.testing.assert_allclose(cycle.ravel()[:6], REFERENCE[family][0], rtol=1e-5, atol=1e-6)
  others = np.asarray(sample(state, jnp.full((NUM_SAMPLES,), 5, jnp.int32)))
  assert not np.allclose(others, cycle)


# (family, a request it cannot honour, the field the error must name)
REFUSALS = [("autoregressive", SampleSpec(guidance_scale=2.0), "guidance_scale"),
            ("classifier", SampleSpec(temperature=0.5), "temperature"),
            ("ddgan", SampleSpec(sampler_options={"num_steps": 2}), "sampler_options"),
            ("flow", SampleSpec(temperature=0.7, truncation=0.5), "truncation"),
            ("gan", SampleSpec(temperature=0.7), "temperature")]


@pytest.mark.parametrize("family,spec,field", REFUSALS, ids=[r[0] for r in REFUSALS])
def test_a_request_the_family_cannot_honour_is_refused_by_name(family, spec, field):
  method, state = BUILDERS[family]()
  with pytest.raises(ValueError, match=rf"'{family}' family cannot honour .*{field}"):
    method.sample(state, jax.random.key(1), NUM_SAMPLES, spec)


def test_flow_temperature_of_the_spec_scales_the_prior():
  method, state = _flow()
  sample = jax.jit(lambda s, t: method.sample(s, jax.random.key(1), NUM_SAMPLES,
                                              SampleSpec(temperature=t)).samples)
  warm = np.asarray(sample(state, 1.0))  # the configured T = 1
  np.testing.assert_allclose(warm.ravel()[:6], REFERENCE["flow"][0], rtol=1e-5, atol=1e-6)
  cold = np.asarray(sample(state, 0.0))  # z = 0 for every key: one point
  np.testing.assert_allclose(cold, np.broadcast_to(cold[:1], cold.shape), atol=1e-6)
