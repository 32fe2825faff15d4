"""Training at scale: gradient accumulation, fsdp sharding, bf16 precision (issue 17).

* accumulated == large batch: k micro-batches through the trainer's step give the update
  of the whole batch (SGD, so a wrong scale of the gradient would show);
* fsdp == replicated: a step on a (data=2, fsdp=4) mesh equals the step on (data=8), the
  state is sharded and its per-device bytes drop ~4x; checkpoints written under one mesh
  restore under another;
* bf16 tracks fp32: the digits DDPM trained in bf16 follows the fp32 run's loss, with
  parameters, optimiser state and EMA in float32.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from gen_jax import data as data_lib
from gen_jax.core import sharding as sharding_lib
from gen_jax.core.state import TrainState
from gen_jax.methods.base import Method, build_method, single_network_step
from gen_jax.train import loop
from gen_jax.train import step as step_lib
from gen_jax.train.checkpoint import Checkpointer
from tests.train.helpers import assert_trees_close, host_tree, quiet_digits_config


class _MLP(nn.Module):
  width: int = 128

  @nn.compact
  def __call__(self, x):
    h = nn.tanh(nn.Dense(self.width)(x.reshape(x.shape[0], -1)))
    h = nn.tanh(nn.Dense(self.width)(h))
    return nn.Dense(1)(h)[:, 0]


@dataclasses.dataclass(frozen=True)
class _Regression(Method):
  """A deterministic one-network family: MSE of an MLP on the batch's labels."""

  optimizer: optax.GradientTransformation
  net: nn.Module = _MLP()

  def init(self, rng, batch):
    params = self.net.init(rng, batch["image"][:1])["params"]
    return TrainState.create(params, self.optimizer.init(params))

  def update(self, state, batch, rng):
    del rng

    def loss_fn(params):
      pred = self.net.apply({"params": params}, batch["image"])
      return jnp.mean((pred - batch["label"].astype(jnp.float32)) ** 2), {}

    return single_network_step(state, loss_fn, self.optimizer)

  def sample(self, state, rng, num_samples):
    raise NotImplementedError


def _batch(n=32, dim=64):
  x = jax.random.normal(jax.random.key(0), (n, dim))
  y = jax.random.randint(jax.random.key(1), (n,), 0, 5)
  return {"image": x, "label": y}


def _run(method, mesh, steps, grad_accum_steps=1, shardings=True):
  """`steps` trainer steps of `method` on the fixed batch; returns (state, last metrics)."""
  batch = _batch()
  state = method.init(jax.random.key(2), batch)
  st = sharding_lib.state_shardings(state, mesh) if shardings else None
  state = jax.device_put(state, st or sharding_lib.replicated(mesh))
  names = step_lib.metric_names(method, state, batch, jax.random.key(3))
  collection = step_lib.metrics_collection(names)
  train_step = step_lib.make_train_step(method, collection, mesh, 0.9, False,
                                        grad_accum_steps=grad_accum_steps, state_sharding=st)
  acc = step_lib.empty_like_collection(collection, mesh)
  batch = jax.device_put(batch, sharding_lib.batch_sharding(mesh))
  metrics = None
  for _ in range(steps):
    state, acc, metrics, _ = train_step(state, batch, jax.random.key(3), acc)
  return state, metrics


def test_accumulated_micro_batches_equal_the_large_batch_step():
  mesh = sharding_lib.make_mesh()
  sgd = _Regression(optimizer=optax.sgd(0.1))
  large, m_large = _run(sgd, mesh, steps=2)
  accum, m_accum = _run(sgd.with_grad_accumulation(4), mesh, steps=2, grad_accum_steps=4)
  assert_trees_close(accum.params, large.params, rtol=1e-5, atol=1e-6)
  assert_trees_close(accum.ema_params, large.ema_params, rtol=1e-5, atol=1e-6)
  # The loss logged is the mean over the micro-batches, i.e. the large batch's loss.
  np.testing.assert_allclose(m_accum["loss"], m_large["loss"], rtol=1e-5)
  np.testing.assert_allclose(m_accum["update_norm"], m_large["update_norm"], rtol=1e-4)
  # Adam with clipping (the optimiser state and the clip see the mean gradient) too.
  adam = _Regression(optimizer=optax.chain(optax.clip_by_global_norm(0.5), optax.adam(1e-2)))
  large, _ = _run(adam, mesh, steps=2)
  accum, _ = _run(adam.with_grad_accumulation(2), mesh, steps=2, grad_accum_steps=2)
  assert_trees_close(accum.params, large.params, rtol=1e-4, atol=1e-6)
  moved = _run(adam, mesh, steps=0)[0]
  assert max(np.abs(a - b).max() for a, b in zip(jax.tree.leaves(host_tree(large.params)),
                                                  jax.tree.leaves(host_tree(moved.params)))) > 1e-3


def test_grad_accumulation_refused_where_a_family_cannot():
  from gen_jax.methods.gan import GAN
  with pytest.raises(ValueError, match="not supported by GAN: one update takes n_dis"):
    Method.with_grad_accumulation(object.__new__(GAN), 2)
  with pytest.raises(ValueError, match="grad_accum_steps must be >= 1"):
    _Regression(optimizer=optax.sgd(0.1)).with_grad_accumulation(0)
  with pytest.raises(ValueError, match="not divisible by 4 micro-batches .* times the 8"):
    sharding_lib.process_batch_size(16, sharding_lib.make_mesh(), 4)


def test_mesh_shapes_and_errors():
  assert sharding_lib.parse_mesh_shape("", 8) == {"data": 8, "fsdp": 1}
  assert sharding_lib.parse_mesh_shape("fsdp=4", 8) == {"data": 2, "fsdp": 4}
  assert sharding_lib.parse_mesh_shape("data=2, fsdp=4", 8) == {"data": 2, "fsdp": 4}
  for bad in ("model=8", "data=3", "data=2,fsdp=2", "data"):
    with pytest.raises(ValueError, match="config.mesh"):
      sharding_lib.parse_mesh_shape(bad, 8)
  spec = lambda shape: sharding_lib.fsdp_spec(shape, 4, min_size=16)
  assert spec((3, 3, 32, 64)) == jax.sharding.PartitionSpec(None, None, None, "fsdp")
  assert spec((64, 6)) == jax.sharding.PartitionSpec("fsdp", None)
  assert spec((6, 6)) == jax.sharding.PartitionSpec()  # nothing divisible
  assert spec((8,)) == jax.sharding.PartitionSpec()  # small


def test_fsdp_step_equals_replicated_and_shards_the_state(tmp_path):
  # SGD with momentum (its trace is sharded like the parameters); Adam's normalisation
  # would amplify the reassociation differences of near-zero gradients.
  method = _Regression(optimizer=optax.sgd(0.1, momentum=0.9))
  replicated, m_rep = _run(method, sharding_lib.make_mesh(), steps=2)
  fsdp_mesh = sharding_lib.make_mesh(shape="data=2,fsdp=4")
  fsdp, m_fsdp = _run(method, fsdp_mesh, steps=2)
  assert_trees_close(fsdp, replicated, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(m_fsdp["loss"], m_rep["loss"], rtol=1e-6)
  kernel = fsdp.params["Dense_1"]["kernel"]
  assert kernel.sharding.spec == jax.sharding.PartitionSpec("fsdp", None)
  for tree in (fsdp.params, fsdp.opt_state, fsdp.ema_params):
    assert jax.tree.leaves(tree)[0].sharding.mesh.shape == {"data": 2, "fsdp": 4}
  full = max(sharding_lib.bytes_per_device(replicated.params).values())
  per_device = max(sharding_lib.bytes_per_device(fsdp.params).values())
  assert full / per_device > 3.5, (full, per_device)

  # A checkpoint written under fsdp restores under other meshes, values unchanged.
  ckpt = Checkpointer(tmp_path / "ckpt", asynchronous=False)
  ckpt.save(2, fsdp)
  ckpt.wait()
  for shape in ("", "data=4,fsdp=2"):
    mesh = sharding_lib.make_mesh(shape=shape)
    target = jax.tree.map(
        lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), fsdp,
        sharding_lib.state_shardings(fsdp, mesh))
    restored = ckpt.restore(2, target)
    assert_trees_close(restored, fsdp, rtol=0, atol=0)
    leaf = restored.params["Dense_1"]["kernel"]
    assert leaf.sharding.mesh.shape == dict(mesh.shape)
  ckpt.close()


def _sgd_digits(num_train_steps, **fields):
  c = quiet_digits_config(num_train_steps, checkpoint_every_steps=2)
  c.batch_size = 16
  c.grad_accum_steps = 2
  c.optim.name = "sgd"
  c.optim.learning_rate = 0.05
  c.optim.warmup_steps = 0
  for k, v in fields.items():
    c[k] = v
  return c


@pytest.mark.slow  # three trainer runs of the digits UNet (~35 min on the loaded 2 cores)
def test_trainer_with_fsdp_and_accumulation_resumes_on_another_mesh(tmp_path):
  """2 steps on (data=2, fsdp=4), resumed on (data=8) to 3 steps, equal the uninterrupted
  replicated run (both with 2 micro-batches per step: DDPM draws each micro-batch's noise
  from its own key, so only equal settings give equal numbers)."""
  ref = loop.train_and_evaluate(_sgd_digits(3), tmp_path / "ref")
  loop.train_and_evaluate(_sgd_digits(2, mesh="data=2,fsdp=4", grad_accum_steps=2),
                          tmp_path / "run")
  resumed = loop.train_and_evaluate(_sgd_digits(3, mesh="data=8"), tmp_path / "run")
  assert int(resumed.step) == 3
  assert_trees_close(resumed.params, ref.params, rtol=1e-4, atol=1e-6)
  assert_trees_close(resumed.ema_params, ref.ema_params, rtol=1e-4, atol=1e-6)


def _digits_method(precision):
  c = quiet_digits_config()
  c.precision = precision
  c.model.dropout = 0.0
  _, info = data_lib.build_source(c.data, "train")
  return build_method(c, info), c


def test_bf16_training_tracks_fp32_and_keeps_fp32_state():
  """20 Adam steps of the digits DDPM on the same batches and keys: the bf16 run's loss
  stays within 5% (mean relative difference over the steps) of the fp32 run's."""
  x = jax.random.uniform(jax.random.key(0), (16, 8, 8, 1), minval=-1, maxval=1)
  batch = {"image": x, "label": jnp.zeros((16,), jnp.int32)}
  losses = {}
  for precision in ("fp32", "bf16"):
    method, _ = _digits_method(precision)
    state = jax.jit(method.init)(jax.random.key(1), batch)
    update = jax.jit(method.update)
    losses[precision] = []
    for i in range(20):
      state, metrics = update(state, batch, jax.random.key(i))
      losses[precision].append(float(metrics["loss"]))
    for tree in (state.params, state.opt_state, state.ema_params):
      floats = {leaf.dtype for leaf in jax.tree.leaves(tree)
                if jnp.issubdtype(leaf.dtype, jnp.floating)}
      assert floats == {jnp.dtype(jnp.float32)}, floats
  fp32, bf16 = np.asarray(losses["fp32"]), np.asarray(losses["bf16"])
  assert fp32[-5:].mean() < 0.8 * fp32[:5].mean()  # it trains
  rel = np.abs(bf16 - fp32) / fp32
  assert rel.mean() < 0.05, rel
  with pytest.raises(ValueError, match="Unknown config.precision 'fp8'"):
    _digits_method("fp8")
