"""Adversarial losses: what the discriminator and the generator minimise, given logits.

A loss is a registered `GanLoss` (`GAN_LOSSES`): two functions of the discriminator's raw
outputs ("logits" d = D(x), [B] float, before any sigmoid). Each returns a scalar (the
batch mean). With sigma the logistic sigmoid and softplus(a) = log(1 + e^a):

* "minimax" -- Goodfellow et al., "Generative Adversarial Nets" (NeurIPS 2014):
    L_D = E[-log sigma(d_real)] + E[-log(1 - sigma(d_fake))]
        = E[softplus(-d_real)] + E[softplus(d_fake)],
    L_G = E[log(1 - sigma(d_fake))] = -E[softplus(d_fake)]   (saturates when D wins).
* "non_saturating" -- same L_D; L_G = E[-log sigma(d_fake)] = E[softplus(-d_fake)].
* "hinge" -- Lim & Ye 2017, Miyato et al. 2018 (SNGAN):
    L_D = E[relu(1 - d_real)] + E[relu(1 + d_fake)],   L_G = -E[d_fake].
* "wasserstein" -- Arjovsky et al. 2017 (the critic's objective; with a gradient penalty,
  Gulrajani et al. 2017): L_D = E[d_fake] - E[d_real],   L_G = -E[d_fake].
* "least_squares" -- Mao et al., "Least Squares GANs" (ICCV 2017), with a = 0, b = c = 1:
    L_D = 1/2 E[(d_real - 1)^2] + 1/2 E[d_fake^2],   L_G = 1/2 E[(d_fake - 1)^2].

Add a loss with `GAN_LOSSES.add("name", GanLoss(discriminator=..., generator=...))` and
select it with `config.method.loss = "name"`.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp

from gen_jax.core.registry import Registry

Array = jax.Array


@dataclasses.dataclass(frozen=True)
class GanLoss:
  """A pair of objectives on discriminator logits.

  Attributes:
    discriminator: (d_real [B], d_fake [B]) -> scalar loss of the discriminator.
    generator: d_fake [B] -> scalar loss of the generator.
  """

  discriminator: Callable[[Array, Array], Array]
  generator: Callable[[Array], Array]


GAN_LOSSES: Registry[GanLoss] = Registry("GAN loss")


def _logistic_d(d_real: Array, d_fake: Array) -> Array:
  return jnp.mean(jax.nn.softplus(-d_real)) + jnp.mean(jax.nn.softplus(d_fake))


GAN_LOSSES.add("minimax", GanLoss(
    discriminator=_logistic_d,
    generator=lambda d_fake: -jnp.mean(jax.nn.softplus(d_fake))))
GAN_LOSSES.add("non_saturating", GanLoss(
    discriminator=_logistic_d,
    generator=lambda d_fake: jnp.mean(jax.nn.softplus(-d_fake))))
GAN_LOSSES.add("hinge", GanLoss(
    discriminator=lambda d_real, d_fake: (jnp.mean(jax.nn.relu(1.0 - d_real))
                                          + jnp.mean(jax.nn.relu(1.0 + d_fake))),
    generator=lambda d_fake: -jnp.mean(d_fake)))
GAN_LOSSES.add("wasserstein", GanLoss(
    discriminator=lambda d_real, d_fake: jnp.mean(d_fake) - jnp.mean(d_real),
    generator=lambda d_fake: -jnp.mean(d_fake)))
GAN_LOSSES.add("least_squares", GanLoss(
    discriminator=lambda d_real, d_fake: (0.5 * jnp.mean(jnp.square(d_real - 1.0))
                                          + 0.5 * jnp.mean(jnp.square(d_fake))),
    generator=lambda d_fake: 0.5 * jnp.mean(jnp.square(d_fake - 1.0))))
