"""gen_jax: generative models (diffusion, score SDEs, GANs, flows, autoregressive models) on
one JAX engine."""

__version__ = "0.1.0"
