"""The flow family: bits/dim, dequantization checks, n-bit data, sampling, and training runs.

* bits/dim: a uniform density on [-1, 1)^D is exactly 8 (n) bits/dim; an identity flow's
  bits/dim through `evaluate` equals the closed form of a standard normal;
* the n-bit reduction keeps every pixel in its n-bit bin;
* a likelihood config without dequantization is refused with the fix in the message;
* temperature 0 sampling is deterministic (the flow's inverse at z = 0);
* MAF on two moons beats the best Gaussian fit's test log-likelihood by a margin, and
  reaches a stated threshold, in a short CPU run;
* a small Glow's bits/dim on real MNIST (../shared/data; 8x8 digits when that folder is
  absent) decreases over a short run and stays finite.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gen_jax import data as data_lib
from gen_jax.core.sample import SampleSpec
from gen_jax.data import DatasetInfo
from gen_jax.data.toy import TOY_DISTRIBUTIONS
from gen_jax.methods.flow import bits_per_dim, build_flow_method, reduce_bits
from tests.conftest import SHARED_DATA
from tests.train.helpers import load_config

# MAF two moons: test log-likelihood (nats per point, 5,000 held-out points) after 800 steps
# of batch 256 (measured -1.76; the best single Gaussian scores -2.71).
MAF_TWO_MOONS_MIN_TEST_LL = -1.9


def _key(seed):
  return jax.random.key(seed, impl="rbg")


def test_bits_per_dim_of_a_uniform_density_is_the_bit_depth():
  d = 12
  nll_uniform = d * math.log(2.0)  # p_x = 2^-D on [-1, 1)^D
  assert float(bits_per_dim(jnp.asarray(nll_uniform), d)) == pytest.approx(8.0, rel=1e-6)
  assert float(bits_per_dim(jnp.asarray(nll_uniform), d, num_bits=5)) == pytest.approx(5.0, rel=1e-6)


def test_reduce_bits_keeps_each_pixel_in_its_n_bit_bin():
  rng = np.random.default_rng(0)
  u = rng.integers(0, 256, size=(4000,))
  x = data_lib.transforms.dequantize(u.astype(np.uint8).reshape(-1, 1, 1), rng).reshape(-1)
  x5 = np.asarray(reduce_bits(jnp.asarray(x), 5, _key(0)))
  np.testing.assert_array_equal(np.floor((x5 + 1.0) * 16.0), u // 8)
  assert x5.min() >= -1.0 and x5.max() < 1.0
  np.testing.assert_array_equal(np.asarray(reduce_bits(jnp.asarray(x), 8, _key(0))), x)


def test_likelihood_without_dequantization_is_refused():
  c = load_config("flows/glow_digits.py")
  c.data.dequantize = False
  with pytest.raises(ValueError, match="data.dequantize=True"):
    build_flow_method(c, DatasetInfo((8, 8, 1), 10, 100))


def test_identity_flow_bits_per_dim_matches_the_standard_normal_closed_form():
  c = load_config("flows/nice_mnist.py")  # NICE starts as the identity
  method = build_flow_method(c, DatasetInfo((8, 8, 1), 10, 100))
  x = jax.random.uniform(_key(1), (4, 8, 8, 1), minval=-1.0, maxval=1.0)
  batch = {"image": x, "label": jnp.zeros((4,), jnp.int32)}
  state = method.init(_key(2), batch)
  bpd = method.evaluate(state, batch, _key(3))["bpd"]
  d = 64
  nll = 0.5 * jnp.sum(x.reshape(4, -1) ** 2, axis=1) + 0.5 * d * math.log(2 * math.pi)
  np.testing.assert_allclose(bpd, (nll + d * math.log(128.0)) / (d * math.log(2.0)), rtol=1e-5)
  # Temperature 0 samples are the inverse at z = 0, the same for every key.
  s1 = method.sample(state, _key(4), 3, SampleSpec(temperature=0.0)).samples
  s2 = method.sample(state, _key(5), 3, SampleSpec(temperature=0.0)).samples
  np.testing.assert_array_equal(s1, s2)
  np.testing.assert_array_equal(s1, 0.0)
  assert method.sample(state, _key(4), 3).samples.shape == (3, 8, 8, 1)


def _train(method, batches, steps, rng_seed=0):
  state = method.init(_key(rng_seed), batches(0))
  update = jax.jit(method.update)
  losses = []
  for i in range(steps):
    state, metrics = update(state, batches(i), jax.random.fold_in(_key(rng_seed + 1), i))
    losses.append(float(metrics["loss"]))
  return state, np.asarray(losses)


def test_maf_on_two_moons_beats_a_gaussian_and_reaches_the_threshold():
  c = load_config("flows/maf_two_moons.py", None)
  c.optim.learning_rate = 3e-3
  c.num_train_steps = 800
  info = DatasetInfo((2,), 2, 20_000)
  method = build_flow_method(c, info)
  dist = TOY_DISTRIBUTIONS.get("two_moons")
  train, _ = dist.sample(np.random.default_rng(0), 20_000)
  test, _ = dist.sample(np.random.default_rng(1), 5_000)
  batch = 256
  state, losses = _train(
      method, lambda i: {"image": jnp.asarray(train[(i * batch) % 19_968:][:batch])}, 800)
  assert np.all(np.isfinite(losses))
  ll = -np.asarray(method.per_example_loss(state.params, state.model_state,
                                           {"image": jnp.asarray(test)}, _key(0)))
  mean, cov = train.mean(0), np.cov(train.T)
  diff = test - mean
  gauss_ll = (-0.5 * np.einsum("ni,ij,nj->n", diff, np.linalg.inv(cov), diff)
              - 0.5 * np.log(np.linalg.det(2 * np.pi * cov)))
  print(f"MAF two moons test LL {ll.mean():.3f}, best Gaussian {gauss_ll.mean():.3f}")
  assert ll.mean() > gauss_ll.mean() + 0.7
  assert ll.mean() > MAF_TWO_MOONS_MIN_TEST_LL


def _glow_bpd_run(data_cfg, image_shape, steps):
  c = load_config("flows/glow_digits.py", None)
  c.model.num_levels = 2
  c.model.depth = 2
  c.model.width = 16
  c.batch_size = 32
  c.optim.warmup_steps = 5
  method = build_flow_method(c, DatasetInfo(image_shape, 10, 1000))
  it, _ = data_lib.build_train_iterator_from_config(
      data_cfg, global_batch_size=32, seed=0, process_index=0, process_count=1)
  batches = [next(it) for _ in range(steps)]
  _, bpd = _train(method, lambda i: {k: jnp.asarray(v) for k, v in batches[i].items()}, steps)
  print("Glow bits/dim per step:", np.round(bpd, 3))
  assert np.all(np.isfinite(bpd))
  assert bpd[-5:].mean() < bpd[:5].mean() - 0.3
  return bpd


def test_small_glow_bits_per_dim_decreases_on_mnist():
  """Real MNIST (the test split's IDX files in ../shared/data) when present, else 8x8 digits.

  One run either way, to keep the suite's CPU budget.
  """
  mnist = SHARED_DATA / "mnist" / "t10k-images-idx3-ubyte.gz"
  if mnist.is_file():
    cfg = dict(source="idx", path=str(mnist), dequantize=True, num_threads=0, prefetch=1)
    _glow_bpd_run(cfg, (28, 28, 1), 30)
  else:
    cfg = dict(source="digits", dequantize=True, num_threads=0, prefetch=1)
    _glow_bpd_run(cfg, (8, 8, 1), 40)
