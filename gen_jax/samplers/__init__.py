"""Samplers that turn a trained denoiser into samples, one registry and one call signature for
DDPM chains and score SDEs (`base`): DDIM and ancestral sampling (`ddim`, `sde`), the SDE
samplers Euler-Maruyama, reverse diffusion, predictor-corrector and the probability-flow ODE
(`sde`); EDM's Heun and stochastic samplers (`edm`), DPM-Solver++ 2M / 2S / 3S
(`dpm_solver`) and ancestral sampling with learned variances (`learned_variance`)."""

from gen_jax.diffusion.gaussian import score_fn_of
from gen_jax.samplers.base import SAMPLERS, SampleOutput
from gen_jax.samplers.ddim import ddim_sample, ddim_timesteps
from gen_jax.samplers.dpm_solver import (dpm_solver_2m_sample, dpm_solver_2s_sample,
                                         dpm_solver_3s_sample, dpm_solver_pp_sample)
from gen_jax.samplers.edm import edm_heun_sample, edm_stochastic_sample
from gen_jax.samplers.learned_variance import learned_variance_sample
from gen_jax.samplers.sde import (AdaptiveSampleOutput, ancestral_sample, euler_maruyama_sample,
                                  langevin_step, ode_sample, pc_sample, reverse_diffusion_sample,
                                  tweedie_denoise)

__all__ = ["SAMPLERS", "AdaptiveSampleOutput", "SampleOutput", "ancestral_sample", "ddim_sample",
           "ddim_timesteps", "dpm_solver_2m_sample", "dpm_solver_2s_sample",
           "dpm_solver_3s_sample", "dpm_solver_pp_sample", "edm_heun_sample",
           "edm_stochastic_sample", "euler_maruyama_sample", "langevin_step",
           "learned_variance_sample", "ode_sample", "pc_sample", "reverse_diffusion_sample",
           "score_fn_of", "tweedie_denoise"]
