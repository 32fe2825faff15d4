"""What the diffusion families (ddpm, score_sde) share: the denoising network built from the
config, its initialisation, the one-loss update, the batch's class labels and sampling."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from gen_jax import nets
from gen_jax.diffusion import guidance
from gen_jax.methods.base import Batch, Method, Metrics, single_network_step
from gen_jax.samplers import SAMPLERS, AdaptiveSampleOutput
from gen_jax.core import precision
from gen_jax.core.state import TrainState


def build_denoiser(config, info) -> tuple[object, tuple[int, ...], int]:
  """(net, data_shape, num_classes) from config.model and config.method.class_conditional."""
  model_kwargs = dict(config.model)
  net_name = model_kwargs.pop("name")
  num_classes = int(info.num_classes) if config.method.class_conditional else 0
  if config.method.class_conditional and num_classes <= 0:
    raise ValueError("method.class_conditional=True but the dataset reports no classes; "
                     "set method.class_conditional=False or use a labelled dataset.")
  data_shape = tuple(int(d) for d in info.image_shape)
  net = nets.build_net(net_name, out_channels=data_shape[-1], num_classes=num_classes,
                       dtype=precision.compute_dtype(config), **model_kwargs)
  return net, data_shape, num_classes


class DiffusionMethod(Method):
  """Shared contract; subclasses have `denoiser` (net(x, c [B], y, train=)), `example_shape`,
  `optimizer`, `num_classes`, `lr_schedule`, `loss_terms(params, batch, rng, train=)`, and
  for sampling `process`, `prediction` (the type of `denoise_fn(params, labels)`'s output),
  `sampler`, `sampler_options` and `guidance_scale`."""

  def sample(self, state: TrainState, rng: jax.Array, num_samples: int,
             labels: jax.Array | None = None, **overrides):
    """num_samples draws [n, *example_shape] with the configured sampler (EMA parameters).

    Class-conditional models cycle through the labels unless `labels` is given; `overrides`
    replace sampler options (e.g. init_noise). Images are clipped to [-1, 1]; nfe counts both
    network evaluations of a guided step.
    """
    if self.num_classes and labels is None:
      labels = jnp.arange(num_samples, dtype=jnp.int32) % self.num_classes
    kwargs = {**self.sampler_options, **overrides}
    shape = None if "init_noise" in kwargs else (num_samples, *self.example_shape)
    out = SAMPLERS.get(self.sampler)(self.denoise_fn(state.ema_params, labels), self.process,
                                     rng=rng, shape=shape, prediction=self.prediction, **kwargs)
    samples = jnp.clip(out.samples, -1.0, 1.0) if self.is_image else out.samples
    evals = guidance.evals_per_step(labels, self.guidance_scale)
    if isinstance(out, AdaptiveSampleOutput):
      return out.replace(samples=samples).scale_nfe(evals)
    return out.replace(samples=samples, nfe=out.nfe * evals)

  def init(self, rng: jax.Array, batch: Batch) -> TrainState:
    del batch  # parameter shapes do not depend on the data, nor on the time input
    x = jnp.zeros((1, *self.example_shape), jnp.float32)
    y = jnp.zeros((1,), jnp.int32) if self.num_classes else None
    params = self.denoiser.init({"params": rng}, x, jnp.zeros((1,), jnp.float32), y,
                                train=False)["params"]
    return TrainState.create(params, self.optimizer.init(params))

  def update(self, state: TrainState, batch: Batch, rng: jax.Array) -> tuple[TrainState, Metrics]:
    def loss_fn(params):
      return jnp.mean(self.loss_terms(params, batch, rng, train=True)), {}

    return single_network_step(state, loss_fn, self.optimizer, self.lr_schedule)

  def _labels(self, batch: Batch) -> jax.Array | None:
    return guidance.batch_labels(batch, self.num_classes)

  @property
  def is_image(self) -> bool:
    """Whether the data are 8-bit images [H, W, C] (not vectors such as 2-D toy points)."""
    return len(self.example_shape) == 3
