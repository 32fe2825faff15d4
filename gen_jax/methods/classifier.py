"""A small image classifier trained by the gen_jax trainer: the offline domain feature extractor.

Inception FID needs weights that cannot be fetched on an offline machine. A classifier
trained here on the same labelled dataset (MNIST, Fashion-MNIST, CIFAR-10, digits) gives
instead a domain feature space: its penultimate layer replaces Inception's pool3 for the
Frechet distance and precision/recall, and its logits replace Inception's for an IS-like
score. Scores in this space are recorded under a different protocol ("classifier" with
the checkpoint's weights checksum; see `gen_jax.eval.features`) and are never comparable
to Inception FID.

Training: cross-entropy (optionally label-smoothed) on {"image": [B, H, W, C] in [-1, 1],
"label": int32 [B]}. `evaluate` gives per-example loss and accuracy (averaged over the test
split by `--mode=eval`). `sample` is not generative: it returns per-class visualisations
(inputs that maximise each class's logit, by gradient ascent from a blank image), so that
the trainer's periodic sample grids show what the classifier has learnt.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from gen_jax.nets import build_net
from gen_jax.methods.base import METHODS, Batch, Method, Metrics, single_network_step
from gen_jax.core.sample import SampleOutput, SampleSpec
from gen_jax.core.optim import build_optimizer, learning_rate_schedule
from gen_jax.core import precision
from gen_jax.core.state import TrainState


@dataclasses.dataclass(frozen=True)
class Classifier(Method):
  """Attributes:
    net: the "classifier_cnn" network (`gen_jax.nets.classifier`).
    optimizer: optax transformation.
    image_shape: (H, W, C).
    num_classes: K.
    label_smoothing: epsilon of label smoothing (0: plain cross-entropy).
    vis_steps, vis_step_size: gradient-ascent steps and size of `sample`'s visualisations.
    lr_schedule: for logging.
  """

  net: nn.Module
  optimizer: optax.GradientTransformation
  image_shape: tuple[int, ...]
  num_classes: int
  label_smoothing: float = 0.0
  vis_steps: int = 20
  vis_step_size: float = 0.1
  lr_schedule: Any = None

  def apply(self, params, images: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(features [B, hidden], logits [B, K]) of images [B, H, W, C] in [-1, 1]."""
    return self.net.apply({"params": params}, images)

  def init(self, rng: jax.Array, batch: Batch) -> TrainState:
    params = self.net.init(rng, jnp.zeros((1, *self.image_shape), jnp.float32))["params"]
    return TrainState.create(params, self.optimizer.init(params))

  def _losses(self, params, batch: Batch) -> tuple[jax.Array, jax.Array]:
    _, logits = self.apply(params, batch["image"])
    labels = batch["label"].astype(jnp.int32)
    targets = optax.smooth_labels(jax.nn.one_hot(labels, self.num_classes), self.label_smoothing)
    loss = optax.softmax_cross_entropy(logits, targets)
    correct = (jnp.argmax(logits, axis=-1) == labels).astype(jnp.float32)
    return loss, correct

  def update(self, state: TrainState, batch: Batch, rng: jax.Array) -> tuple[TrainState, Metrics]:
    del rng

    def loss_fn(params):
      loss, correct = self._losses(params, batch)
      return jnp.mean(loss), {"accuracy": jnp.mean(correct)}

    return single_network_step(state, loss_fn, self.optimizer, self.lr_schedule)

  def evaluate(self, state: TrainState, batch: Batch, rng: jax.Array) -> Metrics:
    del rng
    loss, correct = self._losses(state.ema_params, batch)
    return {"loss": loss, "accuracy": correct}

  def sample(self, state: TrainState, rng: jax.Array, num_samples: int,
             spec: SampleSpec = SampleSpec()) -> SampleOutput:
    """Class visualisations [n, H, W, C] in [-1, 1]: not samples of the data.

    The classes are `spec.labels`, by default i % K; no other request is honoured.
    """
    del rng
    spec.refuse_unsupported("classifier", [])
    labels = (jnp.arange(num_samples) % self.num_classes if spec.labels is None
              else jnp.asarray(spec.labels))

    def objective(x):
      _, logits = self.apply(state.ema_params, x)
      return jnp.sum(jnp.take_along_axis(logits, labels[:, None], axis=1))

    def step(x, _):
      g = jax.grad(objective)(x)
      g = g / (jnp.sqrt(jnp.mean(g * g, axis=tuple(range(1, g.ndim)), keepdims=True)) + 1e-8)
      return jnp.clip(x + self.vis_step_size * g, -1.0, 1.0), None

    x0 = jnp.zeros((num_samples, *self.image_shape), jnp.float32)
    x, _ = jax.lax.scan(step, x0, None, length=self.vis_steps)
    return SampleOutput(samples=x, nfe=self.vis_steps)


@METHODS.register("classifier")
def build_classifier(config, info) -> Classifier:
  """Classifier from config.model (ch, ch_mult, hidden), config.method, config.optim."""
  num_classes = int(info.num_classes)
  if num_classes <= 1:
    raise ValueError(f"method.name='classifier' needs a labelled dataset; {config.data.source!r} "
                     f"reports num_classes={num_classes}.")
  model = dict(config.model)
  name = model.pop("name", "classifier_cnn")
  if name != "classifier_cnn":
    raise ValueError(f"The classifier method uses model.name='classifier_cnn', not {name!r}.")
  m = config.method
  return Classifier(
      net=build_net(name, num_classes=num_classes, dtype=precision.compute_dtype(config),
                    **model),
      optimizer=build_optimizer(config.optim, config.num_train_steps),
      image_shape=tuple(int(d) for d in info.image_shape),
      num_classes=num_classes,
      label_smoothing=float(m.get("label_smoothing", 0.0)),
      vis_steps=int(m.get("vis_steps", 20)),
      vis_step_size=float(m.get("vis_step_size", 0.1)),
      lr_schedule=learning_rate_schedule(config.optim, config.num_train_steps),
  )
