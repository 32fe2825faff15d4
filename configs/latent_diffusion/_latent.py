"""The second stage of latent diffusion: a core diffusion config moved into latent space.

`latent_config(c, ...)` takes any diffusion config of the core (configs/ddpm,
configs/score_sde, method.name "diffusion") and makes it a second stage
(gen_jax/methods/latent_diffusion.py): `config.method` keeps the diffusion model's fields,
its name moves to `config.latent.method` and `method.name` becomes "latent_diffusion". The
network (`config.model`) is the diffusion model's, configured for the first stage's latent
shape `config.latent.latent_shape`, which the method checks against the first stage.

    python -m gen_jax.main --config=configs/latent_diffusion/mnist.py --workdir=runs/ldm \
        --config.latent.autoencoder_workdir=runs/ldm_mnist_autoencoder
"""

from __future__ import annotations

import ml_collections


def latent_config(c: ml_collections.ConfigDict, *, autoencoder_config: str,
                  latent_shape: tuple[int, ...]) -> ml_collections.ConfigDict:
  """`c` (a diffusion config, unlocked) as the second stage of `autoencoder_config`."""
  c.latent = ml_collections.ConfigDict(dict(
      method=c.method.name,  # the diffusion preset trained in latent space
      # The first stage's run directory (a trained and evaluated KL autoencoder).
      autoencoder_workdir="",
      # The config that trains that first stage (documentation; the smoke test trains its
      # ':smoke' variant when autoencoder_workdir is empty).
      autoencoder_config=autoencoder_config,
      # The latent shape [H/f, W/f, z_channels] config.model is configured for; checked
      # against the first stage's (empty: take the first stage's, unchecked).
      latent_shape=tuple(latent_shape),
      sample_posterior=True,  # encode z ~ q(z | x) (official); False: its mean
  ))
  c.method.name = "latent_diffusion"
  c.sample.clip_x0 = False  # latents of unit std are not bounded by [-1, 1]
  return c
