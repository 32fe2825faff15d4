"""The VAE's ELBO terms against closed forms: KL, likelihoods, the KL penalty's schedules."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from gen_jax.methods import METHODS
from gen_jax.nets import NETS
from gen_jax.vae import gaussian, likelihoods
from gen_jax.vae.regularizers import KLPenalty


def _full_covariance_kl(mq, vq, mp, vp):
  """KL(N(mq, diag vq) || N(mp, diag vp)) by the multivariate formula with matrices."""
  sq, sp = np.diag(vq), np.diag(vp)
  sp_inv = np.linalg.inv(sp)
  d = mp - mq
  k = len(mq)
  return 0.5 * (np.trace(sp_inv @ sq) + d @ sp_inv @ d - k
                + np.linalg.slogdet(sp)[1] - np.linalg.slogdet(sq)[1])


def test_diag_gaussian_kl_equals_the_multivariate_closed_form():
  rng = np.random.default_rng(0)
  for _ in range(5):
    mq, mp = rng.normal(size=4), rng.normal(size=4)
    lq, lp = rng.normal(size=4), rng.normal(size=4)
    ours = float(jnp.sum(gaussian.diag_gaussian_kl(mq, lq, mp, lp)))
    np.testing.assert_allclose(ours, _full_covariance_kl(mq, np.exp(lq), mp, np.exp(lp)),
                               rtol=1e-5)


def test_kl_to_the_standard_normal_and_of_equal_gaussians():
  rng = np.random.default_rng(1)
  m, lv = rng.normal(size=(3, 5)), rng.normal(size=(3, 5))
  np.testing.assert_allclose(gaussian.standard_normal_kl(m, lv),
                             gaussian.diag_gaussian_kl(m, lv, 0.0, 0.0), rtol=1e-6)
  np.testing.assert_allclose(gaussian.diag_gaussian_kl(m, lv, m, lv), 0.0, atol=1e-6)


def test_kl_equals_the_monte_carlo_expectation_of_the_log_ratio():
  # E_q[log q(z) - log p(z)] with 400k draws; its standard error is ~0.002 here.
  mq, lq, mp, lp = 0.3, -0.5, -0.2, 0.4

  @jax.jit
  def mean_log_ratio(rng):
    z = gaussian.reparameterize(rng, jnp.full((400_000,), mq), jnp.full((400_000,), lq))
    return jnp.mean(gaussian.diag_gaussian_log_prob(z, mq, lq)
                    - gaussian.diag_gaussian_log_prob(z, mp, lp))

  np.testing.assert_allclose(float(mean_log_ratio(jax.random.key(0))),
                             float(gaussian.diag_gaussian_kl(mq, lq, mp, lp)), atol=0.01)
  np.testing.assert_allclose(gaussian.diag_gaussian_log_prob(0.7, mq, lq),
                             stats.norm.logpdf(0.7, mq, np.exp(0.5 * lq)), rtol=1e-6)


@pytest.mark.parametrize("channels,num_bins", [(1, 256), (3, 16)])
def test_discretized_logistic_mixture_sums_to_one_over_the_bins(channels, num_bins):
  """Sum of P(x) over every grid value (256 bins for one channel; all 16^3 RGB colours with
  16 bins, as the 256^3 colours are too many to enumerate)."""
  lik = likelihoods.build_likelihood("logistic_mixture", num_mix=3, num_bins=num_bins)
  grid = np.linspace(-1.0, 1.0, num_bins, dtype=np.float32)
  values = np.array(list(itertools.product(grid, repeat=channels)), np.float32)  # [V, C]
  params = jax.random.normal(jax.random.key(channels), (lik.num_params(channels),)) * 2.0
  out = jnp.broadcast_to(params, (values.shape[0], params.shape[0]))
  total = float(jax.jit(lambda v, o: jnp.sum(jnp.exp(lik.log_prob(v, o, {}))))(values, out))
  np.testing.assert_allclose(total, 1.0, rtol=1e-4)


def test_rgb_logistic_mixture_mean_and_samples():
  """The mixture's mean (channel-conditional) is the mean of its exact samples, for narrow
  components well inside [-1, 1] (so that clipping and the grid change nothing)."""
  lik = likelihoods.build_likelihood("logistic_mixture", num_mix=2)
  rng = np.random.default_rng(4)
  rows = [np.concatenate([rng.uniform(-0.3, 0.3, 2), [-4.0, -4.0], rng.uniform(-0.5, 0.5, 2)])
          for _ in range(3)]  # per channel: means (K), log scales (K), coefficients (K)
  params = np.concatenate([[0.3, -0.2], np.concatenate(rows)]).astype(np.float32)
  out = jnp.broadcast_to(params, (40_000, params.shape[0]))
  mean, draws = jax.jit(lambda o: (lik.mean(o[:1], {}), lik.sample(jax.random.key(6), o, {})))(
      out)
  assert draws.shape == (40_000, 3)
  # Standard error of the sample mean: <= 0.3 / 200 = 0.0015 per channel.
  np.testing.assert_allclose(mean[0], draws.mean(0), atol=0.008)


def test_bernoulli_gaussian_laplace_log_probs_are_scipy_s():
  rng = np.random.default_rng(2)
  x = rng.uniform(-1, 1, size=(2, 4, 4, 1)).astype(np.float32)
  mean, log_scale = rng.normal(size=x.shape), rng.normal(size=x.shape) * 0.3
  out = np.concatenate([mean, log_scale], -1).astype(np.float32)
  ref = stats.norm.logpdf(x, mean, np.exp(log_scale)).reshape(2, -1).sum(1)
  np.testing.assert_allclose(likelihoods.Gaussian().log_prob(x, out, {}), ref, rtol=1e-5)
  ref = stats.laplace.logpdf(x, mean, np.exp(log_scale)).reshape(2, -1).sum(1)
  np.testing.assert_allclose(likelihoods.Laplace().log_prob(x, out, {}), ref, rtol=1e-5)
  glob = likelihoods.Laplace(scale="global")
  ref = stats.laplace.logpdf(x, mean, np.exp(0.5)).reshape(2, -1).sum(1)
  np.testing.assert_allclose(glob.log_prob(x, mean.astype(np.float32),
                                           {"log_scale": jnp.float32(0.5)}), ref, rtol=1e-5)
  b = (x > 0).astype(np.float32)
  ref = stats.bernoulli.logpmf(b, 1 / (1 + np.exp(-mean))).reshape(2, -1).sum(1)
  np.testing.assert_allclose(likelihoods.Bernoulli().log_prob(b, mean.astype(np.float32), {}),
                             ref, rtol=1e-5)


def test_dynamic_binarization_has_the_pixel_intensity_as_its_mean():
  x = jnp.full((20_000, 1), 0.5)  # p = 0.75
  inputs, target = likelihoods.Bernoulli().prepare(x, jax.random.key(0))
  assert set(np.unique(target)) == {0.0, 1.0} and set(np.unique(inputs)) == {-1.0, 1.0}
  np.testing.assert_allclose(float(target.mean()), 0.75, atol=0.01)


def test_unknown_likelihood_option_is_named():
  with pytest.raises(ValueError, match="num_mix"):
    likelihoods.build_likelihood("gaussian", num_mix=3)


def test_kl_penalty_schedules():
  kl = jnp.array([[0.1, 2.0], [0.3, 4.0]])  # batch KL per dimension: means 0.2 and 3.0
  plain, aux = KLPenalty(beta=2.0)(kl, 0)
  np.testing.assert_allclose(plain, 2.0 * 3.2, rtol=1e-6)
  assert float(aux["kl_weight"]) == 2.0
  free, _ = KLPenalty(free_bits=0.5)(kl, 0)
  np.testing.assert_allclose(free, 0.5 + 3.0, rtol=1e-6)  # dimension 0 is held at 0.5
  warm = KLPenalty(beta=1.0, warmup_steps=10)
  np.testing.assert_allclose([warm(kl, s)[0] for s in (0, 5, 10, 20)],
                             [0.0, 1.6, 3.2, 3.2], rtol=1e-6)
  cap = KLPenalty(capacity_max=10.0, capacity_steps=100, gamma=2.0)
  np.testing.assert_allclose([cap(kl, s)[0] for s in (0, 50, 200)],
                             [2.0 * 3.2, 2.0 * (5.0 - 3.2), 2.0 * (10.0 - 3.2)], rtol=1e-6)
  with pytest.raises(ValueError, match="exclusive"):
    KLPenalty(capacity_max=1.0, free_bits=0.1)


def test_registries_hold_the_vae_pieces():
  assert set(likelihoods.LIKELIHOODS) == {"bernoulli", "gaussian", "laplace", "logistic_mixture"}
  assert "vae" in METHODS
  assert {"vae_mlp", "vae_conv", "autoencoder_kl"} <= set(NETS)
