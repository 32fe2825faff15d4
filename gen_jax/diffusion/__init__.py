"""Discrete-time Gaussian diffusion (DDPM): noise schedules, forward process, posterior."""

from gen_jax.diffusion.gaussian import (
    PREDICTIONS,
    Prediction,
    extract,
    predict_eps_from_x0,
    predict_x0_from_eps,
    q_mean_variance,
    q_posterior,
    q_sample,
)
from gen_jax.diffusion.schedules import (
    BETA_SCHEDULES,
    DiffusionSchedule,
    cosine_alphas_cumprod,
    make_schedule,
)

__all__ = [
    "BETA_SCHEDULES",
    "DiffusionSchedule",
    "PREDICTIONS",
    "Prediction",
    "cosine_alphas_cumprod",
    "extract",
    "make_schedule",
    "predict_eps_from_x0",
    "predict_x0_from_eps",
    "q_mean_variance",
    "q_posterior",
    "q_sample",
]
