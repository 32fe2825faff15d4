"""CycleGAN: unpaired image-to-image translation with cycle consistency.

Zhu, Park, Isola & Efros, "Unpaired Image-to-Image Translation using Cycle-Consistent
Adversarial Networks" (ICCV 2017), following the official code
(junyanz/pytorch-CycleGAN-and-pix2pix: models/cycle_gan_model.py, util/image_pool.py,
options/train_options.py, data/unaligned_dataset.py).

Two generators G: A -> B and F: B -> A ("a_to_b", "b_to_a"; the code's G_A and G_B) and
two discriminators D_B and D_A ("b" judges domain B, "a" judges domain A; the code's D_A
and D_B). With a, b a batch of each domain, L1 the mean absolute error and the LSGAN
losses of `gen_jax.gan.losses` ("least_squares"):

  L_G = MSE(D_B(G(a)), 1) + MSE(D_A(F(b)), 1)                        adversarial
      + lambda_a |F(G(a)) - a|_1 + lambda_b |G(F(b)) - b|_1           cycle consistency
      + lambda_id (lambda_b |G(b) - b|_1 + lambda_a |F(a) - a|_1)     identity
  L_D = 1/2 [MSE(D_B(b), 1) + MSE(D_B(pool_B(G(a))), 0)]
      + 1/2 [MSE(D_A(a), 1) + MSE(D_A(pool_A(F(b))), 0)]

MSE is the mean over every patch logit. The registered least-squares generator loss is
1/2 E[(d - 1)^2], so the adversarial terms are scaled by 2 for it (`adversarial_scale`)
to give the code's MSE; the discriminator loss is the registered one as is.

One `update` is the code's `optimize_parameters`: the generators' step on L_G (both
generators share one Adam, the discriminators are held fixed), then the discriminators'
step on L_D (one Adam for both), whose fakes are the generators' outputs BEFORE their
step, passed through the 50-image history pools (`gen_jax.gan.image_pool`).

State layout:
  params      {"generator": {"a_to_b", "b_to_a"}, "discriminator": {"a", "b"}}
  opt_state   {"generator": ..., "discriminator": ...}
  model_state {"pool": {"a": pool of fakes F(b), "b": pool of fakes G(a)},
               "preview": {"a": [k, H, W, C], "b": [k, H, W, C]}}
The pools ({"images": [P, H, W, C], "count"}) are part of the checkpoint and replicated
over the mesh like the rest of the state. Their randomness is drawn from keys split off
the train step's key (`fold_in(loop_key, step)`): a resumed or 8-device run makes the
same choices as an uninterrupted 1-device one. "preview" holds the first training batch's
images (rows repeated up to k = preview_size), the inputs of `sample`'s periodic grids.

Sampling. `sample(state, rng, n, spec)` returns translations of the preview inputs
(first G(a) for the A previews, then F(b) for the B previews, repeated up to n): a
CycleGAN has no noise to sample from. `translate(state, images, direction, spec)`
translates given images and reconstructs them (what `--mode=sample` writes as grids,
`gen_jax/train/translation.py`). Both refuse every SampleSpec option (there is no
temperature, guidance, truncation or sampler to choose) and use `ema_params`; the configs
set ema.decay = 0, which makes them the raw parameters, as the code uses.

`evaluate` returns per example the unweighted L1 cycle and identity errors of the EMA
generators on an evaluation pair: cycle_a, cycle_b, identity_a, identity_b.

Deviations from the official code:
* The learning rate decays linearly per step over the second half of the steps to 0
  (core/optim.py "constant_then_linear"); the code holds it per epoch and decays it at
  epoch ends to 1/101 of the peak (within 1/101 of the peak everywhere; tested).
* Both domains have the same image shape (input_nc == output_nc); the code allows
  different channel counts without identity loss.
* Data: independent reshuffles of A and B each epoch, without replacement
  (data.pipeline); the code draws B uniformly with replacement. Preprocessing is
  center-crop-and-resize to data.image_size plus random flips; the code's jitter (resize
  to 286, random 256 crop) is not implemented.
* An epoch is max(|A|, |B|) images as in the code, but num_train_steps is set by the
  config from a stated epoch size rather than counted from the data.
* The EMA copy of the parameters exists (trainer) and is used for sampling; with the
  configs' ema.decay = 0 it equals the parameters.
* The pool's coin and index come from JAX keys (see gen_jax.gan.image_pool).
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from gen_jax import nets
from gen_jax.core.sample import SampleOutput, SampleSpec
from gen_jax.core.optim import apply_gradients
from gen_jax.core.state import TrainState
from gen_jax.gan import image_pool
from gen_jax.gan.losses import GAN_LOSSES
from gen_jax.methods.base import METHODS, Batch, Method, Metrics
from gen_jax.methods.gan import build_optimizers, learning_rates

G, D = "generator", "discriminator"
A_TO_B, B_TO_A = "a_to_b", "b_to_a"
DIRECTIONS = (A_TO_B, B_TO_A)
IMAGE_KEYS = ("image_a", "image_b")
SUPPORTED_SPEC: tuple[str, ...] = ()


def l1(x: jax.Array, y: jax.Array) -> jax.Array:
  """Mean absolute error over every element (torch.nn.L1Loss)."""
  return jnp.mean(jnp.abs(x - y))


def l1_per_example(x: jax.Array, y: jax.Array) -> jax.Array:
  """[B] mean absolute error of each example."""
  return jnp.mean(jnp.abs(x - y).reshape(x.shape[0], -1), axis=1)


def cycle_losses(g_ab: Callable, g_ba: Callable, a: jax.Array, b: jax.Array):
  """(|F(G(a)) - a|_1, |G(F(b)) - b|_1, G(a), F(b)) for generators G = g_ab, F = g_ba."""
  fake_b, fake_a = g_ab(a), g_ba(b)
  return l1(g_ba(fake_b), a), l1(g_ab(fake_a), b), fake_b, fake_a


@dataclasses.dataclass(frozen=True)
class CycleGAN(Method):
  """A CycleGAN instance (see the module docstring).

  Attributes:
    generator: `G(x [B, H, W, C], train=) -> [B, H, W, C]`, one module, two parameter sets.
    discriminator: `D(x [B, H, W, C], train=) -> logits [B, h, w, 1]`, two parameter sets.
    optimizer_g: the Adam of both generators; optimizer_d: of both discriminators.
    image_shape: (H, W, C) of both domains.
    loss: a name in GAN_LOSSES ("least_squares" is the paper's LSGAN).
    lambda_a, lambda_b: cycle-consistency weights of A -> B -> A and B -> A -> B.
    lambda_identity: identity weight, relative to lambda_a / lambda_b (0: off).
    pool_size: images in each history pool (0: no pool).
    preview_size: preview inputs per domain kept for the periodic sample grids.
    lr_g, lr_d: learning-rate schedules (logged as g_lr / d_lr).
  """

  generator: nn.Module
  discriminator: nn.Module
  optimizer_g: optax.GradientTransformation
  optimizer_d: optax.GradientTransformation
  image_shape: tuple[int, int, int]
  loss: str = "least_squares"
  lambda_a: float = 10.0
  lambda_b: float = 10.0
  lambda_identity: float = 0.5
  pool_size: int = 50
  preview_size: int = 8
  lr_g: Callable[[jax.Array], jax.Array] | None = None
  lr_d: Callable[[jax.Array], jax.Array] | None = None

  @property
  def adversarial_scale(self) -> float:
    """2 for least squares: the registered 1/2 E[(d-1)^2] times 2 is the code's MSE."""
    return 2.0 if self.loss == "least_squares" else 1.0

  def _g(self, params):
    return lambda x: self.generator.apply({"params": params}, x, train=True)

  def _d(self, params):
    return lambda x: self.discriminator.apply({"params": params}, x, train=True)

  def _check_batch(self, batch: Batch) -> tuple[jax.Array, jax.Array]:
    missing = [k for k in IMAGE_KEYS if k not in batch]
    if missing:
      raise ValueError(f"CycleGAN needs batches with {IMAGE_KEYS}, missing {missing} (got "
                       f"{sorted(batch)}); use data.source='unpaired_folders' or "
                       "'unpaired_tfds'.")
    return batch["image_a"], batch["image_b"]

  # ---------------------------------------------------------------- contract

  def init(self, rng: jax.Array, batch: Batch) -> TrainState:
    a, b = self._check_batch(batch)
    keys = jax.random.split(rng, 4)
    x = jnp.zeros((1, *self.image_shape), jnp.float32)
    init_g = lambda k: self.generator.init({"params": k}, x, train=False)["params"]
    init_d = lambda k: self.discriminator.init({"params": k}, x, train=False)["params"]
    params = {G: {A_TO_B: init_g(keys[0]), B_TO_A: init_g(keys[1])},
              D: {"a": init_d(keys[2]), "b": init_d(keys[3])}}
    opt_state = {G: self.optimizer_g.init(params[G]), D: self.optimizer_d.init(params[D])}
    rows = jnp.arange(self.preview_size) % a.shape[0]
    rows_b = jnp.arange(self.preview_size) % b.shape[0]
    model_state = {
        "pool": {d: image_pool.init_pool(self.pool_size, self.image_shape) for d in "ab"},
        "preview": {"a": jnp.asarray(a, jnp.float32)[rows],
                    "b": jnp.asarray(b, jnp.float32)[rows_b]},
    }
    return TrainState.create(params, opt_state, model_state)

  def generator_loss(self, g_params, d_params, a, b) -> tuple[jax.Array, tuple]:
    """L_G (module docstring) and (metrics, G(a), F(b))."""
    g_ab, g_ba = self._g(g_params[A_TO_B]), self._g(g_params[B_TO_A])
    cycle_a, cycle_b, fake_b, fake_a = cycle_losses(g_ab, g_ba, a, b)
    adv = GAN_LOSSES.get(self.loss).generator
    adv_b = self.adversarial_scale * adv(self._d(d_params["b"])(fake_b))
    adv_a = self.adversarial_scale * adv(self._d(d_params["a"])(fake_a))
    loss = adv_a + adv_b + self.lambda_a * cycle_a + self.lambda_b * cycle_b
    metrics = {"g_adv_a": adv_a, "g_adv_b": adv_b, "cycle_a": cycle_a, "cycle_b": cycle_b}
    if self.lambda_identity:
      identity_b, identity_a = l1(g_ab(b), b), l1(g_ba(a), a)
      loss += self.lambda_identity * (self.lambda_b * identity_b + self.lambda_a * identity_a)
      metrics.update(identity_a=identity_a, identity_b=identity_b)
    return loss, (metrics, fake_b, fake_a)

  def discriminator_loss(self, d_params, a, b, fake_a, fake_b) -> tuple[jax.Array, Metrics]:
    """L_D (module docstring) on real a, b and (pooled) fakes; and its metrics."""
    d_loss = GAN_LOSSES.get(self.loss).discriminator
    metrics, total = {}, 0.0
    for name, real, fake in (("a", a, fake_a), ("b", b, fake_b)):
      disc = self._d(d_params[name])
      d_real, d_fake = disc(real), disc(fake)
      loss = d_loss(d_real, d_fake)
      total += loss
      metrics.update({f"d_{name}_loss": loss, f"d_{name}_real": jnp.mean(d_real),
                      f"d_{name}_fake": jnp.mean(d_fake)})
    return total, metrics

  def update(self, state: TrainState, batch: Batch, rng: jax.Array) -> tuple[TrainState, Metrics]:
    a, b = self._check_batch(batch)
    r_pool_a, r_pool_b = jax.random.split(rng)
    params, ms = state.params, state.model_state

    (g_loss, (g_metrics, fake_b, fake_a)), g_grads = jax.value_and_grad(
        self.generator_loss, has_aux=True)(params[G], params[D], a, b)
    g_params, g_opt, g_norms = apply_gradients(self.optimizer_g, g_grads, state.opt_state[G],
                                               params[G], prefix="g_")

    pool_a, pooled_a = image_pool.query(ms["pool"]["a"], jax.lax.stop_gradient(fake_a),
                                        r_pool_a)
    pool_b, pooled_b = image_pool.query(ms["pool"]["b"], jax.lax.stop_gradient(fake_b),
                                        r_pool_b)
    (d_loss, d_metrics), d_grads = jax.value_and_grad(self.discriminator_loss, has_aux=True)(
        params[D], a, b, pooled_a, pooled_b)
    d_params, d_opt, d_norms = apply_gradients(self.optimizer_d, d_grads, state.opt_state[D],
                                               params[D], prefix="d_")

    metrics = {"loss": g_loss, "g_loss": g_loss, "d_loss": d_loss, **g_metrics, **d_metrics,
               **g_norms, **d_norms, "pool_count": pool_a["count"].astype(jnp.float32),
               **learning_rates(self.lr_g, self.lr_d, state.step)}
    new_state = state.replace(params={G: g_params, D: d_params},
                              opt_state={G: g_opt, D: d_opt},
                              model_state={**ms, "pool": {"a": pool_a, "b": pool_b}})
    return new_state, metrics

  def translate(self, state: TrainState, images: jax.Array, direction: str,
                spec: SampleSpec = SampleSpec()) -> dict[str, jax.Array]:
    """Translates images of one domain with the EMA generators, and back.

    Args:
      state: the train state.
      images: [n, H, W, C] in [-1, 1], of domain A for "a_to_b", of B for "b_to_a".
      direction: "a_to_b" or "b_to_a".
      spec: refused unless empty (CycleGAN has no sampling options).

    Returns:
      {"translated": [n, H, W, C], "reconstructed": [n, H, W, C]} in [-1, 1]: G(x) and
      F(G(x)) for "a_to_b" (F(x) and G(F(x)) for "b_to_a").
    """
    spec.refuse_unsupported("cyclegan", SUPPORTED_SPEC)
    if direction not in DIRECTIONS:
      raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}.")
    forward, backward = direction, DIRECTIONS[1 - DIRECTIONS.index(direction)]
    g = state.ema_params[G]
    apply = lambda p, x: self.generator.apply({"params": p}, x, train=False)
    translated = apply(g[forward], images)
    return {"translated": translated, "reconstructed": apply(g[backward], translated)}

  def sample(self, state: TrainState, rng: jax.Array, num_samples: int,
             spec: SampleSpec = SampleSpec()) -> SampleOutput:
    """[num_samples] translations of the preview inputs: G(a_1..k), F(b_1..k), repeated.

    `rng` is unused (translation is deterministic); see the module docstring.
    """
    del rng
    spec.refuse_unsupported("cyclegan", SUPPORTED_SPEC)
    preview = state.model_state["preview"]
    fakes = jnp.concatenate([self.translate(state, preview["a"], A_TO_B)["translated"],
                             self.translate(state, preview["b"], B_TO_A)["translated"]])
    return SampleOutput(samples=fakes[jnp.arange(num_samples) % fakes.shape[0]], nfe=1)

  def evaluate(self, state: TrainState, batch: Batch, rng: jax.Array) -> Metrics:
    """Per example: unweighted L1 cycle and identity errors of the EMA generators."""
    del rng
    a, b = self._check_batch(batch)
    to_b, to_a = self.translate(state, a, A_TO_B), self.translate(state, b, B_TO_A)
    g = state.ema_params[G]
    apply = lambda p, x: self.generator.apply({"params": p}, x, train=False)
    return {"cycle_a": l1_per_example(to_b["reconstructed"], a),
            "cycle_b": l1_per_example(to_a["reconstructed"], b),
            "identity_a": l1_per_example(apply(g[B_TO_A], a), a),
            "identity_b": l1_per_example(apply(g[A_TO_B], b), b)}


@METHODS.register("cyclegan")
def build_cyclegan(config, info) -> CycleGAN:
  """A CycleGAN from config.model.{generator, discriminator}, config.method, optim_g/_d.

  config.method fields: loss, lambda_a, lambda_b, lambda_identity, pool_size,
  preview_size. The data must be unpaired (data.source 'unpaired_folders' or
  'unpaired_tfds').
  """
  m = config.method
  keys = tuple(getattr(info, "image_keys", ("image",)))
  if keys != IMAGE_KEYS:
    raise ValueError(f"method.name='cyclegan' needs unpaired data with batches {IMAGE_KEYS}; "
                     f"data.source={config.data.source!r} gives {keys}. Use "
                     "data.source='unpaired_folders' (data.path_a, data.path_b) or "
                     "'unpaired_tfds' (e.g. data.name='cycle_gan/horse2zebra').")
  image_shape = tuple(int(d) for d in info.image_shape)
  if len(image_shape) != 3:
    raise ValueError(f"CycleGAN translates images [H, W, C]; the data are {image_shape}.")
  GAN_LOSSES.get(m.loss)
  for name in ("lambda_a", "lambda_b", "lambda_identity"):
    if float(m[name]) < 0:
      raise ValueError(f"method.{name} must be >= 0, got {m[name]}.")
  g_kwargs, d_kwargs = dict(config.model.generator), dict(config.model.discriminator)
  generator = nets.build_net(g_kwargs.pop("name"), out_channels=image_shape[-1], **g_kwargs)
  discriminator = nets.build_net(d_kwargs.pop("name"), **d_kwargs)
  opt_g, opt_d, lr_g, lr_d = build_optimizers(config)
  return CycleGAN(
      generator=generator, discriminator=discriminator, optimizer_g=opt_g, optimizer_d=opt_d,
      image_shape=image_shape, loss=m.loss, lambda_a=float(m.lambda_a),
      lambda_b=float(m.lambda_b), lambda_identity=float(m.lambda_identity),
      pool_size=int(m.pool_size), preview_size=int(m.preview_size), lr_g=lr_g, lr_d=lr_d)
