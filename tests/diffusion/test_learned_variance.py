"""Improved DDPM: the learned interpolated variance, the hybrid loss, respaced sampling."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gen_jax.core.sample import SampleSpec
from gen_jax.data import DatasetInfo
from gen_jax.diffusion import likelihood, make_schedule
from gen_jax.diffusion.hybrid_loss import hybrid_terms
from gen_jax.diffusion.learned_variance import respace
from gen_jax.diffusion.losses import denoising_error
from gen_jax.methods import build_method
from gen_jax.samplers import SAMPLERS, ddim_sample
from tests.train.helpers import load_config

SHAPE = (6, 4, 4, 2)


def _model(a=0.5, b=0.8):
  """A smooth stand-in network: eps = a tanh(x) + 0.1 t / T, v_var = b sin(3 x)."""
  def fn(x, t):
    eps = a * jnp.tanh(x) + 0.01 * t[:, None, None, None]
    return jnp.concatenate([eps, b * jnp.sin(3.0 * x)], axis=-1)
  return fn


def _inputs(schedule):
  k1, k2 = jax.random.split(jax.random.key(0))
  x0 = jax.random.uniform(k1, SHAPE, minval=-1.0, maxval=1.0)
  z = jax.random.normal(k2, SHAPE)
  t = jnp.array([0, 1, 7, 20, 35, schedule.num_timesteps - 1], jnp.int32)
  return x0, t, z


def test_hybrid_vlb_term_is_the_vlb_estimator():
  """The hybrid loss's VLB term equals `likelihood.vlb_term` with the learned variance on the
  same (x0, t, z), and the loss is L_simple + lambda T L_t / (D ln 2); with v_var = -1 the
  learned variance is DDPM's fixed_small one and the term is the fixed-variance estimator."""
  schedule = make_schedule("cosine", 50)
  x0, t, z = _inputs(schedule)
  model = _model()
  terms = jax.jit(lambda *a: hybrid_terms(model, schedule, *a, prediction="eps"))(x0, t, z)
  ref = jax.jit(lambda *a: likelihood.vlb_term(model, schedule, *a, prediction="eps",
                                               learned_variance=True, clip_x0=False))(x0, t, z)
  np.testing.assert_allclose(terms["vlb_t"], ref, rtol=1e-6)
  simple = denoising_error(lambda x, tt: model(x, tt)[..., :2], schedule, x0, t, z,
                           prediction="eps")
  np.testing.assert_allclose(terms["simple"], simple, rtol=1e-6)
  dim = math.prod(SHAPE[1:])
  np.testing.assert_allclose(terms["loss"], simple + 0.001 * 50 * ref / (dim * math.log(2)),
                             rtol=1e-6)

  fixed_small = lambda x, tt: jnp.concatenate([model(x, tt)[..., :2], -jnp.ones_like(x)], -1)
  np.testing.assert_allclose(
      jax.jit(lambda *a: hybrid_terms(fixed_small, schedule, *a)["vlb_t"])(x0, t, z),
      jax.jit(lambda *a: likelihood.vlb_term(lambda x, tt: model(x, tt)[..., :2], schedule,
                                             *a, clip_x0=False))(x0, t, z), rtol=1e-5)


def test_learned_variance_kl_matches_the_closed_form():
  """For t > 0 the VLB term is the Gaussian KL with log Sigma = frac log beta + (1 - frac)
  log beta_tilde, computed here independently in float64."""
  schedule = make_schedule("cosine", 50)
  x0, t, z = _inputs(schedule)
  model = _model()
  got = np.asarray(jax.jit(lambda *a: likelihood.vlb_term(
      model, schedule, *a, learned_variance=True, clip_x0=False))(x0, t, z))
  betas = np.asarray(schedule.betas, np.float64)
  abar = np.cumprod(1 - betas)
  abar_prev = np.append(1.0, abar[:-1])
  for i, s in enumerate(np.asarray(t)):
    if s == 0:
      continue
    x0i, zi = np.asarray(x0[i], np.float64), np.asarray(z[i], np.float64)
    xt = np.sqrt(abar[s]) * x0i + np.sqrt(1 - abar[s]) * zi
    out = np.asarray(model(jnp.asarray(xt[None], jnp.float32), jnp.array([s]))[0], np.float64)
    eps, v = out[..., :2], out[..., 2:]
    x0_hat = (xt - np.sqrt(1 - abar[s]) * eps) / np.sqrt(abar[s])
    c1 = betas[s] * np.sqrt(abar_prev[s]) / (1 - abar[s])
    c2 = (1 - abar_prev[s]) * np.sqrt(1 - betas[s]) / (1 - abar[s])
    beta_tilde = betas[s] * (1 - abar_prev[s]) / (1 - abar[s])
    frac = (v + 1) / 2
    log_var = frac * np.log(betas[s]) + (1 - frac) * np.log(beta_tilde)
    diff = (c1 * x0i + c2 * xt) - (c1 * x0_hat + c2 * xt)
    kl = 0.5 * (-1 + log_var - np.log(beta_tilde) + beta_tilde / np.exp(log_var)
                + diff**2 / np.exp(log_var))
    np.testing.assert_allclose(got[i], kl.sum(), rtol=2e-4, err_msg=f"t={s}")


def test_vlb_term_trains_only_the_variance():
  """The stop-gradient: L_t of the hybrid loss has no gradient through the mean channels."""
  schedule = make_schedule("cosine", 50)
  x0, t, z = _inputs(schedule)
  vlb = lambda ab: jnp.sum(hybrid_terms(_model(*ab), schedule, x0, t, z)["vlb_t"])
  ga, gb = jax.jit(jax.grad(vlb))((0.5, 0.8))
  assert ga == 0.0 and abs(gb) > 1e-3
  simple = lambda ab: jnp.sum(hybrid_terms(_model(*ab), schedule, x0, t, z)["simple"])
  ga, gb = jax.jit(jax.grad(simple))((0.5, 0.8))
  assert abs(ga) > 1e-3 and gb == 0.0


def test_respacing_keeps_the_cumulative_products():
  schedule = make_schedule("cosine", 100)
  whole = respace(schedule, np.arange(100))
  np.testing.assert_allclose(whole.betas, schedule.betas, rtol=1e-6)
  kept = np.asarray(schedule.sampling_grid(10))
  spaced = respace(schedule, kept)
  assert spaced.num_timesteps == 10
  np.testing.assert_allclose(spaced.alphas_cumprod, schedule.alphas_cumprod[np.sort(kept)],
                             rtol=5e-5)  # float32 betas; the last abar is 2e-7
  with pytest.raises(ValueError, match="distinct"):
    respace(schedule, [3, 3])


@pytest.mark.parametrize("num_steps", [None, 10])
@pytest.mark.parametrize("v, variance", [(-1.0, "fixed_small"), (1.0, "fixed_large")])
def test_learned_variance_sampler_at_the_endpoints_is_ancestral_sampling(num_steps, v,
                                                                         variance):
  """v_var = -1 / +1 is the fixed_small / fixed_large ancestral sampler, on every step or on
  a respaced subsequence (DDIM with eta = 1 on the same steps), sample for sample."""
  schedule = make_schedule("cosine", 50)
  eps_fn = lambda x, t: x / jnp.sqrt(1.0 + 0.5 * schedule.alphas_cumprod[t])[:, None]
  learned = lambda x, t: jnp.concatenate([eps_fn(x, t), jnp.full_like(x, v)], -1)
  rng = jax.random.key(3)
  got = SAMPLERS.get("learned_variance")(learned, schedule, rng=rng, shape=(16, 2),
                                         num_steps=num_steps, clip_x0=False)
  want = ddim_sample(eps_fn, schedule, rng=rng, shape=(16, 2), num_steps=num_steps, eta=1.0,
                     variance=variance, clip_x0=False)
  assert got.nfe == want.nfe == (num_steps or 50)
  np.testing.assert_allclose(got.samples, want.samples, rtol=1e-4, atol=1e-5)


TOY = DatasetInfo(image_shape=(8, 8, 1), num_classes=10, num_examples=100)


def test_diffusion_method_wires_the_learned_variance():
  """configs/improved_ddpm: a 2C-channel UNet, the hybrid loss, the learned-variance sampler
  (and DDIM on the first C channels); inconsistent choices are refused by name."""
  c = load_config("improved_ddpm/digits.py", "smoke")
  method = build_method(c, TOY)
  assert method.learned_variance and method.loss == "hybrid"
  state = jax.eval_shape(method.init, jax.random.key(0), None)
  out = jax.eval_shape(lambda p: method.apply(p, jnp.zeros((2, 8, 8, 1)), jnp.zeros((2,)),
                                              None, train=False), state.params)
  assert out.shape == (2, 8, 8, 2)
  for sampler in ("learned_variance", "ddim"):
    spec = SampleSpec(sampler=sampler)
    samples = jax.eval_shape(lambda s, spec=spec: method.sample(s, jax.random.key(1), 3, spec),
                             state)
    assert samples.samples.shape == (3, 8, 8, 1), sampler
  c.unlock()
  c.method.loss = "mse"
  with pytest.raises(ValueError, match="learned_variance=True needs a loss"):
    build_method(c, TOY)
  c.method.learned_variance, c.method.loss = False, "hybrid"
  with pytest.raises(ValueError, match="set method.learned_variance=True"):
    build_method(c, TOY)


def test_learned_variance_sampler_refuses_a_fixed_variance_model():
  method = build_method(load_config("ddpm/digits.py", "smoke"), TOY)
  state = jax.eval_shape(method.init, jax.random.key(0), None)
  with pytest.raises(ValueError, match="needs a learned-variance model"):
    method.sample(state, jax.random.key(1), 3, SampleSpec(sampler="learned_variance"))
