"""A noise-conditional classifier p(y | x_t, t) for classifier guidance, trained by the engine.

Dhariwal & Nichol, "Diffusion Models Beat GANs on Image Synthesis" (NeurIPS 2021), Sec. 4;
github:openai/guided-diffusion `scripts/classifier_train.py`. The classifier is trained
with cross-entropy on x_t = alpha(t) x0 + sigma(t) z of the SAME noise process as the
diffusion model it will guide, at t uniform over the process's discrete steps (the official
"uniform" schedule sampler): the chain's T steps, or an SDE's N steps at t_i = i T / (N - 1).
The process is given by the diffusion run's method fields (`config.method.diffusion`, the
process fields of `methods.diffusion.FIELDS`); a sampling config points at this run's
workdir (`config.sample.classifier_guidance.workdir`, `load_guidance`), which checks that
both were trained on the same process.

The network sees t itself on a chain and 999 t on an SDE (the convention of the "t" and
"time" inputs of the diffusion networks); it is any registered net with the signature
net(x, t, y=None, train=) -> logits [B, K]: "noisy_classifier" for images, "mlp" with
out_channels = K for vectors. `sample` returns the class visualisations of the plain
classifier (`methods.classifier`) at t = 0, not samples of the data.

Deviations from the official training: no attention pooling in the network (see
`nets.noisy_classifier`), the optimiser and EMA are the engine's (the official one trains
with AdamW and no EMA), t is drawn uniformly on every process.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from gen_jax import nets
from gen_jax.core import precision
from gen_jax.core.optim import build_optimizer, learning_rate_schedule
from gen_jax.core.state import TrainState
from gen_jax.diffusion.classifier_guidance import ClassifierGuidance, log_prob_of_logits
from gen_jax.diffusion.gaussian import q_sample
from gen_jax.diffusion.losses import discrete_times
from gen_jax.diffusion.processes import SDE
from gen_jax.diffusion.schedules import DiffusionSchedule
from gen_jax.methods.base import METHODS, Batch, Metrics, single_network_step
from gen_jax.methods.classifier import Classifier
from gen_jax.methods.diffusion import FIELDS, _process
from gen_jax.methods.pretrained import PretrainedRunError, load_run

# The diffusion fields that define the process (those `methods.diffusion._process` reads).
PROCESS_FIELDS = ("process", "beta_schedule", "num_timesteps", "sigma_min", "sigma_max",
                  "beta_min", "beta_max", "num_scales")
TRAIN_HINT = ("python -m gen_jax.main --config=configs/classifier_guidance/<data>.py "
              "--workdir=<dir>")


@dataclasses.dataclass(frozen=True)
class NoisyClassifier(Classifier):
  """A `Classifier` of noisy inputs. Extra attributes:
    process: the noise process (a `DiffusionSchedule` or an `SDE`).
  """

  process: Any = None

  def net_time(self, t: jax.Array) -> jax.Array:
    """What the network sees of t [B]: t on a chain, 999 t on an SDE (float32 [B])."""
    t = jnp.asarray(t, jnp.float32)
    return t * 999.0 if isinstance(self.process, SDE) else t

  def logits(self, params, x: jax.Array, t: jax.Array, *, train: bool = False,
             rng: jax.Array | None = None) -> jax.Array:
    """logits [B, K] of x_t [B, ...] at t [B] (int steps of a chain, float SDE times)."""
    rngs = {"dropout": rng} if (train and rng is not None) else {}
    return self.net.apply({"params": params}, x, self.net_time(t), None, train=train,
                          rngs=rngs)

  def apply(self, params, images: jax.Array) -> tuple[None, jax.Array]:
    """(None, logits) at t = 0: what the plain classifier's visualisations ascend."""
    return None, self.logits(params, images, jnp.zeros((images.shape[0],), jnp.float32))

  def init(self, rng: jax.Array, batch: Batch) -> TrainState:
    del batch
    x = jnp.zeros((1, *self.image_shape), jnp.float32)
    params = self.net.init({"params": rng}, x, jnp.zeros((1,), jnp.float32), None,
                           train=False)["params"]
    return TrainState.create(params, self.optimizer.init(params))

  def noisy_losses(self, params, batch: Batch, rng: jax.Array, *,
                   train: bool) -> tuple[jax.Array, jax.Array]:
    """(cross-entropy [B], correct [B]) on x_t of the batch at uniform discrete t."""
    x0 = batch["image"].astype(jnp.float32)
    rng_t, rng_z, rng_dropout = jax.random.split(rng, 3)
    t = discrete_times(self.process, rng_t, x0.shape[0])
    x_t = q_sample(self.process, x0, t, jax.random.normal(rng_z, x0.shape, x0.dtype))
    logits = self.logits(params, x_t, t, train=train, rng=rng_dropout)
    labels = batch["label"].astype(jnp.int32)
    targets = optax.smooth_labels(jax.nn.one_hot(labels, self.num_classes),
                                  self.label_smoothing)
    correct = (jnp.argmax(logits, axis=-1) == labels).astype(jnp.float32)
    return optax.softmax_cross_entropy(logits, targets), correct

  def update(self, state: TrainState, batch: Batch, rng: jax.Array) -> tuple[TrainState, Metrics]:
    def loss_fn(params):
      loss, correct = self.noisy_losses(params, batch, rng, train=True)
      return jnp.mean(loss), {"accuracy": jnp.mean(correct)}

    return single_network_step(state, loss_fn, self.optimizer, self.lr_schedule)

  def evaluate(self, state: TrainState, batch: Batch, rng: jax.Array) -> Metrics:
    loss, correct = self.noisy_losses(state.ema_params, batch, rng, train=False)
    return {"loss": loss, "accuracy": correct}


def process_of(diffusion_fields) -> Any:
  """The noise process of a diffusion run's method fields (only the process ones are read)."""
  fields = dict(diffusion_fields)
  unknown = sorted(set(fields) - set(PROCESS_FIELDS))
  if unknown:
    raise ValueError(f"method.diffusion takes the process fields {', '.join(PROCESS_FIELDS)}; "
                     f"unknown: {', '.join(unknown)}.")
  return _process({**FIELDS, **fields})


@METHODS.register("noisy_classifier")
def build_noisy_classifier(config, info) -> NoisyClassifier:
  """From config.model (a net returning logits), config.method (diffusion: the process
  fields of the diffusion run; label_smoothing, vis_steps, vis_step_size), config.optim."""
  num_classes = int(info.num_classes)
  if num_classes <= 1:
    raise ValueError(f"method.name='noisy_classifier' needs a labelled dataset; "
                     f"{config.data.source!r} reports num_classes={num_classes}.")
  m = config.method
  model = dict(config.model)
  name = model.pop("name")
  key = "out_channels" if name == "mlp" else "num_classes"
  return NoisyClassifier(
      net=nets.build_net(name, dtype=precision.compute_dtype(config),
                         **{key: num_classes}, **model),
      optimizer=build_optimizer(config.optim, config.num_train_steps),
      image_shape=tuple(int(d) for d in info.image_shape),
      num_classes=num_classes,
      label_smoothing=float(m.get("label_smoothing", 0.0)),
      vis_steps=int(m.get("vis_steps", 20)),
      vis_step_size=float(m.get("vis_step_size", 0.1)),
      lr_schedule=learning_rate_schedule(config.optim, config.num_train_steps),
      process=process_of(m.diffusion),
  )


def _same_process(a, b) -> bool:
  """Whether two processes are equal (a chain's constants compared array by array)."""
  if isinstance(a, DiffusionSchedule) and isinstance(b, DiffusionSchedule):
    return a.num_timesteps == b.num_timesteps and all(
        np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))
  return type(a) is type(b) and a == b


def load_guidance(workdir: str, scale: float, info: Any, process: Any) -> ClassifierGuidance:
  """The classifier guidance of the noisy_classifier run in `workdir`, checked to be
  trained on `process` (the guided diffusion model's)."""
  role = "classifier guidance (sample.classifier_guidance.workdir)"
  run = load_run(workdir, info, method_names=("noisy_classifier",), role=role,
                 train_hint=TRAIN_HINT)
  if not _same_process(run.method.process, process):
    raise PretrainedRunError(
        f"{role}: the classifier in {workdir} was trained on another noise process than this "
        "diffusion model's; train it with method.diffusion set to this run's process fields.")
  method, params = run.method, run.params
  return ClassifierGuidance(
      log_prob=log_prob_of_logits(lambda x, t: method.logits(params, x, t)),
      scale=float(scale), num_classes=method.num_classes)
