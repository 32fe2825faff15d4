"""The discretized logistic mixture is a distribution over the grid, and samples from it."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gen_jax.distributions import discretized_logistic as dl

GRID = jnp.arange(256, dtype=jnp.float32) / 127.5 - 1.0


def _params(key, channels, k, log_scale_shift=0.0):
  p = jax.random.normal(key, (dl.num_params(channels, k),)) * 1.5
  if channels == 1:
    return p.at[2 * k:].add(log_scale_shift)
  rest = p[k:].reshape(3, 3 * k).at[:, k:2 * k].add(log_scale_shift)
  return jnp.concatenate([p[:k], rest.reshape(-1)])


@pytest.mark.parametrize("shift", [-6.0, -3.0, 0.0, 2.0])
def test_one_channel_probabilities_sum_to_one(shift):
  for seed in range(3):
    p = _params(jax.random.key(seed), 1, 4, shift)
    probs = jnp.exp(dl.log_prob(GRID[:, None], jnp.broadcast_to(p, (256, p.size)), num_mix=4))
    assert float(jnp.sum(probs)) == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize("seed,shift", [(0, -3.0), (1, -1.0)])
def test_rgb_probabilities_sum_to_one_over_all_256_cubed_colours(seed, shift):
  k = 3
  p = _params(jax.random.key(seed), 3, k, shift)

  @jax.jit
  def total():
    def plane(r):  # all (g, b) for one r: [256, 256]
      g, b = jnp.meshgrid(GRID, GRID, indexing="ij")
      x = jnp.stack([jnp.full_like(g, r), g, b], -1)
      return jnp.sum(jnp.exp(dl.log_prob(x, jnp.broadcast_to(p, (256, 256, p.size)),
                                         num_mix=k)))
    return jnp.sum(jax.lax.map(plane, GRID))

  assert float(total()) == pytest.approx(1.0, abs=1e-4)


def test_rgb_is_channel_conditional_product_of_one_channel_terms():
  """One component: log p(r,g,b) = log p(r) + log p(g|r) + log p(b|r,g), means shifted."""
  p = _params(jax.random.key(3), 3, 1)
  logits, means, log_scales, coeffs = dl.unpack(p, 3, 1)
  x = jnp.array([0.2, -0.5, 0.9]) // (2 / 255) * (2 / 255)
  m = [means[0, 0], means[1, 0] + coeffs[0, 0] * x[0],
       means[2, 0] + coeffs[1, 0] * x[0] + coeffs[2, 0] * x[1]]
  expected = sum(dl.log_prob(x[c:c + 1], jnp.array([0.0, m[c], log_scales[c, 0]]), num_mix=1)
                 for c in range(3))
  assert float(dl.log_prob(x, p, num_mix=1)) == pytest.approx(float(expected), abs=1e-5)
  del logits


def test_one_channel_sampler_matches_the_probabilities():
  p = _params(jax.random.key(4), 1, 3, -2.0)
  probs = np.exp(np.asarray(dl.log_prob(GRID[:, None], jnp.broadcast_to(p, (256, p.size)),
                                        num_mix=3)))
  n = 200_000
  draws = dl.sample(jax.random.key(5), jnp.broadcast_to(p, (n, p.size)), num_channels=1,
                    num_mix=3)
  codes = np.round((np.asarray(draws[:, 0]) + 1.0) * 127.5).astype(int)
  np.testing.assert_allclose(np.asarray(draws[:, 0]), codes / 127.5 - 1.0, atol=1e-6)
  # Pearson's chi-square over the 256 values: mean 255, sd 22.6 for an exact sampler.
  counts = np.bincount(codes, minlength=256)
  expected = n * probs.astype(np.float64)
  assert np.sum((counts - expected) ** 2 / expected) < 255 + 5 * np.sqrt(2 * 255)


def test_rgb_sampler_cross_entropy_equals_the_entropy():
  """E_{x ~ sampler}[-log p(x)] = H(p) when the sampler draws from p (a mismatched sampler,
  e.g. one conditioning on unrounded channels, gives a larger cross-entropy)."""
  k = 2
  p = _params(jax.random.key(6), 3, k, -2.5)

  def plane(r):
    g, b = jnp.meshgrid(GRID, GRID, indexing="ij")
    x = jnp.stack([jnp.full_like(g, r), g, b], -1)
    lp = dl.log_prob(x, jnp.broadcast_to(p, (256, 256, p.size)), num_mix=k)
    return -jnp.sum(jnp.exp(lp) * lp)

  entropy = float(jnp.sum(jax.jit(lambda: jax.lax.map(plane, GRID))()))
  n = 100_000
  draws = dl.sample(jax.random.key(7), jnp.broadcast_to(p, (n, p.size)), num_channels=3,
                    num_mix=k)
  nll = -np.asarray(dl.log_prob(draws, jnp.broadcast_to(p, (n, p.size)), num_mix=k))
  assert abs(nll.mean() - entropy) < 4 * nll.std() / np.sqrt(n) + 1e-3


def test_wrong_parameter_count_is_an_error():
  with pytest.raises(ValueError, match="Expected 30 mixture parameters"):
    dl.log_prob(jnp.zeros((2, 3)), jnp.zeros((2, 31)), num_mix=3)
  with pytest.raises(ValueError, match="1 or 3 channels"):
    dl.num_params(2, 5)
