"""data.image_size=(height, width): the UNet, NCSN++ and GAN families build and sample it.

Only shapes are traced (jax.eval_shape), so this costs seconds; the data side is tested in
tests/data/test_sources.py.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest

from gen_jax.data.sources import DatasetInfo
from gen_jax.methods.base import build_method
from tests.train.helpers import load_config

CASES = [("ddpm/digits.py", "smoke", (8, 16, 1)),
         ("score_sde/mnist.py", "smoke", (16, 32, 1)),
         ("gan/dcgan.py", "smoke", (16, 32, 3))]


@pytest.mark.parametrize("relpath,arg,shape", CASES, ids=[c[0] for c in CASES])
def test_family_trains_and_samples_height_by_width(relpath, arg, shape):
  config = load_config(relpath, arg)
  method = build_method(config, DatasetInfo(shape, 10, 100))
  batch = {"image": jax.ShapeDtypeStruct((4, *shape), jnp.float32),
           "label": jax.ShapeDtypeStruct((4,), jnp.int32)}
  key = jax.random.key(0)
  state = jax.eval_shape(method.init, key, batch)
  _, metrics = jax.eval_shape(method.update, state, batch, key)
  assert metrics
  samples = jax.eval_shape(lambda s, k: method.sample(s, k, 4), state, key)
  assert samples.samples.shape == (4, *shape)
