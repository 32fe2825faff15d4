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


@pytest.mark.parametrize("relpath,likelihood,channels,model", [
    # RGB channel groups need widths divisible by 3.
    ("gated_pixelcnn_mnist.py", "categorical", 3, dict(hidden=6, output_hidden=6)),
    ("pixelcnn_mnist.py", "categorical", 1, {}),
    pytest.param("pixelcnnpp_cifar10.py", "dlm", 3, dict(num_scales=2),
                 marks=pytest.mark.slow),  # 26 s; the DLM sampler: test_discretized_logistic
])
def test_raster_sampler_draws_each_position_from_the_teacher_forced_conditional(
    relpath, likelihood, channels, model):
  """The lax loop's step s draws with key fold_in(rng, s) from the network's output on the
  partly filled image. By causality the network on the finished sample gives the same
  conditional at every position, so redrawing each position from it with the same key
  must reproduce the sample exactly (a loop that fills the wrong position, channel or
  order fails this)."""
  from gen_jax.distributions import discretized_logistic as dl
  h = w = 4
  method = small_method(relpath, (h, w, channels), likelihood=likelihood, model=model)
  state = method.init(jax.random.key(0), None)
  params = jax.tree.map(lambda p: p + 0.2 * jax.random.normal(jax.random.key(3), p.shape),
                        state.params)
  rng = jax.random.key(1)
  x = np.asarray(jax.jit(lambda p: method.sample_images(p, rng, 2).samples)(params))
  out = method.apply(params, jnp.asarray(x), None)
  redrawn = np.zeros_like(x)
  per_pixel = channels if likelihood == "categorical" else 1
  for s in range(h * w * per_pixel):
    (i, j), c = divmod(s // per_pixel, w), s % per_pixel
    key = jax.random.fold_in(rng, s)
    if likelihood == "categorical":
      codes = jax.random.categorical(key, out[:, i, j], axis=-1)
      redrawn[:, i, j, c] = np.asarray(codes[:, c]) / 127.5 - 1.0
    else:
      redrawn[:, i, j] = dl.sample(key, out[:, i, j], num_channels=channels,
                                   num_mix=method.num_mix)
  np.testing.assert_allclose(redrawn, x, atol=1e-6)
  assert len(np.unique(x)) > 3


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
  with c.unlocked():
    c.model.num_outputs = 3
  with pytest.raises(ValueError, match="must not set"):
    build_autoregressive(c, info)
  c = load_config("autoregressive/wavenet_tones.py", "smoke")
  with pytest.raises(ValueError, match="needs labelled data"):
    build_autoregressive(c, DatasetInfo((64, 1), 0, 100))
  with pytest.raises(ValueError, match="mono"):
    build_autoregressive(c, DatasetInfo((64, 2), 4, 100))
