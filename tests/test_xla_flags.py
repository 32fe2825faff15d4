"""gen_jax.xla_flags: the default XLA_FLAGS, its guards, and its effect on compiled HLO."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import pytest
from jax import lax

from gen_jax import xla_flags

FLAG = xla_flags.CPU_CONV_FLAG
_FORCE = "--xla_force_host_platform_device_count=8"


def _defaults(env, supported=True, cpu=True):
  return xla_flags.defaults_for(env, flag_supported=lambda: supported, cpu_default=lambda: cpu)


def test_flag_added_on_a_supported_cpu_jaxlib():
  assert _defaults({}) == FLAG
  assert _defaults({"XLA_FLAGS": _FORCE}) == f"{_FORCE} {FLAG}"  # the user's flags are kept


@pytest.mark.parametrize("env,supported,cpu", [
    ({}, False, True),  # a jaxlib that would abort on the flag
    ({}, True, False),  # a GPU/TPU default backend
    ({"GEN_JAX_XLA_CPU_DEFAULTS": "0"}, True, True),  # opted out
    ({"GEN_JAX_XLA_CPU_DEFAULTS": "false"}, True, True),
    ({"XLA_FLAGS": "--xla_cpu_experimental_ynn_fusion_type=default"}, True, True),  # user's
])
def test_environment_left_alone(env, supported, cpu):
  assert _defaults(env, supported, cpu) is None


def test_support_is_never_probed_when_not_needed():
  def fail():
    raise AssertionError("probed")
  assert xla_flags.defaults_for({"GEN_JAX_XLA_CPU_DEFAULTS": "0"}, flag_supported=fail,
                                cpu_default=fail) is None
  assert xla_flags.defaults_for({"JAX_PLATFORMS": "cuda"}, flag_supported=fail,
                                cpu_default=lambda: False) is None


def test_cpu_is_default_backend_from_jax_platforms():
  assert xla_flags.cpu_is_default_backend({"JAX_PLATFORMS": "cpu"})
  assert not xla_flags.cpu_is_default_backend({"JAX_PLATFORMS": "cuda,cpu"})


def test_support_known_version_or_probed_once_and_cached(tmp_path, monkeypatch):
  calls = []

  def probe(flag):
    calls.append(flag)
    return False

  cache = tmp_path / "cache.json"
  version = importlib.metadata.version("jaxlib")
  monkeypatch.setattr(xla_flags, "KNOWN_JAXLIB", frozenset({version}))
  assert xla_flags.flag_supported(cache=cache, probe=probe) and not calls
  monkeypatch.setattr(xla_flags, "KNOWN_JAXLIB", frozenset())
  assert not xla_flags.flag_supported(cache=cache, probe=probe)
  assert not xla_flags.flag_supported(cache=cache, probe=probe)
  assert calls == [FLAG]  # the second answer came from the cache
  assert f"jaxlib=={version}" in cache.read_text()


def _conv_hlo() -> str:
  x, k = jnp.ones((8, 16, 16, 32)), jnp.ones((3, 3, 32, 32))  # small ones skip YNNPACK
  conv = lambda x, k: lax.conv_general_dilated(x, k, (1, 1), "SAME",
                                               dimension_numbers=("NHWC", "HWIO", "NHWC"))
  return jax.jit(conv).lower(x, k).compile().as_text()


@pytest.mark.skipif(importlib.metadata.version("jaxlib") not in xla_flags.KNOWN_JAXLIB,
                    reason="YNNPACK fusions are checked on the jaxlib known to have the flag")
def test_flag_takes_convolutions_out_of_ynn_fusions():
  """This process runs without the flag; a fresh one applies the defaults (as main does)."""
  in_ynn, outside = xla_flags.ynn_convolution_counts(_conv_hlo())
  assert (in_ynn, outside) == (1, 0)
  script = textwrap.dedent("""
      from gen_jax import xla_flags
      assert xla_flags.apply_defaults() is not None
      from tests.test_xla_flags import _conv_hlo
      print(xla_flags.ynn_convolution_counts(_conv_hlo()))
  """)
  env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", xla_flags.OPT_OUT_ENV)}
  env.update(JAX_PLATFORMS="cpu", PYTHONPATH=os.pathsep.join(sys.path))
  out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                       text=True, timeout=600, check=True)
  assert out.stdout.strip().splitlines()[-1] == "(0, 1)"
