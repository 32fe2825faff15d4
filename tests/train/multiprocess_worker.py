"""One JAX process of a two-process training run on loopback (used by test_multiprocess.py).

    python -m tests.train.multiprocess_worker PROCESS_ID NUM_PROCESSES PORT WORKDIR OUT.npz
"""

import os
import sys


def main(process_id: int, num_processes: int, port: int, workdir: str, out: str) -> None:
  import jax  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top

  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  from gen_jax.core import sharding  # pylint: disable=g-import-not-at-top
  sharding.initialize_distributed(f"127.0.0.1:{port}", num_processes, process_id)
  from gen_jax.train import loop  # pylint: disable=g-import-not-at-top
  from tests.train.test_multiprocess import multiprocess_config  # pylint: disable=g-import-not-at-top

  state = loop.train_and_evaluate(multiprocess_config(), workdir)
  # The state is replicated: this process's first local copy is the whole array.
  leaves = [np.asarray(x.addressable_data(0)) for x in jax.tree.leaves(state.params)]
  np.savez(out, *leaves)
  jax.distributed.shutdown()


if __name__ == "__main__":
  os.environ.setdefault("JAX_PLATFORMS", "cpu")
  pid, n, port, workdir, out = sys.argv[1:]
  main(int(pid), int(n), int(port), workdir, out)
