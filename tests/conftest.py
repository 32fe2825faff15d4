"""Test-wide JAX settings: 8 fake CPU devices, strict rank promotion, a compilation cache.

The device count must be fixed before jax is imported anywhere, so it is set here, at the
top of the first module pytest loads.
"""

import os
import pathlib

os.environ.setdefault("XLA_FLAGS", "")
if "xla_force_host_platform_device_count" not in os.environ["XLA_FLAGS"]:
  os.environ["XLA_FLAGS"] += " --xla_force_host_platform_device_count=8"
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")  # keep TensorFlow away from any GPU
# The suite is compile-bound: tiny models, compiled once each on a cold cache (CI). XLA's
# backend optimisations cost more than they save there (a cold DDPM CIFAR-10 smoke run:
# 85 s of CPU instead of 126 s). Subprocesses (the command-line tests) inherit it.
# Set GEN_JAX_TEST_XLA_OPTIMIZE=1 to test the optimised programs instead.
if os.environ.get("GEN_JAX_TEST_XLA_OPTIMIZE", "0") != "1":
  os.environ.setdefault("JAX_DISABLE_MOST_OPTIMIZATIONS", "1")

_CACHE = pathlib.Path(__file__).resolve().parent.parent / ".jax_cache"
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(_CACHE))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_numpy_rank_promotion", "raise")

SHARED_DATA = pathlib.Path(__file__).resolve().parent.parent.parent / "shared" / "data"


def pytest_configure(config):
  config.addinivalue_line("markers", "slow: long-running test, skipped unless --runslow")


def pytest_addoption(parser):
  parser.addoption("--runslow", action="store_true", default=False, help="run tests marked slow")


def pytest_collection_modifyitems(config, items):
  if config.getoption("--runslow"):
    return
  skip_slow = pytest.mark.skip(reason="slow; run with --runslow")
  for item in items:
    if "slow" in item.keywords:
      item.add_marker(skip_slow)


@pytest.fixture
def shared_data():
  """Path to ../shared/data (real MNIST/CIFAR-10 files); skips the test when it is absent."""
  if not SHARED_DATA.is_dir():
    pytest.skip(f"real data folder {SHARED_DATA} is absent (it sits beside the checkout)")
  return SHARED_DATA
