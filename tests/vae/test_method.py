"""The VAE method's contract: sampling with a temperature through SampleSpec, figures, and
the refused configurations."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gen_jax.core.sample import SampleSpec
from gen_jax.data import DatasetInfo
from gen_jax.methods.vae import build_vae
from tests.train.helpers import load_config
from tests.vae.helpers import small_vae

SHAPE = (8, 8, 1)


@pytest.fixture(scope="module")
def conv_vae():
  method = small_vae("vae/mnist.py", SHAPE, model=dict(channels=(4,), hidden=0, latent_dim=3))
  state = method.init(jax.random.key(0), None)
  return method, state


def test_sample_honours_the_temperature_and_refuses_other_options(conv_vae):
  method, state = conv_vae
  sample = jax.jit(lambda rng, t: method.sample(state, rng, 4, SampleSpec(temperature=t)).samples,
                   static_argnums=1)
  cold = np.asarray(sample(jax.random.key(1), 0.0))
  assert cold.shape == (4, *SHAPE)
  np.testing.assert_allclose(cold, np.broadcast_to(cold[:1], cold.shape))  # z = 0 for all
  zero = method.decode_mean(state.ema_params, jnp.zeros((1, *method.latent_shape)))
  np.testing.assert_allclose(cold[0], zero[0], atol=1e-6)
  # T scales z ~ N(0, I): the sample at T is the decoder's mean at T * (the draw at T = 1).
  rng_z = jax.random.split(jax.random.key(1))[0]
  z = 0.5 * jax.random.normal(rng_z, (4, *method.latent_shape))
  np.testing.assert_allclose(sample(jax.random.key(1), 0.5),
                             jnp.clip(method.decode_mean(state.ema_params, z), -1, 1), atol=1e-5)
  for spec in (SampleSpec(guidance_scale=2.0), SampleSpec(truncation=0.5),
               SampleSpec(sampler="ddim")):
    with pytest.raises(ValueError, match=r"'vae' family cannot honour .*temperature"):
      method.sample(state, jax.random.key(0), 2, spec)


def test_figures_pair_inputs_with_reconstructions_and_traverse_latents(conv_vae):
  method, state = conv_vae
  x = jax.random.uniform(jax.random.key(2), (6, *SHAPE), minval=-1, maxval=1)
  figures = jax.jit(method.figures)(state, {"image": x}, jax.random.key(3))
  recon, cols = figures["reconstructions"]
  assert recon.shape == (12, *SHAPE) and int(cols) == 6
  assert set(np.unique(np.asarray(recon[:6]))) <= {-1.0, 1.0}  # binarized inputs
  traversal, cols = figures["traversal"]
  dims, steps = min(method.traversal_dims, 3), method.traversal_steps
  assert traversal.shape == (dims * steps, *SHAPE) and int(cols) == steps


@pytest.mark.parametrize("relpath,overrides,match", [
    ("vae/cifar10.py", {"data.dequantize": True}, "dequantize=False"),
    ("vae/mnist.py", {"method.perceptual_weight": 1.0}, "LPIPS"),
    ("vae/mnist.py", {"method.adversarial_weight": 0.1}, "discriminator"),
    ("vae/mnist.py", {"method.iwae_samples": 10, "method.iwae_chunk": 3}, "must divide"),
])
def test_refused_configurations_name_the_problem(relpath, overrides, match):
  c = load_config(relpath, "smoke")
  for path, value in overrides.items():
    section, name = path.rsplit(".", 1)
    c[section][name] = value
  with pytest.raises(ValueError, match=match):
    build_vae(c, DatasetInfo((32, 32, 3), 10, 10))


def test_bernoulli_on_vectors_is_refused():
  c = load_config("vae/toy.py", "smoke")
  with c.unlocked():
    c.method.likelihood = dict(name="bernoulli")
  with pytest.raises(ValueError, match="binarized images"):
    build_vae(c, DatasetInfo((2,), 0, 10))
