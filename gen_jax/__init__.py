"""gen_jax: generative models (diffusion, score SDEs, GANs, flows, VAEs) on one JAX engine."""

__version__ = "0.1.0"
