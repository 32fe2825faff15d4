"""Latent diffusion: any diffusion model of the core trained in a frozen autoencoder's latents.

Rombach, Blattmann, Lorenz, Esser & Ommer, "High-Resolution Image Synthesis with Latent
Diffusion Models" (CVPR 2022); official code: github.com/CompVis/latent-diffusion
(`ldm/models/diffusion/ddpm.py`, class `LatentDiffusion`).

The second stage (`config.method.name = "latent_diffusion"`) composes two pieces:

* the first stage, a KL autoencoder run (configs/latent_diffusion/autoencoder_*.py) read
  from `config.latent.autoencoder_workdir` by `first_stage.restore_first_stage`;
* a `Diffusion` built by the diffusion preset named `config.latent.method` ("ddpm",
  "diffusion", "score_sde": every field of `config.method` but its name is that preset's)
  for examples of the first stage's latent shape [H/f, W/f, z_channels].

Training encodes each batch on the fly inside the jitted step, z = s * z', z' ~ q(z' | x)
(or its mean with `latent.sample_posterior=False`), and takes one diffusion step on z.
Sampling draws z from the diffusion model and returns the decoder's mean at z / s, clipped
to [-1, 1]: samples are images of the data's shape, so the sample metrics of
`--mode=eval` (FID, KID, ... on `config.eval`'s feature extractor) are computed on decoded
images and are comparable with pixel-space models. `evaluate` reports the diffusion loss
in latent space and the first stage's reconstruction error on the batch
(`first_stage_mse`, per pixel in [-1, 1]).

The scale s = 1 / std(z') is the one the first stage's evaluation measured. The train
state records it, with the first stage's EMA parameters, in `model_state`
(`{"latent_scale": f32 [], "first_stage": params, "diffusion": the model's own}`), so the
checkpoint of the second stage holds everything its samples depend on (as the official
checkpoints hold `scale_factor` and `first_stage_model`): a first stage evaluated or
trained again later does not change the samples of a second stage trained before.

Refused, by a `FirstStageError` naming the problem: a missing or unreadable first-stage
workdir (and every other refusal of `load_first_stage`), a first stage that is not a KL
autoencoder (`autoencoder_kl`) run, a first stage whose latent shape differs from
`config.latent.latent_shape` (the shape the second stage's network is configured for), and
a network that cannot take that shape (e.g. a UNet whose levels do not divide it).

Deviations from the official code:
- latents are scaled by 1 / std measured over the first stage's evaluation split (see
  `first_stage.py`), not over the first training batch of the second stage;
- the diffusion model is any of the core's (its schedules, losses and samplers); the
  official "scaled linear" beta schedule (sqrt-linear from 0.00085 to 0.012) is not one of
  `schedules.BETA_SCHEDULES` and the MNIST/CIFAR-10 configs use DDPM's linear one;
- no conditioning stage (text, class cross-attention); class-conditional models use the
  core's label embedding and classifier-free guidance;
- latents are encoded on the fly only: no cache of encoded latents (the first stage costs
  one encoder pass per training example per step).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
from absl import logging

from gen_jax.core.sample import SampleSpec
from gen_jax.core.state import TrainState
from gen_jax.data.sources import DatasetInfo
from gen_jax.methods.base import METHODS, Batch, Method, Metrics
from gen_jax.methods.diffusion import Diffusion
from gen_jax.methods.first_stage import FirstStageError, restore_first_stage
from gen_jax.vae.gaussian import reparameterize

FIRST_STAGE_NETWORKS = ("autoencoder_kl",)
_LATENT_CLASSES: dict[type, type] = {}


def unbounded(diffusion: Diffusion) -> Diffusion:
  """`diffusion` whose examples are not 8-bit images: its samples are not clipped to
  [-1, 1] and it reports no pixel bits/dim (scaled latents have unit std, not a range).

  The same fields in a subclass of the model's own class whose `is_image` is False.
  """
  cls = type(diffusion)
  if cls not in _LATENT_CLASSES:
    _LATENT_CLASSES[cls] = type(f"Latent{cls.__name__}", (cls,),
                                {"is_image": property(lambda self: False)})
  fields = {f.name: getattr(diffusion, f.name) for f in dataclasses.fields(diffusion) if f.init}
  return _LATENT_CLASSES[cls](**fields)


@dataclasses.dataclass(frozen=True)
class LatentDiffusion(Method):
  """A diffusion model of a frozen first stage's scaled latents.

  Attributes:
    diffusion: the model of latents s * z [B, *latent_shape] (`unbounded`).
    first_stage: the first stage's `VAEMethod` (encode, decode_mean) for image_shape.
    first_stage_params: its EMA parameters; copied into the state by `init`.
    latent_scale: s = 1 / std of the first stage's latents; copied into the state.
    image_shape: (H, W, C) of the images.
    sample_posterior: encode with a draw of q(z | x) (official), else with its mean.
  """

  diffusion: Diffusion
  first_stage: Any
  first_stage_params: Any = dataclasses.field(compare=False, repr=False)
  latent_scale: float = 1.0
  image_shape: tuple[int, ...] = ()
  sample_posterior: bool = True

  @property
  def latent_shape(self) -> tuple[int, ...]:
    return tuple(self.diffusion.example_shape)

  @property
  def grad_accumulation_refusal(self) -> str | None:
    return self.diffusion.grad_accumulation_refusal

  def with_grad_accumulation(self, steps: int) -> "LatentDiffusion":
    return dataclasses.replace(self, diffusion=self.diffusion.with_grad_accumulation(steps))

  # ---------------------------------------------------------------- latents
  def encode(self, model_state, images: jax.Array, rng: jax.Array | None) -> jax.Array:
    """Scaled latents s * z [B, *latent_shape] of images [B, H, W, C] in [-1, 1]; z is a
    draw of q(z | x) when `rng` is given and sample_posterior, else its mean."""
    mean, logvar = self.first_stage.encode(model_state["first_stage"], images)
    z = reparameterize(rng, mean, logvar) if (rng is not None and self.sample_posterior) else mean
    return jax.lax.stop_gradient(z * model_state["latent_scale"])

  def decode(self, model_state, latents: jax.Array) -> jax.Array:
    """Images [B, H, W, C] in [-1, 1]: the decoder's mean at the unscaled latents / s."""
    z = latents / model_state["latent_scale"]
    return jnp.clip(self.first_stage.decode_mean(model_state["first_stage"], z), -1.0, 1.0)

  def _inner(self, state: TrainState) -> TrainState:
    return state.replace(model_state=state.model_state["diffusion"])

  def _latent_batch(self, state: TrainState, batch: Batch, rng) -> dict[str, jax.Array]:
    return {**batch, "image": self.encode(state.model_state, batch["image"], rng)}

  # ---------------------------------------------------------------- the contract
  def init(self, rng: jax.Array, batch: Batch) -> TrainState:
    del batch  # the diffusion model's parameters depend on the latent shape only
    inner = self.diffusion.init(rng, None)
    first = jax.tree.map(jnp.asarray, self.first_stage_params)
    return inner.replace(model_state={
        "diffusion": inner.model_state, "first_stage": first,
        "latent_scale": jnp.asarray(self.latent_scale, jnp.float32)})

  def update(self, state: TrainState, batch: Batch, rng: jax.Array) -> tuple[TrainState, Metrics]:
    rng_encode, rng_diffusion = jax.random.split(rng)
    inner, metrics = self.diffusion.update(
        self._inner(state), self._latent_batch(state, batch, rng_encode), rng_diffusion)
    return state.replace(params=inner.params, opt_state=inner.opt_state,
                         model_state={**state.model_state, "diffusion": inner.model_state}
                         ), metrics

  def sample(self, state: TrainState, rng: jax.Array, num_samples: int,
             spec: SampleSpec = SampleSpec()):
    """Decoded images [n, H, W, C] in [-1, 1] of latents drawn by the diffusion model.

    `spec` is the diffusion model's (labels, guidance_scale, sampler, sampler_options;
    an `init_noise` option is in latent space); nfe counts its network evaluations.
    """
    out = self.diffusion.sample(self._inner(state), rng, num_samples, spec)
    return out.replace(samples=self.decode(state.model_state, out.samples))

  def evaluate(self, state: TrainState, batch: Batch, rng: jax.Array) -> Metrics:
    """The diffusion model's per-example metrics [B] on the batch's scaled latents, and
    the first stage's reconstruction error `first_stage_mse` [B] (posterior mean)."""
    rng_encode, rng_diffusion = jax.random.split(rng)
    out = dict(self.diffusion.evaluate(
        self._inner(state), self._latent_batch(state, batch, rng_encode), rng_diffusion))
    x = batch["image"].astype(jnp.float32)
    recon = self.decode(state.model_state, self.encode(state.model_state, x, None))
    out["first_stage_mse"] = jnp.mean(jnp.square(recon - x), axis=tuple(range(1, x.ndim)))
    return out


# -------------------------------------------------------------------- building from a config
def _check_network_takes(diffusion: Diffusion, latent_shape, workdir) -> None:
  """Traces the diffusion network on one latent; refuses a network that cannot take it."""
  try:
    state = jax.eval_shape(diffusion.init, jax.random.key(0), None)
    x = jax.ShapeDtypeStruct((1, *latent_shape), jnp.float32)
    y = jax.ShapeDtypeStruct((1,), jnp.int32) if diffusion.num_classes else None
    out = jax.eval_shape(lambda p, v: diffusion.apply(p, v, jnp.zeros((1,)), y, train=False),
                         state.params, x)
  except (ValueError, TypeError) as e:
    raise FirstStageError(
        f"The second stage's network cannot take the latents of shape {tuple(latent_shape)} "
        f"of the first stage in {workdir}: {e}. Configure the network (config.model) for "
        "that latent shape.") from e
  if tuple(out.shape[1:]) != tuple(latent_shape):
    raise FirstStageError(
        f"The second stage's network maps latents of shape {tuple(latent_shape)} (first "
        f"stage in {workdir}) to outputs of shape {tuple(out.shape[1:])}; configure "
        "config.model to output the latent's shape.")


@METHODS.register("latent_diffusion")
def build_latent_diffusion(config, info) -> LatentDiffusion:
  """The second stage of `config.latent` (see configs/latent_diffusion/_latent.py)."""
  lat = config.latent
  workdir = str(lat.autoencoder_workdir or "")
  if not workdir:
    raise FirstStageError(
        "config.latent.autoencoder_workdir is empty: a latent diffusion model needs a "
        "trained first stage. Train one, e.g. `python -m gen_jax.main --config="
        f"{lat.get('autoencoder_config') or 'configs/latent_diffusion/autoencoder_mnist.py'} "
        "--workdir=runs/ae`, and pass --config.latent.autoencoder_workdir=runs/ae.")
  expected = tuple(int(d) for d in lat.latent_shape) or None
  restored = restore_first_stage(workdir, info.image_shape, expected_latent_shape=expected,
                                 networks=FIRST_STAGE_NETWORKS)
  latent_shape = tuple(restored.method.latent_shape)

  if config.sample.get("clip_x0"):
    raise ValueError(
        "sample.clip_x0=True clips the samplers' x0 estimate to [-1, 1], the range of "
        "images; latents scaled to unit std leave it. Set --config.sample.clip_x0=False.")
  inner_config = config.copy_and_resolve_references()
  inner_config.method.name = lat.method
  inner = METHODS.get(lat.method)(inner_config, DatasetInfo(
      latent_shape, info.num_classes, info.num_examples))
  if not isinstance(inner, Diffusion):
    raise ValueError(f"config.latent.method={lat.method!r} builds a {type(inner).__name__}; "
                     "latent diffusion trains a diffusion model: name a diffusion preset "
                     "(diffusion, ddpm, score_sde).")
  _check_network_takes(inner, latent_shape, workdir)
  logging.info("Latent diffusion over the first stage in %s (checkpoint %d): latents %s, "
               "scale %.6g (kept in the train state; a restored state keeps its own).",
               workdir, restored.step, latent_shape, restored.latent_scale)
  return LatentDiffusion(
      diffusion=unbounded(inner), first_stage=restored.method,
      first_stage_params=jax.device_get(restored.params),
      latent_scale=float(restored.latent_scale), image_shape=tuple(info.image_shape),
      sample_posterior=bool(lat.sample_posterior))
