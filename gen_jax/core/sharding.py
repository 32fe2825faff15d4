"""All multi-device and multi-host code of gen_jax lives here.

Data parallelism over one mesh axis, "data", that spans every device of every process:
the train state is replicated, the batch is split along its first axis, and `jax.jit`
with `NamedSharding` lets the compiler insert the gradient all-reduce. Methods and nets
are written for one device and never mention devices, axis names or collectives.

Because the reduction is compiler-inserted, a step on N devices computes the same
numbers as on one device with the same global batch (to float reassociation tolerance).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import jax
import numpy as np
from absl import logging
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

DATA_AXIS = "data"


def initialize_distributed(coordinator_address: str | None = None,
                           num_processes: int | None = None,
                           process_id: int | None = None) -> None:
  """Join a multi-process JAX job (several hosts, or several processes on one host).

  With no arguments JAX detects the cluster (Cloud TPU, SLURM, Open MPI, Kubernetes).
  Must run before any other JAX call that touches devices.
  """
  kwargs = {k: v for k, v in dict(coordinator_address=coordinator_address,
                                  num_processes=num_processes,
                                  process_id=process_id).items() if v is not None}
  jax.distributed.initialize(**kwargs)
  logging.info("JAX process %d of %d; %d local and %d global devices.",
               jax.process_index(), jax.process_count(),
               jax.local_device_count(), jax.device_count())


def make_mesh(num_devices: int = 0, devices: Sequence[jax.Device] | None = None) -> Mesh:
  """A 1-D data-parallel mesh.

  Args:
    num_devices: use the first `num_devices` devices (0 = all devices of all processes).
      Only meaningful in a single process; multi-process jobs must use every device.
    devices: explicit devices (overrides num_devices).
  """
  if devices is None:
    devices = jax.devices()
    if num_devices:
      if num_devices > len(devices):
        raise ValueError(f"trainer.num_devices={num_devices} but only {len(devices)} devices "
                         "are visible; set it to 0 to use all of them.")
      if jax.process_count() > 1 and num_devices != len(devices):
        raise ValueError("trainer.num_devices must be 0 (all devices) in a multi-process job.")
      devices = devices[:num_devices]
  return Mesh(np.asarray(devices), (DATA_AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
  """Sharding of arrays copied whole onto every device (the train state)."""
  return NamedSharding(mesh, P())


def batch_sharding(mesh: Mesh) -> NamedSharding:
  """Sharding of arrays split along their leading (batch) axis."""
  return NamedSharding(mesh, P(DATA_AXIS))


def process_batch_size(global_batch_size: int, mesh: Mesh) -> int:
  """The rows of a global batch that this process loads (its devices' share)."""
  num_devices = mesh.devices.size
  if global_batch_size % num_devices:
    raise ValueError(
        f"The global batch size {global_batch_size} is not divisible by the {num_devices} "
        f"devices of the mesh; choose a multiple of {num_devices}.")
  return global_batch_size // jax.process_count()


def make_global_batch(local_batch: Mapping[str, Any], mesh: Mesh) -> dict[str, jax.Array]:
  """Assemble each process's rows into global arrays sharded over the data axis.

  Every process passes its own rows (process p holds rows [p*b, (p+1)*b) of the global
  batch, the order of `jax.devices()`), and gets back arrays of the global shape.
  """
  sharding = batch_sharding(mesh)
  return {k: jax.make_array_from_process_local_data(sharding, np.asarray(v))
          for k, v in local_batch.items()}


def to_host(tree: Any) -> Any:
  """Fetch a (possibly sharded, multi-process) pytree as NumPy arrays on every host."""
  if jax.process_count() == 1:
    return jax.device_get(tree)
  from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
  return multihost_utils.process_allgather(tree, tiled=True)


# A scalar reduction: the compiler returns it replicated on every device of the mesh.
_reduce_any = jax.jit(lambda x: x.any())


def any_process(flag: bool, mesh: Mesh) -> jax.Array:
  """A replicated bool scalar: whether `flag` is True on any process (dispatched, not awaited).

  Each process contributes its flag once per local device of the mesh; reading the result
  (`bool(...)`) waits for the reduction, so callers read it a step later.
  """
  local = np.full((len(mesh.local_devices),), bool(flag))
  flags = jax.make_array_from_process_local_data(batch_sharding(mesh), local)
  return _reduce_any(flags)



def compile_on_every_process(jitted: Any, *args: Any, name: str,
                             timeout_s: int = 3600) -> Any:
  """`jitted` compiled ahead of time for `args`; with several processes, once all have.

  CPU collectives (gloo) give a peer only 30 s to reach the first collective, less than
  compiling can take on a loaded host. So with several processes each compiles first and
  then waits at a coordination-service barrier (no device collective) before running.
  One process gets `jitted` back unchanged (compiled on first call as usual).
  """
  if jax.process_count() == 1:
    return jitted
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
  compiled = jitted.lower(*args).compile()
  ocp.multihost.get_barrier_sync_fn()(key=f"gen_jax_compiled_{name}",
                                      timeout_ms=timeout_s * 1000)
  return compiled
