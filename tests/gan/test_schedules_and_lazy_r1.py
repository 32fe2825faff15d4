"""Fidelity of the GAN optimisers and of lazy R1 to the papers' code (issue 10, bugs 1 and 3).

* Learning-rate schedules count GENERATOR steps for both networks: with the paper configs'
  real values (SNGAN: n_dis = 5, 50k generator steps, linear decay; WGAN-GP: 100k), the
  learning rate the discriminator's optimiser applies at each of the n_dis steps of
  generator step k equals the schedule at k, and so does the logged d_lr. Before the fix,
  D's schedule counted its own steps: its learning rate reached 0 at 20% of training.
* Lazy R1: "stylegan2" weights the penalty k * gamma / 2 on every k-th step, "none" (DDGAN's
  code) gamma / 2; each config defaults to its paper's convention.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from gen_jax.data import DatasetInfo
from gen_jax.gan import regularizers
from gen_jax.methods.base import build_method
from tests.train.helpers import load_config

CIFAR = DatasetInfo((32, 32, 3), 10, 50_000)


def _applied_learning_rates(tx, counts, b1: float, b2: float) -> np.ndarray:
  """The learning rates `tx` (an Adam with a schedule) applies at its update numbers `counts`.

  Both `tx` and a constant-rate Adam (lr 1) get the same state with its update count set;
  the ratio of their updates is the learning rate.
  """
  params = {"w": jnp.ones((3,))}
  grads = {"w": jnp.array([0.5, -1.0, 2.0])}
  ref = optax.adam(1.0, b1=b1, b2=b2, eps=1e-8)

  def rate(count):
    at = lambda t: optax.tree_utils.tree_set(t.init(params), count=count)
    u, _ = tx.update(grads, at(tx), params)
    r, _ = ref.update(grads, at(ref), params)
    return u["w"] / r["w"]

  ratios = np.asarray(jax.jit(jax.vmap(rate))(jnp.asarray(counts, jnp.int32)))
  np.testing.assert_allclose(ratios, ratios[:, :1].repeat(3, 1), rtol=1e-5, atol=1e-12)
  return ratios[:, 0]


@pytest.mark.parametrize("config_name, num_steps, warmup", [("gan/sngan.py", 50_000, 0),
                                                            ("gan/wgan_gp.py", 100_000, 1000)])
def test_both_schedules_count_generator_steps_at_paper_settings(config_name, num_steps, warmup):
  c = load_config(config_name, None)  # the paper config, not the smoke variant
  c.optim.warmup_steps = warmup
  method = build_method(c, CIFAR)
  assert method.n_dis == 5 and c.num_train_steps == num_steps
  assert c.optim.schedule == "linear" and c.optim_d.learning_rate == 2e-4

  def expected(k):  # linear warm-up to 2e-4 over `warmup` steps, then linear decay to 0
    if k < warmup:
      return 2e-4 * k / warmup
    return 2e-4 * (1.0 - (k - warmup) / (num_steps - warmup))

  ks = np.array([0, 1, 500, 999, 1000, num_steps // 5, num_steps // 5 + 1, num_steps // 2,
                 num_steps - 1])
  want = np.array([expected(k) for k in ks])
  close = lambda got, msg="": np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-9,
                                                         err_msg=msg)
  close(_applied_learning_rates(method.optimizer_g, ks, 0.0, 0.9))
  for j in range(method.n_dis):  # the n_dis discriminator updates of generator step k
    close(_applied_learning_rates(method.optimizer_d, ks * method.n_dis + j, 0.0, 0.9),
          f"discriminator step {j} of each generator step")
  # The schedules the update logs (g_lr, d_lr) are the ones applied.
  close(np.array([float(method.lr_d(k)) for k in ks]))
  close(np.array([float(method.lr_g(k)) for k in ks]))


def test_update_logs_the_learning_rates_of_its_generator_step():
  """A real toy GAN update with n_dis = 5 and a warm-up + linear schedule logs lr(k)."""
  c = load_config("gan/toy_eight_gaussians.py", "smoke")
  c.method.n_dis = 5
  c.batch_size = 5 * 4
  c.num_train_steps = 1000
  c.optim.schedule = "linear"
  c.optim.warmup_steps = 100
  c.optim_g.learning_rate = 1e-3
  c.optim_d.learning_rate = 4e-3
  method = build_method(c, DatasetInfo((2,), 8, 20_000))
  batch = {"image": jnp.ones((20, 2)), "label": jnp.zeros((20,), jnp.int32)}
  state = method.init(jax.random.key(0), batch)
  update = jax.jit(method.update)
  for k, fraction in [(50, 0.5), (100, 1.0), (550, 0.5)]:  # 0.5: half-way up or down
    _, metrics = update(state.replace(step=jnp.asarray(k, state.step.dtype)), batch,
                        jax.random.key(1))
    np.testing.assert_allclose(float(metrics["g_lr"]), 1e-3 * fraction, rtol=1e-5)
    np.testing.assert_allclose(float(metrics["d_lr"]), 4e-3 * fraction, rtol=1e-5)


# ------------------------------------------------------------------------------ lazy R1


@pytest.mark.parametrize("scaling, on_value", [("stylegan2", 15 * 0.01), ("none", 0.01)])
def test_lazy_r1_weights_of_both_conventions(scaling, on_value):
  weights = [float(regularizers.lazy_weight(jnp.asarray(s), 15, 0.01, scaling))
             for s in range(31)]
  expected = [on_value if s % 15 == 0 else 0.0 for s in range(31)]
  np.testing.assert_allclose(weights, expected, rtol=1e-6)
  # The penalty itself: weight * R1 on steps 0, 15, 30, and 0 (not computed) in between.
  penalty = jax.jit(lambda s: regularizers.lazy_penalty(s, 15, 0.01, lambda: jnp.asarray(3.0),
                                                        scaling))
  assert float(penalty(jnp.asarray(30))) == pytest.approx(3.0 * on_value, rel=1e-6)
  assert float(penalty(jnp.asarray(29))) == 0.0


def test_unknown_lazy_scaling_is_refused_by_name():
  with pytest.raises(ValueError, match="stylegan2"):
    regularizers.lazy_weight(jnp.asarray(0), 4, 1.0, "StyleGAN")
  c = load_config("gan/ddgan_toy_eight_gaussians.py", "smoke")
  c.method.r1_lazy_scaling = "k"
  with pytest.raises(ValueError, match="r1_lazy_scaling"):
    build_method(c, DatasetInfo((2,), 8, 20_000))


def test_ddgan_cifar10_applies_the_papers_r1_weight():
  """train_ddgan.py --r1_gamma 0.02 --lazy_reg 15: 0.02 / 2 * R1 on every 15th step."""
  c = load_config("gan/ddgan.py", None)
  method = build_method(c, CIFAR)
  assert (method.r1_gamma, method.r1_every, method.r1_lazy_scaling) == (0.02, 15, "none")
  weights = [float(regularizers.lazy_weight(jnp.asarray(s), method.r1_every,
                                            0.5 * method.r1_gamma, method.r1_lazy_scaling))
             for s in (0, 1, 14, 15)]
  np.testing.assert_allclose(weights, [0.01, 0.0, 0.0, 0.01], rtol=1e-6)
  # The GAN configs keep StyleGAN2's convention.
  assert load_config("gan/sngan.py", None).method.r1_lazy_scaling == "stylegan2"
