"""Variational autoencoders as a family: VAE, beta-VAE, capacity annealing, and the
KL-regularised autoencoder of latent diffusion's first stage.

Kingma & Welling, Auto-Encoding Variational Bayes (2014); Rezende et al. (2014); Higgins
et al., beta-VAE (2017); Burgess et al., Understanding disentangling in beta-VAE (2018);
Burda et al., Importance Weighted Autoencoders (2016); Rombach et al., High-Resolution
Image Synthesis with Latent Diffusion Models (2022).

The network (`config.model.name`: vae_mlp, vae_conv, autoencoder_kl in `gen_jax.nets`)
encodes x to q(z | x) = N(mean, diag(exp(logvar))) and decodes z to the parameters of the
likelihood p(x | z) (`config.method.likelihood`, `gen_jax.vae.likelihoods`); the prior is
N(0, I). Training minimises, per data dimension D (which leaves the optimum unchanged and
keeps gradient norms comparable across image sizes),

  loss = (E_batch[-log p(x | z)] + penalty(KL)) / D,   z ~ q(z | x) (one draw),

with the KL term of `gen_jax.vae.regularizers.KLPenalty` (beta, capacity C with gamma,
warm-up, free bits) and the KL in closed form. Logged: the ELBO in nats (always with
beta = 1, whatever the penalty), its two terms, the penalty's weight and C.

Evaluation (`--mode=eval`, EMA parameters), per example then averaged over the split:
  nelbo            -ELBO in nats (an upper bound on -log p(x));
  bpd              the same in bits/dim where it means something: Bernoulli on binarized
                   data and the logistic mixture on 8-bit data (probability masses), or a
                   Gaussian/Laplace density on dequantized images (with the D log 128 of
                   the change of variables, as flows report it); absent otherwise;
  iwae_nll, iwae_bpd   -L_K, the importance-weighted bound with K = method.iwae_samples
                   (>= 2; drawn in chunks of method.iwae_chunk);
  rec_nll, kl      the ELBO's terms; mse: squared error of the decoder's mean at the
                   posterior mean, against x in [-1, 1] (per dimension);
  active_units     dimensions with Var_x(E_q[z | x]) > 0.01 over the split;
  latent_std       the std over the split of every element of z ~ q(z | x): the scale a
                   second-stage (latent diffusion) model divides latents by.
Dynamic binarization draws its bits from the evaluation key, so the ELBO and the IWAE
bound score the same binary images.

`sample` draws z ~ N(0, T^2 I) (T = `spec.temperature`, default `sample.temperature`) and
returns the decoder's mean (`sample.decode="mean"`, the usual VAE figure) or a draw of
p(x | z) (`"sample"`). `figures` gives the reconstruction and latent-traversal grids that
`--mode=sample` and `--mode=eval` write as PNGs.

Latent diffusion's first stage (configs/latent_diffusion/autoencoder_*.py) is this method
with the `autoencoder_kl` network, a Laplace likelihood with one learned log-scale (the L1
loss with learned log-variance of the official `LPIPSWithDiscriminator`: |x - m| / b +
log b per pixel, summed) and beta = 1e-6. Not implemented, and refused when asked for:
the perceptual (LPIPS) term, whose VGG weights cannot be obtained offline here, and the
patch discriminator (`method.perceptual_weight`, `method.adversarial_weight` must be 0).
The official code also computes its KL and reconstruction sums per batch element exactly
as here; its logvar clamp to [-30, 20] is applied here too.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from gen_jax.core.optim import build_optimizer, learning_rate_schedule
from gen_jax.core.sample import SampleOutput, SampleSpec
from gen_jax.core.state import TrainState
from gen_jax.methods.base import METHODS, Batch, Method, Metrics, single_network_step
from gen_jax.methods.flow import bits_per_dim as density_bits_per_dim
from gen_jax.nets import build_net
from gen_jax.vae import bounds
from gen_jax.vae.gaussian import reparameterize, standard_normal_kl
from gen_jax.vae.likelihoods import Likelihood, build_likelihood
from gen_jax.vae.regularizers import KLPenalty

LOGVAR_RANGE = (-30.0, 20.0)  # DiagonalGaussianDistribution's clamp (latent diffusion)
_AU_MEAN, _AU_SQUARE = "au_mean.", "au_square."


def _per_example_sum(x: jax.Array) -> jax.Array:
  return jnp.sum(x.reshape(x.shape[0], -1), axis=1)


@dataclasses.dataclass(frozen=True)
class VAEMethod(Method):
  """A VAE trained on its (weighted) ELBO; see the module docstring.

  Attributes:
    net: the encoder-decoder (`encode`, `decode`; see `gen_jax.nets.vae`).
    likelihood: p(x | z).
    kl_penalty: the KL term's weighting (beta, capacity, warm-up, free bits).
    optimizer: optax transformation of all parameters.
    data_shape: (H, W, C) for images, (D,) for vectors.
    latent_shape: shape of one example's latent.
    dequantized: the images are uniformly dequantized (a density's bits/dim is then the
      flows' bound).
    temperature: default prior temperature of `sample`.
    decode_samples: "mean" or "sample": what `sample` returns from p(x | z).
    iwae_samples: K of the IWAE bound in `evaluate` (< 2: not computed).
    iwae_chunk: samples per chunk of the IWAE bound (0: all K at once).
    figure_examples: examples shown in the reconstruction grid.
    traversal_dims, traversal_steps, traversal_range: the traversal grid: the most active
      dimensions (by batch KL), each varied over linspace(-range, range, steps) around the
      first example's posterior mean.
    lr_schedule: the learning rate as a function of the step, for logging.
  """

  net: nn.Module
  likelihood: Likelihood
  kl_penalty: KLPenalty
  optimizer: optax.GradientTransformation
  data_shape: tuple[int, ...]
  latent_shape: tuple[int, ...]
  dequantized: bool = False
  temperature: float = 1.0
  decode_samples: str = "mean"
  iwae_samples: int = 0
  iwae_chunk: int = 0
  figure_examples: int = 8
  traversal_dims: int = 8
  traversal_steps: int = 9
  traversal_range: float = 3.0
  lr_schedule: Any = None

  @property
  def dim(self) -> int:
    return math.prod(self.data_shape)

  @property
  def is_image(self) -> bool:
    return len(self.data_shape) == 3

  # ------------------------------------------------------------------ pieces

  def encode(self, params, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(mean, logvar) [B, *latent_shape] of q(z | x) for x [B, *data_shape]."""
    if tuple(x.shape[1:]) != self.data_shape:
      raise ValueError(f"The VAE was built for data of shape {self.data_shape}; got a batch "
                       f"of shape {x.shape}.")
    mean, logvar = self.net.apply({"params": params["net"]}, x, method="encode")
    return mean, jnp.clip(logvar, *LOGVAR_RANGE)

  def decode(self, params, z: jax.Array) -> jax.Array:
    """Likelihood parameters [B, *data_shape[:-1], P] for latents z [B, *latent_shape]."""
    return self.net.apply({"params": params["net"]}, z, method="decode")

  def decode_mean(self, params, z: jax.Array) -> jax.Array:
    """The decoder's mean E[x | z] [B, *data_shape] (data space, [-1, 1] for images)."""
    return self.likelihood.mean(self.decode(params, z), params["likelihood"])

  def log_likelihood(self, params, target: jax.Array, z: jax.Array) -> jax.Array:
    """log p(target | z) [B] in nats."""
    return self.likelihood.log_prob(target, self.decode(params, z), params["likelihood"])

  def bits_per_dim(self, nll: jax.Array) -> jax.Array | None:
    """Bits/dim [B] of a per-example NLL in nats, or None where they mean nothing."""
    if self.likelihood.discrete:
      return nll / (self.dim * math.log(2.0))
    if self.is_image and self.dequantized:
      return density_bits_per_dim(nll, self.dim)
    return None

  def terms(self, params, batch: Batch, rng: jax.Array) -> dict[str, jax.Array]:
    """One draw of the ELBO's pieces for a batch.

    Returns:
      rec_nll [B] (-log p(x | z), z ~ q), kl_per_dim [B, *latent_shape], mean and logvar of
      q, z, and the encoder input and target of the likelihood (binarized for Bernoulli).
    """
    rng_data, rng_z = jax.random.split(rng)
    inputs, target = self.likelihood.prepare(batch["image"], rng_data)
    mean, logvar = self.encode(params, inputs)
    z = reparameterize(rng_z, mean, logvar)
    return {"rec_nll": -self.log_likelihood(params, target, z),
            "kl_per_dim": standard_normal_kl(mean, logvar), "mean": mean, "logvar": logvar,
            "z": z, "inputs": inputs, "target": target}

  # ---------------------------------------------------------------- contract

  def init(self, rng: jax.Array, batch: Batch) -> TrainState:
    x = jnp.zeros((1, *self.data_shape), jnp.float32)
    params = {"net": self.net.init(rng, x)["params"],
              "likelihood": self.likelihood.init_params()}
    return TrainState.create(params, self.optimizer.init(params))

  def update(self, state: TrainState, batch: Batch, rng: jax.Array) -> tuple[TrainState, Metrics]:
    def loss_fn(params):
      t = self.terms(params, batch, rng)
      rec = jnp.mean(t["rec_nll"])
      kl = jnp.mean(_per_example_sum(t["kl_per_dim"]))
      penalty, aux = self.kl_penalty(t["kl_per_dim"], state.step)
      metrics = {"elbo": -(rec + kl), "rec_nll": rec, "kl": kl, **aux}
      bpd = self.bits_per_dim(rec + kl)
      if bpd is not None:
        metrics["bpd"] = bpd
      return (rec + penalty) / self.dim, metrics

    return single_network_step(state, loss_fn, self.optimizer, self.lr_schedule)

  def evaluate(self, state: TrainState, batch: Batch, rng: jax.Array) -> Metrics:
    """Per-example metrics [B] with the EMA parameters; see the module docstring."""
    params = state.ema_params
    rng_terms, rng_iwae = jax.random.split(rng)
    t = self.terms(params, batch, rng_terms)
    kl = _per_example_sum(t["kl_per_dim"])
    nelbo = t["rec_nll"] + kl
    recon = self.decode_mean(params, t["mean"])
    out = {"loss": nelbo / self.dim, "nelbo": nelbo, "rec_nll": t["rec_nll"], "kl": kl,
           "mse": jnp.mean(jnp.square(recon - batch["image"]).reshape(kl.shape[0], -1), 1),
           "latent_mean": jnp.mean(t["z"].reshape(kl.shape[0], -1), 1),
           "latent_square": jnp.mean(jnp.square(t["z"]).reshape(kl.shape[0], -1), 1)}
    bpd = self.bits_per_dim(nelbo)
    if bpd is not None:
      out["bpd"] = bpd
    if self.iwae_samples >= 2:
      bound = bounds.iwae_bound(
          rng_iwae, t["mean"], t["logvar"],
          lambda z: self.log_likelihood(params, t["target"], z), self.iwae_samples,
          self.iwae_chunk)
      out["iwae_nll"] = -bound
      if bpd is not None:
        out["iwae_bpd"] = self.bits_per_dim(-bound)
    mu = t["mean"].reshape(kl.shape[0], -1)
    for u in range(mu.shape[1]):
      out[f"{_AU_MEAN}{u}"] = mu[:, u]
      out[f"{_AU_SQUARE}{u}"] = jnp.square(mu[:, u])
    return out

  def summarize_eval(self, results: dict[str, float]) -> dict[str, float]:
    """Split averages -> the reported metrics: active units and the latent std."""
    results = dict(results)
    num_units = math.prod(self.latent_shape)
    means = jnp.array([results.pop(f"{_AU_MEAN}{u}") for u in range(num_units)])
    squares = jnp.array([results.pop(f"{_AU_SQUARE}{u}") for u in range(num_units)])
    results["active_units"] = int(bounds.active_units(means, squares))
    mean, square = results.pop("latent_mean"), results.pop("latent_square")
    results["latent_std"] = math.sqrt(max(square - mean * mean, 0.0))
    return results

  def sample(self, state: TrainState, rng: jax.Array, num_samples: int,
             spec: SampleSpec = SampleSpec()) -> SampleOutput:
    """Decodes z ~ N(0, T^2 I) with the EMA parameters (images clipped to [-1, 1])."""
    spec.refuse_unsupported("vae", ["temperature"])
    t = self.temperature if spec.temperature is None else float(spec.temperature)
    rng_z, rng_x = jax.random.split(rng)
    z = t * jax.random.normal(rng_z, (num_samples, *self.latent_shape), jnp.float32)
    params = state.ema_params
    out = self.decode(params, z)
    if self.decode_samples == "sample":
      x = self.likelihood.sample(rng_x, out, params["likelihood"])
    else:
      x = self.likelihood.mean(out, params["likelihood"])
    return SampleOutput(samples=jnp.clip(x, -1.0, 1.0) if self.is_image else x, nfe=1)

  def figures(self, state: TrainState, batch: Batch, rng: jax.Array) -> dict[str, Any]:
    """Image grids {name: (images [N, H, W, C] in [-1, 1], columns)} from the EMA params.

    reconstructions: pairs of rows, the inputs (as the encoder sees them: binarized for a
      Bernoulli likelihood) above the decoder's means at their posterior means.
    traversal: one row per latent dimension (the `traversal_dims` with the largest batch
      KL), the first example's posterior mean with that coordinate set to each of
      linspace(-range, range, steps).
    Vector data has no figures ({}).
    """
    if not self.is_image:
      return {}
    params = state.ema_params
    n = min(self.figure_examples, batch["image"].shape[0])
    inputs, _ = self.likelihood.prepare(batch["image"][:n], rng)
    mean, logvar = self.encode(params, inputs)
    recon = self.decode_mean(params, mean)
    pairs = jnp.stack([inputs, recon]).reshape(2 * n, *self.data_shape)
    flat_kl = standard_normal_kl(mean, logvar).reshape(n, -1).mean(0)
    dims = jnp.argsort(-flat_kl)[:min(self.traversal_dims, flat_kl.shape[0])]
    values = jnp.linspace(-self.traversal_range, self.traversal_range, self.traversal_steps)
    base = mean[0].reshape(-1)
    grid = jax.vmap(lambda d: jax.vmap(lambda v: base.at[d].set(v))(values))(dims)
    z = grid.reshape(-1, *self.latent_shape)
    traversal = jnp.clip(self.decode_mean(params, z), -1.0, 1.0)
    return {"reconstructions": (jnp.clip(pairs, -1.0, 1.0), n),
            "traversal": (traversal, self.traversal_steps)}


# Options of the first stage that gen_jax does not implement (see the module docstring).
_UNIMPLEMENTED = {
    "perceptual_weight": "the LPIPS perceptual loss needs pretrained VGG-16 and LPIPS "
                         "weights, which cannot be obtained offline here",
    "adversarial_weight": "the patch discriminator of the first stage is not implemented",
}


@METHODS.register("vae")
def build_vae(config, info) -> VAEMethod:
  """A VAEMethod from `config.model`, `config.method`, `config.sample` and `config.optim`."""
  m = config.method
  for field, why in _UNIMPLEMENTED.items():
    if float(m.get(field, 0.0) or 0.0) != 0.0:
      raise ValueError(f"method.{field}={m[field]} is not supported: {why}. Set it to 0.")
  shape = tuple(int(d) for d in info.image_shape)
  is_image = len(shape) == 3
  dequantized = bool(config.data.dequantize)
  likelihood = build_likelihood(**dict(m.likelihood))
  name = m.likelihood.name
  if name == "logistic_mixture":
    if not is_image or shape[-1] not in (1, 3):
      raise ValueError(f"The logistic_mixture likelihood scores images with 1 or 3 channels; "
                       f"the data have shape {shape}. Use 'gaussian' for vector data.")
    if dequantized:
      raise ValueError("The logistic_mixture likelihood is a probability mass over the 256 "
                       "grid values of 8-bit images; set data.dequantize=False.")
  if name == "bernoulli" and not is_image:
    raise ValueError("The bernoulli likelihood scores binarized images; use 'gaussian' for "
                     "vector data.")
  model = dict(config.model)
  net = build_net(model.pop("name"), data_shape=shape,
                  out_channels=likelihood.num_params(shape[-1]), **model)
  x = jax.ShapeDtypeStruct((1, *shape), jnp.float32)
  latent, _ = jax.eval_shape(
      lambda v: net.init_with_output(jax.random.key(0), v, method="encode")[0], x)
  iwae_samples, iwae_chunk = int(m.iwae_samples), int(m.iwae_chunk)
  if iwae_samples >= 2 and iwae_chunk and iwae_samples % iwae_chunk:
    raise ValueError(f"method.iwae_chunk={iwae_chunk} must divide method.iwae_samples="
                     f"{iwae_samples}.")
  if config.sample.decode not in ("mean", "sample"):
    raise ValueError(f"sample.decode must be 'mean' or 'sample', got {config.sample.decode!r}.")
  return VAEMethod(
      net=net,
      likelihood=likelihood,
      kl_penalty=KLPenalty(**dict(m.kl)),
      optimizer=build_optimizer(config.optim, config.num_train_steps),
      data_shape=shape,
      latent_shape=tuple(latent.shape[1:]),
      dequantized=dequantized,
      temperature=float(config.sample.temperature),
      decode_samples=config.sample.decode,
      iwae_samples=iwae_samples,
      iwae_chunk=iwae_chunk,
      figure_examples=int(m.figures.examples),
      traversal_dims=int(m.figures.traversal_dims),
      traversal_steps=int(m.figures.traversal_steps),
      traversal_range=float(m.figures.traversal_range),
      lr_schedule=learning_rate_schedule(config.optim, config.num_train_steps),
  )
