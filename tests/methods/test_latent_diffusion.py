"""Latent diffusion's second stage: encode/scale/decode through the frozen first stage, the
latent scale recorded in the checkpoint and used after a restore, and the refused
combinations.

Cheap by construction: the runs are written, not trained (a freshly initialised state saved
as the checkpoint of a run, with its config.json and, for the first stage, the evaluation
record holding the latent std), so nothing but initialisation, one update and one sampler
is compiled. The first stage is the MNIST autoencoder's smoke config on the embedded 8x8
digits (f = 2: 4x4x4 latents); the second stage is configs/latent_diffusion/mnist.py:smoke
on the same data. Training for real: the smoke config test (mocked MNIST) and the slow
end-to-end test on real MNIST (tests/methods/test_latent_diffusion_mnist.py).
"""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gen_jax.data import DatasetInfo
from gen_jax.methods import build_method
from gen_jax.methods.first_stage import FirstStageError, load_first_stage
from gen_jax.methods.latent_diffusion import LatentDiffusion
from gen_jax.train import evaluation
from gen_jax.train.experiment import Experiment, write_config
from tests.train.helpers import load_config

DIGITS = (8, 8, 1)
LATENT = (4, 4, 4)
INFO = DatasetInfo(DIGITS, 10, 64)
LATENT_STD = 0.5  # recorded for the first stage's checkpoint


def write_initialised_run(config, workdir, step, results=None):
  """`workdir` as if `config` had been trained for `step` steps: its initial state saved as
  the checkpoint of `step`, config.json and (with `results`) eval/<step>.json."""
  exp = Experiment.create(config, workdir)
  batch = {"image": jnp.zeros((config.batch_size, *DIGITS)),
           "label": jnp.zeros((config.batch_size,), jnp.int32)}
  state = exp.init_state(batch)
  exp.checkpointer.save(step, state)
  exp.checkpointer.wait()
  exp.checkpointer.close()
  write_config(config, workdir)
  if results is not None:
    evaluation.write_eval_results(exp, step, results)
  return state


@pytest.fixture(scope="module")
def first_stage(tmp_path_factory):
  """An (untrained) first-stage run on the digits with LATENT_STD recorded: its workdir."""
  c = load_config("latent_diffusion/autoencoder_mnist.py", "smoke")
  c.data.source = "digits"
  c.data.name = ""
  workdir = tmp_path_factory.mktemp("ldm") / "first_stage"
  write_initialised_run(c, workdir, 4, {"latent_std": LATENT_STD})
  return workdir


def second_stage_config(workdir, **latent):
  """configs/latent_diffusion/mnist.py:smoke on the digits, for the first stage in workdir."""
  c = load_config("latent_diffusion/mnist.py", "smoke")
  c.data.source = "digits"
  c.data.name = ""
  c.latent.autoencoder_workdir = str(workdir)
  c.latent.latent_shape = LATENT
  for k, v in latent.items():
    c.latent[k] = v
  return c


def test_encode_scale_decode_go_through_the_first_stage(first_stage):
  method = build_method(second_stage_config(first_stage), INFO)
  assert isinstance(method, LatentDiffusion) and method.latent_shape == LATENT
  state = jax.jit(method.init)(jax.random.key(0), None)
  scale = float(state.model_state["latent_scale"])
  np.testing.assert_allclose(scale, 1.0 / LATENT_STD, rtol=1e-6)

  first = load_first_stage(first_stage, DIGITS)
  x = jax.random.uniform(jax.random.key(1), (3, *DIGITS), minval=-1, maxval=1)
  z = method.encode(state.model_state, x, None)
  np.testing.assert_allclose(z, scale * first.encode(x), rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(method.decode(state.model_state, z),
                             jnp.clip(first.decode(first.encode(x)), -1, 1), rtol=1e-5,
                             atol=1e-5)
  z_drawn = method.encode(state.model_state, x, jax.random.key(2))
  assert z_drawn.shape == (3, *LATENT) and not np.allclose(z_drawn, z)

  batch = {"image": x, "label": jnp.zeros((3,), jnp.int32)}
  new, metrics = jax.jit(method.update)(state, batch, jax.random.key(3))
  assert np.isfinite(float(metrics["loss"]))
  assert any(not np.allclose(a, b) for a, b in zip(jax.tree.leaves(new.params),
                                                   jax.tree.leaves(state.params)))
  for a, b in zip(jax.tree.leaves(new.model_state), jax.tree.leaves(state.model_state)):
    np.testing.assert_array_equal(a, b)  # the first stage and its scale stay frozen


def test_scale_is_recorded_in_the_checkpoint_and_sampling_uses_it(first_stage, tmp_path):
  config = second_stage_config(first_stage)
  write_initialised_run(config, tmp_path / "run", 1)

  # The first stage is evaluated again later and reports another latent std.
  record_path = first_stage / "eval" / "4.json"
  original = record_path.read_text()
  record = json.loads(original)
  record["results"]["latent_std"] = 4.0 * LATENT_STD
  record_path.write_text(json.dumps(record))
  try:
    exp = Experiment.create(config, tmp_path / "run")
    state, step = exp.restore_or_fail()
    exp.checkpointer.close()
  finally:
    record_path.write_text(original)
  assert step == 1
  np.testing.assert_allclose(exp.method.latent_scale, 1.0 / (4.0 * LATENT_STD), rtol=1e-6)
  recorded = float(state.model_state["latent_scale"])
  np.testing.assert_allclose(recorded, 1.0 / LATENT_STD, rtol=1e-6)

  method = exp.method

  @jax.jit
  def both(state, rng):
    inner = state.replace(model_state=state.model_state["diffusion"])
    return method.sample(state, rng, 2).samples, method.diffusion.sample(inner, rng, 2).samples

  images, latents = both(state, jax.random.key(5))
  assert images.shape == (2, *DIGITS) and latents.shape == (2, *LATENT)
  first = load_first_stage(first_stage, DIGITS)
  np.testing.assert_allclose(images, jnp.clip(first.decode(latents / recorded), -1, 1),
                             rtol=1e-5, atol=1e-5)


def test_refused_combinations_name_the_problem(first_stage, tmp_path):
  workdir = first_stage
  with pytest.raises(FirstStageError, match="autoencoder_workdir is empty"):
    build_method(second_stage_config(""), INFO)
  with pytest.raises(FirstStageError, match="does not exist"):
    build_method(second_stage_config(tmp_path / "nowhere"), INFO)
  (tmp_path / "empty").mkdir()
  with pytest.raises(FirstStageError, match="no readable config.json"):
    build_method(second_stage_config(tmp_path / "empty"), INFO)
  conv_vae = tmp_path / "conv_vae"
  conv_vae.mkdir()
  (conv_vae / "config.json").write_text(json.dumps(
      {"method": {"name": "vae"}, "model": {"name": "vae_conv"}}))
  with pytest.raises(FirstStageError, match="'vae_conv' network"):
    build_method(second_stage_config(conv_vae), INFO)
  with pytest.raises(FirstStageError, match=r"\(4, 4, 4\).*\(7, 7, 4\)"):
    build_method(second_stage_config(workdir, latent_shape=(7, 7, 4)), INFO)
  deep = second_stage_config(workdir)
  deep.model.ch_mult = (1, 2, 2, 2)  # needs latents divisible by 8
  with pytest.raises(FirstStageError, match="cannot take the latents of shape"):
    build_method(deep, INFO)
  clipped = second_stage_config(workdir)
  clipped.sample.clip_x0 = True
  with pytest.raises(ValueError, match="clip_x0=False"):
    build_method(clipped, INFO)
