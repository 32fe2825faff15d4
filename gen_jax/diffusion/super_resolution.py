"""Conditioning a diffusion model on a low-resolution image, with noise augmentation.

SR3 (Saharia et al., "Image Super-Resolution via Iterative Refinement", 2021): the network
sees the noisy high-resolution image x_t concatenated, along the channels, with the
low-resolution condition z brought to the high resolution (upsampled, `data.pairs`):

    out = net(concat[x_t, up(z)], t).

`conditioned(model_fn, condition)` is that wrapper around any (x, t) -> out function, so
every process, parameterisation, loss and sampler of the diffusion core runs unchanged on
the conditional model: they only ever see (x_t, t) of the high-resolution image.

CDM (Ho et al., "Cascaded Diffusion Models for High Fidelity Image Generation", JMLR 2022,
Sec. 3.2 "conditioning augmentation"): stages trained separately chain badly, because a
super-resolution stage trained on true downsampled images is then fed a base stage's
samples. Gaussian noise augmentation corrupts the condition with a level s the network is
told:

    z_s = alpha(s) z + sigma(s) e,  e ~ N(0, I),  alpha(s) = cos(pi s / 2), sigma = sin(pi s / 2)

with s ~ U[0, s_max] per example in training and a fixed, configured s at sampling.
`NoiseAugmentation` draws s and corrupts z; the level reaches the network as one more
input channel filled with s (`condition_input`).

Deviations from the reference implementation (lucidrains/imagen-pytorch, `Imagen`):
  * imagen corrupts the condition with its own continuous "linear" log-SNR schedule,
    whose level 0 still adds noise of std ~0.01; here alpha(s), sigma(s) are the cosine VP
    pair, so level 0 is exactly the clean condition (and s = 1 pure noise).
  * imagen embeds the level like the diffusion time (an MLP of a sinusoidal embedding
    added to the time embedding); here it is a constant input channel, which every
    registered network accepts without change. A network can read it as it likes.
  * imagen draws the training level from its whole range, U[0, 1], one level per batch by
    default (`per_sample_random_aug_noise_level=False`); here each example draws its own
    from U[0, s_max] (`max_level`, CDM's description).
  * imagen's default sampling level is 0.2 on its schedule; the level is a config field here.
  * imagen upsamples the condition with nearest-neighbour interpolation by default; SR3
    bicubic; here the upsampler is named in the config (`data.pairs.UPSAMPLERS`).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable

import jax
import jax.numpy as jnp

from gen_jax.data import pairs

Array = jax.Array
ModelFn = Callable[[Array, Array], Array]  # (x [B, H, W, C], t [B]) -> out [B, H, W, C]


@dataclasses.dataclass(frozen=True)
class NoiseAugmentation:
  """CDM's Gaussian conditioning augmentation.

  Attributes:
    enabled: False: the condition is used as it is and no level channel exists.
    max_level: s_max of the training levels s ~ U[0, s_max].
    sample_level: the fixed s used when sampling (and in evaluation).
  """

  enabled: bool = True
  max_level: float = 0.5
  sample_level: float = 0.0

  def __post_init__(self):
    for name in ("max_level", "sample_level"):
      value = getattr(self, name)
      if not 0.0 <= value <= 1.0:
        raise ValueError(f"method.noise_aug.{name}={value} must lie in [0, 1] (0: the clean "
                         "condition, 1: pure noise).")

  @property
  def channels(self) -> int:
    """Channels the level adds to the network input (1, or 0 when disabled)."""
    return 1 if self.enabled else 0

  @staticmethod
  def coefs(level: Array) -> tuple[Array, Array]:
    """(alpha(s), sigma(s)) = (cos(pi s / 2), sin(pi s / 2)) for levels s [B]."""
    angle = 0.5 * math.pi * jnp.asarray(level, jnp.float32)
    return jnp.cos(angle), jnp.sin(angle)

  def levels(self, rng: Array | None, batch_size: int, *, train: bool) -> Array:
    """Levels s [B]: U[0, s_max] per example in training, else `sample_level` for all."""
    if not self.enabled:
      return jnp.zeros((batch_size,), jnp.float32)
    if train:
      return jax.random.uniform(rng, (batch_size,), jnp.float32, 0.0, self.max_level)
    return jnp.full((batch_size,), self.sample_level, jnp.float32)

  def corrupt(self, rng: Array, low_res: Array, level: Array) -> Array:
    """z_s = alpha(s) z + sigma(s) e for z [B, h, w, C], s [B] (z itself where s = 0)."""
    if not self.enabled:
      return low_res
    alpha, sigma = self.coefs(level)
    alpha, sigma = alpha[:, None, None, None], sigma[:, None, None, None]
    noise = jax.random.normal(rng, low_res.shape, low_res.dtype)
    # where(): exactly z at s = 0, not z * 1.0 + 0.0 * e rounded
    return jnp.where(sigma > 0, alpha * low_res + sigma * noise, low_res)


def condition_input(low_res: Array, level: Array, *, factor: int, upsampler: str,
                    augmentation: NoiseAugmentation) -> Array:
  """What is concatenated to x_t: [B, H, W, C (+ 1)] = concat[up(z_s), level channel]."""
  up = pairs.upsample(low_res, factor, upsampler)
  if not augmentation.enabled:
    return up
  channel = jnp.broadcast_to(level.astype(up.dtype)[:, None, None, None], (*up.shape[:3], 1))
  return jnp.concatenate([up, channel], axis=-1)


def conditioned(model_fn: ModelFn, condition: Array) -> ModelFn:
  """(x, t) -> model_fn(concat[x, condition], t): the conditional model of SR3.

  condition: [B, H, W, C'] (from `condition_input`). A batch of x that is a whole multiple
  of B (classifier-free guidance evaluates [x; x]) sees the condition repeated.
  """

  def fn(x: Array, t: Array) -> Array:
    reps, rest = divmod(x.shape[0], condition.shape[0])
    if rest or not reps:
      raise ValueError(f"The batch of x ({x.shape[0]}) is not a multiple of the batch of the "
                       f"condition ({condition.shape[0]}).")
    cond = jnp.concatenate([condition] * reps) if reps > 1 else condition
    return model_fn(jnp.concatenate([x, cond.astype(x.dtype)], axis=-1), t)

  return fn
