"""Variational autoencoders: the maths of the family, no networks and no training loop.

  gaussian.py      diagonal Gaussians: KL in closed form, log-density, reparameterisation
  likelihoods.py   decoders' p(x | z): Bernoulli, Gaussian, Laplace, discretized logistic
                   mixture (LIKELIHOODS, chosen by `config.method.likelihood.name`)
  regularizers.py  the KL term of the objective: beta (Higgins), capacity |KL - C|
                   (Burgess), KL warm-up, free bits
  bounds.py        ELBO, the importance-weighted bound (IWAE), active units

A trained VAE run as the first stage of a latent model: `gen_jax.methods.first_stage`.
"""
