"""Gaussian diffusion models as one `Method`: DDPM, DDIM sampling and score SDEs alike.

Ho, Jain & Abbeel, "Denoising Diffusion Probabilistic Models" (NeurIPS 2020); Song, Meng &
Ermon, "Denoising Diffusion Implicit Models" (ICLR 2021); Song et al., "Score-Based Generative
Modeling through SDEs" (ICLR 2021); Nichol & Dhariwal 2021 (cosine schedule); Salimans & Ho
2022 (v-prediction); Ho & Salimans 2021 (classifier-free guidance); Karras et al. 2022 (EDM:
process "edm" with precondition "edm" and loss "edm", `gen_jax.diffusion.edm`).

A model is a network, a noise process x_t = alpha(t) x0 + sigma(t) z (a DDPM chain of T steps,
a VP / sub-VP / VE SDE or EDM's sigma process, `gen_jax.diffusion`), what the network outputs (`prediction`, one
of `gaussian.PREDICTIONS`), what it sees of t (`time_input`), a loss (`losses.LOSSES`) and a
sampler (`gen_jax.samplers.SAMPLERS`), each chosen by name in the config:

* training: the registered loss of the network in its own parameterisation, with labels
  dropped to the null label with probability `class_dropout` (classifier-free guidance);
* sampling (`sample`, with a `SampleSpec`): the configured sampler on the process, guided
  with out = (1 + w) out(y) - w out(null), and with `classifier_guidance` (a noisy
  classifier's workdir and scale in `config.sample.classifier_guidance`) by its gradient;
  a learned-variance model (improved DDPM, `learned_variance`) has 2C output channels,
  of which samplers see the first C unless they use both (the "learned_variance" one);
* evaluation: the per-example loss, DDPM's variational bound in bits/dim (chains of 8-bit
  images), and with `likelihood` the exact bits/dim (or nats) of the probability-flow ODE.

Three names build it (`config.method.name`): "diffusion" reads the fields of `FIELDS`
directly; "ddpm" and "score_sde" are presets that read the configs of those families
(configs/ddpm, configs/score_sde, and every run written before they were one class) and fill
in the rest. Score-SDE networks follow the paper's code: VE sees sigma(t) and outputs sigma(t)
times the score ("scaled_score"), VP / sub-VP see 999 t and output eps; with the discrete DDPM
loss (`continuous=False`) a VP network's eps refers to the N-step chain
(`processes.DiscreteVP`), whose std sqrt(1 - abar_i) at i = floor(t (N - 1)) turns it into
the score the samplers integrate.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
from typing import Any, Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from gen_jax import nets
from gen_jax.core import precision
from gen_jax.core.optim import build_optimizer, learning_rate_schedule
from gen_jax.core.sample import SampleSpec
from gen_jax.core.state import TrainState
from gen_jax.diffusion import guidance, likelihood as likelihood_lib
from gen_jax.diffusion.classifier_guidance import classifier_guided
from gen_jax.diffusion.gaussian import PREDICTIONS, score_fn_of
from gen_jax.diffusion.edm import EDMPrecond, EDMProcess
from gen_jax.diffusion.losses import LOSSES, WEIGHTINGS
from gen_jax.diffusion.processes import SDE, SDES, VESDE, VPSDE, DiscreteVP
from gen_jax.diffusion.schedules import DiffusionSchedule, make_schedule
from gen_jax.methods.base import METHODS, Batch, Method, Metrics, single_network_step
from gen_jax.samplers import SAMPLERS, AdaptiveSampleOutput

# What the network sees of t: t itself (a DDPM step), 999 t (score_sde's VP time), sigma(t).
TIME_INPUTS = ("t", "time", "sigma")
SAMPLE_OPTIONS = ("guidance_scale", "sampler", "sampler_options")


@dataclasses.dataclass(frozen=True)
class Diffusion(Method):
  """A diffusion model.

  Attributes:
    net: Flax module `net(x [B, ...], c [B] float, y [B] int | None, train=) -> x's shape`.
    process: a `DiffusionSchedule` (t = int step) or an `SDE` (t = float time).
    optimizer: optax transformation for the network parameters.
    example_shape: (H, W, C) of 8-bit images (samples clipped to [-1, 1]) or (D,) of vectors.
    prediction: what the network outputs, a name in `PREDICTIONS`.
    time_input: what it sees of t, one of TIME_INPUTS.
    discrete: its output refers to the N-step chain of a VP SDE (`DiscreteVP`).
    learned_variance: the network outputs 2C channels, its output and improved DDPM's v_var
      (`diffusion.learned_variance`); samplers see the first C unless they take both.
    loss, loss_kwargs: a name in `LOSSES` and its options (weighting, reduce_mean, eps, ...).
    num_classes: > 0 for a class-conditional model (label `num_classes` is "no label").
    class_dropout: probability of training on the null label.
    sampler, sampler_kwargs: the name in `SAMPLERS` `sample` uses, and its options.
    clip_x0: given to the sampler when not None (the chain samplers clip x0_hat).
    guidance_scale: w of classifier-free guidance.
    classifier_guidance: None, or a `ClassifierGuidance` (a noisy classifier and its scale s)
      that `sample` adds to the denoiser of any sampler (`diffusion.classifier_guidance`).
    likelihood: None, or the options of `ode_likelihood` (trace, eps, rtol, atol, max_steps)
      for `evaluate` (SDE processes).
    lr_schedule: the learning rate as a function of the step, for logging.
  """

  net: nn.Module
  process: Any
  optimizer: optax.GradientTransformation
  example_shape: tuple[int, ...]
  prediction: str = "eps"
  time_input: str = "t"
  discrete: bool = False
  learned_variance: bool = False
  loss: str = "mse"
  loss_kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
  num_classes: int = 0
  class_dropout: float = 0.0
  sampler: str = "ddim"
  sampler_kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
  clip_x0: bool | None = None
  guidance_scale: float = 0.0
  classifier_guidance: Any = None
  likelihood: Mapping[str, Any] | None = None
  lr_schedule: Any = None

  @property
  def output_process(self):
    """The process the network's parameterisation refers to."""
    return DiscreteVP(self.process) if self.discrete else self.process

  @property
  def sample_prediction(self) -> str:
    """The type of `denoise_fn`'s output: the network's own, or the score of a chain net."""
    return "score" if self.discrete else self.prediction

  @property
  def is_image(self) -> bool:
    """Whether the data are 8-bit images [H, W, C] (not vectors such as 2-D toy points)."""
    return len(self.example_shape) == 3

  # ---------------------------------------------------------------- the network
  def apply(self, params, x, t, y, *, train: bool, rng: jax.Array | None = None) -> jax.Array:
    """The network's output [B, ...] at x [B, ...], t [B] (labels y [B] or None)."""
    t = jnp.asarray(t)
    cond = t.astype(jnp.float32)
    if self.time_input == "sigma":
      cond = self.output_process.marginal_coef(cond)[1]
    elif self.time_input == "time":
      cond = cond * 999.0
    rngs = {"dropout": rng} if (train and rng is not None) else {}
    return self.net.apply({"params": params}, x, cond, y, train=train, rngs=rngs)

  def model_fn(self, params, y=None, *, train: bool = False, rng=None):
    """(x, t) -> the network's output, the model of every loss."""
    return lambda x, t: self.apply(params, x, t, y, train=train, rng=rng)

  def denoise_fn(self, params, labels: jax.Array | None = None,
                 guidance_scale: float | None = None, *, keep_variance: bool = False,
                 classifier_labels: jax.Array | None = None):
    """The samplers' view (x_t, t) -> output of type `sample_prediction`, guided; with
    `keep_variance` a learned-variance model's v_var channels are kept (appended); with
    `classifier_labels` [B] the classifier guidance towards them is added."""
    w = self.guidance_scale if guidance_scale is None else guidance_scale

    def apply(x, t, y):
      fn = self.model_fn(params, y)
      if self.discrete:
        fn = score_fn_of(fn, self.output_process, self.prediction)
      out = fn(x, t)
      if self.learned_variance and not keep_variance:
        out = out[..., :self.example_shape[-1]]
      return out

    fn = guidance.guided(apply, labels if self.num_classes else None, self.num_classes, w)
    if classifier_labels is None or self.classifier_guidance is None:
      return fn
    return classifier_guided(fn, self.process, self.sample_prediction,
                             self.classifier_guidance, classifier_labels,
                             channels=self.example_shape[-1])

  # ---------------------------------------------------------------- the contract
  def init(self, rng: jax.Array, batch: Batch) -> TrainState:
    del batch  # parameter shapes do not depend on the data, nor on the time input
    x = jnp.zeros((1, *self.example_shape), jnp.float32)
    y = jnp.zeros((1,), jnp.int32) if self.num_classes else None
    params = self.net.init({"params": rng}, x, jnp.zeros((1,), jnp.float32), y,
                           train=False)["params"]
    return TrainState.create(params, self.optimizer.init(params))

  def loss_terms(self, params, batch: Batch, rng: jax.Array, *, train: bool) -> jax.Array:
    """Per-example training loss [B]."""
    x0 = batch["image"].astype(jnp.float32)
    rng_loss, rng_label, rng_dropout = jax.random.split(rng, 3)
    y = guidance.batch_labels(batch, self.num_classes)
    if y is not None and train and self.class_dropout > 0:
      y = guidance.drop_labels(rng_label, y, self.class_dropout, self.num_classes)
    return LOSSES.get(self.loss)(self.model_fn(params, y, train=train, rng=rng_dropout),
                                 self.output_process, x0, rng_loss, prediction=self.prediction,
                                 **self.loss_kwargs)

  def update(self, state: TrainState, batch: Batch, rng: jax.Array) -> tuple[TrainState, Metrics]:
    def loss_fn(params):
      return jnp.mean(self.loss_terms(params, batch, rng, train=True)), {}

    return single_network_step(state, loss_fn, self.optimizer, self.lr_schedule)

  def sample(self, state: TrainState, rng: jax.Array, num_samples: int,
             spec: SampleSpec = SampleSpec()):
    """num_samples draws [n, *example_shape] with the EMA parameters.

    Reads spec.labels (default: a class-conditional or classifier-guided model cycles
    through the classes; classifier guidance steers towards them),
    guidance_scale, sampler (default: the configured one) and sampler_options (overriding
    its configured options, e.g. num_steps or init_noise). Images are clipped to [-1, 1];
    nfe counts both network evaluations of a guided step.
    """
    spec.refuse_unsupported("diffusion", SAMPLE_OPTIONS)
    cg = self.classifier_guidance
    num_classes = self.num_classes or (cg.num_classes if cg is not None else 0)
    labels = spec.labels if num_classes else None
    if num_classes and labels is None:
      labels = jnp.arange(num_samples, dtype=jnp.int32) % num_classes
    w = self.guidance_scale if spec.guidance_scale is None else float(spec.guidance_scale)
    if w and not self.num_classes:
      raise ValueError(f"guidance_scale={w} needs a class-conditional model; this one is "
                       "unconditional (method.class_conditional=False).")
    name = spec.sampler or self.sampler
    sampler = SAMPLERS.get(name)
    keep_variance = getattr(sampler, "takes_learned_variance", False)
    if keep_variance and not self.learned_variance:
      raise ValueError(f"The {name!r} sampler needs a learned-variance model "
                       "(method.learned_variance=True); this one has a fixed variance.")
    takes_clip = "clip_x0" in inspect.signature(sampler).parameters
    kwargs = {**({"clip_x0": self.clip_x0} if self.clip_x0 is not None and takes_clip else {}),
              **(self.sampler_kwargs if name == self.sampler else {}), **spec.sampler_options}
    shape = None if "init_noise" in kwargs else (num_samples, *self.example_shape)
    denoise_fn = self.denoise_fn(state.ema_params, labels, w, keep_variance=keep_variance,
                                 classifier_labels=labels if cg is not None else None)
    out = sampler(denoise_fn, self.process,
                  rng=rng, shape=shape, prediction=self.sample_prediction, **kwargs)
    samples = jnp.clip(out.samples, -1.0, 1.0) if self.is_image else out.samples
    evals = guidance.evals_per_step(labels if self.num_classes else None, w)
    if isinstance(out, AdaptiveSampleOutput):
      return out.replace(samples=samples).scale_nfe(evals)
    return out.replace(samples=samples, nfe=out.nfe * evals)

  def evaluate(self, state: TrainState, batch: Batch, rng: jax.Array) -> Metrics:
    """Per-example test loss; DDPM's VLB bits/dim on chains of 8-bit images; with
    `likelihood` the ODE bits/dim (images) or NLL in nats (vectors)."""
    params = state.ema_params
    rng_loss, rng_ll = jax.random.split(rng)
    out = {"loss": self.loss_terms(params, batch, rng_loss, train=False)}
    dim = math.prod(self.example_shape)
    labels = guidance.batch_labels(batch, self.num_classes)
    if isinstance(self.process, DiffusionSchedule) and self.is_image:
      nats = LOSSES.get("vlb")(self.model_fn(params, labels), self.process, batch["image"],
                               rng_ll, prediction=self.prediction,
                               learned_variance=self.learned_variance)
      out["vlb_bpd"] = likelihood_lib.nats_to_bits_per_dim(nats, dim)
    if self.likelihood is not None:
      ll = likelihood_lib.ode_likelihood(
          self.denoise_fn(params, labels, 0.0), self.process, batch["image"], rng=rng_ll,
          prediction=self.sample_prediction, **self.likelihood)
      if self.is_image:
        out["bpd"] = likelihood_lib.bits_per_dim(ll.logp, dim)
      else:
        out["nll"] = -ll.logp
      out["likelihood_nfe"] = jnp.full(ll.logp.shape, ll.nfe, jnp.float32)
    return out


# -------------------------------------------------------------------- building from a config
# config.method fields of the "diffusion" name, with their defaults (DDPM's).
FIELDS = dict(
    process="chain",  # chain (a DDPM schedule) | edm | a name in SDES: vesde | vpsde | subvpsde
    beta_schedule="linear", num_timesteps=1000,  # chain: a name in BETA_SCHEDULES, T
    zero_terminal_snr=False,  # chain: rescale to abar_{T-1} = 0 (Lin et al.; v or x0 nets)
    sigma_data=0.5, rho=7.0,  # edm (with sigma_min, sigma_max): data std, sampling grid
    precondition="none",  # none | edm: EDM's c_skip, c_out, c_in, c_noise around the net
    p_mean=-1.2, p_std=1.2,  # loss "edm": ln sigma ~ N(p_mean, p_std^2)
    snr_gamma=5.0, p2_k=1.0, p2_gamma=1.0,  # weightings min_snr (gamma) and p2 (k, gamma)
    sigma_min=0.02, sigma_max=100.0, beta_min=0.1, beta_max=20.0, num_scales=1000,  # SDEs
    discrete=False,  # vpsde: the network's output refers to the N-step chain
    learned_variance=False,  # chain: 2C outputs, improved DDPM's variance (loss hybrid|vlb)
    vlb_weight=0.001,  # lambda of the hybrid loss
    prediction="eps", time_input="t",
    loss="mse", weighting="simple", reduce_mean=True,
    eps=1e-5, antithetic=False, importance_sampling=False,  # continuous-time losses
    class_conditional=False, class_dropout=0.1,
    likelihood=dict(enabled=False, trace="rademacher", eps=1e-5, rtol=1e-5, atol=1e-5,
                    max_steps=4096),
)
_LOSS_OPTIONS = ("weighting", "reduce_mean", "eps", "antithetic", "importance_sampling",
                 "p_mean", "p_std", "vlb_weight")
PRECONDITIONS = ("none", "edm")


def weighting_options(f: Mapping[str, Any]) -> dict[str, float]:
  """The keyword options of the weighting f["weighting"] from its method fields."""
  if f["weighting"] == "min_snr":
    return {"gamma": float(f["snr_gamma"])}
  if f["weighting"] == "p2":
    return {"k": float(f["p2_k"]), "gamma": float(f["p2_gamma"])}
  return {}


def _process(f: Mapping[str, Any]):
  if f["process"] == "chain":
    return make_schedule(f["beta_schedule"], f["num_timesteps"],
                         zero_terminal_snr=bool(f["zero_terminal_snr"]))
  if f["process"] == "edm":
    return EDMProcess(sigma_min=float(f["sigma_min"]), sigma_max=float(f["sigma_max"]),
                      sigma_data=float(f["sigma_data"]), rho=float(f["rho"]))
  cls = SDES.get(f["process"])
  if cls is VESDE:
    return VESDE(sigma_min=float(f["sigma_min"]), sigma_max=float(f["sigma_max"]),
                 N=int(f["num_scales"]))
  return cls(beta_min=float(f["beta_min"]), beta_max=float(f["beta_max"]),
             N=int(f["num_scales"]))


def build(config, info, fields: Mapping[str, Any], *, clip_x0: bool | None,
          loss_kwargs: Mapping[str, Any]) -> Diffusion:
  """The Diffusion of `fields` (those of FIELDS) and config.model, .optim and .sample."""
  f = {**FIELDS, **fields}
  process = _process(f)
  PREDICTIONS.get(f["prediction"])  # fail early, with the list of choices
  LOSSES.get(f["loss"])
  WEIGHTINGS.get(f["weighting"])
  if f["time_input"] not in TIME_INPUTS:
    raise ValueError(f"time_input={f['time_input']!r}; choose one of {', '.join(TIME_INPUTS)}.")
  if f["zero_terminal_snr"] and f["prediction"] not in ("v", "x0"):
    raise ValueError(f"zero_terminal_snr=True makes alpha = 0 at the last step, where an "
                     f"{f['prediction']!r} network cannot give x0; use prediction='v' (as "
                     "Lin et al.) or 'x0'.")
  if f["precondition"] not in PRECONDITIONS:
    raise ValueError(f"precondition={f['precondition']!r}; choose one of "
                     f"{', '.join(PRECONDITIONS)}.")
  if f["precondition"] == "edm" and not (isinstance(process, EDMProcess)
                                         and f["prediction"] == "x0"
                                         and f["time_input"] == "sigma"):
    raise ValueError("precondition='edm' wraps the network into EDM's denoiser D(x; sigma): "
                     "set process='edm', prediction='x0' and time_input='sigma'.")
  if f["discrete"] and not isinstance(process, VPSDE):
    raise ValueError("discrete=True refers to the N-step chain of a vpsde; got "
                     f"process={f['process']!r}.")
  num_classes = int(info.num_classes) if f["class_conditional"] else 0
  if f["class_conditional"] and num_classes <= 0:
    raise ValueError("method.class_conditional=True but the dataset reports no classes; "
                     "set method.class_conditional=False or use a labelled dataset.")
  example_shape = tuple(int(d) for d in info.image_shape)
  ll = f["likelihood"]
  if ll["enabled"]:
    if not isinstance(process, SDE):
      raise ValueError("method.likelihood.enabled=True integrates the probability-flow ODE "
                       "of an SDE; a DDPM chain reports its variational bound instead.")
    if len(example_shape) == 3 and not config.data.dequantize:
      raise ValueError(
          "method.likelihood.enabled=True reports bits/dim, which needs uniformly dequantized "
          "8-bit data: with config.data.dequantize=False the images sit on a grid of 256 "
          "values, a continuous density can grow without bound on it and the 'bits/dim' "
          "comes out meaningless (often negative). Set --config.data.dequantize=True, or "
          "--config.method.likelihood.enabled=False.")
  learned_variance = bool(f["learned_variance"])
  if learned_variance:
    if not isinstance(process, DiffusionSchedule):
      raise ValueError("method.learned_variance=True learns the variance of a discrete chain; "
                       f"set method.process='chain' (got {f['process']!r}).")
    if f["loss"] not in ("hybrid", "vlb"):
      raise ValueError(f"method.learned_variance=True needs a loss that trains the variance "
                       f"('hybrid' or 'vlb'), got loss={f['loss']!r}.")
    loss_kwargs = {**loss_kwargs, "learned_variance": True}
  elif f["loss"] == "hybrid":
    raise ValueError("loss='hybrid' trains a learned variance; set "
                     "method.learned_variance=True.")
  model = dict(config.model)
  channels = example_shape[-1] * (2 if learned_variance else 1)
  net = nets.build_net(model.pop("name"), out_channels=channels,
                       num_classes=num_classes, dtype=precision.compute_dtype(config), **model)
  if f["precondition"] == "edm":
    net = EDMPrecond(net=net, sigma_data=process.sigma_data)
  sampler = config.sample.sampler
  SAMPLERS.get(sampler)
  cg = config.sample.get("classifier_guidance")
  classifier_guidance = None
  if cg is not None and float(cg.scale) != 0.0:
    # Imported here: noisy_classifier builds its process with this module's `_process`.
    from gen_jax.methods.noisy_classifier import load_guidance  # pylint: disable=all
    classifier_guidance = load_guidance(cg.workdir, float(cg.scale), info, process)
  return Diffusion(
      net=net, process=process,
      optimizer=build_optimizer(config.optim, config.num_train_steps),
      example_shape=example_shape, prediction=f["prediction"], time_input=f["time_input"],
      discrete=bool(f["discrete"]), learned_variance=learned_variance, loss=f["loss"],
      loss_kwargs=dict(loss_kwargs),
      num_classes=num_classes,
      class_dropout=float(f["class_dropout"]) if num_classes else 0.0,
      sampler=sampler, sampler_kwargs=dict(config.sample.get(sampler, {})), clip_x0=clip_x0,
      guidance_scale=float(config.sample.guidance_scale),
      classifier_guidance=classifier_guidance,
      likelihood=(dict(trace=ll["trace"], eps=float(ll["eps"]), rtol=float(ll["rtol"]),
                       atol=float(ll["atol"]), max_steps=int(ll["max_steps"]))
                  if ll["enabled"] else None),
      lr_schedule=learning_rate_schedule(config.optim, config.num_train_steps))


@METHODS.register("diffusion")
def build_diffusion(config, info) -> Diffusion:
  """Diffusion from config.method's FIELDS (any left out take their defaults)."""
  fields = {k: v for k, v in config.method.items() if k != "name"}
  unknown = sorted(set(fields) - set(FIELDS))
  if unknown:
    raise ValueError(f"Unknown method field(s) {', '.join(unknown)} of method.name="
                     f"'diffusion'; its fields: {', '.join(sorted(FIELDS))}.")
  fields = {**FIELDS, **fields}
  clip = bool(config.sample.clip_x0) if fields["process"] == "chain" else None
  loss_kwargs = {k: fields[k] for k in _LOSS_OPTIONS}
  if weighting_options(fields):
    loss_kwargs["weighting_options"] = weighting_options(fields)
  return build(config, info, fields, clip_x0=clip, loss_kwargs=loss_kwargs)


@METHODS.register("ddpm")
def build_ddpm(config, info) -> Diffusion:
  """The DDPM preset: config.method of configs/ddpm (a chain, net input t, L_simple)."""
  m = config.method
  weighting = m.get("weighting", "simple")  # absent from configs of older runs
  return build(config, info, dict(
      beta_schedule=m.beta_schedule, num_timesteps=m.num_timesteps, prediction=m.prediction,
      loss=m.loss, weighting=weighting, class_conditional=m.class_conditional,
      class_dropout=m.class_dropout), clip_x0=bool(config.sample.clip_x0),
      loss_kwargs={} if weighting == "simple" else {"weighting": weighting})


# score_sde's scaling of the network output -> the parameterisation it amounts to.
_SCALING_PREDICTIONS = {"sigma": "scaled_score", "neg_std": "eps", "none": "score"}


@METHODS.register("score_sde")
def build_score_sde(config, info) -> Diffusion:
  """The score-SDE preset: config.method of configs/score_sde.

  Fields: sde, sigma_min, sigma_max, beta_min, beta_max, num_scales, continuous, loss,
  weighting, eps (training t_min), reduce_mean, antithetic, importance_sampling, conditioning
  ("auto" | sigma | time), scaling ("auto" | sigma | neg_std | none), class_conditional,
  class_dropout, likelihood (enabled, trace, eps, rtol, atol, max_steps).
  """
  m = config.method
  is_ve = SDES.get(m.sde) is VESDE
  conditioning = m.conditioning if m.conditioning != "auto" else ("sigma" if is_ve else "time")
  scaling = m.scaling if m.scaling != "auto" else ("sigma" if is_ve else "neg_std")
  if conditioning not in ("sigma", "time"):
    raise ValueError(f"method.conditioning={conditioning!r}; choose auto, sigma, time.")
  if scaling not in _SCALING_PREDICTIONS:
    raise ValueError(f"method.scaling={scaling!r}; choose auto, "
                     f"{', '.join(_SCALING_PREDICTIONS)}.")
  LOSSES.get(m.loss)
  if m.continuous and m.loss == "ddpm":
    raise ValueError(
        "method.continuous=True with loss='ddpm' is refused: the ddpm loss draws the discrete "
        "step i = 0 (t = 0), where the continuous VP std(0) = 0 and the score -eps / std is "
        "infinite (NaN loss). Set method.continuous=False (the DDPM discretisation), or use a "
        "continuous loss such as 'dsm'.")
  if not m.continuous and m.loss not in ("smld", "ddpm"):
    raise ValueError(f"method.continuous=False needs a discrete loss (smld for vesde, ddpm for "
                     f"vpsde), got loss={m.loss!r}.")
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
  fields = dict(
      process=m.sde, sigma_min=m.sigma_min, sigma_max=m.sigma_max, beta_min=m.beta_min,
      beta_max=m.beta_max, num_scales=m.num_scales, loss=m.loss,
      discrete=not m.continuous and not is_ve, prediction=_SCALING_PREDICTIONS[scaling],
      time_input=conditioning, class_conditional=m.class_conditional,
      class_dropout=m.class_dropout, likelihood=dict(m.likelihood))
  return build(config, info, fields, clip_x0=None, loss_kwargs=loss_kwargs)
