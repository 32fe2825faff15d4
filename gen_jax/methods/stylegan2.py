"""StyleGAN2 with adaptive discriminator augmentation (method "stylegan2").

Karras et al., "Analyzing and Improving the Image Quality of StyleGAN" (CVPR 2020) and
"Training Generative Adversarial Networks with Limited Data" (NeurIPS 2020), following
their official code (NVlabs/stylegan2-ada-pytorch: training/loss.py StyleGAN2Loss,
training/training_loop.py). Networks: gen_jax/nets/stylegan2.py; ADA: gen_jax/gan/ada.py.

One `update` is one iteration of the official loop (one batch_idx), four phases in its
order, each an optimiser step of its own network on `batch` examples:

  Gmain   L = E[softplus(-D(A(G(z))))]                       every step
  Greg    L = pl_every * pl_weight * E[(a - pl_mean')^2]      steps with step % pl_every == 0
          on batch / pl_batch_shrink latents (path length, gan.regularizers)
  Dmain   L = E[softplus(D(A(G(z))))] + E[softplus(-D(A(x)))]  every step
  Dreg    L = r1_every * gamma / 2 * E[||grad_x D(A(x))||^2]  steps with step % r1_every == 0

A is ADA's augmentation (identity when off); G(z) maps z (and the label) to ws, with style
mixing: with probability style_mixing_prob the ws from layer `cutoff` ~ U{1..L-1} on come
from a second latent. Lazy regularisation: the reg phases are separate optimiser steps of
the same Adam, their loss multiplied by the period k ("stylegan2" lazy weighting of
gan.regularizers), and each optimiser's learning rate and betas are adjusted by
mb_ratio = k / (k + 1): lr * mb_ratio, beta ** mb_ratio (`lazy_optimizer_settings`).
Each phase draws its own latents (as the official all_gen_z); Dmain and Dreg share the
real batch. After the phases ADA accumulates sign(D(A(x_real))) of Dmain and Dreg and
adjusts p on steps with step % ada.interval == 0.

The tracked average w (mapping network, collection "w_avg") moves in every generator
forward pass of Gmain, Greg and Dmain (G is in training mode in all three, as in the
official loop) but not in the style-mixing second mapping (skip_w_avg_update).

State layout (on top of gan.GAN's):
  model_state {"generator": {"w_avg": ...}, "discriminator": {}, "pl_mean": scalar,
               "ada": {"p", "signs_sum", "signs_count"} when ADA is on}
so the tracked w, pl_mean and ADA's p are in every checkpoint and resume exactly.

Sampling (`sample(state, rng, n, spec)`): the EMA generator's params with the trained
generator's w_avg (the official G_ema copies the buffers), truncation
w' = w_avg + psi (w - w_avg) with psi = spec.truncation, or method.truncation when unset.

Metrics: loss (= d_loss), d_loss, g_loss, d_real / d_fake (mean logits of Dmain),
r1 / pl_penalty (weighted, on the lazy steps; 0 elsewhere), pl_mean, ada_p, ada_r_t (the
running r_t), d_*/g_* norms of the main phases, g_lr / d_lr, and gan's coverage metrics.

Deviations from the official code:
* EMA of G: the trainer's EMA with a constant decay 0.5 ** (batch / (ema_kimg * 1000))
  (configs/gan/_stylegan2.py computes it) and the trainer's warm-up min(decay,
  (1 + t) / (10 + t)) instead of the official ema_rampup (ema_nimg = min(ema_kimg * 1000,
  cur_nimg * ramp)).
* pl_mean and r_t are global-batch statistics (the official pl_mean is per GPU, from its
  local batch_gpu examples); with one GPU and no gradient accumulation they coincide.
* Learning-rate schedules: the official trains at a constant rate; a schedule or warm-up
  is refused (the reg phases' extra Adam steps would shift an optax schedule).
* No mixed precision (see nets/stylegan2.py); the official G/D run their 4 highest
  resolutions in fp16.
* Class labels of fake images are drawn uniformly over the classes (the official draws
  labels of random training images, the empirical class distribution).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gen_jax.core.optim import apply_gradients, build_optimizer, learning_rate_schedule
from gen_jax.core.sample import SampleOutput, SampleSpec
from gen_jax.core.state import TrainState
from gen_jax.gan import ada as ada_lib
from gen_jax.gan import monitoring, regularizers
from gen_jax.methods.base import METHODS, Batch, Metrics
from gen_jax.methods.gan import (D, G, GAN, apply_net, build_nets, coverage_metrics,
                                 init_net, learning_rates, toy_modes)


def lazy_optimizer_settings(cfg: dict, every: int) -> dict:
  """StyleGAN2's lazy-regularisation adjustment of one optimiser's settings.

  With period k the network takes k + 1 optimiser steps per k iterations, so the
  official training loop scales lr by mb_ratio = k / (k + 1) and raises both Adam betas
  to the power mb_ratio. k <= 0 means no lazy regularisation (settings unchanged).
  """
  if every <= 0:
    return dict(cfg)
  r = every / (every + 1)
  return {**cfg, "learning_rate": cfg["learning_rate"] * r,
          "b1": cfg["b1"] ** r, "b2": cfg["b2"] ** r}


@dataclasses.dataclass(frozen=True)
class StyleGAN2(GAN):
  """StyleGAN2(-ADA); see the module docstring. Adds to gan.GAN:

  Attributes:
    pl_weight, pl_every, pl_decay, pl_batch_shrink: path length regularisation (2, 4,
      0.01, 2); pl_weight 0 disables it.
    style_mixing_prob: probability of mixing two latents (0.9; 0 disables).
    ada: adaptive augmentation, or None.
    truncation: default truncation psi of `sample` (1: none).
  """

  pl_weight: float = 2.0
  pl_every: int = 4
  pl_decay: float = 0.01
  pl_batch_shrink: int = 2
  style_mixing_prob: float = 0.9
  ada: ada_lib.AdaptiveAugment | None = None
  truncation: float = 1.0

  # ---------------------------------------------------------------- networks

  def _g(self, params, g_vars, *args, method: str, rng, update_w_avg: bool = False, **kw):
    """Applies a generator method ("mapping", "synthesis", "__call__"); returns (out, vars)."""
    variables = {"params": params, **g_vars}
    rngs = {"noise": rng}
    if update_w_avg:
      out, new = self.generator.apply(variables, *args, method=method, rngs=rngs,
                                      mutable=list(g_vars), update_w_avg=True, **kw)
      return out, {k: new[k] for k in g_vars}
    return self.generator.apply(variables, *args, method=method, rngs=rngs, **kw), g_vars

  def mapping_with_mixing(self, params, g_vars, rng, z, y):
    """The official run_G's mapping: ws [B, L, W] with style mixing; (ws, new vars)."""
    r_cut, r_mix, r_z = jax.random.split(rng, 3)
    ws, g_vars = self._g(params, g_vars, z, y, method="mapping", rng=rng, update_w_avg=True)
    if self.style_mixing_prob > 0:
      num_ws = ws.shape[1]
      cutoff = jax.random.randint(r_cut, (), 1, num_ws)
      cutoff = jnp.where(jax.random.uniform(r_mix, ()) < self.style_mixing_prob, cutoff, num_ws)
      z2 = jax.random.normal(r_z, z.shape, z.dtype)
      ws2, _ = self._g(params, g_vars, z2, y, method="mapping", rng=rng)
      later = (jnp.arange(num_ws) >= cutoff)[None, :, None]
      ws = jnp.where(later, ws2, ws)
    return ws, g_vars

  def run_g(self, params, g_vars, rng, z, y):
    """Training-mode generator: (images, ws, new generator variables)."""
    r_map, r_noise = jax.random.split(rng)
    ws, g_vars = self.mapping_with_mixing(params, g_vars, r_map, z, y)
    img, _ = self._g(params, g_vars, ws, method="synthesis", rng=r_noise)
    return img, ws, g_vars

  def augment(self, rng, x, model_state):
    return x if self.ada is None else self.ada(rng, x, model_state["ada"])

  def run_d(self, params, model_state, rng, x, y):
    """Logits [B] of D on the ADA-augmented x."""
    x = self.augment(rng, x, model_state)
    return apply_net(self.discriminator, params, model_state[D], x, y, None, train=True)[0]

  # ---------------------------------------------------------------- contract

  def init(self, rng: jax.Array, batch: Batch) -> TrainState:
    r_g, r_d, r_n = jax.random.split(rng, 3)
    z = jnp.zeros((1, self.z_dim), jnp.float32)
    y = jnp.zeros((1,), jnp.int32) if self.num_classes else None
    g_vars = dict(self.generator.init({"params": r_g, "noise": r_n}, z, y))
    g_params = g_vars.pop("params")
    d_params, d_vars = init_net(self.discriminator, r_d,
                                jnp.zeros((1, *self.data_shape), jnp.float32), y, None)
    params = {G: g_params, D: d_params}
    opt_state = {G: self.optimizer_g.init(g_params), D: self.optimizer_d.init(d_params)}
    model_state = {G: g_vars, D: d_vars, "pl_mean": jnp.zeros((), jnp.float32)}
    if self.ada is not None:
      model_state["ada"] = self.ada.init_state()
    return TrainState.create(params, opt_state, model_state)

  def _labels(self, batch: Batch, b: int):
    if not self.num_classes:
      return None
    return batch.get("label", jnp.zeros((b,), jnp.int32)).astype(jnp.int32)

  def update(self, state: TrainState, batch: Batch, rng: jax.Array) -> tuple[TrainState, Metrics]:
    real = batch["image"]
    b = real.shape[0]
    y_real = self._labels(batch, b)
    step = state.step
    k_gmain, k_greg, k_dmain, k_dreg = jax.random.split(rng, 4)
    ms = dict(state.model_state)
    g_params, d_params = state.params[G], state.params[D]
    g_opt, d_opt = state.opt_state[G], state.opt_state[D]

    # Gmain: maximise the logits of generated images.
    r_lat, r_g, r_aug = jax.random.split(k_gmain, 3)
    z, y_fake = self.latents(r_lat, b)

    def g_main_loss(gp):
      fake, _, gv = self.run_g(gp, ms[G], r_g, z, y_fake)
      logits = self.run_d(d_params, ms, r_aug, fake, y_fake)
      return jnp.mean(jax.nn.softplus(-logits)), (gv, fake)

    (g_loss, (g_vars, fake)), grads = jax.value_and_grad(g_main_loss, has_aux=True)(g_params)
    g_params, g_opt, g_norms = apply_gradients(self.optimizer_g, grads, g_opt, g_params,
                                               prefix="g_")
    ms[G] = g_vars

    # Greg: path length regularisation on every pl_every-th step.
    g_params, g_opt, ms[G], ms["pl_mean"], pl_loss = self._greg(
        step, k_greg, b, g_params, g_opt, ms[G], ms["pl_mean"])

    # Dmain: minimise the logits of generated images, maximise those of real ones.
    r_lat, r_g, r_fake, r_real = jax.random.split(k_dmain, 4)
    z, y_fake = self.latents(r_lat, b)
    fake_d, _, ms[G] = self.run_g(g_params, ms[G], r_g, z, y_fake)
    fake_d = jax.lax.stop_gradient(fake_d)

    def d_main_loss(dp):
      d_fake = self.run_d(dp, ms, r_fake, fake_d, y_fake)
      d_real = self.run_d(dp, ms, r_real, real, y_real)
      loss = jnp.mean(jax.nn.softplus(d_fake)) + jnp.mean(jax.nn.softplus(-d_real))
      return loss, (d_real, d_fake)

    (d_loss, (d_real, d_fake)), grads = jax.value_and_grad(d_main_loss, has_aux=True)(d_params)
    d_params, d_opt, d_norms = apply_gradients(self.optimizer_d, grads, d_opt, d_params,
                                               prefix="d_")
    if self.ada is not None:
      ms["ada"] = self.ada.accumulate(ms["ada"], d_real)

    # Dreg: lazy R1 on every r1_every-th step.
    d_params, d_opt, ms, r1_loss = self._dreg(step, k_dreg, real, y_real, d_params, d_opt, ms)

    metrics = {"loss": d_loss, "d_loss": d_loss, "g_loss": g_loss,
               "d_real": jnp.mean(d_real), "d_fake": jnp.mean(d_fake),
               "r1": r1_loss, "pl_penalty": pl_loss, "pl_mean": ms["pl_mean"],
               **g_norms, **d_norms,
               **coverage_metrics(fake, real, self.modes, self.mode_std),
               **learning_rates(self.lr_g, self.lr_d, step)}
    if self.ada is not None:
      metrics["ada_r_t"] = self.ada.r_t(ms["ada"])
      ms["ada"] = self.ada.adjust(ms["ada"], step, b)
      metrics["ada_p"] = ms["ada"]["p"]
    new_state = state.replace(params={G: g_params, D: d_params},
                              opt_state={G: g_opt, D: d_opt}, model_state=ms)
    return new_state, metrics

  def _greg(self, step, rng, b, g_params, g_opt, g_vars, pl_mean):
    """The Greg phase under lax.cond: (params, opt, vars, pl_mean, weighted loss)."""
    zero = jnp.zeros((), jnp.float32)
    if not self.pl_weight:
      return g_params, g_opt, g_vars, pl_mean, zero
    bs = max(b // self.pl_batch_shrink, 1)
    weight = regularizers.lazy_weight(step, self.pl_every, self.pl_weight, "stylegan2")

    def run(operands):
      gp, opt, gv, mean = operands
      r_lat, r_map, r_noise, r_pl = jax.random.split(rng, 4)
      z, y = self.latents(r_lat, bs)

      def loss_fn(p):
        ws, new_gv = self.mapping_with_mixing(p, gv, r_map, z, y)
        synth = lambda w: self._g(p, new_gv, w, method="synthesis", rng=r_noise)[0]
        shape = jax.eval_shape(synth, ws).shape
        pixels = int(np.prod(shape[1:-1])) if len(shape) > 2 else 1
        noise = jax.random.normal(r_pl, shape, jnp.float32) / np.sqrt(pixels)
        penalty, new_mean = regularizers.path_length_penalty(synth, ws, noise, mean,
                                                             self.pl_decay)
        return weight * penalty, (new_gv, jax.lax.stop_gradient(new_mean))

      (loss, (new_gv, new_mean)), grads = jax.value_and_grad(loss_fn, has_aux=True)(gp)
      gp, opt, _ = apply_gradients(self.optimizer_g, grads, opt, gp)
      return gp, opt, new_gv, new_mean, loss

    skip = lambda operands: (*operands, zero)
    return jax.lax.cond(weight > 0, run, skip, (g_params, g_opt, g_vars, pl_mean))

  def _dreg(self, step, rng, real, y_real, d_params, d_opt, ms):
    """The Dreg phase under lax.cond: (params, opt, model_state, weighted loss)."""
    zero = jnp.zeros((), jnp.float32)
    if not self.r1_gamma:
      return d_params, d_opt, ms, zero
    weight = regularizers.lazy_weight(step, self.r1_every, 0.5 * self.r1_gamma, "stylegan2")
    has_ada = self.ada is not None

    def run(operands):
      dp, opt, ada_state = operands
      state_for_aug = {**ms, "ada": ada_state} if has_ada else ms

      def loss_fn(p):
        d_fn = lambda v: self.run_d(p, state_for_aug, rng, v, y_real)
        r1, logits = regularizers.r1_penalty_and_logits(d_fn, real)
        return weight * r1, logits

      (loss, logits), grads = jax.value_and_grad(loss_fn, has_aux=True)(dp)
      dp, opt, _ = apply_gradients(self.optimizer_d, grads, opt, dp)
      if has_ada:
        ada_state = self.ada.accumulate(ada_state, jax.lax.stop_gradient(logits))
      return dp, opt, ada_state, loss

    skip = lambda operands: (*operands, zero)
    ada_state = ms["ada"] if has_ada else {}
    d_params, d_opt, ada_state, loss = jax.lax.cond(weight > 0, run, skip,
                                                    (d_params, d_opt, ada_state))
    if has_ada:
      ms = {**ms, "ada": ada_state}
    return d_params, d_opt, ms, loss

  # ---------------------------------------------------------------- sampling

  def sample(self, state: TrainState, rng: jax.Array, num_samples: int,
             spec: SampleSpec = SampleSpec()) -> SampleOutput:
    """Samples of the EMA generator with truncation psi (spec.truncation, else the
    configured default); labels (spec.labels) cycle 0..K-1 when unset."""
    spec.refuse_unsupported("stylegan2", ["truncation"])
    psi = float(self.truncation if spec.truncation is None else spec.truncation)
    labels = spec.labels
    r_z, r_noise = jax.random.split(rng)
    z, _ = self.latents(r_z, num_samples)
    y = None
    if self.num_classes:
      y = (jnp.arange(num_samples, dtype=jnp.int32) % self.num_classes if labels is None
           else jnp.asarray(labels, jnp.int32))
    x, _ = self._g(state.ema_params[G], state.model_state[G], z, y, method="__call__",
                   rng=r_noise, truncation_psi=psi)
    return SampleOutput(samples=x, nfe=1)

  def evaluate(self, state: TrainState, batch: Batch, rng: jax.Array) -> Metrics:
    """Per example: D's logits (no augmentation) on real data and on EMA samples."""
    x = batch["image"]
    y = self._labels(batch, x.shape[0])
    samples = self.sample(state, rng, x.shape[0], SampleSpec(labels=y)).samples
    ms = state.model_state
    d = lambda v: apply_net(self.discriminator, state.params[D], ms[D], v, y, None,
                            train=False)[0]
    out = {"d_real": d(x), "d_fake": d(samples)}
    if self.modes is not None:
      _, dist = monitoring.nearest_mode(samples.reshape(samples.shape[0], -1),
                                        jnp.asarray(self.modes))
      out["high_quality"] = (dist < 3.0 * self.mode_std).astype(jnp.float32)
    return out


def build_optimizers(config) -> tuple[Any, Any, Any, Any]:
  """(opt_g, opt_d, lr_g, lr_d) with the lazy-regularisation adjustment of each network
  (period method.pl_every for G when pl_weight > 0, method.r1_every for D when r1_gamma
  > 0); constant learning rates only, as the official code."""
  m = config.method
  periods = {"optim_g": int(m.pl_every) if m.pl_weight else 0,
             "optim_d": int(m.r1_every) if m.r1_gamma else 0}
  out, schedules = [], []
  for name, every in periods.items():
    cfg = {**dict(config.optim), **dict(config[name])}
    if cfg.get("schedule", "constant") != "constant" or int(cfg.get("warmup_steps", 0)):
      raise ValueError("StyleGAN2 trains at a constant learning rate (its lazy regulariser "
                       "steps would shift a schedule); set optim.schedule='constant' and "
                       "optim.warmup_steps=0.")
    cfg = lazy_optimizer_settings(cfg, every)
    out.append(build_optimizer(cfg, config.num_train_steps))
    schedules.append(learning_rate_schedule(cfg, config.num_train_steps))
  return (*out, *schedules)


def build_ada(cfg) -> ada_lib.AdaptiveAugment | None:
  """ADA from config.method.ada (None when disabled)."""
  if cfg is None or not cfg.enabled:
    return None
  target = float(cfg.target) if cfg.adaptive else None
  return ada_lib.AdaptiveAugment(pipe=ada_lib.AugmentPipe.named(cfg.pipe),
                                 initial_p=float(cfg.initial_p), target=target,
                                 interval=int(cfg.interval), kimg=float(cfg.kimg))


@METHODS.register("stylegan2")
def build_stylegan2(config, info) -> StyleGAN2:
  """StyleGAN2(-ADA) from config.model.{generator, discriminator}, config.method."""
  m = config.method
  generator, discriminator, num_classes, data_shape = build_nets(config, info)
  if int(config.model.generator.get("z_dim", m.z_dim)) != int(m.z_dim):
    raise ValueError(f"model.generator.z_dim={config.model.generator.z_dim} differs from "
                     f"method.z_dim={m.z_dim}; set both to the same latent size.")
  for field in ("pl_every", "r1_every", "pl_batch_shrink"):
    if int(m[field]) < 1:
      raise ValueError(f"method.{field} must be >= 1, got {m[field]}.")
  ada = build_ada(m.get("ada", None))
  if ada is not None and len(data_shape) != 3:
    raise ValueError(f"ADA augments images; set method.ada.enabled=False for data of shape "
                     f"{data_shape}.")
  group = int(config.model.discriminator.get("mbstd_group_size", 0) or 0)
  if group and config.batch_size % min(group, config.batch_size):
    raise ValueError(f"batch_size={config.batch_size} is not divisible by the minibatch-std "
                     f"group size {group}; change one of them.")
  opt_g, opt_d, lr_g, lr_d = build_optimizers(config)
  modes, mode_std = toy_modes(config)
  return StyleGAN2(
      generator=generator, discriminator=discriminator, optimizer_g=opt_g, optimizer_d=opt_d,
      data_shape=data_shape, z_dim=int(m.z_dim), loss="non_saturating", n_dis=1,
      r1_gamma=float(m.r1_gamma), r1_every=int(m.r1_every), num_classes=num_classes,
      modes=None if modes is None else tuple(map(tuple, modes.tolist())), mode_std=mode_std,
      lr_g=lr_g, lr_d=lr_d, pl_weight=float(m.pl_weight), pl_every=int(m.pl_every),
      pl_decay=float(m.pl_decay), pl_batch_shrink=int(m.pl_batch_shrink),
      style_mixing_prob=float(m.style_mixing_prob), ada=ada, truncation=float(m.truncation))
