"""A convolutional VAE on dynamically binarized MNIST (28x28x1), Bernoulli likelihood.

Latent of 32 dimensions, encoder 28 -> 14 -> 7 (widths 32, 64) and a 512-unit dense
layer; Adam 1e-3, batch 128. Binarized MNIST's -log p(x) of such models is ~80-90 nats
(IWAE bound, Burda et al.: 86.8 nats for their 1-layer VAE with K = 5000).

    python -m gen_jax.main --config=configs/vae/mnist.py --workdir=runs/vae_mnist
    python -m gen_jax.main --config=configs/vae/mnist.py --workdir=runs/vae_mnist \
        --mode=eval --config.method.iwae_samples=5000 --config.method.iwae_chunk=100

Variants: `:beta=4` (beta-VAE), `:capacity=25` (Burgess: C -> 25 nats over 50k steps,
gamma 1000), `:free_bits=0.25`, `:warmup=10000`; other likelihoods of the 8-bit images:
`:likelihood=logistic_mixture` (grid data) or `:likelihood=gaussian` (per-pixel variances
on dequantized data, bits/dim as flows report them).
"""

LIKELIHOODS = {
    "bernoulli": (dict(name="bernoulli", binarize="dynamic"), False),
    "logistic_mixture": (dict(name="logistic_mixture", num_mix=5), False),
    "gaussian": (dict(name="gaussian", scale="pixel", min_log_scale=-5.0), True),
}

from configs import common
from configs.vae import _vae


def get_config(arg=None):
  args = common.parse_arg(arg, smoke=False, beta=1.0, capacity=0.0, free_bits=0.0, warmup=0,
                          likelihood="bernoulli")
  if args.likelihood not in LIKELIHOODS:
    raise ValueError(f"likelihood must be one of {', '.join(LIKELIHOODS)}; got "
                     f"{args.likelihood!r}.")
  likelihood, dequantize = LIKELIHOODS[args.likelihood]
  c = _vae.vae_config(dict(name="vae_conv", latent_dim=32, channels=(32, 64), hidden=512),
                      likelihood)
  c.data.dequantize = dequantize
  c.data.source = "tfds"
  c.data.name = "mnist"
  c.batch_size = 128
  c.num_train_steps = 100_000
  c.optim.learning_rate = 1e-3
  c.optim.schedule = "cosine"
  c.optim.warmup_steps = 500
  c.method.kl.beta = args.beta
  c.method.kl.capacity_max = args.capacity
  c.method.kl.capacity_steps = 50_000 if args.capacity else 0
  c.method.kl.free_bits = args.free_bits
  c.method.kl.warmup_steps = args.warmup
  c.trainer.eval_every_steps = 10_000
  if args.smoke:
    _vae.smoke_vae(c)
  c.lock()
  return c
