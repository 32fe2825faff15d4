"""--mode=sample with config.sample.temperatures writes one set of samples per temperature."""

import numpy as np
import pytest

from gen_jax.core.sample import UnsupportedSampleRequest
from gen_jax.train import loop
from gen_jax.train.experiment import Experiment
from tests.train.helpers import load_config


def test_flow_sample_mode_writes_one_file_per_temperature(tmp_path):
  c = load_config("flows/maf_two_moons.py")
  c.num_train_steps = 2
  c.trainer.sample_every_steps = 0
  c.trainer.eval_every_steps = 0
  loop.train_and_evaluate(c, tmp_path)
  c.sample.temperatures = (0.0, 1.0)
  first = loop.run_sample(c, tmp_path)
  assert first.endswith("final_2_T0.npz")
  cold = np.load(tmp_path / "samples" / "final_2_T0.npz")["images"]
  warm = np.load(tmp_path / "samples" / "final_2_T1.npz")["images"]
  assert (tmp_path / "samples" / "final_2_T1.png").is_file()
  assert cold.shape == warm.shape == (c.sample.num_samples, 2)
  # T = 0 maps z = 0 through the flow: every sample is the same point; T = 1 spreads.
  np.testing.assert_allclose(cold, np.broadcast_to(cold[:1], cold.shape), atol=1e-5)
  assert warm.std(axis=0).min() > 0.1


@pytest.mark.parametrize("config,family", [("ddpm/toy_eight_gaussians.py", "diffusion"),
                                           ("gan/toy_eight_gaussians.py", "gan")])
def test_temperatures_are_refused_by_a_family_without_them_before_any_work(config, family,
                                                                          tmp_path):
  """The workdir has no checkpoint: the family's refusal comes before the restore."""
  c = load_config(config)
  c.sample.temperatures = (0.5,)
  with pytest.raises(UnsupportedSampleRequest,
                     match=rf"'{family}' family cannot honour .*temperature"):
    loop.run_sample(c, tmp_path)
  assert not (tmp_path / "samples").exists()


def test_a_request_of_the_config_is_refused_when_the_run_is_set_up(tmp_path):
  c = load_config("flows/maf_two_moons.py")
  c.sample.truncation = 0.7
  with pytest.raises(UnsupportedSampleRequest, match=r"'flow' family cannot honour .*truncation"):
    Experiment.create(c, tmp_path)
