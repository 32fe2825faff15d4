"""Super-resolution diffusion and noise conditioning augmentation, checked in closed form.

Gaussian data x ~ N(mu, Sigma) (4x4x1 images) and a linear downsampling D (2x2 block
means) give a Gaussian condition. The CDM condition at level s is z = a y + b e with
(a, b) = (cos(pi s / 2), sin(pi s / 2)), y = D x, e ~ N(0, I), so

    S = a^2 D Sigma D^T + b^2 I,  K = a Sigma D^T S^-1,
    x | z ~ N(mu + K (z - a D mu), Sigma - a K D Sigma),

and x_t = alpha x + sigma eps given z is N(alpha m, alpha^2 C + sigma^2 I), whose exact
E[eps | x_t, z] = sigma (alpha^2 C + sigma^2 I)^-1 (x_t - alpha m). `_exact_net` is that
function of the *network input* (x_t concatenated with the upsampled condition and the
level channel, as the SR wrapper builds it): the samplers of the core then draw, given a
low-resolution y and a fixed sampling level s, from the mixture over e of x | z, whose
mean is mu + K a (y - D mu) and covariance Sigma - a K D Sigma + b^2 K K^T.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from gen_jax.core.state import TrainState
from gen_jax.data import pairs
from gen_jax.data.sources import ArraySource
from gen_jax.diffusion import super_resolution as sr
from gen_jax.diffusion.processes import VPSDE
from gen_jax.diffusion.schedules import make_schedule
from gen_jax.methods.super_resolution import SuperResolution

HIGH, FACTOR, C = (4, 4, 1), 2, 1
LOW = (2, 2, 1)
D_HIGH, D_LOW = 16, 4


# ------------------------------------------------------------------ resampling operators
@pytest.mark.parametrize("method", pairs.DOWNSAMPLERS)
def test_downsampling_is_a_normalised_linear_operator_equal_in_numpy_and_jax(method):
  x = np.random.default_rng(0).normal(size=(3, 8, 12, 2)).astype(np.float32)
  low_np = pairs.downsample(x, 4, method)
  low_jax = jax.jit(lambda v: pairs.downsample(v, 4, method))(jnp.asarray(x))
  assert low_np.shape == (3, 2, 3, 2)
  np.testing.assert_allclose(low_np, np.asarray(low_jax), atol=1e-6)
  # constants are kept: every output pixel is a weighted mean
  np.testing.assert_allclose(pairs.downsample(np.full_like(x, 0.7), 4, method), 0.7, atol=1e-6)
  if method == "area":
    blocks = x.reshape(3, 2, 4, 3, 4, 2).mean(axis=(2, 4))
    np.testing.assert_allclose(low_np, blocks, atol=1e-6)


@pytest.mark.parametrize("method", tuple(pairs.UPSAMPLERS))
def test_area_downsampling_inverts_nearest_upsampling(method):
  z = np.random.default_rng(1).normal(size=(2, 3, 3, 1)).astype(np.float32)
  up = pairs.upsample(z, 4, method)
  assert up.shape == (2, 12, 12, 1)
  np.testing.assert_allclose(pairs.upsample(np.ones_like(z), 4, method), 1.0, atol=1e-5)
  if method == "nearest":
    np.testing.assert_allclose(pairs.downsample(up, 4, "area"), z, atol=1e-6)


def test_downsampled_source_serves_the_operator_rounded_to_8_bits():
  images = np.random.default_rng(2).integers(0, 256, (5, 8, 8, 3), dtype=np.uint8)
  source = pairs.DownsampledSource(ArraySource(images), 4, "area")
  assert source.info.image_shape == (2, 2, 3) and len(source) == 5
  low = np.stack([source[i]["image"] for i in range(5)]).astype(np.float32) / 127.5 - 1
  exact = pairs.downsample(images.astype(np.float32) / 127.5 - 1, 4, "area")
  assert np.abs(low - exact).max() <= 0.5 / 127.5 + 1e-6
  with pytest.raises(ValueError, match="factor"):
    pairs.DownsampledSource(ArraySource(images), 3, "area")


# ------------------------------------------------------------------ noise augmentation
def test_noise_augmentation_level_zero_passes_the_condition_unchanged():
  aug = sr.NoiseAugmentation(max_level=0.5, sample_level=0.0)
  z = jax.random.normal(jax.random.key(0), (4, *LOW))
  out = aug.corrupt(jax.random.key(1), z, aug.levels(None, 4, train=False))
  np.testing.assert_array_equal(np.asarray(out), np.asarray(z))
  train = np.asarray(aug.levels(jax.random.key(2), 1000, train=True))
  assert train.min() >= 0 and train.max() <= 0.5 and len(np.unique(train)) == 1000
  assert abs(train.mean() - 0.25) < 0.02
  with pytest.raises(ValueError, match="sample_level"):
    sr.NoiseAugmentation(sample_level=1.5)


class _EchoNet(nn.Module):
  """Returns its input's channels after the first C (the condition and the level)."""

  @nn.compact
  def __call__(self, x, c, y=None, *, train=False):
    del c, y, train
    return x[..., C:] + 0.0 * self.param("unused", nn.initializers.zeros, ())


def _method(net, process, *, aug, upsample="nearest", prediction="eps", sampler="ddim",
            sampler_kwargs=None, time_input="t"):
  return SuperResolution(
      net=net, process=process, optimizer=optax.sgd(0.0), example_shape=HIGH,
      prediction=prediction, time_input=time_input, sampler=sampler,
      sampler_kwargs=sampler_kwargs or {}, clip_x0=False, factor=FACTOR, downsample="area",
      upsample=upsample, augmentation=aug)


def test_the_network_receives_the_level_and_the_condition_corrupted_at_that_level():
  aug = sr.NoiseAugmentation(max_level=0.8, sample_level=0.3)
  method = _method(_EchoNet(), make_schedule("linear", 10), aug=aug)
  params = method.init(jax.random.key(0), {}).params
  low = jax.random.normal(jax.random.key(1), (64, 8, 8, 1))  # 16x16 images this time
  method = dataclasses.replace(method, example_shape=(16, 16, 1))
  x = jnp.zeros((64, 16, 16, 1))
  t = jnp.zeros((64,), jnp.int32)
  for train in (True, False):
    seen = method.bind(low, jax.random.key(2), train=train).model_fn(params)(x, t)
    assert seen.shape == (64, 16, 16, 2)
    level = np.asarray(seen[..., 1])
    assert np.all(level == level[:, :1, :1])  # one level per example, everywhere
    level = level[:, 0, 0]
    if train:
      assert level.min() >= 0 and level.max() <= 0.8 and np.std(level) > 0.1
    else:
      np.testing.assert_array_equal(level, np.float32(0.3))
    z_seen = np.asarray(seen[:, ::2, ::2, 0])  # nearest upsampling: z_s itself
    a, b = (np.asarray(v) for v in sr.NoiseAugmentation.coefs(level))
    residual = (z_seen - a[:, None, None] * np.asarray(low[..., 0])) / b[:, None, None]
    np.testing.assert_allclose(residual.std(axis=(1, 2)).mean(), 1.0, atol=0.1)


def test_sampling_uses_the_configured_level():
  """An x0-predicting net that outputs the level channel: DDIM (eta 0) returns its last
  x0 estimate, so every sample equals the level the sampler gave the network."""
  for level in (0.0, 0.35):
    method = _method(_LevelNet(), make_schedule("linear", 10),
                     aug=sr.NoiseAugmentation(max_level=0.9, sample_level=level),
                     prediction="x0", sampler_kwargs={"num_steps": 3})
    state = method.init(jax.random.key(0), {})
    low = jax.random.normal(jax.random.key(1), (4, *LOW))
    out = jax.jit(lambda s, r: method.sample_given(s, r, low).samples)(state, jax.random.key(2))
    np.testing.assert_allclose(np.asarray(out), level, atol=1e-6)


class _LevelNet(nn.Module):
  """Outputs the level channel (the input's last channel) as the image."""

  @nn.compact
  def __call__(self, x, c, y=None, *, train=False):
    del c, y, train
    return x[..., -1:] + 0.0 * self.param("unused", nn.initializers.zeros, ())


# ------------------------------------------------------------------ exact Gaussian scores
def _operator(fn, d_in, shape_in):
  """The matrix [d_out, d_in] of a linear map of images, from the basis images."""
  basis = np.eye(d_in, dtype=np.float32).reshape(d_in, *shape_in)
  return np.asarray(fn(basis)).reshape(d_in, -1).T.astype(np.float64)


def _gaussian(seed=0):
  """Smooth images: squared-exponential correlations of length 1.5 pixels, std ~0.23."""
  mu = np.random.default_rng(seed).uniform(-0.2, 0.2, D_HIGH)
  ij = np.stack(np.meshgrid(np.arange(4), np.arange(4), indexing="ij"), -1).reshape(-1, 2)
  dist2 = ((ij[:, None] - ij[None]) ** 2).sum(-1)
  return mu, 0.05 * np.exp(-dist2 / (2 * 1.5**2)) + 0.003 * np.eye(D_HIGH)


D = _operator(lambda v: pairs.downsample(v, FACTOR, "area"), D_HIGH, HIGH)


def _posterior(mu, sigma, level):
  """(K, a, b, C) of x | z at `level` (numpy float64)."""
  a, b = np.cos(np.pi * level / 2), np.sin(np.pi * level / 2)
  s = a**2 * D @ sigma @ D.T + b**2 * np.eye(D_LOW)
  k = a * sigma @ D.T @ np.linalg.inv(s)
  return k, a, b, sigma - a * k @ D @ sigma


def _exact_net(mu, sigma, coef_fn, upsample):
  """The exact E[eps | x_t, z] as a function of the network input (see the docstring)."""
  up = _operator(lambda v: pairs.upsample(v, FACTOR, upsample), D_LOW, LOW)
  up_pinv = jnp.asarray(np.linalg.pinv(up), jnp.float32)
  mu_j, sigma_j, d_j = (jnp.asarray(v, jnp.float32) for v in (mu, sigma, D))

  def one(x_t, cond_up, level, alpha, std):
    z = up_pinv @ cond_up
    a, b = sr.NoiseAugmentation.coefs(level)
    s = a**2 * d_j @ sigma_j @ d_j.T + b**2 * jnp.eye(D_LOW)
    k = a * jnp.linalg.solve(s, d_j @ sigma_j).T
    m = mu_j + k @ (z - a * d_j @ mu_j)
    cov = sigma_j - a * k @ d_j @ sigma_j
    return std * jnp.linalg.solve(alpha**2 * cov + std**2 * jnp.eye(D_HIGH), x_t - alpha * m)

  class ExactConditionalEps(nn.Module):

    @nn.compact
    def __call__(self, x, c, y=None, *, train=False):
      del y, train
      bsz = x.shape[0]
      alpha, std = coef_fn(c)
      eps = jax.vmap(one)(x[..., :C].reshape(bsz, -1), x[..., C:2 * C].reshape(bsz, -1),
                          x[:, 0, 0, -1], alpha, std)
      return eps.reshape(x.shape[:-1] + (C,)) + 0.0 * self.param(
          "unused", nn.initializers.zeros, ())

  return ExactConditionalEps()


def _chain(num_steps=100):
  schedule = make_schedule("linear", 1000)
  return schedule, lambda c: schedule.marginal_coef(c.astype(jnp.int32)), "ddim", {
      "num_steps": num_steps}


def _chain_fine():
  """The level-0 law is degenerate (D x = y): DDIM needs more steps to resolve it."""
  return _chain(250)


def _vpsde():
  process = VPSDE(beta_min=0.1, beta_max=20.0, N=500)
  return process, process.marginal_coef, "reverse_diffusion", {}


def _draw(make_process, level, y, n, *, seed=0, upsample="bicubic"):
  """n samples [n, 16] of the exact conditional model given y [4] at the sampling level."""
  mu, sigma = _gaussian()
  process, coef_fn, sampler, options = make_process()
  method = _method(_exact_net(mu, sigma, coef_fn, upsample), process,
                   aug=sr.NoiseAugmentation(max_level=0.5, sample_level=level),
                   upsample=upsample, sampler=sampler, sampler_kwargs=options)
  state = method.init(jax.random.key(0), {})
  low = jnp.broadcast_to(jnp.asarray(y, jnp.float32).reshape(LOW), (n, *LOW))
  out = jax.jit(lambda s, r: method.sample_given(s, r, low).samples)(
      state, jax.random.key(seed))
  return np.asarray(out, np.float64).reshape(n, -1)


@pytest.mark.parametrize("make_process,level", [
    (_chain, 0.1),
    pytest.param(_chain_fine, 0.0, marks=pytest.mark.slow),  # ~14 s on the loaded CPU
    pytest.param(_vpsde, 0.1, marks=pytest.mark.slow),
], ids=["chain_ddim_level0.1", "chain_ddim_level0", "vpsde_rd_level0.1"])
def test_exact_scores_give_the_exact_conditional_law(make_process, level):
  mu, sigma = _gaussian()
  y = D @ mu + np.array([0.15, -0.1, 0.05, 0.1])
  k, a, b, cov_post = _posterior(mu, sigma, level)
  mean = mu + k @ (a * y - a * D @ mu)
  cov = cov_post + b**2 * k @ k.T
  n = 1000
  x = _draw(make_process, level, y, n)
  se = np.sqrt(np.diag(cov) / n)
  assert np.all(np.abs(x.mean(0) - mean) < 5 * se + 2e-3), (x.mean(0) - mean) / se
  emp = np.cov(x, rowvar=False)
  rel = np.linalg.norm(emp - cov) / np.linalg.norm(cov)
  # Monte-Carlo RMS of that error: E |emp - cov|_F^2 = (tr(cov)^2 + |cov|_F^2) / n
  mc = np.sqrt((np.trace(cov) ** 2 + np.sum(cov**2)) / n) / np.linalg.norm(cov)
  print(f"{make_process.__name__} level {level}: mean error / s.e. max "
        f"{np.abs((x.mean(0) - mean) / se).max():.2f}, relative covariance error {rel:.3f} "
        f"(Monte-Carlo RMS {mc:.3f})")
  assert rel < 2.0 * mc, (rel, mc)
  # the condition matters: the unconditional covariance is far from this one
  assert np.linalg.norm(sigma - cov) / np.linalg.norm(cov) > 0.5


def test_consistency_downsampled_samples_match_their_condition():
  """Level 0: D x = y exactly under the model. Measured RMS |D x_i - y_i| against the RMS
  over unrelated pairs |D x_i - y_j| of base-stage samples y ~ N(D mu, D Sigma D^T)."""
  mu, sigma = _gaussian()
  n = 256
  ys = np.random.default_rng(3).multivariate_normal(D @ mu, D @ sigma @ D.T, n)
  process, coef_fn, sampler, _ = _chain()
  options = {"num_steps": 50}
  method = _method(_exact_net(mu, sigma, coef_fn, "bicubic"), process,
                   aug=sr.NoiseAugmentation(max_level=0.5, sample_level=0.0),
                   upsample="bicubic", sampler=sampler, sampler_kwargs=options)
  state = method.init(jax.random.key(0), {})
  low = jnp.asarray(ys.reshape(n, *LOW), jnp.float32)
  x = np.asarray(method.sample_given(state, jax.random.key(1), low).samples)
  down = pairs.downsample(x, FACTOR, "area").reshape(n, -1)
  paired = np.sqrt(np.mean((down - ys) ** 2))
  unrelated = np.sqrt(np.mean((down - np.roll(ys, 1, axis=0)) ** 2))
  print(f"consistency: paired RMS {paired:.2e}, unrelated RMS {unrelated:.2e}")
  assert paired < 0.02 * unrelated
