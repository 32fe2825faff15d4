"""Every new sampler through the real `Diffusion` method: its network input (time_input), its
output parameterisation, its DiscreteVP chain view and EDM's preconditioning wrapper, with a
"network" that computes the exact output of Gaussian-mixture data from what it is fed.

The samplers' own tests drive them with the exact denoiser directly; here the same law must
come out of `Diffusion.sample`, so a mistake in the wrapper (a time fed in the wrong units, an
output converted with the wrong process) fails, not only a mistake in a sampler.
"""

from __future__ import annotations

from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from gen_jax.core.sample import SampleSpec
from gen_jax.diffusion import VPSDE, DiscreteVP, make_schedule
from gen_jax.diffusion.edm import EDMPrecond, EDMProcess
from gen_jax.methods.diffusion import Diffusion
from tests.sde.mixture import GaussianMixtureScore

MIX = GaussianMixtureScore(means=((-1.0, 0.0), (1.0, 0.5), (0.0, -1.0)), std=0.3,
                           weights=(0.5, 0.3, 0.2))
BATCH = 8192


class ExactNet(nn.Module):
  """net(x, c, y) = output(x, c): the exact output given the conditioning input c."""

  output: Callable

  @nn.compact
  def __call__(self, x, c, y=None, *, train=False):
    self.param("unused", nn.initializers.zeros, ())
    return self.output(x, c)


def _chain(prediction, zero_terminal_snr=False):
  schedule = make_schedule("linear", 1000, zero_terminal_snr=zero_terminal_snr)
  exact = MIX.denoiser(schedule, prediction)
  net = ExactNet(lambda x, c: exact(x, jnp.round(c).astype(jnp.int32)))  # c = the step
  return dict(net=net, process=schedule, prediction=prediction, time_input="t")


def _vpsde_time():
  sde = VPSDE()
  exact = MIX.denoiser(sde, "eps")
  net = ExactNet(lambda x, c: exact(x, c / 999.0))  # c = 999 t, score_sde's VP input
  return dict(net=net, process=sde, prediction="eps", time_input="time")


def _vpsde_discrete():
  sde = VPSDE()
  exact = MIX.denoiser(DiscreteVP(sde), "eps")  # eps of the N-step chain at t
  net = ExactNet(lambda x, c: exact(x, c / 999.0))
  return dict(net=net, process=sde, prediction="eps", time_input="time", discrete=True)


def _edm():
  process = EDMProcess()
  exact = MIX.denoiser(process, "x0")
  sd2 = process.sigma_data**2

  def inner(x_in, c_noise):  # F = (D - c_skip x) / c_out from (c_in x, ln(sigma) / 4)
    sigma = jnp.exp(4.0 * c_noise)[:, None]
    x = x_in * jnp.sqrt(jnp.square(sigma) + sd2)
    c_skip = sd2 / (jnp.square(sigma) + sd2)
    c_out = sigma * process.sigma_data / jnp.sqrt(jnp.square(sigma) + sd2)
    return (exact(x, sigma[:, 0]) - c_skip * x) / c_out

  net = EDMPrecond(net=ExactNet(inner), sigma_data=process.sigma_data)
  return dict(net=net, process=process, prediction="x0", time_input="sigma")


MODELS = {"chain_eps": lambda: _chain("eps"), "chain_v_zero_snr": lambda: _chain("v", True),
          "vpsde_time": _vpsde_time, "vpsde_discrete": _vpsde_discrete, "edm": _edm}
CASES = [
    ("chain_eps", "dpm_solver_2m", dict(num_steps=20, spacing="linspace")),
    ("chain_eps", "dpm_solver_2s", dict(num_steps=20)),
    ("chain_eps", "dpm_solver_3s", dict(num_steps=20)),
    ("chain_eps", "edm_heun", dict(num_steps=18)),
    ("chain_v_zero_snr", "dpm_solver_2m", dict(num_steps=20, spacing="trailing")),
    ("vpsde_time", "dpm_solver_2m", dict(num_steps=20)),
    ("vpsde_time", "edm_heun", dict(num_steps=18)),
    ("vpsde_discrete", "dpm_solver_2m", dict(num_steps=20)),
    ("vpsde_discrete", "edm_heun", dict(num_steps=18)),
    ("edm", "edm_heun", dict(num_steps=18)),
    # Churn at 18 steps leaves +0.12 on a variance (1.2 of the tolerance); 64 steps: 0.13.
    ("edm", "edm_stochastic", dict(num_steps=64, S_churn=10.0, S_tmin=0.05, S_tmax=10.0)),
    ("edm", "dpm_solver_2m", dict(num_steps=20)),
    ("edm", "ddim", dict(num_steps=35, clip_x0=False)),
]


@pytest.mark.parametrize("model,sampler,options", CASES,
                         ids=[f"{m}-{s}" for m, s, _ in CASES])
def test_sampler_through_the_diffusion_method(model, sampler, options):
  """Mean and covariance within the tolerances of the mixture tests (0.04; 0.05 + 6%)."""
  method = Diffusion(optimizer=optax.adam(1e-3), example_shape=(2,), sampler=sampler,
                     **MODELS[model]())
  state = method.init(jax.random.key(0), {"image": jnp.zeros((1, 2))})
  spec = SampleSpec(sampler=sampler, sampler_options=options)
  out = jax.jit(lambda s: method.sample(s, jax.random.key(1), BATCH, spec))(state)
  x = np.asarray(out.samples, np.float64)
  assert np.all(np.isfinite(x))
  mean_err = np.max(np.abs(x.mean(0) - MIX.mean()))
  cov_err = np.max(np.abs(np.cov(x.T) - MIX.cov()) / (0.05 + 0.06 * np.abs(MIX.cov())))
  print(f"{model} {sampler}: nfe {out.nfe} mean err {mean_err:.4f} cov err/tol {cov_err:.3f}")
  assert mean_err < 0.04 and cov_err < 1.0
