"""The registry refuses duplicates, names valid choices on a typo, and holds what we ship."""

import pytest

from gen_jax.core.registry import Registry


def test_register_and_get():
  reg = Registry("thing")

  @reg.register("a")
  def a():
    return 1

  assert reg.get("a") is a
  assert "a" in reg and "b" not in reg
  assert reg.names() == ["a"] and len(reg) == 1


def test_duplicate_name_is_refused():
  reg = Registry("thing")
  reg.add("a", 1)
  with pytest.raises(ValueError, match="already registered"):
    reg.add("a", 2)
  assert reg.get("a") == 1


def test_unknown_name_lists_choices():
  reg = Registry("loss")
  reg.add("mse", 1)
  reg.add("l1", 2)
  with pytest.raises(KeyError, match="Unknown loss 'mes'; choose one of: l1, mse"):
    reg.get("mes")


def test_shipped_registries_contents():
  from gen_jax.diffusion.gaussian import PREDICTIONS
  from gen_jax.diffusion.losses import LOSSES, WEIGHTINGS
  from gen_jax.diffusion.schedules import BETA_SCHEDULES
  from gen_jax.methods import METHODS
  from gen_jax.nets import NETS
  from gen_jax.samplers import SAMPLERS
  from gen_jax.core.optim import OPTIMIZERS

  assert {"diffusion", "ddpm", "score_sde"} <= set(METHODS)
  assert {"unet"} <= set(NETS)
  assert {"ancestral", "ddim"} <= set(SAMPLERS)
  assert {"eps", "x0", "v", "score"} <= set(PREDICTIONS)
  assert {"linear", "cosine", "ddgan_vp"} <= set(BETA_SCHEDULES)  # presets of the VP process
  assert {"mse", "l1", "dsm", "dsm_likelihood", "smld", "ddpm", "vlb"} <= set(LOSSES)
  assert {"simple", "sigma2", "snr", "likelihood"} <= set(WEIGHTINGS)
  assert {"adam", "adamw", "adamax", "sgd"} <= set(OPTIMIZERS)
