"""Gaussian diffusion around one noise process x_t = alpha(t) x0 + sigma(t) eps.

Continuous processes (VP, sub-VP, VE SDEs), their discrete chains (DDPM, DDGAN), the
parameterisations of the network output, losses, likelihoods and guidance (the samplers of
all of them are in `gen_jax.samplers`); see the README's layout section for which module
holds what.
"""

from gen_jax.diffusion.gaussian import (PREDICTIONS, Prediction, extract, predict_eps_from_x0,
                                        predict_x0_from_eps, q_mean_variance, q_posterior,
                                        q_sample, score_fn_of)
from gen_jax.diffusion.likelihood import LikelihoodOutput, bits_per_dim, ode_likelihood
from gen_jax.diffusion.ode import ODESolution, odeint_adaptive
from gen_jax.diffusion.losses import LOSSES, WEIGHTINGS, importance_sample_t
from gen_jax.diffusion.processes import (SDE, SDES, VESDE, VPSDE, DiscreteVP, ReverseSDE,
                                         batch_bcast, subVPSDE)
from gen_jax.diffusion.schedules import (BETA_SCHEDULES, DiffusionSchedule,
                                         cosine_alphas_cumprod, make_schedule)
from gen_jax.diffusion import edm, weightings  # noqa: E402,F401 (register EDM, min-SNR, P2)
from gen_jax.diffusion.edm import EDMPrecond, EDMProcess, karras_sigmas  # noqa: E402
from gen_jax.diffusion import hybrid_loss  # noqa: F401,E402  (registers the "hybrid" loss)
