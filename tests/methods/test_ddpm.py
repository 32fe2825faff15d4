"""The DDPM preset of the diffusion method (gen_jax.methods.diffusion) checked as mathematics.

* `likelihood.normal_kl` and `discretized_gaussian_log_likelihood` against closed forms / quadrature
  computed independently in float64 with SciPy;
* the variational bound: with an exact x0-predictor every KL term vanishes, and the
  one-timestep estimate `likelihood.vlb` is unbiased for the full bound
  L_T + sum_t L_t, within Monte-Carlo error;
* `update` equals a hand-written SGD step, and its metrics their definitions;
* every prediction type and loss trains; class dropout and classifier-free guidance;
* `sample`'s contract; `build_ddpm`'s errors.

Most tests use a small denoiser written here (`TinyDenoiser`): a tiny UNet's training step
takes ~15-20 s to compile on a 2-core CPU, and nothing here depends on the architecture.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import math
import pathlib
import re

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from scipy import integrate, stats

from gen_jax.data import DatasetInfo, digits_source
from gen_jax.core.sample import SampleSpec
from gen_jax.diffusion import DiffusionSchedule, likelihood, make_schedule
from gen_jax.methods import diffusion
from gen_jax.nets import layers
from gen_jax.samplers import ddim_sample
from gen_jax.core.state import TrainState

IMAGE_SHAPE = (8, 8, 1)
DIM = math.prod(IMAGE_SHAPE)
DIGITS_CONFIG = pathlib.Path(__file__).resolve().parents[2] / "configs" / "ddpm" / "digits.py"


def _key(seed: int) -> jax.Array:
  # XLA:CPU compiles threefry slowly; rbg keys keep the compilations here short.
  return jax.random.key(seed, impl="rbg")


class TinyDenoiser(nn.Module):
  """conv -> + time (and label) embedding -> swish -> dropout -> conv; [B,H,W,C] -> same."""

  features: int = 8
  num_classes: int = 0
  dropout: float = 0.0

  @nn.compact
  def __call__(self, x, t, y=None, *, train: bool):
    emb = nn.Dense(self.features, name="time_dense")(layers.timestep_embedding(t, 16))
    if self.num_classes:
      emb = emb + nn.Embed(self.num_classes + 1, self.features, name="label_emb")(y)
    h = nn.Conv(self.features, (3, 3), name="conv_in")(x) + emb[:, None, None, :]
    h = nn.Dropout(self.dropout)(jax.nn.swish(h), deterministic=not train)
    return nn.Conv(x.shape[-1], (3, 3), name="conv_out")(h)


class ConstNet(nn.Module):
  """Outputs its parameter `out` [B,H,W,C] whatever the input: set it to the true x0."""

  @nn.compact
  def __call__(self, x, t, y=None, *, train: bool):
    del t, y, train
    return self.param("out", nn.initializers.zeros, x.shape)


@functools.lru_cache(maxsize=None)
def _tiny_params(num_classes: int = 0):
  """Initial TinyDenoiser parameters, shared by the tests (compiling an init takes seconds)."""
  net = TinyDenoiser(num_classes=num_classes)
  x, t = jnp.zeros((1, *IMAGE_SHAPE)), jnp.zeros((1,))
  y = jnp.zeros((1,), jnp.int32) if num_classes else None
  return jax.jit(lambda k: net.init({"params": k}, x, t, y, train=False)["params"])(_key(0))


def _state(method: diffusion.Diffusion) -> TrainState:
  """What `method.init` returns for a TinyDenoiser (test_update checks `init` itself)."""
  params = _tiny_params(method.net.num_classes)
  return TrainState.create(params, method.optimizer.init(params))


def _method(net=None, schedule=None, **kwargs) -> diffusion.Diffusion:
  """The DDPM preset's Diffusion (clip_x0 on, L_simple) on a chain of `schedule`."""
  kwargs = {"process": schedule or make_schedule("linear", 10), "optimizer": optax.sgd(0.1),
            "example_shape": IMAGE_SHAPE, "clip_x0": True, **kwargs}
  return diffusion.Diffusion(net=TinyDenoiser() if net is None else net, **kwargs)


def _vlb_bpd(method, params, batch, key):
  """The one-sample VLB estimate [B] in bits/dim, as `evaluate` reports it."""
  nats = likelihood.vlb(method.model_fn(params), method.process, batch["image"], key,
                        prediction=method.prediction)
  return likelihood.nats_to_bits_per_dim(nats, DIM)


def _digits(n: int = 4) -> dict[str, jax.Array]:
  """The first n training digits on the 8-bit grid, scaled to [-1, 1], with their labels."""
  source = digits_source("train")
  examples = [source[i] for i in range(n)]
  image = np.stack([e["image"] for e in examples]).astype(np.float32) / 127.5 - 1.0
  label = np.array([e["label"] for e in examples], np.int32)
  return {"image": jnp.asarray(image), "label": jnp.asarray(label)}


# ---------------------------------------------------------------------------- closed forms


def test_normal_kl_matches_closed_form_and_quadrature():
  rng = np.random.default_rng(0)
  m1, m2 = rng.normal(size=(2, 6, 5))
  lv1, lv2 = rng.uniform(-3.0, 2.0, size=(2, 6, 5))
  got = np.asarray(likelihood.normal_kl(*(jnp.asarray(a, jnp.float32) for a in (m1, lv1, m2, lv2))))
  s1, s2 = np.exp(0.5 * lv1), np.exp(0.5 * lv2)
  want = np.log(s2 / s1) + (s1**2 + (m1 - m2)**2) / (2 * s2**2) - 0.5
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
  assert np.all(got >= 0)
  # Against the definition, E_p[log p - log q], by quadrature for a few pairs.
  for i in range(3):
    p, q = stats.norm(m1[i, 0], s1[i, 0]), stats.norm(m2[i, 0], s2[i, 0])
    kl, _ = integrate.quad(lambda x: p.pdf(x) * (p.logpdf(x) - q.logpdf(x)), -np.inf, np.inf)
    np.testing.assert_allclose(got[i, 0], kl, rtol=1e-4)
  # KL(p || p) = 0.
  np.testing.assert_allclose(
      likelihood.normal_kl(jnp.asarray(m1), jnp.asarray(lv1), jnp.asarray(m1), jnp.asarray(lv1)),
      0.0, atol=1e-7)


@pytest.mark.parametrize("mean,scale", [(0.13, 0.2), (0.95, 0.05), (-0.4, 0.003), (0.0, 3.0)])
def test_discretized_gaussian_is_the_mass_of_each_bin(mean, scale):
  k = np.arange(256)
  x = k / 127.5 - 1.0  # the 256 values of an 8-bit pixel
  log_p = likelihood.discretized_gaussian_log_likelihood(
      jnp.asarray(x, jnp.float32), jnp.full((256,), mean, jnp.float32),
      jnp.full((256,), math.log(scale), jnp.float32))
  p = np.exp(np.asarray(log_p, np.float64))
  np.testing.assert_allclose(p.sum(), 1.0, atol=1e-5)
  # Bin k is [x_k - 1/255, x_k + 1/255], the outer bins reach +-inf.
  upper = np.where(k == 255, np.inf, x + 1.0 / 255.0)
  lower = np.where(k == 0, -np.inf, x - 1.0 / 255.0)
  mass = stats.norm.cdf(upper, mean, scale) - stats.norm.cdf(lower, mean, scale)
  np.testing.assert_allclose(p, mass, rtol=0, atol=5e-7)  # float32 cdf differences


# ---------------------------------------------------------------------------- the bound


def _schedule_np(betas: np.ndarray) -> dict[str, np.ndarray]:
  """The float64 constants of DDPM eqs. (4), (7), written out from the paper."""
  abar = np.cumprod(1.0 - betas)
  abar_prev = np.append(1.0, abar[:-1])
  return {"abar": abar,
          "beta_tilde": betas * (1.0 - abar_prev) / (1.0 - abar),
          "c1": betas * np.sqrt(abar_prev) / (1.0 - abar)}


def _per_example_sum(a: np.ndarray) -> np.ndarray:
  return a.reshape(a.shape[0], -1).sum(axis=1)


def test_exact_x0_network_zeroes_every_kl_and_leaves_prior_plus_decoder():
  """x0_hat = x0: L_t = 0 for t > 0, and L_T, L_0 have closed forms (Gaussian, erf)."""
  betas = np.linspace(0.05, 0.2, 6)
  method = _method(ConstNet(), schedule=DiffusionSchedule.from_betas(betas),
                   prediction="x0")
  batch = _digits(4)
  x0 = np.asarray(batch["image"], np.float64)
  params = {"out": batch["image"]}

  @jax.jit
  def bound_and_losses(params):
    noise = jax.random.normal(_key(0), (len(betas), *x0.shape))
    term = lambda t, n: likelihood.vlb_term(method.model_fn(params), method.process,
                                            batch["image"], jnp.full((4,), t), n,
                                            prediction="x0")
    terms = jax.vmap(term)(jnp.arange(len(betas)), noise)
    losses = [dataclasses.replace(method, loss=loss).loss_terms(params, batch, _key(1),
                                                                train=True)
              for loss in ("mse", "l1")]
    return terms, likelihood.prior_kl(method.process, batch["image"]), losses

  terms, prior_kl, losses = bound_and_losses(params)
  np.testing.assert_allclose(terms[1:], 0.0, atol=DIM * 1e-6)  # float32 rounding per pixel
  s = _schedule_np(betas)
  # L_0: each pixel's mass under N(x0, beta_tilde_1) of its own bin.
  half_width = 1.0 / 255.0 / math.sqrt(s["beta_tilde"][1])
  edge = (x0 < -0.999) | (x0 > 0.999)
  pixel_nll = -np.where(edge, np.log(stats.norm.cdf(half_width)),
                        np.log(2.0 * stats.norm.cdf(half_width) - 1.0))
  np.testing.assert_allclose(terms[0], _per_example_sum(pixel_nll), rtol=1e-5)
  # L_T = KL(N(sqrt(abar) x0, 1 - abar) || N(0, 1)).
  a = s["abar"][-1]
  prior = _per_example_sum(0.5 * (a * x0**2 + (1.0 - a) - np.log(1.0 - a) - 1.0))
  np.testing.assert_allclose(prior_kl, prior, rtol=1e-5)
  # The x0 training loss of the exact network is 0 at every t, for both losses.
  np.testing.assert_array_equal(losses, 0.0)


def _estimate_draws(method, params, x0, num_draws: int, key) -> np.ndarray:
  """[num_draws] i.i.d. draws of the batch-mean `vlb_bpd_estimate`.

  One call on num_draws stacked copies of the batch: t and the noise are drawn per row.
  (Vmapping over keys instead makes XLA:CPU compile for seconds.)
  """
  stacked = jnp.tile(x0, (num_draws, 1, 1, 1))
  bpd = jax.jit(functools.partial(_vlb_bpd, method))(params, {"image": stacked}, key)
  return np.asarray(bpd).reshape(num_draws, x0.shape[0]).mean(axis=1)


def _mean_and_stderr(draws: np.ndarray) -> tuple[float, float]:
  """Mean of i.i.d. scalar draws [N] and its standard error."""
  draws = np.asarray(draws, np.float64)
  return float(draws.mean()), float(draws.std(ddof=1) / math.sqrt(len(draws)))


def test_vlb_estimate_is_unbiased_for_a_closed_form_bound():
  """x0_hat = x0 + delta (no noise dependence): the bound is known exactly in NumPy.

  -ELBO = L_T + sum_{t>0} c1_t^2 |clip(x0 + delta) - x0|^2 / (2 beta_tilde_t) + L_0, with L_0
  the discretised Gaussian N(clip(x0 + delta), beta_tilde_1) of the 8-bit bins.
  """
  betas = np.linspace(0.05, 0.2, 6)
  num_t = len(betas)
  method = _method(ConstNet(), schedule=DiffusionSchedule.from_betas(betas),
                   prediction="x0")
  batch = {"image": _digits(4)["image"]}
  x0 = np.asarray(batch["image"], np.float64)
  out = (x0 + 0.2 * np.random.default_rng(0).standard_normal(x0.shape)).astype(np.float32)
  x0_hat = np.clip(out.astype(np.float64), -1.0, 1.0)
  s = _schedule_np(betas)
  a = s["abar"][-1]
  prior = _per_example_sum(0.5 * (a * x0**2 + (1.0 - a) - np.log(1.0 - a) - 1.0))
  kls = sum(_per_example_sum(s["c1"][t]**2 * (x0_hat - x0)**2 / (2.0 * s["beta_tilde"][t]))
            for t in range(1, num_t))
  upper = np.where(x0 > 0.999, np.inf, x0 + 1.0 / 255.0)
  lower = np.where(x0 < -0.999, -np.inf, x0 - 1.0 / 255.0)
  scale = math.sqrt(s["beta_tilde"][1])
  decoder = -_per_example_sum(
      np.log(stats.norm.cdf(upper, x0_hat, scale) - stats.norm.cdf(lower, x0_hat, scale)))
  to_bpd = 1.0 / (DIM * math.log(2.0))
  exact = float(np.mean(prior + kls + decoder)) * to_bpd

  num_draws = 1 << 15
  params = {"out": jnp.tile(out, (num_draws, 1, 1, 1))}  # ConstNet's output for every row
  mean, stderr = _mean_and_stderr(
      _estimate_draws(method, params, batch["image"], num_draws, _key(1)))
  tolerance = 4.0 * stderr
  assert abs(mean - exact) < tolerance, (mean, exact, stderr)
  # The test has the power to see a missing term or a wrong weight on the sum.
  assert tolerance < 0.5 * np.mean(prior) * to_bpd
  assert tolerance < 0.5 * np.mean(kls) * to_bpd
  assert tolerance < 0.5 * exact / num_t  # T - 1 or T + 1 in place of T


def test_vlb_estimate_is_unbiased_for_a_network():
  """A random network, cosine T = 8: E[estimate] = (L_T + sum_t E_eps[L_t]) / (D log 2).

  The right side is computed by averaging L_t over noise draws at every t separately.
  """
  num_t = 8
  method = _method(schedule=make_schedule("cosine", num_t))
  batch = {"image": _digits(4)["image"]}
  x0 = batch["image"]
  params = _tiny_params()
  num_noise, num_draws = 256, 1 << 12

  @jax.jit
  def per_t_terms(key):  # [T, num_noise] draws of the batch-mean L_t, t = 0..T-1
    stacked = jnp.tile(x0, (num_noise, 1, 1, 1))
    noise = jax.random.normal(key, (num_t, *stacked.shape))
    term = lambda t, n: likelihood.vlb_term(method.model_fn(params), method.process, stacked,
                                            jnp.full((len(stacked),), t), n)
    return jax.vmap(term)(jnp.arange(num_t), noise).reshape(num_t, num_noise, -1).mean(-1)

  terms = np.asarray(per_t_terms(_key(1)), np.float64)
  assert np.all(terms[1:] > 0) and np.all(np.isfinite(terms))
  to_bpd = 1.0 / (DIM * math.log(2.0))
  prior = float(np.mean(likelihood.prior_kl(method.process, x0)))
  exact = (prior + terms.mean(axis=1).sum()) * to_bpd
  exact_stderr = math.sqrt(np.sum(terms.var(axis=1, ddof=1) / num_noise)) * to_bpd
  mean, stderr = _mean_and_stderr(_estimate_draws(method, params, x0, num_draws, _key(2)))
  tolerance = 4.0 * math.hypot(stderr, exact_stderr)
  assert abs(mean - exact) < tolerance, (mean, exact, stderr, exact_stderr)
  assert tolerance < 0.5 * exact / num_t  # T - 1 or T + 1 in place of T


# ---------------------------------------------------------------------------- training


def _load_digits_smoke():
  spec = importlib.util.spec_from_file_location("cfg_ddpm_digits_test_ddpm", DIGITS_CONFIG)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config("smoke")


DIGITS_INFO = DatasetInfo(image_shape=IMAGE_SHAPE, num_classes=10, num_examples=1500)


def _tree_close(a, b, **kwargs):
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
    np.testing.assert_allclose(np.asarray(x), np.asarray(y), **kwargs)


def _global_norm(tree) -> float:
  return math.sqrt(sum(float(np.sum(np.asarray(x, np.float64)**2)) for x in jax.tree.leaves(tree)))


def test_update_is_a_hand_written_sgd_step_with_the_configured_learning_rate():
  c = _load_digits_smoke()
  c.optim.name = "sgd"
  c.optim.momentum = 0.0
  c.optim.grad_clip_norm = 0.0
  c.optim.schedule = "linear"  # 0.05 -> 0 over 10 steps: 0.05 at step 0, 0.045 at step 1
  c.optim.learning_rate = 0.05
  c.num_train_steps = 10
  # The configured optimiser and schedule, on a small network (dropout on: the rng matters).
  method = dataclasses.replace(diffusion.build_ddpm(c, DIGITS_INFO), net=TinyDenoiser(dropout=0.2))
  batch = _digits(4)
  state = jax.jit(method.init)(_key(0), batch)
  update = jax.jit(method.update)
  loss_fn = jax.jit(lambda p, k: jnp.mean(method.loss_terms(p, batch, k, train=True)))
  for step, lr in enumerate((0.05, 0.045)):
    rng = _key(10 + step)
    loss, grads = jax.value_and_grad(loss_fn)(state.params, rng)
    want = jax.tree.map(lambda p, g: p - lr * g, state.params, grads)
    new_state, metrics = update(state, batch, rng)
    _tree_close(new_state.params, want, rtol=1e-5, atol=1e-7)
    grad_norm = _global_norm(grads)
    assert grad_norm > 0
    np.testing.assert_allclose(metrics["loss"], loss, rtol=1e-6)
    np.testing.assert_allclose(metrics["grad_norm"], grad_norm, rtol=1e-5)
    np.testing.assert_allclose(metrics["param_norm"], _global_norm(want), rtol=1e-5)
    np.testing.assert_allclose(metrics["update_norm"], lr * grad_norm, rtol=1e-5)
    np.testing.assert_allclose(metrics["learning_rate"], lr, rtol=1e-6)
    assert {k: v.shape for k, v in metrics.items()} == {k: () for k in metrics}
    # The trainer owns the step counter and the EMA.
    assert int(new_state.step) == step
    _tree_close(new_state.ema_params, state.ema_params, rtol=0, atol=0)
    state = new_state.replace(step=new_state.step + 1)


@pytest.mark.parametrize("prediction,loss", [("eps", "mse"), ("x0", "l1"), ("v", "mse")])
def test_every_prediction_and_loss_trains(prediction, loss):
  """25 Adam steps on one batch with the same (t, noise) every step lower its loss."""
  method = _method(schedule=make_schedule("cosine", 20), optimizer=optax.adam(1e-2),
                   prediction=prediction, loss=loss)
  batch = _digits(8)
  rng = _key(1)

  @jax.jit
  def train(state):
    before = jnp.mean(method.loss_terms(state.params, batch, rng, train=True))
    state, metrics = jax.lax.scan(lambda s, _: method.update(s, batch, rng), state, None,
                                  length=25)
    return before, metrics["loss"], jnp.mean(method.loss_terms(state.params, batch, rng,
                                                               train=True))

  before, losses, after = train(_state(method))
  np.testing.assert_allclose(losses[0], before, rtol=1e-6)
  assert after < 0.7 * before, (float(before), float(after))


# ---------------------------------------------------------------------------- classes


def _label_emb_grad(method, params, batch):
  grads = jax.grad(lambda p: jnp.mean(method.loss_terms(p, batch, _key(3), train=True)))(params)
  return grads["label_emb"]["embedding"]  # [num_classes + 1, features]


def test_class_dropout_one_trains_only_the_null_label():
  batch = _digits(8)
  method = _method(TinyDenoiser(num_classes=10), num_classes=10, class_dropout=1.0)
  no_dropout = dataclasses.replace(method, class_dropout=0.0)
  params = _tiny_params(10)
  grads = jax.jit(lambda p: [_label_emb_grad(m, p, batch) for m in (method, no_dropout)])(params)
  row_norms = np.linalg.norm(grads[0], axis=1)
  np.testing.assert_array_equal(row_norms[:10], 0.0)
  assert row_norms[10] > 0
  # Control: without dropout exactly the rows of the batch's labels get a gradient.
  row_norms = np.linalg.norm(grads[1], axis=1)
  seen = np.isin(np.arange(11), np.asarray(batch["label"]))
  assert np.all(row_norms[seen] > 0)
  np.testing.assert_array_equal(row_norms[~seen], 0.0)
  # A class-conditional model refuses a batch without labels.
  with pytest.raises(ValueError, match="needs batch\\['label'\\]"):
    no_dropout.loss_terms(params, {"image": batch["image"]}, _key(3), train=True)


def _conditional(guidance_scale, sampler_kwargs=None):
  return _method(TinyDenoiser(num_classes=3), num_classes=3, guidance_scale=guidance_scale,
                 sampler="ddim", sampler_kwargs=sampler_kwargs or {"num_steps": 4, "eta": 0.5})


def test_classifier_free_guidance():
  w, n, steps = 2.0, 5, 4
  guided, plain = _conditional(w), _conditional(0.0)
  state = _state(guided)
  labels = jnp.array([0, 1, 2, 1, 0], jnp.int32)
  default_labels = jnp.arange(n, dtype=jnp.int32) % 3  # what `sample` uses without labels
  null = jnp.full((n,), 3, jnp.int32)
  x = jax.random.normal(_key(1), (n, *IMAGE_SHAPE))
  t = jnp.array([0, 3, 5, 9, 7], jnp.int32)

  @jax.jit
  def run(state):
    net = lambda x, t, y: guided.net.apply({"params": state.ema_params}, x,
                                           t.astype(jnp.float32), y, train=False)

    def by_hand(denoise_fn):  # the sampler itself, with a hand-written denoiser
      out = ddim_sample(denoise_fn, guided.process, rng=_key(2), shape=(n, *IMAGE_SHAPE),
                        num_steps=steps, eta=0.5)
      return jnp.clip(out.samples, -1.0, 1.0)

    return {
        "denoise": guided.denoise_fn(state.ema_params, labels)(x, t),
        "denoise_by_hand": (1 + w) * net(x, t, labels) - w * net(x, t, null),
        "guided": guided.sample(state, _key(2), n, SampleSpec(labels=labels)).samples,
        "guided_by_hand": by_hand(lambda x, t: (1 + w) * net(x, t, labels) - w * net(x, t, null)),
        "plain": plain.sample(state, _key(2), n).samples,
        "plain_by_hand": by_hand(lambda x, t: net(x, t, default_labels)),
    }

  out = run(state)
  np.testing.assert_allclose(out["denoise"], out["denoise_by_hand"], rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(out["guided"], out["guided_by_hand"], atol=1e-5)
  # w = 0 is conditional sampling: the conditional network, once per step.
  np.testing.assert_array_equal(out["plain"], out["plain_by_hand"])
  assert np.max(np.abs(out["guided"] - out["plain"])) > 1e-2
  assert out["guided"].shape == (n, *IMAGE_SHAPE)
  nfe = lambda method: jax.eval_shape(lambda: method.sample(state, _key(2), n)).nfe
  assert (nfe(guided), nfe(plain)) == (2 * steps, steps)


# ---------------------------------------------------------------------------- sampling


@pytest.mark.parametrize("sampler,kwargs,nfe", [("ddim", {"num_steps": 4}, 4),
                                                ("ancestral", {}, 10)])
def test_sample_contract(sampler, kwargs, nfe):
  # Unclipped x0 and an output layer scaled up, so raw samples leave [-1, 1].
  method = _method(sampler=sampler, sampler_kwargs=kwargs, clip_x0=False)
  state = _state(method)
  loud = jax.tree.map(lambda p: 5.0 * p, state.params)
  state = state.replace(params=jax.tree.map(jnp.zeros_like, loud), ema_params=loud)
  sample = jax.jit(lambda state, rng: method.sample(state, rng, 6).samples)
  a, b, c = sample(state, _key(1)), sample(state, _key(1)), sample(state, _key(2))
  assert jax.eval_shape(lambda: method.sample(state, _key(1), 6)).nfe == nfe
  assert a.shape == (6, *IMAGE_SHAPE)
  assert float(jnp.min(a)) >= -1.0 and float(jnp.max(a)) <= 1.0
  assert np.mean(np.abs(np.asarray(a)) == 1.0) > 0.05  # the final clip did bite
  np.testing.assert_array_equal(a, b)
  assert np.max(np.abs(np.asarray(a) - np.asarray(c))) > 0.1
  # The EMA parameters draw the samples, not the raw ones.
  d = sample(state.replace(params=loud, ema_params=jax.tree.map(jnp.zeros_like, loud)), _key(1))
  assert np.max(np.abs(np.asarray(a) - np.asarray(d))) > 0.1


def test_evaluate_is_per_example_and_uses_the_ema_parameters():
  method = _method(schedule=make_schedule("cosine", 8))
  batch = _digits(4)
  params = _tiny_params()
  zeros = jax.tree.map(jnp.zeros_like, params)
  state = _state(method).replace(params=zeros, ema_params=params)
  evaluate = jax.jit(method.evaluate)
  out = evaluate(state, batch, _key(1))
  assert {k: v.shape for k, v in out.items()} == {"loss": (4,), "vlb_bpd": (4,)}
  assert np.all(np.asarray(out["vlb_bpd"]) > 0)
  swapped = evaluate(state.replace(params=params, ema_params=zeros), batch, _key(1))
  same = evaluate(state.replace(params=jax.tree.map(lambda p: p + 1.0, zeros)), batch, _key(1))
  for k in out:
    np.testing.assert_array_equal(out[k], same[k])
    assert np.all(np.asarray(out[k]) != np.asarray(swapped[k]))


# ---------------------------------------------------------------------------- build_ddpm


def test_build_ddpm_from_the_digits_smoke_config():
  c = _load_digits_smoke()
  method = diffusion.build_ddpm(c, DIGITS_INFO)
  assert method.example_shape == IMAGE_SHAPE
  assert method.process.num_timesteps == c.method.num_timesteps
  np.testing.assert_allclose(method.process.betas,
                             make_schedule(c.method.beta_schedule, c.method.num_timesteps).betas)
  assert (method.prediction, method.loss) == (c.method.prediction, c.method.loss)
  assert method.sampler == c.sample.sampler == "ddim"
  assert dict(method.sampler_kwargs) == dict(c.sample.ddim) and "num_steps" in c.sample.ddim
  assert method.num_classes == 0 and method.class_dropout == 0.0
  assert method.net.num_classes == 0 and method.net.out_channels == 1
  c.method.class_conditional = True
  c.sample.guidance_scale = 1.5
  method = diffusion.build_ddpm(c, DIGITS_INFO)
  assert method.num_classes == 10 and method.net.num_classes == 10
  assert method.class_dropout == pytest.approx(0.1) and method.guidance_scale == 1.5


@pytest.mark.parametrize("section,field,value,message", [
    ("method", "prediction", "epsilon",
     "Unknown prediction type 'epsilon'; choose one of: eps, scaled_score, score, v, x0."),
    ("method", "loss", "l2", "Unknown diffusion loss 'l2'; choose one of: ddpm, dsm, "
     "dsm_likelihood, edm, hybrid, l1, mse, smld, vlb."),
    ("sample", "sampler", "euler", "Unknown sampler 'euler'; choose one of: ancestral, ddim, "
     "dpm_solver_2m, dpm_solver_2s, dpm_solver_3s, edm_heun, edm_stochastic, euler_maruyama, "
     "learned_variance, ode, pc, reverse_diffusion."),
])
def test_build_ddpm_unknown_names_list_the_choices(section, field, value, message):
  c = _load_digits_smoke()
  c[section][field] = value
  with pytest.raises(KeyError, match=re.escape(message)):
    diffusion.build_ddpm(c, DIGITS_INFO)


def test_build_ddpm_class_conditional_needs_classes():
  c = _load_digits_smoke()
  c.method.class_conditional = True
  unlabelled = DatasetInfo(image_shape=IMAGE_SHAPE, num_classes=0, num_examples=100)
  with pytest.raises(ValueError, match="class_conditional=True but the dataset reports no classes"):
    diffusion.build_ddpm(c, unlabelled)
