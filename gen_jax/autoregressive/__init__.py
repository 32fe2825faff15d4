"""Autoregressive models' maths: mu-law, likelihoods in bits, and the on-device samplers.

PixelCNN / gated PixelCNN / PixelCNN++ (images, raster order) and WaveNet (audio, time
order). Networks live in `gen_jax.nets` (pixelcnn, pixelcnn_pp, wavenet); the Method is
`gen_jax.methods.autoregressive`; the discretized logistic mixture is
`gen_jax.distributions.discretized_logistic`.
"""
