"""All multi-device and multi-host code of gen_jax lives here.

The mesh has two axes, "data" and "fsdp" (`config.mesh`, e.g. "data=2,fsdp=4"; by default
every device is on "data" and fsdp = 1). The batch is split along its first axis over
both axes (every device gets its own rows). The train state (parameters, optimiser state,
EMA, model state) is sharded along "fsdp" (fully sharded data parallelism, ZeRO-3 style,
as big_vision and MaxText do): each array larger than `FSDP_MIN_SIZE` elements is split
along its largest dimension divisible by the fsdp size, smaller ones are replicated; with
fsdp = 1 everything is replicated (plain data parallelism). `jax.jit` with
`NamedSharding` lets the compiler insert the gradient reductions and the parameter
all-gathers. Methods and nets are written for one device and never mention devices, axis
names or collectives.

Because the collectives are compiler-inserted, a step on N devices, with any mesh shape,
computes the same numbers as on one device with the same global batch (to float
reassociation tolerance), and a checkpoint written under one mesh restores under another
(orbax reads each array onto the target shardings).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import jax
import numpy as np
from absl import logging
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

DATA_AXIS = "data"
FSDP_AXIS = "fsdp"
MESH_AXES = (DATA_AXIS, FSDP_AXIS)
# Arrays with fewer elements stay replicated under fsdp (biases, norms: not worth a gather).
FSDP_MIN_SIZE = 2 ** 12


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


def parse_mesh_shape(spec: str, num_devices: int) -> dict[str, int]:
  """{"data": d, "fsdp": f} with d * f = num_devices from a spec such as "data=2,fsdp=4".

  An axis left out takes the remaining devices ("fsdp=4" on 8 devices is data=2); the
  empty spec puts every device on "data".

  Raises:
    ValueError: an unknown axis, a malformed entry, or sizes that do not multiply to the
      number of devices; the message says what to write instead.
  """
  sizes: dict[str, int] = {}
  for part in (spec or "").split(","):
    part = part.strip()
    if not part:
      continue
    name, _, value = part.partition("=")
    name = name.strip()
    if name not in MESH_AXES or not value.strip().isdigit() or int(value) < 1:
      raise ValueError(
          f"config.mesh={spec!r}: cannot read {part!r}; write comma-separated axis=size with "
          f"axes {', '.join(MESH_AXES)}, e.g. 'data=2,fsdp=4'.")
    sizes[name] = int(value)
  known = int(np.prod(list(sizes.values()))) if sizes else 1
  missing = [a for a in MESH_AXES if a not in sizes]
  if num_devices % known:
    raise ValueError(f"config.mesh={spec!r} needs a multiple of {known} devices; there are "
                     f"{num_devices}.")
  if missing:
    sizes[missing[0]] = num_devices // known
    for axis in missing[1:]:
      sizes[axis] = 1
  if int(np.prod(list(sizes.values()))) != num_devices:
    raise ValueError(
        f"config.mesh={spec!r} gives {sizes}, {int(np.prod(list(sizes.values())))} devices, "
        f"but the mesh has {num_devices}; make the sizes multiply to {num_devices}.")
  return {axis: sizes[axis] for axis in MESH_AXES}


def make_mesh(num_devices: int = 0, devices: Sequence[jax.Device] | None = None,
              shape: str = "") -> Mesh:
  """The (data, fsdp) mesh.

  Args:
    num_devices: use the first `num_devices` devices (0 = all devices of all processes).
      Only meaningful in a single process; multi-process jobs must use every device.
    devices: explicit devices (overrides num_devices).
    shape: `config.mesh`, e.g. "data=2,fsdp=4" ("" = every device on "data"). fsdp is the
      inner axis: its devices are neighbours in `jax.devices()` order (one host when it fits).
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
  sizes = parse_mesh_shape(shape, len(devices))
  grid = np.asarray(devices).reshape(sizes[DATA_AXIS], sizes[FSDP_AXIS])
  return Mesh(grid, MESH_AXES)


def replicated(mesh: Mesh) -> NamedSharding:
  """Sharding of arrays copied whole onto every device (the train state)."""
  return NamedSharding(mesh, P())


def batch_sharding(mesh: Mesh) -> NamedSharding:
  """Sharding of arrays split along their leading (batch) axis over every device."""
  return NamedSharding(mesh, P(tuple(a for a in MESH_AXES if a in mesh.axis_names)))


def fsdp_spec(shape: Sequence[int], fsdp_size: int, min_size: int = FSDP_MIN_SIZE) -> P:
  """The PartitionSpec of one state array of `shape` under fsdp (see the module docstring).

  The largest dimension divisible by `fsdp_size` is split along "fsdp" (the first of equal
  ones); arrays with fewer than `min_size` elements, or with no such dimension, are
  replicated.
  """
  if fsdp_size <= 1 or int(np.prod(shape, dtype=np.int64)) < min_size:
    return P()
  candidates = [(size, -i) for i, size in enumerate(shape) if size % fsdp_size == 0]
  if not candidates:
    return P()
  _, neg_dim = max(candidates)
  spec = [None] * len(shape)
  spec[-neg_dim] = FSDP_AXIS
  return P(*spec)


def state_shardings(abstract_state: Any, mesh: Mesh, min_size: int = FSDP_MIN_SIZE) -> Any:
  """A pytree of NamedShardings for a train state (of arrays or ShapeDtypeStructs).

  Every leaf (parameters, optimiser moments, EMA, model state alike) follows `fsdp_spec`;
  with fsdp = 1 the whole state is replicated.
  """
  fsdp_size = dict(zip(mesh.axis_names, mesh.devices.shape)).get(FSDP_AXIS, 1)
  return jax.tree.map(
      lambda x: NamedSharding(mesh, fsdp_spec(x.shape, fsdp_size, min_size)), abstract_state)


def bytes_per_device(tree: Any) -> dict[Any, int]:
  """{device: bytes of `tree`'s arrays stored on it} (shards, not the global arrays)."""
  out: dict[Any, int] = {}
  for leaf in jax.tree.leaves(tree):
    for shard in leaf.addressable_shards:
      out[shard.device] = out.get(shard.device, 0) + shard.data.nbytes
  return out


def process_batch_size(global_batch_size: int, mesh: Mesh, grad_accum_steps: int = 1) -> int:
  """The rows of a global batch that this process loads (its devices' share).

  With gradient accumulation every micro-batch (global / grad_accum_steps rows) must also
  split evenly over the devices.
  """
  num_devices = mesh.devices.size
  k = int(grad_accum_steps)
  if global_batch_size % (num_devices * k):
    what = (f"the {num_devices} devices of the mesh" if k == 1 else
            f"{k} micro-batches (config.grad_accum_steps) times the {num_devices} devices")
    raise ValueError(
        f"The global batch size {global_batch_size} is not divisible by {what}; choose a "
        f"multiple of {num_devices * k}.")
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
