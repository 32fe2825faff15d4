"""DDPM: denoising diffusion probabilistic models, with DDIM sampling.

Ho, Jain & Abbeel, "Denoising Diffusion Probabilistic Models" (NeurIPS 2020);
Song, Meng & Ermon, "Denoising Diffusion Implicit Models" (ICLR 2021);
Nichol & Dhariwal, "Improved DDPMs" (ICML 2021, cosine schedule);
Salimans & Ho, "Progressive Distillation" (ICLR 2022, v-prediction);
Ho & Salimans, "Classifier-Free Diffusion Guidance" (2021).

Training draws t ~ U{0..T-1}, x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps, and regresses
the network output on the target of the chosen parameterisation (eps, x0 or v) with a
registered loss (`DIFFUSION_LOSSES`). With class conditioning, labels are replaced by the
null label with probability `class_dropout`, so the same network gives the unconditional
model that classifier-free guidance needs.

Evaluation reports the per-example training loss and an unbiased one-timestep estimate of
the variational bound in bits/dim (L = L_T + T * E_t[L_t], with L_0 the discretised
Gaussian decoder of 8-bit data), averaged by the trainer over the evaluation split.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from gen_jax.diffusion import gaussian, guidance
from gen_jax.diffusion.likelihood import (discretized_gaussian_log_likelihood, flat_sum,
                                          nats_to_bits_per_dim, normal_kl)
from gen_jax.diffusion.losses import DIFFUSION_LOSSES
from gen_jax.diffusion.schedules import DiffusionSchedule, make_schedule
from gen_jax.methods.base import METHODS, Batch, Metrics
from gen_jax.methods.diffusion_base import DiffusionMethod, build_denoiser
from gen_jax.samplers import SAMPLERS
from gen_jax.core.optim import build_optimizer, learning_rate_schedule
from gen_jax.core.state import TrainState


@dataclasses.dataclass(frozen=True)
class DDPM(DiffusionMethod):
  """A DDPM family instance: a denoising network, a noise schedule and an optimiser.

  Attributes:
    net: Flax module `net(x [B,H,W,C], t [B] float, y [B] int | None, train=) -> [B,H,W,C]`.
    schedule: the discrete noise schedule (T steps).
    optimizer: optax transformation for the network parameters.
    image_shape: (H, W, C) of image data, or (D,) of vector data (then samples are not
      clipped to [-1, 1] and evaluation reports no bits/dim).
    prediction: what the network outputs: "eps", "x0" or "v" (`gaussian.PREDICTIONS`).
    loss: name in `DIFFUSION_LOSSES`.
    num_classes: > 0 for a class-conditional model (label `num_classes` is "no label").
    class_dropout: probability of training on the null label (classifier-free guidance).
    sampler: name in `SAMPLERS` used by `sample`.
    sampler_kwargs: extra keyword arguments of that sampler (e.g. num_steps, eta).
    clip_x0: clip the predicted x0 to [-1, 1] while sampling.
    guidance_scale: w of classifier-free guidance, out = (1 + w) out_cond - w out_uncond.
    lr_schedule: the learning rate as a function of the step, for logging.
  """

  net: nn.Module
  schedule: DiffusionSchedule
  optimizer: optax.GradientTransformation
  image_shape: tuple[int, ...]
  prediction: str = "eps"
  loss: str = "mse"
  num_classes: int = 0
  class_dropout: float = 0.0
  sampler: str = "ddim"
  sampler_kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
  clip_x0: bool = True
  guidance_scale: float = 0.0
  lr_schedule: Any = None

  denoiser = property(lambda self: self.net)
  example_shape = property(lambda self: self.image_shape)
  process = property(lambda self: self.schedule)
  sampler_options = property(lambda self: {"clip_x0": self.clip_x0, **self.sampler_kwargs})

  # ---------------------------------------------------------------- helpers

  def _apply(self, params, x, t, y, *, train: bool, rng=None):
    rngs = {"dropout": rng} if train else {}
    return self.net.apply({"params": params}, x, t.astype(jnp.float32), y, train=train, rngs=rngs)

  # ---------------------------------------------------------------- contract

  def loss_terms(self, params, batch: Batch, rng: jax.Array, *, train: bool) -> jax.Array:
    """Per-example training loss [B] at random timesteps."""
    x0 = batch["image"]
    b = x0.shape[0]
    rng_t, rng_noise, rng_label, rng_dropout = jax.random.split(rng, 4)
    t = jax.random.randint(rng_t, (b,), 0, self.schedule.num_timesteps)
    noise = jax.random.normal(rng_noise, x0.shape, x0.dtype)
    x_t = gaussian.q_sample(self.schedule, x0, t, noise)
    y = self._labels(batch)
    if y is not None and train and self.class_dropout > 0:
      y = guidance.drop_labels(rng_label, y, self.class_dropout, self.num_classes)
    output = self._apply(params, x_t, t, y, train=train, rng=rng_dropout)
    target = gaussian.PREDICTIONS.get(self.prediction).target(self.schedule, x0, noise, t)
    return DIFFUSION_LOSSES.get(self.loss)(output, target, t=t, schedule=self.schedule)

  def denoise_fn(self, params, labels: jax.Array | None):
    """The sampler's view of the network: (x_t, t) -> output, with guidance if configured."""
    apply = lambda x, t, y: self._apply(params, x, t, y, train=False)
    return guidance.guided(apply, labels, self.num_classes, self.guidance_scale)

  def evaluate(self, state: TrainState, batch: Batch, rng: jax.Array) -> Metrics:
    """Per-example test loss, and for 8-bit images the VLB estimate in bits/dim."""
    rng_loss, rng_vlb = jax.random.split(rng)
    out = {"loss": self.loss_terms(state.ema_params, batch, rng_loss, train=False)}
    if self.is_image:
      out["vlb_bpd"] = self.vlb_bpd_estimate(state.ema_params, batch, rng_vlb)
    return out

  # ---------------------------------------------------------------- likelihood bound

  def vlb_term(self, params, x0: jax.Array, t: jax.Array, noise: jax.Array,
               y: jax.Array | None) -> jax.Array:
    """L_t in nats [B]: KL(q(x_{t-1}|x_t,x_0) || p(x_{t-1}|x_t)) for t > 0, the decoder NLL at 0.

    The model's reverse variance is the posterior variance beta_tilde_t (clipped at t=0),
    DDPM's "fixed small" choice.
    """
    s = self.schedule
    x_t = gaussian.q_sample(s, x0, t, noise)
    output = self._apply(params, x_t, t, y, train=False)
    x0_hat, _ = gaussian.PREDICTIONS.get(self.prediction).to_x0_eps(s, output, x_t, t)
    x0_hat = jnp.clip(x0_hat, -1.0, 1.0)
    model_mean, _, model_log_var = gaussian.q_posterior(s, x0_hat, x_t, t)
    true_mean, _, true_log_var = gaussian.q_posterior(s, x0, x_t, t)
    kl = flat_sum(normal_kl(true_mean, true_log_var, model_mean, model_log_var))
    decoder_nll = -flat_sum(discretized_gaussian_log_likelihood(x0, model_mean, 0.5 * model_log_var))
    return jnp.where(t == 0, decoder_nll, kl)

  def prior_kl(self, x0: jax.Array) -> jax.Array:
    """L_T in nats [B]: KL(q(x_T | x_0) || N(0, I))."""
    t = jnp.full((x0.shape[0],), self.schedule.num_timesteps - 1, jnp.int32)
    mean, _, log_var = gaussian.q_mean_variance(self.schedule, x0, t)
    return flat_sum(normal_kl(mean, log_var, jnp.zeros_like(mean), jnp.zeros_like(log_var)))

  def vlb_bpd_estimate(self, params, batch: Batch, rng: jax.Array) -> jax.Array:
    """Unbiased one-sample estimate [B] of the negative ELBO in bits/dim.

    -ELBO = L_T + sum_t L_t = L_T + T * E_{t ~ U{0..T-1}}[L_t]; its average over a split is
    an unbiased estimate of the bound, at one network evaluation per example.
    """
    x0 = batch["image"]
    rng_t, rng_noise = jax.random.split(rng)
    t = jax.random.randint(rng_t, (x0.shape[0],), 0, self.schedule.num_timesteps)
    noise = jax.random.normal(rng_noise, x0.shape, x0.dtype)
    nats = self.prior_kl(x0) + self.schedule.num_timesteps * self.vlb_term(
        params, x0, t, noise, self._labels(batch))
    return nats_to_bits_per_dim(nats, math.prod(self.image_shape))


@METHODS.register("ddpm")
def build_ddpm(config, info) -> DDPM:
  """DDPM from `config.model`, `config.method`, `config.optim`, `config.sample`."""
  m = config.method
  net, image_shape, num_classes = build_denoiser(config, info)
  gaussian.PREDICTIONS.get(m.prediction)  # fail early, with the list of choices
  DIFFUSION_LOSSES.get(m.loss)
  sampler = config.sample.sampler
  SAMPLERS.get(sampler)
  sampler_kwargs = dict(config.sample.get(sampler, {}))
  return DDPM(
      net=net,
      schedule=make_schedule(m.beta_schedule, m.num_timesteps),
      optimizer=build_optimizer(config.optim, config.num_train_steps),
      image_shape=image_shape,
      prediction=m.prediction,
      loss=m.loss,
      num_classes=num_classes,
      class_dropout=float(m.class_dropout) if num_classes else 0.0,
      sampler=sampler,
      sampler_kwargs=sampler_kwargs,
      clip_x0=bool(config.sample.clip_x0),
      guidance_scale=float(config.sample.guidance_scale),
      lr_schedule=learning_rate_schedule(config.optim, config.num_train_steps),
  )
