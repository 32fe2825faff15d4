"""Two JAX processes on loopback (CPU collectives) train in lockstep, like one process.

Each process has 2 CPU devices and loads only its own rows of every global batch; the
result must equal one process training on the same global batch over 4 devices.
"""

import os
import pathlib
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest

from gen_jax.train import loop
from tests.train.helpers import REPO, host_tree, quiet_digits_config


def multiprocess_config():
  c = quiet_digits_config(3, checkpoint_every_steps=2)
  c.optim.name = "sgd"
  c.optim.learning_rate = 0.05
  c.optim.grad_clip_norm = 0.0
  return c


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


@pytest.mark.slow  # suite budget: 102 s (two processes each compile the trainer); run with
# --runslow before a stop that touches sharding, data or checkpoints
def test_two_processes_train_like_one(tmp_path: pathlib.Path):
  port = _free_port()
  env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
  env.update(XLA_FLAGS="--xla_force_host_platform_device_count=2", JAX_PLATFORMS="cpu",
             PYTHONPATH=str(REPO) + os.pathsep + env.get("PYTHONPATH", ""))
  procs = [
      subprocess.Popen(
          [sys.executable, "-m", "tests.train.multiprocess_worker", str(i), "2", str(port),
           str(tmp_path / "multi"), str(tmp_path / f"params_{i}.npz")],
          cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
      for i in range(2)
  ]
  outputs = []
  try:
    for p in procs:
      outputs.append(p.communicate(timeout=600)[0])
      if p.returncode != 0:
        break  # its peer would only wait for it
  finally:
    # Only a process left behind by a failure or a timeout is killed: a peer that is still
    # finishing (checkpoint, shutdown barrier) after the first one exits is waited for.
    for q in procs:
      if q.poll() is None:
        q.kill()
  for i, out in enumerate(outputs):
    assert procs[i].returncode == 0, f"process {i} failed:\n{out[-5000:]}"
  assert len(outputs) == len(procs)

  config = multiprocess_config()
  config.trainer.num_devices = 4
  single = [np.asarray(x) for x in jax.tree.leaves(host_tree(
      loop.train_and_evaluate(config, tmp_path / "single").params))]
  for i in range(2):
    with np.load(tmp_path / f"params_{i}.npz") as f:
      multi = [f[f"arr_{j}"] for j in range(len(f.files))]
    assert len(multi) == len(single)
    for a, b in zip(multi, single):
      np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
  # Both processes wrote one checkpoint directory together.
  assert sorted(p.name for p in (tmp_path / "multi" / "checkpoints").iterdir()) == ["2", "3"]
