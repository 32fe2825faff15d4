"""Score-based generative modelling through SDEs (Song et al., ICLR 2021): SDEs and samplers."""

from gen_jax.sde.samplers import (
    SDE_SAMPLERS,
    euler_maruyama_sample,
    langevin_step,
    ode_sample,
    pc_sample,
    reverse_diffusion_sample,
    tweedie_denoise,
)
from gen_jax.sde.sde_lib import SDE, SDES, VESDE, VPSDE, ReverseSDE, batch_bcast, subVPSDE

__all__ = [
    "SDE",
    "SDES",
    "SDE_SAMPLERS",
    "ReverseSDE",
    "VESDE",
    "VPSDE",
    "batch_bcast",
    "euler_maruyama_sample",
    "langevin_step",
    "ode_sample",
    "pc_sample",
    "reverse_diffusion_sample",
    "subVPSDE",
    "tweedie_denoise",
]
