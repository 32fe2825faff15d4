"""The autoregressive part shared by the configs in this folder (PixelCNNs and WaveNet)."""

from __future__ import annotations

import ml_collections

from configs import common

# The smallest model of each network, for the ':smoke' variants (seconds on a CPU).
SMOKE_MODELS = {
    "pixelcnn": dict(hidden=8, num_layers=1, output_hidden=8, first_kernel=3),
    "gated_pixelcnn": dict(hidden=8, num_layers=1, kernel_size=3, output_hidden=8),
    "pixelcnn_pp": dict(nr_filters=8, nr_resnet=1, num_scales=1),
    "wavenet": dict(dilations=(1, 2), residual_channels=8, dilation_channels=8,
                    skip_channels=8),
}


def autoregressive_config(model: dict, *, likelihood: str, num_mix: int = 10,
                          class_conditional: bool = False) -> ml_collections.ConfigDict:
  """A base config with `model` (name + network arguments) and the autoregressive method.

  The method fills in the network's data_channels / num_outputs / channel_conditional /
  num_classes from the data and `method`; do not set them in `model`.
  """
  c = common.base_config()
  c.model = ml_collections.ConfigDict(model)
  c.method = ml_collections.ConfigDict(dict(
      name="autoregressive",
      likelihood=likelihood,  # categorical (256-way softmax) | dlm (logistic mixture)
      num_mix=num_mix,  # mixture components of the dlm likelihood
      class_conditional=class_conditional,  # condition on the dataset's labels
  ))
  c.data.dequantize = False  # a distribution over the 256 values, not a density
  c.sample.sampler = "ancestral"  # for the logs: position by position, one lax loop
  c.sample.clip_x0 = False
  c.optim.grad_clip_norm = 0.0
  return c


def mnist_training(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """The MNIST settings the image configs share: tfds mnist, batch 64, 50k steps, Adam 1e-3,
  EMA 0.9995, evaluation every 5k steps."""
  c.data.source = "tfds"
  c.data.name = "mnist"
  c.batch_size = 64
  c.num_train_steps = 50_000
  c.optim.learning_rate = 1e-3
  c.ema.decay = 0.9995
  c.trainer.eval_every_steps = 5000
  return c


def audio_data(c: ml_collections.ConfigDict, *, source: str, sample_rate: int,
               clip_length: int) -> ml_collections.ConfigDict:
  """Adds the audio fields to c.data (see gen_jax/data/audio.py)."""
  c.data.source = source  # audio_tones (embedded) | audio_folder (WAV files in data.path)
  c.data.sample_rate = sample_rate  # files are resampled to this rate (Hz)
  c.data.clip_length = clip_length  # samples per training clip, T
  c.data.clip_hop = 0  # samples between clip starts in a file (0: clip_length)
  return c


def smoke_autoregressive(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """The network's smallest model on top of `common.smoke`; 8x8 images or short clips.

  XLA:CPU compilation dominates a smoke run; PixelCNN++'s down/up-sampling path (two or
  more scales) is exercised by tests/autoregressive instead.
  """
  common.smoke(c)
  for k, v in SMOKE_MODELS[c.model.name].items():
    c.model[k] = v
  if c.model.name == "pixelcnn_pp":
    c.model.dropout = 0.0
  if c.method.likelihood == "dlm":
    c.method.num_mix = 2
  if "clip_length" in c.data:
    c.data.source = "audio_tones"  # the embedded data: a smoke run reads no files
    c.data.clip_length = 64
  else:
    c.data.image_size = 8  # pixel-by-pixel sampling: 64 positions instead of 784 or 1024
  return c
