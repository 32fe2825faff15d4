"""EMA and optimiser construction against their closed forms."""

import jax.numpy as jnp
import numpy as np
import pytest

from gen_jax.core import optim
from gen_jax.core.state import TrainState, ema_decay, update_ema


def test_ema_decay_warmup_closed_form():
  for step in [0, 1, 10, 100, 10_000]:
    expected = min(0.999, (1 + step) / (10 + step))
    assert float(ema_decay(jnp.asarray(step), 0.999, True)) == pytest.approx(expected, rel=1e-6)
    assert float(ema_decay(jnp.asarray(step), 0.999, False)) == pytest.approx(0.999)


def test_update_ema_is_the_exponential_average():
  params = {"w": jnp.array([1.0, 2.0])}
  state = TrainState.create(params, opt_state=())
  state = state.replace(params={"w": jnp.array([3.0, 6.0])}, step=jnp.asarray(1000))
  out = update_ema(state, 0.9, warmup=False)
  np.testing.assert_allclose(out.ema_params["w"], 0.9 * np.array([1.0, 2.0]) + 0.1 * np.array([3.0, 6.0]), rtol=1e-6)
  # decay 0 disables the average: the EMA is the parameters.
  np.testing.assert_allclose(update_ema(state, 0.0, warmup=False).ema_params["w"], [3.0, 6.0])


def test_learning_rate_warmup_then_schedule():
  cfg = dict(name="adam", learning_rate=1.0, warmup_steps=10, schedule="cosine")
  lr = optim.learning_rate_schedule(cfg, num_train_steps=110)
  assert float(lr(0)) == 0.0
  assert float(lr(5)) == pytest.approx(0.5)
  assert float(lr(10)) == pytest.approx(1.0)
  assert float(lr(60)) == pytest.approx(0.5, abs=1e-6)  # half-way through the cosine
  assert float(lr(110)) == pytest.approx(0.0, abs=1e-6)


def test_sgd_step_and_gradient_clipping():
  params = {"w": jnp.array([0.0, 0.0])}
  grads = {"w": jnp.array([3.0, 4.0])}  # norm 5
  tx = optim.build_optimizer(dict(name="sgd", learning_rate=0.1, grad_clip_norm=1.0), 100)
  new, _, norms = optim.apply_gradients(tx, grads, tx.init(params), params)
  np.testing.assert_allclose(new["w"], [-0.06, -0.08], rtol=1e-6)  # clipped to norm 1
  assert float(norms["grad_norm"]) == pytest.approx(5.0)
  assert float(norms["update_norm"]) == pytest.approx(0.1)
  tx = optim.build_optimizer(dict(name="sgd", learning_rate=0.1, grad_clip_norm=0.0), 100)
  new, _, _ = optim.apply_gradients(tx, grads, tx.init(params), params)
  np.testing.assert_allclose(new["w"], [-0.3, -0.4], rtol=1e-6)


def test_bad_optimizer_settings_are_clear_errors():
  with pytest.raises(KeyError, match="Unknown optimizer 'adan'; choose one of"):
    optim.build_optimizer(dict(name="adan", learning_rate=1e-3), 10)
  with pytest.raises(ValueError, match="learning_rate must be positive"):
    optim.build_optimizer(dict(name="adam", learning_rate=0.0), 10)
  with pytest.raises(KeyError, match="learning-rate schedule"):
    optim.build_optimizer(dict(name="adam", learning_rate=1e-3, schedule="cosne"), 10)


def test_every_registered_optimizer_builds_and_steps():
  params = {"w": jnp.ones(3)}
  for name in optim.OPTIMIZERS:
    tx = optim.build_optimizer(dict(name=name, learning_rate=1e-2), 10)
    new, _, _ = optim.apply_gradients(tx, {"w": jnp.ones(3)}, tx.init(params), params)
    assert np.all(np.asarray(new["w"]) < 1.0), name
