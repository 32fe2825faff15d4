"""Denoising diffusion GANs: a few large denoising steps, each modelled by a conditional GAN.

Xiao, Kreis & Vahdat, "Tackling the Generative Learning Trilemma with Denoising Diffusion
GANs" (ICLR 2022; CIFAR-10 FID 3.75 with T = 4 steps).

A T-step Gaussian diffusion (`gen_jax.diffusion`, 0-based: x_t for t = 0..T-1 with
x_{-1} = x_0 the data) whose reverse steps are far too large to be Gaussian. The generator
predicts the clean data from a noisy input and a latent, x0' = G(x_t, t, z), and a fake
previous step is drawn from the true posterior given that prediction,

    x'_{t-1} ~ q(x_{t-1} | x_t, x0' = G(x_t, t, z))      (x'_{-1} = x0' at t = 0),

while real pairs come from the forward process: x_{t-1} ~ q(x_{t-1} | x_0),
x_t = sqrt(1 - beta_t) x_{t-1} + sqrt(beta_t) eps. A time-conditioned discriminator
D(x_{t-1}, x_t, t) (its input is the channel concatenation [x_{t-1}, x_t]) tells the two
pairs apart with the non-saturating loss and a lazy R1 penalty on real x_{t-1}.

Sampling runs the T steps from x_{T-1} ~ N(0, I): NFE = T.

The default schedule "ddgan_vp" is the paper's: the VP-SDE with beta_min = 0.1,
beta_max = 20 evaluated at t_i = eps + (1 - eps) i / T (eps = 1e-3), abar(t) =
exp(-beta_min t - (beta_max - beta_min) t^2 / 2), beta_i = 1 - abar(t_{i+1}) / abar(t_i).

What matches the official code (github NVlabs/denoising-diffusion-gan, train_ddgan.py):
the chain's indexing (its q_sample_pairs(t) is (x_{t-1}, x_t) here), the posterior
coefficients and sampling (the mean alone at t = 0), the D step's fake pair built on the
real pair's x_t, the G step on fresh t and noise, the non-saturating loss, R1 on real
x_{t-1} with gamma / 2 on every lazy_reg-th step NOT multiplied by the period
(r1_lazy_scaling="none"), a generator ending with tanh (nets.gan.DDGANUNet), EMA of G.

Remaining deviations from the official code:
* Generator: a DDPM-style UNet whose blocks ADD embed(t) + mapping(z) (PixelNorm + n_mlp
  Dense); the reference is NCSN++ (BigGAN blocks with FIR resampling, residual input
  pyramid) with z injected by adaptive group norm in every block.
* Discriminator: gen_jax's SNGAN ResNet (spectral norm off) with a t-embedding added per
  block; the reference's Discriminator_small has FIR-downsampling blocks with
  (out + skip) / sqrt(2), leaky ReLU 0.2 and a minibatch-stddev layer.
* Learning rate: cosine decay to 0 per step (optim.schedule); the reference anneals per
  epoch to eta_min = 1e-5.
* The reference prepends beta = 1e-8 to its chain, so its real x_{-1} carries noise of
  std 1e-4; here x_{-1} = x_0 exactly.
* CIFAR-10 batch: one global batch of 256; the reference runs 64 on each of 4 GPUs.
* Sampling clips the final x to [-1, 1] when sample.clip_x0 (a no-op with the tanh).
* 2-D mixtures: the official code has no 2-D generator, discriminator or config; the MLPs
  and configs/gan/ddgan_toy_{eight,twenty_five}_gaussians.py are gen_jax's own. On the
  25-Gaussian grid (std 0.05, spacing 1) the 8-Gaussian config stalls at ~7%
  high-quality samples (uniform over the square). Diagnosed with
  experiments/bench/ddgan_mixture_ablation.py (numbers in gan_mixture_coverage_cpu.md):
  the chain is not at fault (x0 predictions from the noisiest steps land on the modes);
  the discriminator of the final step never resolves the modes (logit gap ~0.005 against
  the plain GAN's 0.14 after 1000 steps). Three properties of the toy discriminator each
  cause this: MLPDiscriminator's per-layer time-embedding projection at its random init,
  the x_t half of its input at a random init (zero-initialising either restores a GAN-like
  gap when only the final step is trained), and one discriminator shared by all t: the
  pairs at t >= 1 are nearly indistinguishable and keep it flat. The reference's CIFAR-10
  discriminator starts closer to the first fix: its blocks add the time embedding inside
  a residual branch whose last convolution is zero-initialised. The 25-Gaussian config
  uses one generator and one discriminator per step (`per_step`), the discriminator's
  x_t through a zero-initialised kernel (`zero_init_condition`), ReLU generators on
  concat(x_t, z) and lr 2e-3: 25/25 modes above the GAN test's 0.25 high-quality bar in
  6000 steps (tests/gan/test_gan_method.py). Not the cause: the data scale, R1, SiLU
  alone.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from gen_jax.diffusion import gaussian
from gen_jax.diffusion.schedules import DiffusionSchedule, make_schedule
from gen_jax.gan import regularizers
from gen_jax.gan import monitoring
from gen_jax.gan.losses import GAN_LOSSES
from gen_jax.methods.base import METHODS, Batch, Method, Metrics
from gen_jax.methods.gan import (D, G, apply_net, build_nets, build_optimizers,
                                 coverage_metrics, init_net, learning_rates, toy_modes)
from gen_jax.core.sample import SampleOutput, SampleSpec
from gen_jax.core.optim import apply_gradients
from gen_jax.core.state import TrainState


def _concat(a: jax.Array, b: jax.Array) -> jax.Array:
  return jnp.concatenate([a, b], axis=-1)


@dataclasses.dataclass(frozen=True)
class DDGAN(Method):
  """Denoising diffusion GAN.

  Attributes:
    generator: `G(x_t, t [B] float, z [B, Z], y | None, train=) -> x0 prediction`.
    discriminator: `D(concat[x_{t-1}, x_t], y | None, t [B] float, train=) -> logits [B]`.
    optimizer_g, optimizer_d: their optimisers.
    schedule: the T-step diffusion.
    data_shape: shape of one example.
    z_dim: latent size.
    loss: name in GAN_LOSSES (the paper: non_saturating).
    r1_gamma, r1_every: R1 on real x_{t-1}, lazily every k steps (paper: 0.02 / 15).
    r1_lazy_scaling: the lazy R1 weight on those steps, "none" gamma / 2 (the paper's code)
      or "stylegan2" k * gamma / 2; see gan.regularizers.
    num_classes: > 0 for class conditioning.
    modes, mode_std: known modes of the data (2-D mixtures) for coverage metrics.
  """

  generator: nn.Module
  discriminator: nn.Module
  optimizer_g: optax.GradientTransformation
  optimizer_d: optax.GradientTransformation
  schedule: DiffusionSchedule
  data_shape: tuple[int, ...]
  z_dim: int = 100
  loss: str = "non_saturating"
  r1_gamma: float = 0.02
  r1_every: int = 15
  r1_lazy_scaling: str = "none"
  num_classes: int = 0
  clip_x0: bool = True
  modes: Any = None
  mode_std: float = 0.0
  lr_g: Callable[[jax.Array], jax.Array] | None = None
  lr_d: Callable[[jax.Array], jax.Array] | None = None

  @property
  def num_timesteps(self) -> int:
    return self.schedule.num_timesteps

  def init(self, rng: jax.Array, batch: Batch) -> TrainState:
    r_g, r_d = jax.random.split(rng)
    x = jnp.zeros((1, *self.data_shape), jnp.float32)
    t = jnp.zeros((1,), jnp.float32)
    z = jnp.zeros((1, self.z_dim), jnp.float32)
    y = jnp.zeros((1,), jnp.int32) if self.num_classes else None
    g_params, g_vars = init_net(self.generator, r_g, x, t, z, y)
    d_params, d_vars = init_net(self.discriminator, r_d, _concat(x, x), y, t)
    return TrainState.create(
        {G: g_params, D: d_params},
        {G: self.optimizer_g.init(g_params), D: self.optimizer_d.init(d_params)},
        {G: g_vars, D: d_vars})

  # ---------------------------------------------------------------- the chain

  def q_pair(self, rng, x0, t):
    """A real pair (x_{t-1}, x_t) from the forward process; x_{-1} = x0."""
    r1, r2 = jax.random.split(rng)
    s = self.schedule
    tm1 = jnp.maximum(t - 1, 0)
    x_prev = gaussian.q_sample(s, x0, tm1, jax.random.normal(r1, x0.shape))
    x_prev = jnp.where((t == 0).reshape((-1,) + (1,) * (x0.ndim - 1)), x0, x_prev)
    beta = gaussian.extract(s.betas, t, x0.ndim)
    x_t = jnp.sqrt(1.0 - beta) * x_prev + jnp.sqrt(beta) * jax.random.normal(r2, x0.shape)
    return x_prev, x_t

  def posterior_sample(self, rng, x0, x_t, t):
    """x_{t-1} ~ q(x_{t-1} | x_t, x0) (the mean alone at t = 0)."""
    mean, _, log_var = gaussian.q_posterior(self.schedule, x0, x_t, t)
    nonzero = (t > 0).astype(x_t.dtype).reshape((-1,) + (1,) * (x_t.ndim - 1))
    return mean + nonzero * jnp.exp(0.5 * log_var) * jax.random.normal(rng, x_t.shape)

  def _labels(self, batch: Batch):
    return batch["label"].astype(jnp.int32) if self.num_classes else None

  def fake_prev(self, g_params, g_vars, rng, x_t, t, y, *, train: bool):
    r_z, r_post = jax.random.split(rng)
    z = jax.random.normal(r_z, (x_t.shape[0], self.z_dim))
    x0, g_vars = apply_net(self.generator, g_params, g_vars, x_t, t.astype(jnp.float32), z, y,
                           train=train)
    return self.posterior_sample(r_post, x0, x_t, t), x0, g_vars

  def discriminate(self, params, variables, x_prev, x_t, t, y, *, train: bool):
    return apply_net(self.discriminator, params, variables, _concat(x_prev, x_t), y,
                     t.astype(jnp.float32), train=train)

  # ---------------------------------------------------------------- contract

  def update(self, state: TrainState, batch: Batch, rng: jax.Array) -> tuple[TrainState, Metrics]:
    x0 = batch["image"]
    b = x0.shape[0]
    y = self._labels(batch)
    ms = state.model_state
    g_params, d_params = state.params[G], state.params[D]
    r_t, r_pair, r_fake, r_t2, r_pair2, r_fake2 = jax.random.split(rng, 6)
    loss = GAN_LOSSES.get(self.loss)

    # Discriminator step.
    t = jax.random.randint(r_t, (b,), 0, self.num_timesteps)
    x_prev, x_t = self.q_pair(r_pair, x0, t)
    fake_prev, _, _ = self.fake_prev(g_params, ms[G], r_fake, x_t, t, y, train=True)
    fake_prev = jax.lax.stop_gradient(fake_prev)

    def d_loss_fn(dp):
      d_real, dv = self.discriminate(dp, ms[D], x_prev, x_t, t, y, train=True)
      d_fake, dv = self.discriminate(dp, dv, fake_prev, x_t, t, y, train=True)
      total = loss.discriminator(d_real, d_fake)
      r1 = jnp.zeros((), jnp.float32)
      if self.r1_gamma:
        d_of = lambda v: self.discriminate(dp, dv, v, x_t, t, y, train=True)[0]
        r1 = regularizers.lazy_penalty(state.step, self.r1_every, 0.5 * self.r1_gamma,
                                       lambda: regularizers.r1_penalty(d_of, x_prev),
                                       self.r1_lazy_scaling)
      return total + r1, (dv, jnp.mean(d_real), jnp.mean(d_fake), r1)

    (d_loss, (d_vars, d_real, d_fake, r1)), d_grads = jax.value_and_grad(
        d_loss_fn, has_aux=True)(d_params)
    d_params, d_opt, d_norms = apply_gradients(self.optimizer_d, d_grads, state.opt_state[D],
                                               d_params, prefix="d_")

    # Generator step, on fresh timesteps and noise.
    t2 = jax.random.randint(r_t2, (b,), 0, self.num_timesteps)
    _, x_t2 = self.q_pair(r_pair2, x0, t2)

    def g_loss_fn(gp):
      fake, x0_hat, gv = self.fake_prev(gp, ms[G], r_fake2, x_t2, t2, y, train=True)
      d_out, _ = self.discriminate(d_params, d_vars, fake, x_t2, t2, y, train=True)
      return loss.generator(d_out), (gv, x0_hat)

    (g_loss, (g_vars, x0_hat)), g_grads = jax.value_and_grad(g_loss_fn, has_aux=True)(g_params)
    g_params, g_opt, g_norms = apply_gradients(self.optimizer_g, g_grads, state.opt_state[G],
                                               g_params, prefix="g_")
    metrics = {"loss": d_loss, "d_loss": d_loss, "g_loss": g_loss, "d_real": d_real,
               "d_fake": d_fake, **d_norms, **g_norms,
               # x0 predictions from the noisiest steps are the model's unconditional samples.
               **coverage_metrics(x0_hat, x0, self.modes, self.mode_std),
               **learning_rates(self.lr_g, self.lr_d, state.step)}
    if self.r1_gamma:
      metrics["r1"] = r1
    return state.replace(params={G: g_params, D: d_params}, opt_state={G: g_opt, D: d_opt},
                         model_state={**ms, G: g_vars, D: d_vars}), metrics

  def sample(self, state: TrainState, rng: jax.Array, num_samples: int,
             spec: SampleSpec = SampleSpec()) -> SampleOutput:
    """T generator steps from x_{T-1} ~ N(0, I) with the EMA generator.

    A class-conditional model draws `spec.labels`, by default 0..K-1 cycled; no other
    request is honoured.
    """
    spec.refuse_unsupported("ddgan", [])
    labels = spec.labels
    if self.num_classes and labels is None:
      labels = jnp.arange(num_samples, dtype=jnp.int32) % self.num_classes
    y = labels if self.num_classes else None
    r_init, r_loop = jax.random.split(rng)
    x = jax.random.normal(r_init, (num_samples, *self.data_shape))
    params, g_vars = state.ema_params[G], state.model_state[G]

    def body(i, x):
      t = jnp.full((num_samples,), self.num_timesteps - 1 - i, jnp.int32)
      x_prev, _, _ = self.fake_prev(params, g_vars, jax.random.fold_in(r_loop, i), x, t, y,
                                    train=False)
      return x_prev

    x = jax.lax.fori_loop(0, self.num_timesteps, body, x)
    if self.clip_x0:
      x = jnp.clip(x, -1.0, 1.0)
    return SampleOutput(samples=x, nfe=self.num_timesteps)

  def evaluate(self, state: TrainState, batch: Batch, rng: jax.Array) -> Metrics:
    """Per example: D's logits on real and fake pairs at random t; mode hits on 2-D mixtures."""
    x0 = batch["image"]
    y = self._labels(batch)
    r_t, r_pair, r_fake, r_s = jax.random.split(rng, 4)
    t = jax.random.randint(r_t, (x0.shape[0],), 0, self.num_timesteps)
    x_prev, x_t = self.q_pair(r_pair, x0, t)
    fake, _, _ = self.fake_prev(state.ema_params[G], state.model_state[G], r_fake, x_t, t, y,
                                train=False)
    ms = state.model_state
    d_real, _ = self.discriminate(state.params[D], ms[D], x_prev, x_t, t, y, train=False)
    d_fake, _ = self.discriminate(state.params[D], ms[D], fake, x_t, t, y, train=False)
    out = {"d_real": d_real, "d_fake": d_fake}
    if self.modes is not None:
      samples = self.sample(state, r_s, x0.shape[0], SampleSpec(labels=y)).samples
      _, dist = monitoring.nearest_mode(samples.reshape(samples.shape[0], -1),
                                        jnp.asarray(self.modes))
      out["high_quality"] = (dist < 3.0 * self.mode_std).astype(jnp.float32)
    return out


@METHODS.register("ddgan")
def build_ddgan(config, info) -> DDGAN:
  """A DDGAN from config.model.{generator, discriminator}, config.method, optim_g, optim_d."""
  m = config.method
  generator, discriminator, num_classes, data_shape = build_nets(config, info,
                                                                 time_conditional=True)
  GAN_LOSSES.get(m.loss)
  if int(m.num_timesteps) < 1:
    raise ValueError(f"method.num_timesteps must be >= 1, got {m.num_timesteps}.")
  for role, net in (("generator", generator), ("discriminator", discriminator)):
    heads = getattr(net, "per_step", 0)
    if heads and heads != int(m.num_timesteps):
      raise ValueError(f"model.{role}.per_step={heads} must equal method.num_timesteps="
                       f"{m.num_timesteps} (one network per denoising step).")
  opt_g, opt_d, lr_g, lr_d = build_optimizers(config)
  modes, mode_std = toy_modes(config)
  return DDGAN(
      generator=generator, discriminator=discriminator, optimizer_g=opt_g, optimizer_d=opt_d,
      schedule=make_schedule(m.beta_schedule, int(m.num_timesteps)), data_shape=data_shape,
      z_dim=int(m.z_dim), loss=m.loss, r1_gamma=float(m.r1_gamma), r1_every=int(m.r1_every),
      r1_lazy_scaling=regularizers.check_lazy_scaling(m.r1_lazy_scaling),
      num_classes=num_classes, clip_x0=bool(config.sample.clip_x0),
      modes=None if modes is None else tuple(map(tuple, modes.tolist())), mode_std=mode_std,
      lr_g=lr_g, lr_d=lr_d)
