"""`python -m gen_jax.main ...` that sends itself SIGTERM during a chosen step (for tests).

    python -m tests.train.preemption_worker SIGTERM_STEP [gen_jax.main flags...]

SIGTERM_STEP 0 sends nothing. The signal is sent while the host checks step SIGTERM_STEP
(in that step's iteration when trainer.log_every_steps is 1). Several processes on
loopback use gloo for their CPU collectives.
"""

import os
import signal
import sys


def main() -> None:
  sigterm_step, argv = int(sys.argv[1]), sys.argv[2:]
  import jax  # pylint: disable=g-import-not-at-top
  from absl import app  # pylint: disable=g-import-not-at-top

  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  from gen_jax import main as entry  # pylint: disable=g-import-not-at-top
  from gen_jax.train import step as step_lib  # pylint: disable=g-import-not-at-top

  if sigterm_step:
    check_finite = step_lib.check_finite

    def signal_during_step(step, *args):
      if step == sigterm_step:
        os.kill(os.getpid(), signal.SIGTERM)
      return check_finite(step, *args)

    step_lib.check_finite = signal_during_step
  app.run(entry.main, argv=["gen_jax.main", *argv])


if __name__ == "__main__":
  os.environ.setdefault("JAX_PLATFORMS", "cpu")
  main()
