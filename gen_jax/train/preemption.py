"""Stopping a run cleanly on SIGTERM or SIGINT (preemption, Ctrl-C, `scancel`, `kill`).

While a `PreemptionWatcher` is active, the first SIGTERM or SIGINT only sets a flag: the
loop finishes the current step, writes a checkpoint, waits for it, and raises `Preempted`;
`gen_jax.main` then exits with status `EXIT_CODE` (75, EX_TEMPFAIL of sysexits.h: "try
again later"), so a scheduler can tell a preempted run (rerun the same command to resume)
from a failed one (status 1) and a finished one (0). A second signal restores the previous
handlers and delivers the signal to them (e.g. KeyboardInterrupt), for an operator who
will not wait.

With several processes every host must stop at the same step, or their collective
checkpoint would never complete. The signal may reach only some hosts, so at every step
each process contributes its flag to a tiny all-reduce (`sharding.any_process`) and all of
them read the result one step later: all hosts decide on the same step, and reading a
result the device finished long ago keeps the host from waiting on the current step.
(JAX's own preemption sync point, `multihost_utils.reached_preemption_sync_point`, sees
only SIGTERM delivered through its coordination service, which a Python handler would
replace; the all-reduce covers both signals and needs nothing else.)
"""

from __future__ import annotations

import signal
import threading
from typing import Any

import jax
from absl import logging
from jax.sharding import Mesh

from gen_jax.core import sharding as sharding_lib

EXIT_CODE = 75  # sysexits.h EX_TEMPFAIL: a temporary failure; the same command resumes.
SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Preempted(Exception):
  """Training stopped on a signal after writing a checkpoint of `step`; rerun to resume."""

  def __init__(self, step: int, signal_name: str, checkpoint_dir: Any):
    self.step = step
    self.signal_name = signal_name
    super().__init__(
        f"Stopped by {signal_name} after step {step}; the checkpoint of step {step} in "
        f"{checkpoint_dir} is complete. Rerun the same command to resume from it.")


class PreemptionWatcher:
  """Context manager: catches SIGTERM/SIGINT and tells the loop when to stop.

  `should_stop(step)` must be called once per step by every process.
  """

  def __init__(self, mesh: Mesh, signals: tuple[int, ...] = SIGNALS):
    self._mesh = mesh
    self._signals = signals
    self._previous: dict[int, Any] = {}
    self.received: int | None = None  # the first signal number caught
    self._pending = None  # the all-reduced flag dispatched at the previous step
    self._multi = jax.process_count() > 1

  @property
  def signal_name(self) -> str:
    return signal.Signals(self.received).name if self.received else "a peer's signal"

  def __enter__(self) -> "PreemptionWatcher":
    if threading.current_thread() is not threading.main_thread():
      logging.warning("Training runs outside the main thread: SIGTERM/SIGINT will not stop "
                      "it cleanly (signal handlers can only be installed in the main thread).")
      return self
    for sig in self._signals:
      self._previous[sig] = signal.signal(sig, self._handle)
    return self

  def __exit__(self, *exc) -> None:
    self._restore()

  def _restore(self) -> None:
    for sig, handler in self._previous.items():
      signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
    self._previous = {}

  def _handle(self, signum: int, frame: Any) -> None:
    if self.received is not None:
      previous = self._previous.get(signum)
      self._restore()
      if callable(previous):
        previous(signum, frame)
      elif previous == signal.SIG_DFL:
        signal.raise_signal(signum)
      return
    self.received = signum
    logging.warning("Received %s: finishing the current step, then writing a checkpoint and "
                    "stopping (send it again to stop at once).", signal.Signals(signum).name)

  def should_stop(self, step: int) -> bool:
    """Whether to stop after `step`; the same answer on every process."""
    del step  # every process calls this once per step, so the calls pair up
    if not self._multi:
      return self.received is not None
    decision = bool(self._pending) if self._pending is not None else False
    self._pending = sharding_lib.any_process(self.received is not None, self._mesh)
    return decision
