"""The autoregressive method: bits/dim, the pixel-by-pixel sampler, config errors."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gen_jax.data import DatasetInfo
from gen_jax.methods.autoregressive import build_autoregressive
from tests.autoregressive.helpers import small_method
from tests.train.helpers import load_config


def test_uniform_categorical_model_has_8_bits_per_dim():
  method = small_method("gated_pixelcnn_mnist.py", (4, 4, 3))
  codes = jax.random.randint(jax.random.key(0), (2, 4, 4, 3), 0, 256)
  logp = method.log_prob_from_outputs(jnp.zeros((2, 4, 4, 3, 256)), codes)
  np.testing.assert_allclose(method.bits_per_dim(logp), 8.0, rtol=1e-6)


def test_evaluate_is_the_exact_nll_in_bits():
  method = small_method("pixelcnnpp_cifar10.py", (4, 4, 3))
  state = method.init(jax.random.key(0), None)
  state = state.replace(ema_params=state.params)
  x = jax.random.randint(jax.random.key(1), (2, 4, 4, 3), 0, 256) / 127.5 - 1.0
  bpd = method.evaluate(state, {"image": x, "label": jnp.zeros(2, jnp.int32)}, None)["bpd"]
  out = method.apply(state.params, x, None)
  from gen_jax.distributions import discretized_logistic as dl
  nats = -jnp.sum(dl.log_prob(x, out, num_mix=method.num_mix), axis=(1, 2))
  np.testing.assert_allclose(bpd, nats / (48 * math.log(2.0)), rtol=1e-5)


@pytest.mark.parametrize("relpath,likelihood,channels", [
    ("gated_pixelcnn_mnist.py", "categorical", 3),
    ("pixelcnn_mnist.py", "categorical", 1),
    ("pixelcnnpp_cifar10.py", "dlm", 3),
])
def test_greedy_raster_sampling_agrees_with_teacher_forcing(relpath, likelihood, channels):
  """Decode greedily in the sampling loop; by causality the full network on the result
  must pick the same values at every position (the loop fills the right positions)."""
  from gen_jax.autoregressive import sampling
  method = small_method(relpath, (4, 4, channels), likelihood=likelihood)
  state = method.init(jax.random.key(0), None)
  params = jax.tree.map(lambda p: p + 0.5 * jax.random.normal(jax.random.key(3), p.shape),
                        state.params)
  apply = lambda x: method.apply(params, x, None)  # noqa: E731
  if likelihood == "categorical":
    greedy = lambda out, x_ij, key: jnp.argmax(out, -1) / 127.5 - 1.0  # noqa: E731
    x = sampling.sample_raster(apply, greedy, (2, 4, 4, channels), jax.random.key(1), True)
    np.testing.assert_allclose(jnp.argmax(apply(x), -1) / 127.5 - 1.0, x, atol=1e-6)
  else:  # the mixture's most likely component's mean, rounded: a deterministic draw
    from gen_jax.distributions import discretized_logistic as dl

    def greedy(out, x_ij, key):
      logits, means, _, _ = dl.unpack(out, channels, method.num_mix)
      pick = jax.nn.one_hot(jnp.argmax(logits, -1), method.num_mix)[..., None, :]
      return dl.to_grid(jnp.sum(means * pick, -1))

    x = sampling.sample_raster(apply, greedy, (2, 4, 4, channels), jax.random.key(1), False)
    np.testing.assert_allclose(greedy(apply(x), None, None), x, atol=1e-6)
  assert len(np.unique(np.asarray(x))) > 3


def test_sample_returns_grid_images_and_labels_cycle():
  method = small_method("gated_pixelcnn_mnist.py", (3, 3, 1), num_classes=10,
                        class_conditional=True)
  state = method.init(jax.random.key(0), None)
  state = state.replace(ema_params=state.params)
  out = method.sample(state, jax.random.key(1), 4)
  assert out.samples.shape == (4, 3, 3, 1) and out.nfe == 9
  codes = (np.asarray(out.samples) + 1.0) * 127.5
  np.testing.assert_allclose(codes, np.round(codes), atol=1e-4)
  np.testing.assert_array_equal(method.sample_labels(12), np.arange(12) % 10)


def test_config_errors_name_the_fix():
  c = load_config("autoregressive/pixelcnnpp_mnist.py", "smoke")
  info = DatasetInfo((28, 28, 1), 10, 100)
  c.data.dequantize = True
  with pytest.raises(ValueError, match="dequantize=False"):
    build_autoregressive(c, info)
  c.data.dequantize = False
  c.method.likelihood = "categorical"
  with pytest.raises(ValueError, match="likelihood='dlm'"):
    build_autoregressive(c, info)
  c.method.likelihood = "dlm"
  c.model.num_outputs = 3
  with pytest.raises(ValueError, match="must not set"):
    build_autoregressive(c, info)
  c = load_config("autoregressive/wavenet_tones.py", "smoke")
  with pytest.raises(ValueError, match="needs labelled data"):
    build_autoregressive(c, DatasetInfo((64, 1), 0, 100))
  with pytest.raises(ValueError, match="mono"):
    build_autoregressive(c, DatasetInfo((64, 2), 4, 100))
