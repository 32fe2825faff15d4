"""SIGTERM/SIGINT: finish the step, checkpoint, exit 75; resuming equals never stopping."""

from __future__ import annotations

import json
import os
import pathlib
import random
import signal
import subprocess
import sys

import pytest

from gen_jax.train import loop
from gen_jax.train import preemption
from gen_jax.train.checkpoint import Checkpointer
from tests.train.helpers import REPO, assert_trees_equal, quiet_digits_config
from tests.train.test_multiprocess import _free_port


def _steps(workdir: pathlib.Path) -> list[int]:
  return sorted(int(p.name) for p in (workdir / "checkpoints").iterdir() if p.name.isdigit())


def _data_state(workdir: pathlib.Path, step: int, process: int = 0, count: int = 1) -> dict:
  path = workdir / "checkpoints" / str(step) / "data" / f"process_{process}-of-{count}.json"
  return json.loads(path.read_text())


@pytest.mark.slow  # suite budget: 85 s; run with --runslow before a stop that touches the
# trainer loop or checkpoints
def test_sigterm_at_a_random_step_then_resume_is_bit_identical(tmp_path, monkeypatch):
  config = quiet_digits_config(6, checkpoint_every_steps=4)
  config.optim.schedule = "cosine"  # depends on the step: resuming must restore it
  config.model.dropout = 0.1  # and so does the dropout key
  straight = loop.train_and_evaluate(config, tmp_path / "straight")

  stop = random.Random().randint(2, 5)  # the step during which the signal arrives
  check_finite = loop.step_lib.check_finite

  def signal_during_step(step, *args):
    if step == stop:  # with log_every_steps=1 the host checks each step in its iteration
      os.kill(os.getpid(), signal.SIGTERM)
    return check_finite(step, *args)

  handlers = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
  monkeypatch.setattr(loop.step_lib, "check_finite", signal_during_step)
  with pytest.raises(preemption.Preempted, match=f"after step {stop};") as raised:
    loop.train_and_evaluate(config, tmp_path / "resumed")
  monkeypatch.setattr(loop.step_lib, "check_finite", check_finite)
  assert raised.value.step == stop, f"signal during step {stop}"
  assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == handlers
  assert _steps(tmp_path / "resumed")[-1] == stop
  assert _data_state(tmp_path / "resumed", stop) == {"next_index": stop}

  resumed = loop.train_and_evaluate(config, tmp_path / "resumed")
  assert int(resumed.step) == int(straight.step) == 6
  assert_trees_equal(straight.params, resumed.params)
  assert_trees_equal(straight.ema_params, resumed.ema_params)
  assert_trees_equal(straight.opt_state, resumed.opt_state)
  assert _data_state(tmp_path / "straight", 6) == _data_state(tmp_path / "resumed", 6)


def test_watcher_catches_both_signals_and_a_second_one_goes_through():
  mesh = loop.sharding_lib.make_mesh(1)
  before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
  for sig in (signal.SIGTERM, signal.SIGINT):
    with preemption.PreemptionWatcher(mesh) as watcher:
      assert not watcher.should_stop(1)
      os.kill(os.getpid(), sig)
      assert watcher.should_stop(2) and watcher.signal_name == sig.name
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before
  with pytest.raises(KeyboardInterrupt):  # an operator who will not wait: Ctrl-C twice
    with preemption.PreemptionWatcher(mesh):
      os.kill(os.getpid(), signal.SIGINT)
      os.kill(os.getpid(), signal.SIGINT)
  assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


def test_main_exits_with_the_preemption_status(tmp_path, monkeypatch):
  from absl import flags  # pylint: disable=g-import-not-at-top
  from gen_jax import main as entry  # pylint: disable=g-import-not-at-top

  def preempted(config, workdir):
    raise preemption.Preempted(3, "SIGTERM", workdir)

  monkeypatch.setattr(loop, "train_and_evaluate", preempted)
  flags.FLAGS(["gen_jax.main", "--config=configs/ddpm/digits.py:smoke",
               f"--workdir={tmp_path}"])
  try:
    with pytest.raises(SystemExit) as exited:
      entry.main(["gen_jax.main"])
  finally:
    flags.FLAGS.unparse_flags()
  assert exited.value.code == preemption.EXIT_CODE == 75


def _run_two_processes(workdir: pathlib.Path, sigterm_step: int) -> list[tuple[int, str]]:
  """Both processes of a 2-process job; process 1 alone gets SIGTERM during `sigterm_step`."""
  port = _free_port()
  env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
  env.update(XLA_FLAGS="--xla_force_host_platform_device_count=2", JAX_PLATFORMS="cpu",
             PYTHONPATH=str(REPO) + os.pathsep + env.get("PYTHONPATH", ""))
  flags = ["--config=configs/ddpm/digits.py:smoke", f"--workdir={workdir}",
           "--config.num_train_steps=6", "--config.trainer.checkpoint_every_steps=4",
           "--config.trainer.sample_every_steps=0", "--config.trainer.eval_every_steps=0",
           "--config.trainer.log_every_steps=1", "--config.optim.schedule=constant",
           f"--coordinator_address=127.0.0.1:{port}", "--num_processes=2"]
  logs = [workdir.with_name(f"{workdir.name}_{sigterm_step}_process_{i}.log") for i in range(2)]
  procs = [subprocess.Popen(
      [sys.executable, "-m", "tests.train.preemption_worker",
       str(sigterm_step if i == 1 else 0), *flags, f"--process_id={i}"],
      cwd=REPO, env=env, stdout=logs[i].open("w"), stderr=subprocess.STDOUT)
           for i in range(2)]
  results = []
  try:
    for p, log in zip(procs, logs):
      code = p.wait(timeout=900)
      results.append((code, log.read_text()))
      if code not in (0, preemption.EXIT_CODE):
        break  # its peer would only wait for it
  finally:
    for q in procs:
      if q.poll() is None:
        q.kill()
  return results


def _final_state(workdir: pathlib.Path, step: int):
  checkpointer = Checkpointer(workdir / "checkpoints", asynchronous=False)
  try:
    return checkpointer.restore_numpy(step)
  finally:
    checkpointer.close()


@pytest.mark.slow
def test_two_processes_stop_at_the_same_step_and_resume_bit_identically(tmp_path):
  """SIGTERM reaches process 1 only; both save the same step, exit 75, and resume."""
  straight = _run_two_processes(tmp_path / "straight", 0)
  assert [code for code, _ in straight] == [0, 0], straight[-1][1][-5000:]

  sigterm_step = random.Random().randint(2, 4)
  stopped = _run_two_processes(tmp_path / "resumed", sigterm_step)
  for i, (code, out) in enumerate(stopped):
    assert code == preemption.EXIT_CODE, (
        f"process {i} (SIGTERM during step {sigterm_step}) exited {code}:\n{out[-5000:]}")
  # Process 0 learns of the signal one step later, through the all-reduced flag.
  stop = sigterm_step + 1
  assert _steps(tmp_path / "resumed")[-1] == stop, f"SIGTERM during step {sigterm_step}"
  for i in range(2):
    assert f"after step {stop};" in stopped[i][1]

  resumed = _run_two_processes(tmp_path / "resumed", 0)
  assert [code for code, _ in resumed] == [0, 0], resumed[-1][1][-5000:]
  a, b = _final_state(tmp_path / "straight", 6), _final_state(tmp_path / "resumed", 6)
  assert_trees_equal(a, b)
  for i in range(2):
    assert (_data_state(tmp_path / "straight", 6, i, 2)
            == _data_state(tmp_path / "resumed", 6, i, 2))
