"""Generative families; importing this package registers each one in `METHODS`."""

from gen_jax.methods import autoregressive  # noqa: F401  (registers "autoregressive")
from gen_jax.methods import classifier  # noqa: F401  (registers "classifier")
from gen_jax.methods import cyclegan  # noqa: F401  (registers "cyclegan")
from gen_jax.methods import ddgan  # noqa: F401  (registers "ddgan")
from gen_jax.methods import diffusion  # noqa: F401  (registers "diffusion", "ddpm", "score_sde")
from gen_jax.methods import distillation  # noqa: F401  (registers "progressive_distillation")
from gen_jax.methods import flow  # noqa: F401  (registers "flow")
from gen_jax.methods import gan  # noqa: F401  (registers "gan")
from gen_jax.methods import latent_diffusion  # noqa: F401  (registers "latent_diffusion")
from gen_jax.methods import noisy_classifier  # noqa: F401  (registers "noisy_classifier")
from gen_jax.methods import stylegan2  # noqa: F401  (registers "stylegan2")
from gen_jax.methods import super_resolution  # noqa: F401  (registers "super_resolution")
from gen_jax.methods import vae  # noqa: F401  (registers "vae")
from gen_jax.methods.base import METHODS, Method, build_method  # noqa: F401
