"""GANs: DCGAN, SNGAN, WGAN-GP, conditional (projection) GANs and Diffusion-GAN.

Goodfellow et al. 2014; Radford et al. 2016 (DCGAN); Gulrajani et al. 2017 (WGAN-GP);
Miyato et al. 2018 (SNGAN) and Miyato & Koyama 2018 (projection discriminator);
Brock et al. 2019 (BigGAN: orthogonal regularisation, standing statistics, truncation);
Heusel et al. 2017 (TTUR: separate learning rates); Zhao et al. 2020 (DiffAugment);
Wang et al. 2023 (Diffusion-GAN, `gen_jax.gan.adaptive_diffusion`).

One `update` is one generator iteration: `n_dis` discriminator steps, each on its own
slice of the batch (the global batch holds n_dis * b real examples, b = batch / n_dis),
then one generator step on b fresh latents. Each network has its own optimiser
(`optim_g`, `optim_d` in the config: learning rates and Adam betas).

State layout:
  params      {"generator": ..., "discriminator": ...}
  opt_state   {"generator": ..., "discriminator": ...}
  ema_params  the trainer's EMA of params; sampling and evaluation use its generator.
  model_state {"generator": {"batch_stats": ...}, "discriminator": {"spectral": ...,
               "batch_stats": ...}, and "lecam" / "diffusion" / "ema_generator" when
               enabled}

BigGAN's pieces (Brock et al. 2019; configs/gan/biggan_*.py):
* Orthogonal regularisation of G (ortho_weight = the official G_ortho strength beta):
  ortho_weight / 2 * sum_W ||W W^T * (1 - I)||_F^2 over G's weights but the shared class
  embedding, added to the generator loss (gradient 2 beta (W W^T * (1 - I)) W, exactly
  BigGAN-PyTorch's utils.ortho; see gan.regularizers). Logged as g_ortho (unweighted).
* Standing statistics (standing_stats = K > 0): `prepare_sampling` re-estimates the batch
  norm statistics of the EMA generator (gan.standing_stats: the mean over K batches of
  standing_batch_size fresh latents of each layer's batch statistics, EMA weights in
  training mode) and keeps them in model_state["ema_generator"] = {"batch_stats": ...,
  "estimated_at": step of the estimate, -1 before the first}. Sampling and evaluation use
  them once estimated, else the raw generator's running statistics. The trainer calls
  `prepare_sampling` before every sample grid, evaluation, --mode=sample and --mode=eval
  (train.experiment.Experiment.prepare_sampling), as the official code calls
  accumulate_standing_stats before sampling and testing.
* Truncation trick: `sample` draws z from N(0, I) truncated to |z_i| <= psi
  (gan.truncation), psi = spec.truncation, else the configured sample.truncation; None:
  untruncated. `evaluate` samples the same way (D's logits on those samples).
* EMA start (ema.start, trainer): the EMA copies the weights until that step.

Batch norm and spectral norm state: the generator's running batch statistics are updated
by its own step (train=True); the discriminator's power-iteration vectors (and batch
statistics, if any) by the discriminator steps only -- its forward pass inside the
generator step uses the same state and discards the updates. Sampling and evaluation run
both networks with train=False (running statistics, frozen vectors).

Multi-device: nets are written for one device and the step is jitted over the global,
sharded batch, so batch-norm statistics are GLOBAL batch statistics (XLA inserts the
cross-device reductions): 8 devices compute what 1 device computes on the same batch
(tests/gan/test_gan_method.py checks it). Sync-BN is therefore the only behaviour.

Metrics of `update`: loss (= d_loss, the discriminator loss of the last D step),
d_loss, g_loss, d_real / d_fake (mean logits, last D step), gp / r1 / lecam when
enabled, d_* and g_* gradient/parameter/update norms, and a mode-coverage signal:
`diversity` (pairwise-distance ratio fake/real, see gan.monitoring) always, plus
`modes_covered` and `high_quality` when the data has known modes (2-D mixtures), and
g_lr / d_lr, the learning rates of this generator step.

Learning-rate schedules count GENERATOR steps for both networks (`build_optimizers`): the
n_dis discriminator steps of generator step k all use lr_d(k), as in Miyato et al.'s
SNGAN code (its LinearShift runs per updater iteration) and WGAN-GP's code.

Deviations from Miyato et al.'s SNGAN code (chainer sngan_projection) that remain:
* Order within an iteration: the reference's updater steps G first (at i == 0) and then
  D n_dis times; here the n_dis D steps come first, then G (on b fresh latents).
* Power iteration: one step per discriminator training step, with its vectors kept in
  model_state; the generator step and evaluation use them frozen (the reference also
  updates u when D is called inside the generator's update).
* EMA of G (trainer) for sampling and evaluation; the reference evaluates raw G.
* Global batch statistics under multi-device jit (Sync-BN); the reference is one GPU.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from gen_jax import nets
from gen_jax.data import toy
from gen_jax.gan import monitoring, regularizers
from gen_jax.gan.standing_stats import standing_statistics
from gen_jax.gan.truncation import check_truncation, latent_normal
from gen_jax.gan.adaptive_diffusion import AdaptiveDiffusion
from gen_jax.gan.diffaugment import diff_augment, parse_policy
from gen_jax.gan.losses import GAN_LOSSES
from gen_jax.methods.base import METHODS, Batch, Method, Metrics
from gen_jax.core.sample import SampleOutput, SampleSpec
from gen_jax.core.optim import apply_gradients, build_optimizer, learning_rate_schedule
from gen_jax.core import precision
from gen_jax.core.state import TrainState

G, D = "generator", "discriminator"


def apply_net(net: nn.Module, params, variables: dict, *args, train: bool, rng=None, **kwargs):
  """Applies `net`; returns (output, variables) with the collections updated when training.

  `variables` holds the non-parameter collections (batch_stats, spectral, ...); with
  train=True they are mutable and the new values are returned, else they come back as is.
  """
  rngs = {"dropout": rng} if (train and rng is not None) else {}
  full = {"params": params, **variables}
  if train and variables:
    out, new = net.apply(full, *args, train=True, mutable=list(variables), rngs=rngs, **kwargs)
    return out, {k: new[k] for k in variables}
  return net.apply(full, *args, train=train, rngs=rngs, **kwargs), variables


def init_net(net: nn.Module, rng: jax.Array, *args, **kwargs) -> tuple[Any, dict]:
  """(params, other collections) of `net` initialised on `args` with train=False."""
  variables = net.init({"params": rng}, *args, train=False, **kwargs)
  variables = {k: v for k, v in variables.items()}
  params = variables.pop("params")
  return params, variables


def toy_modes(config) -> tuple[np.ndarray | None, float]:
  """The modes and their std of a toy2d Gaussian mixture dataset, else (None, 0)."""
  if config.data.source != "toy2d":
    return None, 0.0
  dist = toy.TOY_DISTRIBUTIONS.get(config.data.name)
  if dist.modes is None:
    return None, 0.0
  return np.asarray(dist.modes, np.float32), float(dist.mode_std)


def coverage_metrics(fake: jax.Array, real: jax.Array, modes, mode_std: float) -> Metrics:
  """The mode-coverage signal logged by GAN-family updates (see gan.monitoring)."""
  out = {"diversity": monitoring.diversity_ratio(fake, real)}
  if modes is not None:
    out.update(monitoring.mode_metrics(fake.reshape(fake.shape[0], -1), jnp.asarray(modes),
                                       mode_std))
  return out


def learning_rates(lr_g, lr_d, step: jax.Array) -> Metrics:
  """{"g_lr", "d_lr"}: both schedules at generator step `step` (those that are set)."""
  out = {}
  for name, schedule in (("g_lr", lr_g), ("d_lr", lr_d)):
    if schedule is not None:
      out[name] = jnp.asarray(schedule(step), jnp.float32)
  return out


@dataclasses.dataclass(frozen=True)
class GAN(Method):
  """A GAN family instance.

  Attributes:
    generator: `G(z [B, Z], y [B] | None, train=) -> [B, *data_shape]`.
    discriminator: `D(x, y | None, t | None, train=) -> logits [B]`.
    optimizer_g, optimizer_d: optax transformations (TTUR: their own learning rates).
    data_shape: shape of one example, e.g. (32, 32, 3) or (2,).
    z_dim: latent size; z ~ N(0, I).
    loss: name in `GAN_LOSSES`.
    n_dis: discriminator steps per generator step.
    gp_weight: WGAN-GP gradient penalty weight (0: off).
    r1_gamma: R1 weight gamma (the penalty enters as gamma / 2 * R1; 0: off).
    r1_every: lazy R1: apply it on every k-th discriminator step only.
    r1_lazy_scaling: its weight on those steps: "stylegan2" k * gamma / 2 (StyleGAN2),
      "none" gamma / 2 (DDGAN's code); see gan.regularizers.
    lecam_weight, lecam_decay: LeCam regulariser weight (0: off) and its EMA decay.
    diffaugment: DiffAugment policy applied to every discriminator input.
    num_classes: > 0 for a class-conditional GAN (labels from the batch).
    diffusion: Diffusion-GAN's adaptive discriminator-input diffusion, or None.
    modes, mode_std: known modes of the data (2-D mixtures) for coverage metrics.
    lr_g, lr_d: the optimisers' learning-rate schedules as functions of the generator
      step (logged as g_lr / d_lr); None logs nothing.
    ortho_weight: BigGAN's orthogonal regularisation strength on G (0: off).
    ortho_exclude: module names of G whose parameters it skips (the shared embedding).
    standing_stats: number of standing-statistics batches for the EMA generator (0: off,
      sampling uses the raw generator's running statistics).
    standing_batch_size: latents per standing batch.
    truncation: default truncation psi of `sample` (None: untruncated latents).
  """

  generator: nn.Module
  discriminator: nn.Module
  optimizer_g: optax.GradientTransformation
  optimizer_d: optax.GradientTransformation
  data_shape: tuple[int, ...]
  z_dim: int = 128
  loss: str = "hinge"
  n_dis: int = 1
  gp_weight: float = 0.0
  r1_gamma: float = 0.0
  r1_every: int = 1
  r1_lazy_scaling: str = "stylegan2"
  lecam_weight: float = 0.0
  lecam_decay: float = 0.99
  diffaugment: tuple[str, ...] = ()
  num_classes: int = 0
  diffusion: AdaptiveDiffusion | None = None
  modes: Any = None
  mode_std: float = 0.0
  lr_g: Callable[[jax.Array], jax.Array] | None = None
  lr_d: Callable[[jax.Array], jax.Array] | None = None
  ortho_weight: float = 0.0
  ortho_exclude: tuple[str, ...] = ("shared",)
  standing_stats: int = 0
  standing_batch_size: int = 64
  truncation: float | None = None

  grad_accumulation_refusal = (
      "one update takes n_dis discriminator steps and a generator step with two "
      "optimisers, each on its own part of the batch")

  # ---------------------------------------------------------------- pieces

  def latents(self, rng: jax.Array, n: int,
              truncation: float | None = None) -> tuple[jax.Array, jax.Array | None]:
    """z [n, Z] ~ N(0, I) (truncated to |z_i| <= truncation if set) and uniform labels [n]
    (None when unconditional)."""
    r_z, r_y = jax.random.split(rng)
    z = latent_normal(r_z, (n, self.z_dim), truncation)
    y = jax.random.randint(r_y, (n,), 0, self.num_classes) if self.num_classes else None
    return z, y

  def generate(self, params, variables, z, y, *, train: bool):
    return apply_net(self.generator, params, variables, z, y, train=train)

  def discriminate(self, params, variables, x, y, t, *, train: bool):
    return apply_net(self.discriminator, params, variables, x, y, t, train=train)

  def d_inputs(self, rng, x, model_state):
    """What the discriminator sees of x: DiffAugment, then Diffusion-GAN noise; (x, t)."""
    r_aug, r_diff = jax.random.split(rng)
    x = diff_augment(r_aug, x, self.diffaugment)
    if self.diffusion is None:
      return x, None
    x, t = self.diffusion.diffuse(r_diff, x, model_state["diffusion"])
    return x, t.astype(jnp.float32)

  # ---------------------------------------------------------------- contract

  def init(self, rng: jax.Array, batch: Batch) -> TrainState:
    r_g, r_d = jax.random.split(rng)
    z = jnp.zeros((1, self.z_dim), jnp.float32)
    y = jnp.zeros((1,), jnp.int32) if self.num_classes else None
    t = jnp.zeros((1,), jnp.float32) if self.diffusion is not None else None
    g_params, g_vars = init_net(self.generator, r_g, z, y)
    x = jnp.zeros((1, *self.data_shape), jnp.float32)
    d_params, d_vars = init_net(self.discriminator, r_d, x, y, t)
    params = {G: g_params, D: d_params}
    opt_state = {G: self.optimizer_g.init(g_params), D: self.optimizer_d.init(d_params)}
    model_state = {G: g_vars, D: d_vars}
    if self.lecam_weight:
      model_state["lecam"] = {"real": jnp.zeros((), jnp.float32),
                              "fake": jnp.zeros((), jnp.float32)}
    if self.diffusion is not None:
      model_state["diffusion"] = self.diffusion.init_state()
    if self.standing_stats and "batch_stats" in g_vars:
      model_state["ema_generator"] = {
          "batch_stats": jax.tree.map(jnp.copy, g_vars["batch_stats"]),
          "estimated_at": jnp.full((), -1, jnp.int32)}
    return TrainState.create(params, opt_state, model_state)

  def _d_step(self, g_params, g_vars, carry, inputs):
    """One discriminator step on a real slice; returns the new carry and its metrics."""
    d_params, d_opt, ms, d_index = carry
    real, y_real, rng = inputs
    b = real.shape[0]
    r_lat, r_real, r_fake, r_alpha = jax.random.split(rng, 4)
    z, y_fake = self.latents(r_lat, b)
    if y_fake is None:
      y_real = None
    fake, _ = self.generate(g_params, g_vars, z, y_fake, train=True)
    fake = jax.lax.stop_gradient(fake)
    x_real, t_real = self.d_inputs(r_real, real, ms)
    x_fake, t_fake = self.d_inputs(r_fake, fake, ms)

    def loss_fn(dp):
      d_real, dv = self.discriminate(dp, ms[D], x_real, y_real, t_real, train=True)
      d_fake, dv = self.discriminate(dp, dv, x_fake, y_fake, t_fake, train=True)
      loss = GAN_LOSSES.get(self.loss).discriminator(d_real, d_fake)
      aux = {"d_real": jnp.mean(d_real), "d_fake": jnp.mean(d_fake)}
      d_of = lambda yy, tt: (lambda v: self.discriminate(dp, dv, v, yy, tt, train=True)[0])
      if self.gp_weight:
        alpha = jax.random.uniform(r_alpha, (b,))
        gp = regularizers.gradient_penalty(d_of(y_real, t_real), x_real, x_fake, alpha)
        loss += self.gp_weight * gp
        aux["gp"] = gp
      if self.r1_gamma:
        r1 = regularizers.lazy_penalty(
            d_index, self.r1_every, 0.5 * self.r1_gamma,
            lambda: regularizers.r1_penalty(d_of(y_real, t_real), x_real),
            self.r1_lazy_scaling)
        loss += r1
        aux["r1"] = r1  # weighted (see r1_lazy_scaling) on the lazy steps, 0 otherwise
      if self.lecam_weight:
        lc = regularizers.lecam_penalty(d_real, d_fake, ms["lecam"]["real"], ms["lecam"]["fake"])
        loss += self.lecam_weight * lc
        aux["lecam"] = lc
      return loss, (aux, dv, d_real, d_fake)

    (loss, (aux, dv, d_real, d_fake)), grads = jax.value_and_grad(loss_fn, has_aux=True)(d_params)
    d_params, d_opt, norms = apply_gradients(self.optimizer_d, grads, d_opt, d_params, prefix="d_")
    ms = {**ms, D: dv}
    if self.lecam_weight:
      dec = self.lecam_decay
      ms["lecam"] = {"real": dec * ms["lecam"]["real"] + (1 - dec) * jnp.mean(d_real),
                     "fake": dec * ms["lecam"]["fake"] + (1 - dec) * jnp.mean(d_fake)}
    if self.diffusion is not None:
      ms["diffusion"] = self.diffusion.update(ms["diffusion"], d_real, b, d_index)
    metrics = {"d_loss": loss, **aux, **norms}
    return (d_params, d_opt, ms, d_index + 1), metrics

  def update(self, state: TrainState, batch: Batch, rng: jax.Array) -> tuple[TrainState, Metrics]:
    x = batch["image"]
    total = x.shape[0]
    if total % self.n_dis:
      raise ValueError(f"The batch of {total} examples does not split into n_dis={self.n_dis} "
                       "discriminator steps; use a batch_size divisible by method.n_dis.")
    b = total // self.n_dis
    labels = batch.get("label", jnp.zeros((total,), jnp.int32)).astype(jnp.int32)
    chunks = x.reshape((self.n_dis, b, *x.shape[1:]))
    label_chunks = labels.reshape((self.n_dis, b))
    r_d, r_g, r_gin = jax.random.split(rng, 3)
    g_params, d_params = state.params[G], state.params[D]
    ms = state.model_state

    step_fn = lambda carry, inp: self._d_step(g_params, ms[G], carry, inp)
    carry = (d_params, state.opt_state[D], ms, state.step * self.n_dis)
    # A Python loop, not lax.scan: XLA's CPU backend runs convolutions inside a loop body
    # ~35x slower (a DCGAN D gradient: 2.4 s in a one-iteration scan, 65 ms outside).
    for i, key in enumerate(jax.random.split(r_d, self.n_dis)):
      carry, d_metrics = step_fn(carry, (chunks[i], label_chunks[i], key))
    d_params, d_opt, ms, _ = carry  # d_metrics: the last D step's values

    z, y_fake = self.latents(r_g, b)

    def g_loss_fn(gp):
      fake, gv = self.generate(gp, ms[G], z, y_fake, train=True)
      x_fake, t_fake = self.d_inputs(r_gin, fake, ms)
      d_fake, _ = self.discriminate(d_params, ms[D], x_fake, y_fake, t_fake, train=True)
      adversarial = GAN_LOSSES.get(self.loss).generator(d_fake)
      aux = {}
      loss = adversarial
      if self.ortho_weight:
        aux["g_ortho"] = regularizers.orthogonal_regularization(gp, self.ortho_exclude)
        loss = loss + 0.5 * self.ortho_weight * aux["g_ortho"]
      return loss, (gv, fake, adversarial, aux)

    (_, (g_vars, fake, g_loss, g_aux)), g_grads = jax.value_and_grad(
        g_loss_fn, has_aux=True)(g_params)
    g_params, g_opt, g_norms = apply_gradients(self.optimizer_g, g_grads, state.opt_state[G],
                                               g_params, prefix="g_")
    ms = {**ms, G: g_vars}
    metrics = {"loss": d_metrics["d_loss"], "g_loss": g_loss, **g_aux, **d_metrics, **g_norms,
               **coverage_metrics(fake, chunks[-1], self.modes, self.mode_std),
               **learning_rates(self.lr_g, self.lr_d, state.step)}
    if self.diffusion is not None:
      metrics["diffusion_T"] = self.diffusion.num_steps(ms["diffusion"]).astype(jnp.float32)
      metrics["diffusion_p"] = ms["diffusion"]["p"]
    new_state = state.replace(params={G: g_params, D: d_params},
                              opt_state={G: g_opt, D: d_opt}, model_state=ms)
    return new_state, metrics

  def sampling_variables(self, state: TrainState) -> dict:
    """The EMA generator's collections: its standing statistics once estimated (see
    `prepare_sampling`), else the raw generator's running statistics."""
    g_vars = state.model_state[G]
    ema = state.model_state.get("ema_generator")
    if ema is None:
      return g_vars
    use = ema["estimated_at"] >= 0
    stats = jax.tree.map(lambda s, r: jnp.where(use, s, r), ema["batch_stats"],
                         g_vars["batch_stats"])
    return {**g_vars, "batch_stats": stats}

  def prepare_sampling(self, state: TrainState, rng: jax.Array) -> TrainState:
    """Re-estimates the EMA generator's standing statistics (standing_stats > 0), else
    returns `state`; the estimate goes to model_state["ema_generator"]."""
    if "ema_generator" not in state.model_state:
      return state
    latents_fn = lambda key: self.latents(key, self.standing_batch_size)
    stats = standing_statistics(self.generator, state.ema_params[G], state.model_state[G],
                                latents_fn, rng, self.standing_stats)
    ema = {"batch_stats": stats, "estimated_at": jnp.asarray(state.step, jnp.int32)}
    return state.replace(model_state={**state.model_state, "ema_generator": ema})

  def sample(self, state: TrainState, rng: jax.Array, num_samples: int,
             spec: SampleSpec = SampleSpec()) -> SampleOutput:
    """Samples of the EMA generator (standing or running batch statistics, see
    `sampling_variables`); spec.labels, else labels cycling 0..K-1; spec.truncation, else
    the configured truncation psi, draws z truncated to |z_i| <= psi."""
    spec.refuse_unsupported("gan", ["truncation"])
    psi = spec.truncation if spec.truncation is not None else self.truncation
    z, _ = self.latents(rng, num_samples, truncation=psi)
    labels = spec.labels
    if self.num_classes and labels is None:
      labels = jnp.arange(num_samples, dtype=jnp.int32) % self.num_classes
    x, _ = self.generate(state.ema_params[G], self.sampling_variables(state), z,
                         jnp.asarray(labels, jnp.int32) if self.num_classes else None,
                         train=False)
    return SampleOutput(samples=x, nfe=1)

  def evaluate(self, state: TrainState, batch: Batch, rng: jax.Array) -> Metrics:
    """Per example: D's logits on real data and on EMA samples; mode hits on 2-D mixtures."""
    x = batch["image"]
    y = batch.get("label") if self.num_classes else None
    r_s, r_real, r_fake = jax.random.split(rng, 3)
    samples = self.sample(state, r_s, x.shape[0], SampleSpec(labels=y)).samples
    ms = state.model_state
    x_real, t_real = self.d_inputs(r_real, x, ms)
    x_fake, t_fake = self.d_inputs(r_fake, samples, ms)
    d_real, _ = self.discriminate(state.params[D], ms[D], x_real, y, t_real, train=False)
    d_fake, _ = self.discriminate(state.params[D], ms[D], x_fake, y, t_fake, train=False)
    out = {"d_real": d_real, "d_fake": d_fake}
    if self.modes is not None:
      _, dist = monitoring.nearest_mode(samples.reshape(samples.shape[0], -1),
                                        jnp.asarray(self.modes))
      out["high_quality"] = (dist < 3.0 * self.mode_std).astype(jnp.float32)
    return out


def build_nets(config, info, *, time_conditional: bool = False):
  """(generator, discriminator, num_classes, data_shape) from config.model.{generator, discriminator}."""
  m = config.method
  num_classes = int(info.num_classes) if m.class_conditional else 0
  if m.class_conditional and num_classes <= 0:
    raise ValueError("method.class_conditional=True but the dataset reports no classes; "
                     "set method.class_conditional=False or use a labelled dataset.")
  data_shape = tuple(int(d) for d in info.image_shape)
  g_kwargs = dict(config.model.generator)
  d_kwargs = dict(config.model.discriminator)
  g_name, d_name = g_kwargs.pop("name"), d_kwargs.pop("name")
  dtype = precision.compute_dtype(config)
  if g_name.startswith("ddgan"):
    generator = nets.build_net(g_name, num_classes=num_classes, dtype=dtype, **g_kwargs)
  else:
    generator = nets.build_net(g_name, out_shape=data_shape, num_classes=num_classes,
                               dtype=dtype, **g_kwargs)
  discriminator = nets.build_net(d_name, num_classes=num_classes, dtype=dtype, **d_kwargs)
  if time_conditional and not (getattr(discriminator, "time_embed_dim", 0)
                               or getattr(discriminator, "per_step", 0)):
    raise ValueError(f"This method conditions the discriminator on the diffusion step; set "
                     f"model.discriminator.time_embed_dim > 0 (e.g. 128) for {d_name!r}"
                     " (or per_step > 0 where the network has it).")
  return generator, discriminator, num_classes, data_shape


def build_optimizers(config):
  """(opt_g, opt_d, lr_g, lr_d): each network's optimiser and learning-rate schedule.

  `optim` fields are overridden by optim_g / optim_d. Both schedules (warm-up and decay)
  are functions of the GENERATOR step k over num_train_steps: the discriminator's
  optimiser, stepped n_dis times per generator step, uses lr_d(k) for all n_dis of them
  (as Miyato et al.'s SNGAN code and WGAN-GP do), so D does not decay n_dis times faster.
  """
  n_dis = int(config.method.get("n_dis", 1))
  out, schedules = [], []
  for name, per_step in (("optim_g", 1), ("optim_d", n_dis)):
    if name not in config:
      raise ValueError(f"A GAN config needs `{name}` (learning_rate, b1, b2 of that network); "
                       "build it with configs/gan/_gan.gan_config.")
    cfg = {**dict(config.optim), **dict(config[name])}
    out.append(build_optimizer(cfg, config.num_train_steps, updates_per_step=per_step))
    schedules.append(learning_rate_schedule(cfg, config.num_train_steps))
  return (*out, *schedules)


@METHODS.register("gan")
def build_gan(config, info) -> GAN:
  """A GAN from config.model.{generator, discriminator}, config.method, optim_g, optim_d."""
  m = config.method
  diff_cfg = m.get("diffusion", None)
  diffusion = None
  if diff_cfg is not None and diff_cfg.enabled:
    kwargs = {k: v for k, v in dict(diff_cfg).items() if k != "enabled"}
    diffusion = AdaptiveDiffusion(**kwargs)
  generator, discriminator, num_classes, data_shape = build_nets(
      config, info, time_conditional=diffusion is not None)
  GAN_LOSSES.get(m.loss)
  if m.gp_weight and getattr(discriminator, "batch_norm", False):
    raise ValueError("The gradient penalty needs per-example discriminator gradients, which "
                     "batch norm in the discriminator mixes; set model.discriminator."
                     "batch_norm=False (WGAN-GP uses none) or method.gp_weight=0.")
  if int(m.n_dis) < 1:
    raise ValueError(f"method.n_dis must be >= 1, got {m.n_dis}.")
  if config.batch_size % int(m.n_dis):
    raise ValueError(f"batch_size={config.batch_size} must be divisible by method.n_dis="
                     f"{m.n_dis} (each discriminator step uses batch_size / n_dis examples).")
  policy = parse_policy(m.diffaugment)
  if policy and len(data_shape) != 3:
    raise ValueError("DiffAugment applies to images; set method.diffaugment='' for "
                     f"data of shape {data_shape}.")
  opt_g, opt_d, lr_g, lr_d = build_optimizers(config)
  modes, mode_std = toy_modes(config)
  standing = int(m.get("standing_stats", 0))
  if standing and not hasattr(generator, "bn_momentum"):
    raise ValueError(f"method.standing_stats={standing} re-estimates batch-norm statistics, "
                     f"but {type(generator).__name__} has no `bn_momentum` field (e.g. "
                     "biggan_generator has one); set method.standing_stats=0.")
  if standing < 0:
    raise ValueError(f"method.standing_stats must be >= 0, got {standing}.")
  return GAN(
      generator=generator, discriminator=discriminator, optimizer_g=opt_g, optimizer_d=opt_d,
      data_shape=data_shape, z_dim=int(m.z_dim), loss=m.loss, n_dis=int(m.n_dis),
      gp_weight=float(m.gp_weight), r1_gamma=float(m.r1_gamma), r1_every=int(m.r1_every),
      r1_lazy_scaling=regularizers.check_lazy_scaling(m.r1_lazy_scaling),
      lecam_weight=float(m.lecam_weight), lecam_decay=float(m.lecam_decay),
      diffaugment=policy, num_classes=num_classes, diffusion=diffusion,
      modes=None if modes is None else tuple(map(tuple, modes.tolist())), mode_std=mode_std,
      lr_g=lr_g, lr_d=lr_d, ortho_weight=float(m.get("ortho_weight", 0.0)),
      standing_stats=standing,
      standing_batch_size=int(m.get("standing_batch_size", 0)
                              or config.batch_size // int(m.n_dis)),
      truncation=check_truncation(config.sample.get("truncation", None)))
