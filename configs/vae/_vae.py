"""The VAE part shared by the configs in this folder and configs/latent_diffusion/autoencoder_*.

A VAE config names one network in `model` (vae_mlp | vae_conv | autoencoder_kl, with its
widths and latent size; the method fills in the data shape and the decoder's outputs) and
the likelihood and KL weighting in `method` (see gen_jax/methods/vae.py).
"""

from __future__ import annotations

import ml_collections

from configs import common

# The smallest network of each kind, for the ':smoke' variants (seconds on a CPU).
SMOKE_MODELS = {
    "vae_mlp": dict(encoder_features=(16,), decoder_features=(16,)),
    "vae_conv": dict(channels=(8, 16), hidden=32, latent_dim=4),
    # f = 2 and no attention: the smallest first stage to compile (latents H/2 x W/2).
    "autoencoder_kl": dict(ch=8, ch_mult=(1, 2), num_res_blocks=1, attention=False),
}


def vae_config(model: dict, likelihood: dict) -> ml_collections.ConfigDict:
  """A base config with `model` (name + arguments) and the "vae" method.

  Args:
    model: the network's name and keyword arguments.
    likelihood: the likelihood's name and options (gen_jax/vae/likelihoods.py).
  """
  c = common.base_config()
  c.model = ml_collections.ConfigDict(model)
  c.method = ml_collections.ConfigDict(dict(
      name="vae",
      # bernoulli (binarize=dynamic|threshold) | gaussian | laplace (scale=pixel|global|
      # fixed, log_scale_init, min_log_scale) | logistic_mixture (num_mix, num_bins)
      likelihood=ml_collections.ConfigDict(likelihood),
      kl=ml_collections.ConfigDict(dict(
          beta=1.0,  # beta-VAE weight of the KL (1: the ELBO; 0: an autoencoder)
          capacity_max=0.0,  # > 0: Burgess et al.'s gamma |KL - C|, C -> capacity_max nats
          capacity_steps=0,  # steps over which C grows linearly from 0
          gamma=1000.0,
          warmup_steps=0,  # KL warm-up: the penalty's weight ramps 0 -> 1 over these steps
          free_bits=0.0,  # nats per latent dimension (Kingma et al. 2016); 0: off
      )),
      # IWAE bound in evaluation: K samples (< 2: off), drawn in chunks (must divide K).
      # Burda et al. report K = 5000: --config.method.iwae_samples=5000 in --mode=eval.
      iwae_samples=100,
      iwae_chunk=50,
      figures=ml_collections.ConfigDict(dict(
          examples=8,  # reconstructions shown by --mode=sample/eval
          traversal_dims=8, traversal_steps=9, traversal_range=3.0)),
      # Latent diffusion first-stage losses that are NOT implemented (must stay 0): LPIPS
      # needs pretrained weights that cannot be obtained offline; no patch discriminator.
      perceptual_weight=0.0,
      adversarial_weight=0.0,
  ))
  c.sample.sampler = "prior"  # for the logs: decode z ~ N(0, T^2 I)
  c.sample.temperature = 1.0
  c.sample.decode = "mean"  # mean | sample: what is drawn from p(x | z)
  c.sample.clip_x0 = False
  c.ema.decay = 0.999
  return c


def smoke_vae(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """The network's smallest size on top of `common.smoke`, and a cheap IWAE bound."""
  common.smoke(c)
  for k, v in SMOKE_MODELS[c.model.name].items():
    c.model[k] = v
  c.method.iwae_samples = 4
  c.method.iwae_chunk = 2
  c.method.figures.traversal_dims = 2
  c.method.figures.traversal_steps = 3
  return c
