"""The command line: one-line config errors, --import, train then sample, setup failures."""

import os
import subprocess
import sys
import traceback

import pytest

from tests.train.helpers import REPO, load_config


def _run(*args, timeout=600, env=None):
  env = {**os.environ, **(env or {})}  # the suite's 8 fake devices and compilation cache
  return subprocess.run([sys.executable, "-m", "gen_jax.main", *args], cwd=REPO, env=env,
                        capture_output=True, text=True, timeout=timeout)


# (override, texts the one-line error must contain): the full dotted path and the
# closest existing fields, or the allowed values.
CONFIG_ERRORS = [
    ("--config.optim.learing_rate=1",
     ["'optim.learing_rate'", "closest: optim.learning_rate"]),
    ("--config.learning_rate=1", ["'learning_rate'", "closest: optim.learning_rate"]),
    ("--config.sample.ddim.num_step=3", ["'sample.ddim.num_step'", "sample.ddim.num_steps"]),
    # A field another family has (score SDEs' sample.pc): the section's fields.
    ("--config.sample.pc.snr=0.1",
     ["'sample.pc.snr'", "fields of sample:", "guidance_scale", "sampler"]),
    ("--config.eval.reference_split=test",
     ["eval.reference_split is 'test'", "allowed values: train, eval"]),
    ("--config.method.name=dppm", ["method.name is 'dppm'", "ddpm", "score_sde"]),
    ("--import=no_such_project.losses", ["--import=no_such_project.losses",
                                         "no module named 'no_such_project'"]),
]


@pytest.mark.parametrize("override,texts", CONFIG_ERRORS, ids=[e[0] for e in CONFIG_ERRORS])
def test_config_error_is_one_line_naming_path_and_suggestions(override, texts, tmp_path):
  out = _run("--config=configs/ddpm/digits.py:smoke", f"--workdir={tmp_path / 'run'}",
             override, timeout=120)
  assert out.returncode == 2
  lines = out.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr[-3000:]
  for text in texts:
    assert text in lines[0], (text, lines[0])
  assert not (tmp_path / "run").exists()


def test_an_unregistered_name_in_the_config_is_one_error_line_without_traceback(tmp_path):
  out = _run("--config=configs/ddpm/digits.py:smoke", f"--workdir={tmp_path / 'run'}",
             "--config.method.loss=hubr", timeout=300)
  assert out.returncode == 2, out.stderr[-3000:]
  assert "Traceback" not in out.stderr
  last = out.stderr.strip().splitlines()[-1]
  assert last.startswith("error: Unknown diffusion loss 'hubr'; choose one of: "), last
  assert "mse" in last and "--import" in last
  assert not (tmp_path / "run" / "config.json").exists()


def test_a_sampling_request_the_family_cannot_honour_is_one_error_line(tmp_path):
  """A temperature asked of a GAN reaches it through the SampleSpec and is refused by name,
  before any training step."""
  out = _run("--config=configs/gan/toy_eight_gaussians.py:smoke",
             f"--workdir={tmp_path / 'run'}", "--config.sample.temperature=0.7", timeout=300)
  assert out.returncode == 2, out.stderr[-3000:]
  assert "Traceback" not in out.stderr
  last = out.stderr.strip().splitlines()[-1]
  assert last.startswith("error: The 'gan' family cannot honour the sampling option(s) "
                         "temperature;"), last
  assert not (tmp_path / "run" / "checkpoints").exists()


def test_every_config_passes_validation():
  from gen_jax import main
  for path in sorted((REPO / "configs").glob("*/*.py")):
    if not path.name.startswith("_"):
      for arg in ("smoke", None):
        main.validate_config(load_config(str(path.relative_to(REPO / "configs")), arg))


def test_a_tuple_field_with_a_value_outside_its_choices_is_refused():
  from configs.common import ConfigError
  from gen_jax import main
  config = load_config("ddpm/digits.py")
  config.eval.metrics = ("fid", "kidd")
  with pytest.raises(ConfigError, match=r"eval.metrics is \('fid', 'kidd'\); allowed values: "
                     "fid, kid, is, pr, dc"):
    main.validate_config(config)


def test_import_of_a_py_file_registers_before_the_config_is_read(tmp_path):
  """--import=<file.py> loads a file by path; what it registers is then selectable."""
  from gen_jax import main
  from gen_jax.data import SOURCES
  module = tmp_path / "my_sources.py"
  module.write_text("from gen_jax.data import SOURCES\n"
                    "SOURCES.add('my_test_source', lambda cfg, split: None)\n")
  main.import_user_module(str(module))
  assert "my_test_source" in SOURCES
  config = load_config("ddpm/digits.py")
  config.data.source = "my_test_source"
  main.validate_config(config)


def test_missing_tfds_data_from_the_command_line_says_only_how_to_provide_it(tmp_path):
  out = _run("--config=configs/ddpm/cifar10.py:smoke", f"--workdir={tmp_path / 'run'}",
             f"--config.data.data_dir={tmp_path / 'empty'}", timeout=300)
  assert out.returncode == 1, out.stderr[-3000:]
  assert "error: tfds dataset 'cifar10'" in out.stderr and "Provide the data" in out.stderr
  assert "Traceback" not in out.stderr and "TFRECORD" not in out.stderr
  assert not (tmp_path / "run").exists()  # nothing half-made is left behind


def test_missing_tfds_data_error_has_no_chained_tfds_error(tmp_path):
  from gen_jax.data import DatasetNotPreparedError
  from gen_jax.data.sources import open_tfds
  with pytest.raises(DatasetNotPreparedError) as err:
    open_tfds("mnist", split="train", data_dir=str(tmp_path))
  text = "".join(traceback.format_exception(err.value))
  assert "Provide the data" in text and "TFRECORD" not in text
  assert "direct cause" not in text and "During handling" not in text


def test_a_run_failing_at_setup_leaves_no_workdir(tmp_path):
  from gen_jax.train import loop
  config = load_config("ddpm/digits.py")
  config.method.loss = "no_such_loss"
  with pytest.raises(KeyError, match="no_such_loss"):
    loop.train_and_evaluate(config, tmp_path / "run")
  assert not (tmp_path / "run").exists()


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
  # All 8 samples fit one batch: no rate is measured, and none is made up.
  assert "nan images/s" not in sample.stderr and "speed not measured" in sample.stderr
