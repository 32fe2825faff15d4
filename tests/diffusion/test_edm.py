"""EDM's process, preconditioning and loss (Karras et al. 2022), against the paper's formulas."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gen_jax.diffusion import LOSSES, WEIGHTINGS, make_schedule
from gen_jax.diffusion.edm import EDMPrecond, EDMProcess, karras_sigmas, lognormal_sigmas


def test_karras_grid_is_the_papers():
  """generate.py: (smax^(1/rho) + i/(n-1) (smin^(1/rho) - smax^(1/rho)))^rho, i = 0..n-1."""
  s = karras_sigmas(18, 0.002, 80.0, 7.0)
  assert s[0] == pytest.approx(80.0) and s[-1] == pytest.approx(0.002)
  assert np.all(np.diff(s) < 0)
  # rho = 1 is linear in sigma; the rho-th roots are evenly spaced for any rho.
  np.testing.assert_allclose(karras_sigmas(5, 1.0, 5.0, 1.0), [5, 4, 3, 2, 1])
  roots = s ** (1 / 7)
  np.testing.assert_allclose(np.diff(roots), np.diff(roots)[0], rtol=1e-9)
  process = EDMProcess()
  np.testing.assert_allclose(np.asarray(process.sampling_grid()), s, rtol=1e-6)
  np.testing.assert_allclose(np.asarray(process.sampling_grid(5, rho=1.0)),
                             np.linspace(80.0, 0.002, 5), rtol=1e-6)
  alpha, sigma = process.marginal_coef(jnp.asarray([0.5, 3.0]))
  np.testing.assert_array_equal(np.asarray(alpha), 1.0)
  np.testing.assert_array_equal(np.asarray(sigma), [0.5, 3.0])
  with pytest.raises(ValueError, match="num_steps must be >= 2"):
    karras_sigmas(1, 0.002, 80.0)


class _Probe(nn.Module):
  """F(x, c) = x + c: shows what the wrapper feeds the network."""

  @nn.compact
  def __call__(self, x, c, y=None, *, train=False):
    return x + c.reshape((-1,) + (1,) * (x.ndim - 1))


def test_precond_coefficients():
  sd = 0.5
  sigma = jnp.asarray([0.01, 0.5, 80.0])
  x = jax.random.normal(jax.random.key(0), (3, 4))
  d = EDMPrecond(net=_Probe(), sigma_data=sd).apply({}, x, sigma)
  s = np.asarray(sigma)[:, None]
  c_skip = sd**2 / (s**2 + sd**2)
  c_out = s * sd / np.sqrt(s**2 + sd**2)
  c_in = 1 / np.sqrt(s**2 + sd**2)
  c_noise = np.log(s) / 4
  expected = c_skip * np.asarray(x) + c_out * (c_in * np.asarray(x) + c_noise)
  np.testing.assert_allclose(np.asarray(d), expected, rtol=1e-5, atol=1e-6)
  with pytest.raises(ValueError, match="sigma must be"):
    EDMPrecond(net=_Probe()).apply({}, x, sigma[:2])


def test_edm_loss_is_the_papers():
  """EDMLoss: sigma = exp(P_mean + P_std n), weight (sigma^2 + sd^2) / (sigma sd)^2,
  weight * (D(y + sigma n; sigma) - y)^2 summed; for any prediction type."""
  process = EDMProcess(sigma_data=0.5)
  x0 = jax.random.normal(jax.random.key(1), (6, 3))
  rng = jax.random.key(2)
  rng_s, rng_z = jax.random.split(rng)
  sigma = np.asarray(lognormal_sigmas(rng_s, 6, -1.2, 1.2))[:, None]
  z = np.asarray(jax.random.normal(rng_z, x0.shape))
  denoiser = lambda x, t: 0.7 * x  # an arbitrary D
  y = np.asarray(x0)
  d = 0.7 * (y + sigma * z)
  expected = np.sum((sigma**2 + 0.25) / (sigma * 0.5) ** 2 * (d - y) ** 2, axis=-1)
  got = LOSSES.get("edm")(denoiser, process, x0, rng, prediction="x0")
  np.testing.assert_allclose(np.asarray(got), expected, rtol=2e-4)
  # The same denoiser as an eps network gives the same loss.
  as_eps = lambda x, t: (x - denoiser(x, t)) / t[:, None]
  got_eps = LOSSES.get("edm")(as_eps, process, x0, rng, prediction="eps")
  np.testing.assert_allclose(np.asarray(got_eps), expected, rtol=2e-3)
  # The ln sigma draws have the paper's law.
  draws = np.log(np.asarray(lognormal_sigmas(jax.random.key(3), 20000, -1.2, 1.2)))
  assert abs(draws.mean() + 1.2) < 0.03 and abs(draws.std() - 1.2) < 0.03


def test_edm_loss_and_weighting_errors():
  chain = make_schedule("linear", 10)
  with pytest.raises(ValueError, match="sigma_to_t"):
    LOSSES.get("edm")(lambda x, t: x, chain, jnp.zeros((2, 2)), jax.random.key(0))
  with pytest.raises(ValueError, match="sigma_data"):
    WEIGHTINGS.get("edm")(chain, jnp.asarray([1, 2]))


def test_config_builds_edm_and_passes_weighting_options():
  """configs/edm/cifar10.py builds the preconditioned net on EDM's process; a weighting's
  options reach the loss; bad combinations are refused with the fix."""
  from gen_jax.data import DatasetInfo
  from gen_jax.methods import build_method
  from tests.train.helpers import load_config
  info = DatasetInfo(image_shape=(8, 8, 3), num_classes=10, num_examples=100)
  c = load_config("edm/cifar10.py", "smoke")
  method = build_method(c, info)
  assert isinstance(method.net, EDMPrecond) and isinstance(method.process, EDMProcess)
  assert method.process.sigma_max == 80.0 and method.net.sigma_data == 0.5
  assert method.loss == "edm" and method.loss_kwargs["p_mean"] == -1.2
  assert method.sampler == "edm_heun" and method.sampler_kwargs == {"num_steps": 4}
  c = load_config("edm/cifar10.py", "smoke")
  c.method.weighting, c.method.snr_gamma = "min_snr", 2.0
  assert build_method(c, info).loss_kwargs["weighting_options"] == {"gamma": 2.0}
  c = load_config("edm/cifar10.py", "smoke")
  c.method.prediction = "eps"
  with pytest.raises(ValueError, match="precondition='edm'"):
    build_method(c, info)
  c = load_config("edm/cifar10.py", "smoke")
  c.unlock()
  c.method.process, c.method.precondition, c.method.loss = "chain", "none", "mse"
  c.method.prediction, c.method.time_input, c.method.zero_terminal_snr = "eps", "t", True
  c.sample.clip_x0 = False
  with pytest.raises(ValueError, match="prediction='v'"):
    build_method(c, info)
  c.method.prediction = "v"
  assert float(build_method(c, info).process.sqrt_alphas_cumprod[-1]) == 0.0
