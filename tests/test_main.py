"""The command line: a typo in a config field is an error naming it; train then sample works."""

import os
import subprocess
import sys

from tests.train.helpers import REPO


def _run(*args, timeout=600):
  env = dict(os.environ)  # the suite's 8 fake devices and compilation cache
  return subprocess.run([sys.executable, "-m", "gen_jax.main", *args], cwd=REPO, env=env,
                        capture_output=True, text=True, timeout=timeout)


def test_unknown_config_field_is_an_error_naming_it(tmp_path):
  out = _run("--config=configs/ddpm/digits.py:smoke", f"--workdir={tmp_path}",
             "--config.optim.learing_rate=1")
  assert out.returncode != 0
  assert "learing_rate" in out.stderr
  assert not (tmp_path / "checkpoints").exists()


def test_train_then_sample_from_the_command_line(tmp_path):
  common = ["--config=configs/ddpm/digits.py:smoke", f"--workdir={tmp_path}",
            "--config.trainer.eval_every_steps=0"]
  train = _run(*common)
  assert train.returncode == 0, train.stderr[-3000:]
  assert (tmp_path / "checkpoints" / "4").is_dir()
  assert (tmp_path / "samples" / "step_00000004.png").is_file()
  sample = _run(*common, "--mode=sample", "--config.sample.sampler=ancestral")
  assert sample.returncode == 0, sample.stderr[-3000:]
  assert (tmp_path / "samples" / "final_4.npz").is_file()
  assert "network evaluations per image" in sample.stderr
