"""min-SNR and P2 weightings against their papers' code, diffusers' timestep spacings and the
zero-terminal-SNR rescale."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gen_jax.diffusion import PREDICTIONS, WEIGHTINGS, DiffusionSchedule, make_schedule
from gen_jax.diffusion.losses import denoising_error
from gen_jax.diffusion.spacing import diffusers_timesteps, rescale_zero_terminal_snr
from gen_jax.samplers import SAMPLERS, ddim_timesteps


@pytest.mark.parametrize("prediction", ["eps", "x0", "v"])
def test_min_snr_is_hang_et_als_loss(prediction):
  """Their code: the MSE of the network's own target weighted by min(snr, gamma) (x0),
  min(snr, gamma) / snr (eps) or min(snr, gamma) / (snr + 1) (v); ours, one eps-space weight,
  gives the same numbers for an arbitrary (wrong) network output."""
  schedule = make_schedule("cosine", 50)
  x0 = jax.random.normal(jax.random.key(0), (8, 5))
  z = jax.random.normal(jax.random.key(1), (8, 5))
  t = jnp.arange(8) * 7
  out = jax.random.normal(jax.random.key(2), (8, 5))
  model = lambda x, tt: out
  got = denoising_error(model, schedule, x0, t, z, prediction=prediction,
                        weighting="min_snr", weighting_options={"gamma": 5.0})
  abar = np.asarray(schedule.alphas_cumprod)[np.asarray(t)]
  snr = abar / (1 - abar)
  target = np.asarray(PREDICTIONS.get(prediction).target(schedule, x0, z, t))
  mse = np.mean((np.asarray(out) - target) ** 2, axis=-1)
  weight = {"x0": np.minimum(snr, 5.0), "eps": np.minimum(snr, 5.0) / snr,
            "v": np.minimum(snr, 5.0) / (snr + 1)}[prediction]
  np.testing.assert_allclose(np.asarray(got), weight * mse, rtol=2e-3)


def test_p2_is_choi_et_als_loss():
  """P2's code: mean((eps - eps_hat)^2) * (k + abar / (1 - abar))^-gamma."""
  schedule = make_schedule("linear", 40)
  x0 = jax.random.normal(jax.random.key(0), (6, 3))
  z = jax.random.normal(jax.random.key(1), (6, 3))
  t = jnp.asarray([0, 5, 10, 20, 30, 39])
  out = jax.random.normal(jax.random.key(2), (6, 3))
  got = denoising_error(lambda x, tt: out, schedule, x0, t, z, prediction="eps",
                        weighting="p2", weighting_options={"k": 1.0, "gamma": 0.5})
  abar = np.asarray(schedule.alphas_cumprod)[np.asarray(t)]
  expected = np.mean((np.asarray(out) - np.asarray(z)) ** 2, -1) * (1 + abar / (1 - abar)) ** -0.5
  np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-4)


def test_min_snr_at_zero_terminal_snr_is_finite():
  schedule = make_schedule("linear", 20, zero_terminal_snr=True)
  w = WEIGHTINGS.get("min_snr")(schedule, jnp.asarray([0, 19]))
  assert np.all(np.isfinite(np.asarray(w))) and float(w[1]) == 1.0


def test_diffusers_spacings():
  """The values of diffusers' DDIMScheduler.set_timesteps (T = 1000, 10 steps; Lin et al.
  Table 2)."""
  np.testing.assert_array_equal(diffusers_timesteps(1000, 10, "leading"),
                                [900, 800, 700, 600, 500, 400, 300, 200, 100, 0])
  np.testing.assert_array_equal(diffusers_timesteps(1000, 10, "leading", steps_offset=1),
                                [901, 801, 701, 601, 501, 401, 301, 201, 101, 1])
  np.testing.assert_array_equal(diffusers_timesteps(1000, 10, "trailing"),
                                [999, 899, 799, 699, 599, 499, 399, 299, 199, 99])
  np.testing.assert_array_equal(diffusers_timesteps(1000, 10, "linspace"),
                                [999, 888, 777, 666, 555, 444, 333, 222, 111, 0])
  np.testing.assert_array_equal(ddim_timesteps(1000, 10, "linspace"),
                                ddim_timesteps(1000, 10, "uniform"))
  for spacing in ("leading", "linspace", "trailing"):
    for s in (1, 3, 7, 50, 999, 1000):
      steps = ddim_timesteps(1000, s, spacing)
      assert len(steps) == s and np.all(np.diff(steps) < 0)
      assert steps.min() >= 0 and steps.max() <= 999
  with pytest.raises(ValueError, match="leading, linspace, trailing"):
    diffusers_timesteps(1000, 10, "karras")
  # DPM-Solver++ evaluates diffusers' DPMSolverMultistepScheduler grids: linspace over
  # S + 1 points with the last dropped; trailing as DDIM's.
  visited = []

  def record(x, t):
    jax.debug.callback(lambda tt: visited.append(int(tt[0])), t, ordered=True)
    return jnp.zeros_like(x)

  schedule = make_schedule("linear", 1000)
  for spacing, expected in [
      ("linspace", [999, 899, 799, 699, 599, 500, 400, 300, 200, 100]),
      ("trailing", [999, 899, 799, 699, 599, 499, 399, 299, 199, 99])]:
    visited.clear()
    SAMPLERS.get("dpm_solver_2m")(record, schedule, rng=jax.random.key(0), shape=(1, 1),
                                  num_steps=10, spacing=spacing)
    jax.effects_barrier()
    assert visited == expected, spacing


def test_zero_terminal_snr_rescale():
  """Lin et al. Algorithm 1: sqrt(abar) shifted to 0 at T - 1, scaled to keep t = 0."""
  betas = np.linspace(1e-4, 0.02, 1000)
  new = rescale_zero_terminal_snr(betas)
  old_root = np.sqrt(np.cumprod(1 - betas))
  new_root = np.sqrt(np.cumprod(1 - new))
  np.testing.assert_allclose(new_root[0], old_root[0])
  assert new[-1] == 1.0 and new_root[-1] == 0.0
  affine = (old_root - old_root[-1]) * old_root[0] / (old_root[0] - old_root[-1])
  np.testing.assert_allclose(new_root, affine, atol=1e-12)
  schedule = make_schedule("linear", 1000, zero_terminal_snr=True)
  assert float(schedule.sqrt_alphas_cumprod[-1]) == 0.0
  assert float(schedule.sqrt_one_minus_alphas_cumprod[-1]) == 1.0
  with pytest.raises(ValueError, match="open interval"):
    DiffusionSchedule.from_betas(np.array([0.5, 1.0, 0.5]), zero_terminal_snr=True)
  with pytest.raises(ValueError, match="open interval"):
    DiffusionSchedule.from_betas(new)  # a last beta of 1 only when asked for


@pytest.mark.parametrize("sampler", ["ddim", "dpm_solver_2m", "dpm_solver_3s"])
def test_zero_terminal_snr_samples_with_v(sampler):
  """With alpha_{T-1} = 0 the first step starts from pure noise; a v (or x0) network
  samples Gaussian data (trailing spacing starts at T - 1, as Lin et al. recommend). DDIM's
  own bias at 100 steps is ~-6% of the std (tests/diffusion/test_samplers.py)."""
  from tests.sde.mixture import GaussianMixtureScore
  data = GaussianMixtureScore(means=((0.3,),), std=0.5, weights=(1.0,))
  schedule = make_schedule("linear", 1000, zero_terminal_snr=True)
  kw = {"clip_x0": False} if sampler == "ddim" else {}
  out = SAMPLERS.get(sampler)(data.denoiser(schedule, "v"), schedule, rng=jax.random.key(0),
                              shape=(4096, 1), prediction="v", num_steps=100,
                              spacing="trailing", **kw)
  x = np.asarray(out.samples)
  assert np.all(np.isfinite(x))
  print(sampler, x.mean(), x.std())
  assert abs(x.mean() - 0.3) < 0.03 and abs(x.std() - 0.5) < 0.04, (x.mean(), x.std())
