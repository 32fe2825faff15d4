"""The first stage of latent diffusion (Rombach et al. 2022): a KL-regularised autoencoder.

The "vae" method with the `autoencoder_kl` network (a spatial latent [H/f, W/f,
z_channels]), a Laplace likelihood with one learned log-scale (the official L1 loss with a
learned log-variance) and KL weight beta = 1e-6, Adam with betas (0.5, 0.9) as in the
official `AutoencoderKL.configure_optimizers`. Train it as a normal run; a second stage
reads it with `gen_jax.vae.first_stage.load_first_stage(workdir, image_shape)`, which
needs the latent std recorded by an evaluation of the final checkpoint (these configs
evaluate at the last step; `--mode=eval` writes it too).

Not implemented (refused if set): the LPIPS perceptual term and the patch discriminator;
this first stage is trained on the L1/Laplace reconstruction and the KL only.
"""

from __future__ import annotations

import ml_collections

from configs.vae import _vae


def first_stage_config(*, ch: int, ch_mult: tuple[int, ...], z_channels: int,
                       num_res_blocks: int = 2) -> ml_collections.ConfigDict:
  """A first-stage config; f = 2^(len(ch_mult) - 1)."""
  c = _vae.vae_config(
      dict(name="autoencoder_kl", ch=ch, ch_mult=ch_mult, z_channels=z_channels,
           num_res_blocks=num_res_blocks, attention=True),
      dict(name="laplace", scale="global", log_scale_init=0.0))
  c.method.kl.beta = 1e-6  # kl_weight of the official f=4/f=8 KL autoencoders
  c.method.iwae_samples = 0  # a likelihood bound means little at beta = 1e-6
  c.optim.b1 = 0.5
  c.optim.b2 = 0.9
  c.optim.learning_rate = 1e-4
  c.optim.grad_clip_norm = 0.0
  c.trainer.eval_every_steps = 10_000
  return c


def smoke_first_stage(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  _vae.smoke_vae(c)
  c.method.iwae_samples = 0
  return c
