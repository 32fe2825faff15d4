"""Old checkpoints keep loading: runs written before the diffusion refactor (issue 11) restore
from their own config.json and sample what they sampled then.

The fixture (tests/fixtures/old_checkpoints/, made by make_fixture.py there with the code of
before the refactor) holds a tiny DDPM and a tiny score-SDE workdir and their samples for
several samplers with a fixed key.
"""

from __future__ import annotations

import json
import pathlib
import shutil

import ml_collections
import numpy as np
import pytest

from tests.fixtures.old_checkpoints import make_fixture

FIXTURE = pathlib.Path(make_fixture.__file__).resolve().parent


def _config_from_json(path: pathlib.Path) -> ml_collections.ConfigDict:
  """The run's config as the trainer wrote it (lists where the config had tuples)."""
  return ml_collections.ConfigDict(json.loads(path.read_text()))


@pytest.mark.parametrize("name", sorted(make_fixture.SAMPLERS))
def test_old_checkpoint_restores_and_samples_identically(name, tmp_path):
  workdir = tmp_path / name
  shutil.copytree(FIXTURE / name, workdir)  # restoring may tidy the checkpoint directory
  config = _config_from_json(workdir / "config.json")
  assert config.method.name == name
  expected = np.load(FIXTURE / name / "samples.npz")
  got = make_fixture.sample_all(config, workdir, name)
  assert set(got) == set(expected.files) == set(make_fixture.SAMPLERS[name])
  for sampler, samples in got.items():
    assert np.all(np.isfinite(samples)), sampler
    np.testing.assert_allclose(samples, expected[sampler], rtol=1e-5, atol=1e-5,
                               err_msg=f"{name} / {sampler}")
