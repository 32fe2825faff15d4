"""ADA (gen_jax/gan/ada.py): the augmentations and the adaptive probability p.

* every elementary augmentation, alone at p = 1, is differentiable: the augmentation is
  linear in the image, its JVP equals the finite difference, its VJP is the JVP's adjoint;
* p = 0 is exactly the identity for the whole "bgc" pipeline;
* the blits do what they say (each image is itself, mirrored, or rotated by k * 90 deg);
* p moves towards the target under a discriminator that overfits: a synthetic D that
  memorised the training images (+1 on an exact training image, -1 otherwise) sees
  x-flipped copies with probability p / 2, so r_t = 1 - p and ADA must settle at
  p = 1 - target = 0.4, driven by the real augment / accumulate / adjust code.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gen_jax.gan import ada


def _images(n=6, h=8, w=8, c=3, seed=0):
  return jax.random.normal(jax.random.key(seed), (n, h, w, c))


@pytest.mark.parametrize("name", ada.ALL)
def test_each_augmentation_is_differentiable(name):
  pipe = ada.AugmentPipe.named(name)
  x, v, u = _images(seed=0), _images(seed=1), _images(seed=2)
  f = lambda img: ada.augment(jax.random.key(3), img, 1.0, pipe)
  fx, jv = jax.jvp(f, (x,), (v,))
  fd = (f(x + 1e-2 * v) - f(x - 1e-2 * v)) / 2e-2
  np.testing.assert_allclose(np.asarray(jv), np.asarray(fd), rtol=1e-3, atol=1e-3)
  (jtu,) = jax.vjp(f, x)[1](u)
  np.testing.assert_allclose(float(jnp.vdot(u, jv)), float(jnp.vdot(jtu, v)), rtol=1e-4)
  assert np.all(np.isfinite(np.asarray(jtu)))
  assert float(jnp.max(jnp.abs(fx - x))) > 1e-3 or name == "lumaflip"  # it did something


def test_p_zero_is_the_identity():
  x = _images(c=3)
  for pipe in ("bgc", "bg"):
    out = ada.augment(jax.random.key(0), x, 0.0, ada.AugmentPipe.named(pipe))
    np.testing.assert_array_equal(np.asarray(out), np.asarray(x))
  grey = _images(c=1)
  out = ada.augment(jax.random.key(0), grey, 0.0, ada.AugmentPipe.named("bgc"))
  np.testing.assert_array_equal(np.asarray(out), np.asarray(grey))


def test_blits_are_mirrors_and_quarter_turns():
  x = _images(n=64, h=6, w=6)
  flipped = ada.augment(jax.random.key(1), x, 1.0, ada.AugmentPipe.named("xflip"))
  kinds = [0 if np.allclose(a, b, atol=1e-5) else 1 if np.allclose(a, b[:, ::-1], atol=1e-5)
           else -1 for a, b in zip(np.asarray(flipped), np.asarray(x))]
  assert -1 not in kinds and 16 < sum(kinds) < 48  # about half mirrored
  turned = np.asarray(ada.augment(jax.random.key(2), x, 1.0, ada.AugmentPipe.named("rotate90")))
  found = set()
  for a, b in zip(turned, np.asarray(x)):
    k = [k for k in range(4) if np.allclose(a, np.rot90(b, k, axes=(0, 1)), atol=1e-5)]
    assert len(k) == 1
    found.add(k[0])
  assert found == {0, 1, 2, 3}


def test_adjust_moves_p_by_the_official_rule():
  aug = ada.AdaptiveAugment(pipe=ada.AugmentPipe.named("bgc"), target=0.6, interval=4,
                            kimg=0.5)
  s = aug.init_state()
  s = aug.accumulate(s, jnp.ones((8,)))  # r_t = 1 > 0.6
  s = aug.adjust(s, jnp.asarray(0), 8)  # step 0 adjusts (batch_idx % interval == 0)
  np.testing.assert_allclose(float(s["p"]), 8 * 4 / 500)
  assert float(s["signs_count"]) == 0
  s1 = aug.adjust(aug.accumulate(s, -jnp.ones((8,))), jnp.asarray(1), 8)
  assert float(s1["p"]) == float(s["p"]) and float(s1["signs_count"]) == 8  # accumulating
  s4 = aug.adjust(s1, jnp.asarray(4), 8)  # r_t = -1 < 0.6: down, floored at 0
  assert float(s4["p"]) == 0.0
  fixed = ada.AdaptiveAugment(pipe=aug.pipe, initial_p=0.3, target=None)
  assert float(fixed.adjust(fixed.accumulate(fixed.init_state(), jnp.ones(4)), 0, 4)["p"]) \
      == pytest.approx(0.3)


def test_p_settles_where_an_overfitting_discriminator_meets_the_target():
  aug = ada.AdaptiveAugment(pipe=ada.AugmentPipe.named("xflip"), target=0.6, interval=4,
                            kimg=16 * 4 / 0.01 / 1000)  # p moves 0.01 per adjustment
  train = _images(n=16, h=6, w=6)  # not mirror-symmetric

  def memorising_d(x):
    """+1 where x is exactly its training image, -1 otherwise (a memorising D)."""
    err = jnp.max(jnp.abs(x - train), axis=(1, 2, 3))
    return jnp.where(err < 1e-5, 1.0, -1.0)

  def body(state, step):
    x = aug(jax.random.fold_in(jax.random.key(0), step), train, state)
    state = aug.adjust(aug.accumulate(state, memorising_d(x)), step, train.shape[0])
    return state, state["p"]

  _, ps = jax.jit(lambda s: jax.lax.scan(body, s, jnp.arange(600)))(aug.init_state())
  ps = np.asarray(ps)[::4]  # after each adjustment
  assert np.all(np.diff(ps[:20]) > 0)  # r_t = 1 - p > 0.6: p climbs from 0 ...
  assert abs(ps[-60:].mean() - 0.4) < 0.05, ps[-60:].mean()  # ... and settles at 1 - target
