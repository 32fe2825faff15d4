"""Score-based generative modelling through SDEs (Song et al., ICLR 2021) as a `Method`.

Wires four registered pieces chosen in the config:

* the forward SDE (`gen_jax.diffusion.SDES`: vesde | vpsde | subvpsde, `config.method.sde`);
* a network (`gen_jax.nets.NETS`: ncsnpp for NCSN++/DDPM++, unet for DDPM, time_mlp for
  vector data), wrapped into a score model by `ScoreModel` below;
* a loss (`gen_jax.diffusion.sde_losses.SDE_LOSSES`: dsm | dsm_likelihood | smld | ddpm);
* a sampler (`gen_jax.samplers.SAMPLERS`: pc | euler_maruyama | reverse_diffusion | ancestral
  | ode | ddim, driven by the score; `config.sample.sampler`, its options in
  `config.sample.<sampler>`), so
  `--mode=sample --config.sample.sampler=ode --config.sample.ode.method=rk45` works.

Network -> score (`ScoreModel`): the network sees a conditioning value c(t) and its output o
is turned into a score by a fixed scaling, as in the paper's code:

* VE: c = sigma(t) (NCSN++ embeds log sigma), score = o / sigma(t) ("scale_by_sigma");
* VP / sub-VP: c = 999 t (= the DDPM step for N = 1000), score = -o / std(t), i.e. o is the
  noise prediction eps; for the discrete DDPM loss (`continuous=False`) std is the discrete
  sqrt(1 - abar_i) at i = floor(t (N - 1)), the index the samplers use, so that training
  and sampling agree exactly.

Class-conditional models train with the label dropped (set to the null label num_classes)
with probability `class_dropout`, and sample with classifier-free guidance
score = (1 + w) score(x, t, y) - w score(x, t, null), w = `config.sample.guidance_scale`.

`evaluate` returns per-example [B] arrays: the loss, and when `config.method.likelihood.enabled`
the exact likelihood through the probability-flow ODE (`gen_jax.diffusion.likelihood`): bits/dim of
8-bit images (which requires `config.data.dequantize=True`; see that module for the change of
variables) or the negative log-likelihood in nats of vector data.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from gen_jax.diffusion import controllable, guidance
from gen_jax.methods.base import METHODS, Batch, Metrics
from gen_jax.methods.diffusion_base import DiffusionMethod, build_denoiser
from gen_jax.samplers import SAMPLERS, SampleOutput
from gen_jax.diffusion import likelihood as likelihood_lib
from gen_jax.diffusion.sde_losses import SDE_LOSSES, WEIGHTINGS
from gen_jax.diffusion.processes import SDE, SDES, VESDE, VPSDE, batch_bcast
from gen_jax.core.optim import build_optimizer, learning_rate_schedule
from gen_jax.core.state import TrainState

CONDITIONINGS = ("sigma", "time")
SCALINGS = ("sigma", "neg_std", "none")


@dataclasses.dataclass(frozen=True)
class ScoreModel:
  """Turns a network into score functions s(x, t) of a given SDE (see the module docstring).

  Attributes:
    net: Flax module net(x, c [B], y [B] | None, train=) -> [B, ...] with x's shape.
    sde: the forward SDE.
    conditioning: "sigma" (c = std(t)) or "time" (c = 999 t).
    scaling: "sigma" (score = o / std), "neg_std" (score = -o / std) or "none" (score = o).
    continuous: False uses the discrete DDPM std sqrt(1 - abar_i) of a VPSDE.
  """

  net: nn.Module
  sde: SDE
  conditioning: str = "time"
  scaling: str = "neg_std"
  continuous: bool = True

  def std(self, t: jax.Array) -> jax.Array:
    if not self.continuous and isinstance(self.sde, VPSDE):
      # floor, as the predictors (`SDE.discrete_index`) and the reference's get_score_fn
      return jnp.sqrt(1.0 - self.sde.alphas_cumprod[self.sde.discrete_index(t)])
    return self.sde.marginal_coef(t)[1]

  def apply(self, params, x, t, y, *, train: bool, rng: jax.Array | None = None) -> jax.Array:
    """The score [B, ...] at x [B, ...], t float [B] (labels y [B] or None)."""
    t = jnp.asarray(t, jnp.float32)
    std = self.std(t)
    cond = std if self.conditioning == "sigma" else t * 999.0
    rngs = {"dropout": rng} if (train and rng is not None) else {}
    out = self.net.apply({"params": params}, x, cond, y, train=train, rngs=rngs)
    if self.scaling == "sigma":
      return out / batch_bcast(std, out)
    if self.scaling == "neg_std":
      return -out / batch_bcast(std, out)
    return out

  def score_fn(self, params, labels=None, *, num_classes: int = 0, guidance_scale: float = 0.0):
    """(x, t) -> score with the parameters (and labels, guidance) closed over."""
    apply = lambda x, t, y: self.apply(params, x, t, y, train=False)
    return guidance.guided(apply, labels, num_classes, guidance_scale)


@dataclasses.dataclass(frozen=True)
class ScoreSDE(DiffusionMethod):
  """A score-SDE family instance.

  Attributes:
    model: the ScoreModel (network + SDE + scaling).
    optimizer: optax transformation.
    data_shape: shape of one example, (H, W, C) for images or (D,) for vectors.
    loss: name in SDE_LOSSES; loss_kwargs: its options (eps, reduce_mean, antithetic,
      importance_sampling).
    sampler: name in SAMPLERS; sampler_kwargs: its options.
    num_classes: > 0 for a class-conditional model; class_dropout: p(null label) in training.
    guidance_scale: classifier-free guidance weight w when sampling.
    likelihood: None, or the options of `ode_likelihood` (trace, eps, rtol, atol, max_steps)
      for `evaluate`.
    lr_schedule: the learning rate as a function of the step, for logging.
  """

  model: ScoreModel
  optimizer: optax.GradientTransformation
  data_shape: tuple[int, ...]
  loss: str = "dsm"
  loss_kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
  sampler: str = "pc"
  sampler_kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
  num_classes: int = 0
  class_dropout: float = 0.0
  guidance_scale: float = 0.0
  likelihood: Mapping[str, Any] | None = None
  lr_schedule: Any = None

  denoiser = property(lambda self: self.model.net)
  example_shape = property(lambda self: self.data_shape)
  process = property(lambda self: self.model.sde)
  sampler_options = property(lambda self: self.sampler_kwargs)
  prediction = "score"  # what `denoise_fn` returns

  @property
  def sde(self) -> SDE:
    return self.model.sde

  def impute(self, state: TrainState, rng: jax.Array, *, kind: str, known: jax.Array,
             mask: jax.Array | None = None, **pc_options) -> SampleOutput:
    """Inpainting or colorization with the EMA parameters (`diffusion.controllable`).

    Args:
      kind: "inpaint" (keep `known` where `mask` is 1) or "colorize" (RGB images whose grey
        level equals that of `known`).
      known: [B, H, W, C] images in [-1, 1].
      mask: inpainting only: 1 = known pixel, broadcastable to `known`.
      **pc_options: predictor, corrector, snr, n_corrector_steps, num_steps, eps, denoise.

    Returns:
      SampleOutput with samples [B, H, W, C] in [-1, 1] and the NFE per sample.
    """
    labels = (jnp.arange(known.shape[0], dtype=jnp.int32) % self.num_classes
              if self.num_classes else None)
    denoise_fn = self.denoise_fn(state.ema_params, labels)
    common = dict(rng=rng, prediction=self.prediction, **pc_options)
    if kind == "inpaint":
      out = controllable.pc_inpaint(denoise_fn, self.sde, data=known, mask=mask, **common)
    elif kind == "colorize":
      out = controllable.pc_colorize(denoise_fn, self.sde, gray=known, **common)
    else:
      raise ValueError(f"Unknown conditional sampling kind {kind!r}; choose inpaint or "
                       "colorize.")
    evals = guidance.evals_per_step(labels, self.guidance_scale)
    return out.replace(samples=jnp.clip(out.samples, -1.0, 1.0), nfe=out.nfe * evals)

  def loss_terms(self, params, batch: Batch, rng: jax.Array, *, train: bool) -> jax.Array:
    """Per-example training loss [B]."""
    x0 = batch["image"].astype(jnp.float32)
    rng_loss, rng_label, rng_dropout = jax.random.split(rng, 3)
    y = self._labels(batch)
    if y is not None and train and self.class_dropout > 0:
      y = guidance.drop_labels(rng_label, y, self.class_dropout, self.num_classes)
    score_fn = lambda x, t: self.model.apply(params, x, t, y, train=train, rng=rng_dropout)
    return SDE_LOSSES.get(self.loss)(score_fn, self.sde, x0, rng_loss, **self.loss_kwargs)

  def denoise_fn(self, params, labels: jax.Array | None = None):
    """The sampler's score function with the EMA (or given) parameters and guidance."""
    return self.model.score_fn(params, labels, num_classes=self.num_classes,
                               guidance_scale=self.guidance_scale)

  def log_likelihood(self, params, batch: Batch, rng: jax.Array) -> likelihood_lib.LikelihoodOutput:
    """log p(x) [B] in nats of batch['image'] through the probability-flow ODE."""
    opts = dict(self.likelihood or {})
    labels = self._labels(batch)
    score_fn = self.model.score_fn(params, labels, num_classes=self.num_classes)
    return likelihood_lib.ode_likelihood(self.sde, score_fn, batch["image"], rng=rng, **opts)

  def evaluate(self, state: TrainState, batch: Batch, rng: jax.Array) -> Metrics:
    rng_loss, rng_ll = jax.random.split(rng)
    out = {"loss": self.loss_terms(state.ema_params, batch, rng_loss, train=False)}
    if self.likelihood is not None:
      ll = self.log_likelihood(state.ema_params, batch, rng_ll)
      dim = math.prod(self.data_shape)
      if self.is_image:
        out["bpd"] = likelihood_lib.bits_per_dim(ll.logp, dim)
      else:
        out["nll"] = -ll.logp
      out["likelihood_nfe"] = jnp.full(ll.logp.shape, ll.nfe, jnp.float32)
    return out


def _build_sde(m) -> SDE:
  name = m.sde
  cls = SDES.get(name)
  if cls is VESDE:
    return VESDE(sigma_min=float(m.sigma_min), sigma_max=float(m.sigma_max), N=int(m.num_scales))
  return cls(beta_min=float(m.beta_min), beta_max=float(m.beta_max), N=int(m.num_scales))


@METHODS.register("score_sde")
def build_score_sde(config, info) -> ScoreSDE:
  """ScoreSDE from `config.model`, `config.method`, `config.optim`, `config.sample`, `config.data`.

  config.method fields: sde, sigma_min, sigma_max, beta_min, beta_max, num_scales, continuous,
  loss, weighting, eps (training t_min), reduce_mean, antithetic, importance_sampling, conditioning
  ("auto" | sigma | time), scaling ("auto" | sigma | neg_std | none), class_conditional,
  class_dropout, likelihood (enabled, trace, eps, rtol, atol, max_steps).
  """
  m = config.method
  sde = _build_sde(m)
  is_ve = isinstance(sde, VESDE)
  conditioning = m.conditioning if m.conditioning != "auto" else ("sigma" if is_ve else "time")
  scaling = m.scaling if m.scaling != "auto" else ("sigma" if is_ve else "neg_std")
  if conditioning not in CONDITIONINGS:
    raise ValueError(f"method.conditioning={conditioning!r}; choose auto, "
                     f"{', '.join(CONDITIONINGS)}.")
  if scaling not in SCALINGS:
    raise ValueError(f"method.scaling={scaling!r}; choose auto, {', '.join(SCALINGS)}.")
  SDE_LOSSES.get(m.loss)
  if m.continuous and m.loss == "ddpm":
    raise ValueError(
        "method.continuous=True with loss='ddpm' is refused: the ddpm loss draws the discrete "
        "step i = 0 (t = 0), where the continuous VP std(0) = 0 and the score -eps / std is "
        "infinite (NaN loss). Set method.continuous=False (the DDPM discretisation), or use a "
        "continuous loss such as 'dsm'.")
  if not m.continuous and m.loss not in ("smld", "ddpm"):
    raise ValueError(f"method.continuous=False needs a discrete loss (smld for vesde, ddpm for "
                     f"vpsde), got loss={m.loss!r}.")
  net, data_shape, num_classes = build_denoiser(config, info)
  sampler = config.sample.sampler
  SAMPLERS.get(sampler)
  sampler_kwargs = dict(config.sample.get(sampler, {}))
  likelihood = None
  ll = m.likelihood
  if ll.enabled:
    if len(data_shape) == 3 and not config.data.dequantize:
      raise ValueError(
          "method.likelihood.enabled=True reports bits/dim, which needs uniformly dequantized "
          "8-bit data: with config.data.dequantize=False the images sit on a grid of 256 "
          "values, a continuous density can grow without bound on it and the 'bits/dim' "
          "comes out meaningless (often negative). Set --config.data.dequantize=True, or "
          "--config.method.likelihood.enabled=False.")
    likelihood = dict(trace=ll.trace, eps=float(ll.eps), rtol=float(ll.rtol),
                      atol=float(ll.atol), max_steps=int(ll.max_steps))
  loss_kwargs = dict(reduce_mean=bool(m.reduce_mean))
  weighting = m.get("weighting", "sigma2")  # absent from configs of older runs
  if weighting != "sigma2":
    WEIGHTINGS.get(weighting)
    if m.loss != "dsm":
      raise ValueError(f"method.weighting={weighting!r} applies to loss='dsm' only, got "
                       f"loss={m.loss!r}; set method.weighting='sigma2'.")
    loss_kwargs["weighting"] = weighting
  if m.continuous:
    loss_kwargs.update(eps=float(m.eps), antithetic=bool(m.antithetic))
    if m.importance_sampling:
      if m.loss != "dsm_likelihood":
        raise ValueError("method.importance_sampling=True applies to loss='dsm_likelihood' "
                         f"only, got loss={m.loss!r}.")
      loss_kwargs["importance_sampling"] = True
  return ScoreSDE(
      model=ScoreModel(net=net, sde=sde, conditioning=conditioning, scaling=scaling,
                       continuous=bool(m.continuous)),
      optimizer=build_optimizer(config.optim, config.num_train_steps),
      data_shape=data_shape,
      loss=m.loss,
      loss_kwargs=loss_kwargs,
      sampler=sampler,
      sampler_kwargs=sampler_kwargs,
      num_classes=num_classes,
      class_dropout=float(m.class_dropout) if num_classes else 0.0,
      guidance_scale=float(config.sample.guidance_scale),
      likelihood=likelihood,
      lr_schedule=learning_rate_schedule(config.optim, config.num_train_steps),
  )
