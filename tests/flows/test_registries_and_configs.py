"""The flow registries' contents and the papers' settings in the CIFAR-10 configs."""

from gen_jax.flows import FLOWS, conditioner_names
from gen_jax.methods import METHODS
from tests.train.helpers import load_config


def test_registries():
  assert "flow" in METHODS
  assert FLOWS.names() == ["glow", "maf", "nice", "realnvp"]
  assert conditioner_names() == ["conv", "mlp", "resnet"]


def test_glow_cifar10_config_matches_the_paper():
  c = load_config("flows/glow_cifar10.py", None)
  m = c.model
  assert (m.name, m.num_levels, m.depth, m.width) == ("glow", 3, 32, 512)
  assert (m.coupling, m.permutation, m.learn_top) == ("affine", "lu", True)
  assert (c.optim.name, c.optim.learning_rate) == ("adamax", 1e-3) and c.optim.warmup_steps > 0
  assert c.data.dequantize and c.method.num_bits == 8 and c.data.name == "cifar10"


def test_every_image_flow_config_dequantizes():
  for name in ("glow_cifar10", "glow_mnist", "glow_fashion_mnist", "glow_digits",
               "realnvp_cifar10", "realnvp_mnist", "realnvp_fashion_mnist", "nice_mnist"):
    assert load_config(f"flows/{name}.py", None).data.dequantize, name
  assert not load_config("flows/maf_two_moons.py", None).data.dequantize
