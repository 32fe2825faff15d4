"""What every mode (train, sample, eval) sets up the same way for one run directory.

`Experiment.create(config, workdir)` builds the mesh, the dataset description, the method,
the checkpointer, the purpose-split PRNG keys and the sampling request of the config (a
`SampleSpec`, checked against the family), without touching data or compiling anything,
so a notebook can build one and call `restore_or_init`, `method.sample`, ...
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import time
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
from absl import logging
from jax.sharding import Mesh

from gen_jax import data as data_lib
from gen_jax.core.sample import SampleSpec
from gen_jax.methods.base import Method, build_method
from gen_jax.core import sharding as sharding_lib
from gen_jax.train.checkpoint import Checkpointer, config_diff
from gen_jax.core.state import TrainState


def sample_spec_from_config(sample: ml_collections.ConfigDict) -> SampleSpec:
  """The sampling request of `config.sample`: its temperature, guidance_scale, truncation.

  An absent or None field requests nothing (the family's default), and so does
  guidance_scale 0, the unguided model that every family samples anyway.
  """
  get = lambda name: None if sample.get(name) is None else float(sample.get(name))
  return SampleSpec(temperature=get("temperature"), guidance_scale=get("guidance_scale") or None,
                    truncation=get("truncation"))


def _cache_key(num_samples: int, spec: SampleSpec):
  """A hashable key of (num_samples, spec without its labels), or None when a sampler
  option is not hashable (e.g. an array of init noise)."""
  key = (num_samples, spec.labels is not None, spec.temperature, spec.guidance_scale,
         spec.truncation, spec.sampler, tuple(sorted(dict(spec.sampler_options).items())))
  try:
    hash(key)
  except TypeError:
    return None
  return key


@dataclasses.dataclass
class Experiment:
  """One run: config, workdir, mesh, method and keys.

  Keys are split by purpose from `jax.random.key(config.seed)`: `init_key` for parameters,
  `loop_key` (folded with the step inside the train step), `sample_key` for sample grids
  and `eval_key` for evaluation. `sample_spec` is what config.sample asks of
  `method.sample` (grids, --mode=sample, sample metrics).
  """

  config: ml_collections.ConfigDict
  workdir: pathlib.Path
  mesh: Mesh
  method: Method
  info: Any
  train_source: Any
  checkpointer: Checkpointer
  init_key: jax.Array
  loop_key: jax.Array
  sample_key: jax.Array
  eval_key: jax.Array
  sample_spec: SampleSpec = SampleSpec()
  _sample_fns: dict = dataclasses.field(default_factory=dict, repr=False)
  _shardings: dict = dataclasses.field(default_factory=dict, repr=False)

  @classmethod
  def create(cls, config: ml_collections.ConfigDict, workdir: str | pathlib.Path) -> "Experiment":
    workdir = pathlib.Path(workdir)
    mesh = sharding_lib.make_mesh(config.trainer.num_devices, shape=config.get("mesh", ""))
    sharding_lib.process_batch_size(config.batch_size, mesh,  # validates divisibility
                                    config.get("grad_accum_steps", 1))
    train_source, info = data_lib.build_source(config.data, "train")
    method = build_method(config, info)
    root = jax.random.key(config.seed)
    exp = cls(config=config, workdir=workdir, mesh=mesh, method=method, info=info,
              train_source=train_source, checkpointer=None,
              init_key=jax.random.fold_in(root, 0), loop_key=jax.random.fold_in(root, 1),
              sample_key=jax.random.fold_in(root, 2), eval_key=jax.random.fold_in(root, 3),
              sample_spec=sample_spec_from_config(config.sample))
    exp.check_sample_spec(exp.sample_spec)  # before the checkpointer touches the workdir
    t = config.trainer
    exp.checkpointer = Checkpointer(workdir / "checkpoints", keep_last=t.keep_last_checkpoints,
                                    keep_every=t.keep_checkpoint_every_steps or None,
                                    asynchronous=t.async_checkpointing,
                                    config=json.loads(config.to_json_best_effort()))
    return exp

  def train_iterator(self):
    """The training data iterator (this process's rows of each global batch)."""
    iterator, _ = data_lib.build_train_iterator_from_config(
        self.config.data, global_batch_size=self.config.batch_size, seed=self.config.seed,
        source_and_info=(self.train_source, self.info))
    return iterator

  def abstract_batch(self, batch_size: int | None = None) -> dict[str, jax.ShapeDtypeStruct]:
    """Shapes, dtypes and shardings of a global training batch."""
    b = batch_size or self.config.batch_size
    s = sharding_lib.batch_sharding(self.mesh)
    images = {key: jax.ShapeDtypeStruct((b, *self.info.image_shape), jnp.float32, sharding=s)
              for key in getattr(self.info, "image_keys", ("image",))}
    return {**images, "label": jax.ShapeDtypeStruct((b,), jnp.int32, sharding=s)}

  def state_shardings(self) -> TrainState:
    """The train state's shardings on the mesh (replicated, or fsdp: `core/sharding.py`)."""
    if "state" not in self._shardings:
      shapes = jax.eval_shape(self.method.init, self.init_key, self.abstract_batch())
      self._shardings["state"] = sharding_lib.state_shardings(shapes, self.mesh)
    return self._shardings["state"]

  def abstract_state(self) -> TrainState:
    """The train state's shapes, dtypes and shardings on the mesh (nothing computed)."""
    shapes = jax.eval_shape(self.method.init, self.init_key, self.abstract_batch())
    return jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s),
                        shapes, self.state_shardings())

  def init_state(self, first_batch: dict[str, jax.Array]) -> TrainState:
    """A fresh state; data-dependent initialisation sees the first global batch."""
    init = jax.jit(self.method.init, out_shardings=self.state_shardings())
    return init(self.init_key, first_batch)

  def check_sample_spec(self, spec: SampleSpec) -> None:
    """Raises the family's UnsupportedSampleRequest for a request it cannot honour.

    Traces `method.sample` on abstract values (nothing restored, compiled or computed), so
    a refused request stops a run before any work; a spec that requests nothing is free.
    """
    if not spec.requested():
      return
    n = 1 if spec.labels is None else len(spec.labels)
    jax.eval_shape(lambda state, rng: self.method.sample(state, rng, n, spec),
                   self.abstract_state(), self.sample_key)

  def sample_fn(self, num_samples: int, spec: SampleSpec | None = None):
    """Jitted (state, rng, labels=None) -> SampleOutput of `num_samples` samples.

    `spec` (default: the config's `sample_spec`) goes to `method.sample` as static values,
    except its labels, int32 [num_samples], which are an argument (the spec's own labels
    when not given). Built once per size and request. The samples are sharded over the
    devices when their number divides evenly.
    """
    spec = self.sample_spec if spec is None else spec
    key = _cache_key(num_samples, spec)
    if key is None or key not in self._sample_fns:
      n_dev = self.mesh.devices.size
      rep = sharding_lib.replicated(self.mesh)
      st = self.state_shardings()
      out = (sharding_lib.batch_sharding(self.mesh) if num_samples % n_dev == 0 else rep)
      if spec.labels is None:
        jitted = jax.jit(lambda state, rng: self.method.sample(state, rng, num_samples, spec),
                         in_shardings=(st, rep), out_shardings=out)
        fn = lambda state, rng, labels=None: jitted(state, rng)
      else:
        jitted = jax.jit(
            lambda state, rng, labels: self.method.sample(
                state, rng, num_samples, dataclasses.replace(spec, labels=labels)),
            in_shardings=(st, rep, rep), out_shardings=out)
        fn = lambda state, rng, labels=None: jitted(
            state, rng, spec.labels if labels is None else labels)
      if key is None:
        return fn
      self._sample_fns[key] = fn
    return self._sample_fns[key]

  def prepare_sampling(self, state: TrainState, step: int) -> TrainState:
    """`method.prepare_sampling(state, key)` jitted (once), key = fold_in(sample_key, step)
    folded with a constant of its own; `state` itself when the method keeps the default."""
    if type(self.method).prepare_sampling is Method.prepare_sampling:
      return state
    if "prepare" not in self._sample_fns:
      rep, st = sharding_lib.replicated(self.mesh), self.state_shardings()
      self._sample_fns["prepare"] = jax.jit(self.method.prepare_sampling,
                                            in_shardings=(st, rep), out_shardings=st)
    key = jax.random.fold_in(jax.random.fold_in(self.sample_key, step), 0x5A4D)
    return self._sample_fns["prepare"](state, key)

  def restore(self, data_iterator: Any = None) -> tuple[TrainState, int] | None:
    """The newest readable checkpoint as (state, step), or None when there is none.

    Raises checkpoint.ConfigMismatchError when the checkpoints hold a state of another
    structure, and checkpoint.CheckpointError when all of them were moved aside as
    unreadable and config.trainer.allow_fresh_start is not set (see checkpoint.py).
    """
    return self.checkpointer.restore_latest(
        self.abstract_state(), data_iterator,
        allow_fresh_start=bool(self.config.trainer.get("allow_fresh_start", False)))

  def restore_or_fail(self) -> tuple[TrainState, int]:
    restored = self.restore()
    if restored is None:
      raise FileNotFoundError(
          f"No checkpoint in {self.checkpointer.directory}; train first with --mode=train "
          f"--workdir={self.workdir}.")
    return restored


def write_config(config: ml_collections.ConfigDict, workdir: pathlib.Path) -> None:
  """Writes the resolved config to workdir/config.json (process 0).

  When a run is resumed with a different config, the old file is kept as
  config.<unix time>.json and the differing fields are logged.
  """
  if jax.process_index() != 0:
    return
  workdir.mkdir(parents=True, exist_ok=True)
  path = workdir / "config.json"
  text = config.to_json_best_effort(indent=2, sort_keys=True)
  if path.exists():
    old_text = path.read_text()
    if old_text == text:
      return
    try:
      changed = [k for k, _, _ in config_diff(json.loads(old_text), json.loads(text))]
    except json.JSONDecodeError:
      changed = ["(unreadable old config)"]
    backup = workdir / f"config.{int(time.time())}.json"
    path.rename(backup)
    logging.warning("The config differs from the one this workdir was started with (fields: %s); "
                    "the old one is kept as %s.", ", ".join(changed), backup.name)
  path.write_text(text)
