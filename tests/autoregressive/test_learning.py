"""Short real training runs: PixelCNN++ on real MNIST and WaveNet on the synthetic tones.

Both drive the method's own `update` (the trainer's step minus EMA/metrics) and measure
`evaluate` on held-out data. Uniform guessing is 8 bits per dimension / sample.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gen_jax.data import audio, read_idx
from tests.autoregressive.helpers import small_method


def _train(method, batches, steps, seed=0):
  state = method.init(jax.random.key(seed), None)
  update = jax.jit(method.update, donate_argnums=0)
  for step in range(steps):
    state, metrics = update(state, batches(step), jax.random.key(step))
  assert np.isfinite(float(metrics["loss"]))
  return state.replace(ema_params=state.params)


def _mean_eval(method, state, batch):
  out = jax.jit(method.evaluate)(state, batch, jax.random.key(0))
  return float(jnp.mean(out["loss"]))


# Measured 2026-11-29: 1.454 held-out bits/dim after 150 steps (uniform: 8); 448 s on 2
# heavily shared CPU cores, hence slow.
PIXELCNNPP_MNIST_STEPS = 150
PIXELCNNPP_MNIST_MAX_BPD = 2.0


@pytest.mark.slow
def test_pixelcnnpp_learns_real_mnist(shared_data):
  images = read_idx(shared_data / "mnist" / "t10k-images-idx3-ubyte.gz")[..., None]
  x = images.astype(np.float32) / 127.5 - 1.0
  train, held_out = x[:9000], x[-256:]
  method = small_method("pixelcnnpp_mnist.py", (28, 28, 1), num_mix=5, model=dict(
      nr_filters=16, nr_resnet=1, num_scales=2, dropout=0.0))
  rng = np.random.default_rng(0)
  state = _train(method, lambda s: {"image": train[rng.integers(0, 9000, 16)],
                                    "label": np.zeros(16, np.int32)}, PIXELCNNPP_MNIST_STEPS)
  bpd = _mean_eval(method, state, {"image": held_out, "label": np.zeros(256, np.int32)})
  print(f"PixelCNN++ MNIST held-out bits/dim after {PIXELCNNPP_MNIST_STEPS} steps: {bpd:.3f}")
  assert bpd < PIXELCNNPP_MNIST_MAX_BPD


# Measured 2026-11-29: 3.447 held-out bits/sample after 300 steps at lr 3e-3 (uniform: 8;
# 3.96 after 200, still falling); 63-175 s on 2 shared CPU cores, hence slow.
WAVENET_STEPS = 300
WAVENET_MAX_BITS = 4.0


@pytest.mark.slow
def test_small_wavenet_learns_the_tones():
  clip = 256
  train = audio.tones_source("train", sample_rate=8000, clip_length=clip, num_examples=512)
  held = audio.tones_source("eval", sample_rate=8000, clip_length=clip, num_examples=64)
  x = np.stack([train[i]["image"] for i in range(len(train))])
  y = np.array([train[i]["label"] for i in range(len(train))], np.int32)
  method = small_method("wavenet_tones.py", (clip, 1), num_classes=4, model=dict(
      dilations=(1, 2, 4, 8, 16, 32), residual_channels=16, dilation_channels=16,
      skip_channels=32), optim=dict(learning_rate=3e-3))
  rng = np.random.default_rng(0)

  def batch(step):
    i = rng.integers(0, len(x), 16)
    return {"image": x[i], "label": y[i]}

  state = _train(method, batch, WAVENET_STEPS)
  bits = _mean_eval(method, state, {
      "image": np.stack([held[i]["image"] for i in range(64)]),
      "label": np.array([held[i]["label"] for i in range(64)], np.int32)})
  print(f"WaveNet tones held-out bits/sample after {WAVENET_STEPS} steps: {bits:.3f}")
  assert bits < WAVENET_MAX_BITS
