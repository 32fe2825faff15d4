"""One sampler, written once against (denoise_fn, process), samples DDPM, VP-SDE and VE-SDE
models alike: the exact score of Gaussian data, written once from `marginal_coef`, drives
DDIM on the three processes without a line of per-family code.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gen_jax.diffusion import make_schedule
from gen_jax.diffusion.gaussian import coefs
from gen_jax.samplers import SAMPLERS
from gen_jax.diffusion import VESDE, VPSDE

MU, STD = 0.3, 0.5
PROCESSES = {
    "ddpm_linear": lambda: make_schedule("linear", 1000),
    "vp_sde": lambda: VPSDE(N=1000),
    "ve_sde": lambda: VESDE(sigma_min=0.01, sigma_max=20.0, N=1000),
}


def exact_score(process):
  """score(x, t) of p_t for x0 ~ N(MU, STD^2 I): -(x - alpha MU) / (alpha^2 STD^2 + sigma^2)."""

  def score(x, t):
    alpha, sigma = coefs(process, t, x.ndim)
    return -(x - alpha * MU) / (jnp.square(alpha * STD) + jnp.square(sigma))

  return score


@pytest.mark.parametrize("eta", [0.0, 1.0])
@pytest.mark.parametrize("name", sorted(PROCESSES))
def test_ddim_samples_gaussian_data_on_every_process(name, eta):
  process = PROCESSES[name]()
  sample = jax.jit(lambda rng: SAMPLERS.get("ddim")(
      exact_score(process), process, rng=rng, shape=(1024, 16), num_steps=200, eta=eta,
      prediction="score", clip_x0=False).samples)
  x = np.asarray(sample(jax.random.key(0)))
  assert np.all(np.isfinite(x))
  print(name, eta, x.mean(), x.std())
  assert x.mean() == pytest.approx(MU, abs=0.02)
  assert x.std() == pytest.approx(STD, abs=0.02)


@pytest.mark.parametrize("config", ["ddpm/toy_eight_gaussians.py", "score_sde/toy2d.py",
                                    "score_sde/toy2d.py:sde=vesde"])
def test_ddim_is_a_sampler_of_ddpm_and_score_sde_methods(config):
  """The same registered sampler, chosen by name in the config, samples both families."""
  from gen_jax.data import DatasetInfo
  from gen_jax.methods import build_method
  from tests.train.helpers import load_config
  path, _, arg = config.partition(":")
  c = load_config(path, ",".join(filter(None, ["smoke", arg])))
  c.sample.sampler = "ddim"
  method = build_method(c, DatasetInfo(image_shape=(2,), num_classes=8, num_examples=100))
  state = method.init(jax.random.key(0), {"image": jnp.zeros((1, 2))})
  out = jax.jit(lambda s: method.sample(s, jax.random.key(1), 8))(state)
  assert out.samples.shape == (8, 2) and np.all(np.isfinite(np.asarray(out.samples)))
  assert out.nfe == c.sample.ddim.num_steps
