"""Samplers that turn a trained denoiser into samples: DDPM ancestral sampling and DDIM."""

from gen_jax.samplers.ancestral import ancestral_sample
from gen_jax.samplers.base import SAMPLERS, SampleOutput
from gen_jax.samplers.ddim import ddim_sample, ddim_timesteps

__all__ = ["SAMPLERS", "SampleOutput", "ancestral_sample", "ddim_sample", "ddim_timesteps"]
