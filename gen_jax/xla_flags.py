"""XLA flags that gen_jax turns on by default, set in XLA_FLAGS before JAX starts its backend.

Today one: on CPU, `--xla_cpu_experimental_ynn_fusion_type=-individual_convolution` gives
convolutions back to XLA's own (Eigen) kernels instead of YNNPACK, which made the DDPM
UNet train step 1.2-1.5x faster on jaxlib 0.10.2 (see experiments/bench/vs_pytorch_cpu.md).
YNNPACK keeps the dots and reductions it fuses.

The flag is experimental: an XLA build that does not know it aborts the process at start-up
("Unknown flag in XLA_FLAGS"). So it is added only

* when the jaxlib is one known to accept it (`KNOWN_JAXLIB`), or, for any other jaxlib,
  when a subprocess that starts JAX's CPU backend with it exits cleanly (asked once per
  jaxlib version, the answer cached in ~/.cache/gen_jax/xla_flags.json);
* when the default backend will be the CPU (JAX_PLATFORMS starts with cpu, or is unset and
  no GPU/TPU plugin of jax is installed);
* when the user's XLA_FLAGS does not set the same flag already (their value wins);
* unless GEN_JAX_XLA_CPU_DEFAULTS=0 (the opt-out).

`apply_defaults()` must run before the first JAX computation (XLA reads XLA_FLAGS once,
when the backend starts); `gen_jax.main` calls it first thing.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import pathlib
import re
import subprocess
import sys
from typing import Callable, Mapping

from absl import logging

CPU_CONV_FLAG = "--xla_cpu_experimental_ynn_fusion_type=-individual_convolution"
OPT_OUT_ENV = "GEN_JAX_XLA_CPU_DEFAULTS"
# jaxlib versions checked to accept CPU_CONV_FLAG (others are probed in a subprocess).
KNOWN_JAXLIB = frozenset({"0.10.2"})
_ACCELERATOR_PLUGINS = ("jax-cuda", "jax_cuda", "jax-rocm", "jax_rocm", "libtpu")
_CACHE = pathlib.Path(os.environ.get("XDG_CACHE_HOME", pathlib.Path.home() / ".cache"))
_CACHE = _CACHE / "gen_jax" / "xla_flags.json"


def _flag_name(flag: str) -> str:
  return flag.lstrip("-").split("=", 1)[0]


def cpu_is_default_backend(env: Mapping[str, str]) -> bool:
  """Whether JAX will pick the CPU as its default backend (decided without importing jax)."""
  platforms = env.get("JAX_PLATFORMS", "").strip()
  if platforms:
    return platforms.split(",")[0].strip().lower() == "cpu"
  names = {(d.metadata["Name"] or "").lower() for d in importlib.metadata.distributions()}
  return not any(n.startswith(_ACCELERATOR_PLUGINS) for n in names)


def defaults_for(env: Mapping[str, str], *, flag_supported: Callable[[], bool],
                 cpu_default: Callable[[], bool]) -> str | None:
  """The XLA_FLAGS value to set, or None to leave the environment as it is.

  Args:
    env: the environment (XLA_FLAGS, GEN_JAX_XLA_CPU_DEFAULTS, JAX_PLATFORMS).
    flag_supported: whether the installed XLA accepts CPU_CONV_FLAG (called only when
      the answer matters, since it may start a subprocess).
    cpu_default: whether the default backend is the CPU.
  """
  if env.get(OPT_OUT_ENV, "1").strip().lower() in ("0", "false", "no", "off"):
    return None
  user = env.get("XLA_FLAGS", "")
  if _flag_name(CPU_CONV_FLAG) in user:
    return None
  if not cpu_default() or not flag_supported():
    return None
  return f"{user} {CPU_CONV_FLAG}".strip()


def _probe(flag: str) -> bool:
  """Starts JAX's CPU backend with `flag` in a subprocess; True when it comes up."""
  env = dict(os.environ, XLA_FLAGS=flag, JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="3")
  try:
    result = subprocess.run([sys.executable, "-c", "import jax; jax.devices('cpu')"], env=env,
                            capture_output=True, timeout=300, check=False)
  except (OSError, subprocess.TimeoutExpired):
    return False
  return result.returncode == 0


def flag_supported(flag: str = CPU_CONV_FLAG, *, cache: pathlib.Path = _CACHE,
                   probe: Callable[[str], bool] = _probe) -> bool:
  """Whether the installed jaxlib accepts `flag`: known versions, else a cached probe."""
  try:
    version = importlib.metadata.version("jaxlib")
  except importlib.metadata.PackageNotFoundError:
    return False
  if flag == CPU_CONV_FLAG and version in KNOWN_JAXLIB:
    return True
  key = f"jaxlib=={version} {flag}"
  try:
    answers = json.loads(cache.read_text())
  except (OSError, ValueError):
    answers = {}
  if key not in answers:
    answers[key] = probe(flag)
    try:
      cache.parent.mkdir(parents=True, exist_ok=True)
      cache.write_text(json.dumps(answers, indent=1))
    except OSError:
      pass  # a read-only home: probe again next time
  return bool(answers[key])


def _backend_started() -> bool:
  if "jax" not in sys.modules:
    return False
  try:
    from jax._src import xla_bridge  # pylint: disable=g-import-not-at-top
    return bool(xla_bridge._backends)  # pylint: disable=protected-access
  except (ImportError, AttributeError):
    return False


def apply_defaults() -> str | None:
  """Adds gen_jax's default XLA flags to os.environ["XLA_FLAGS"]; returns the new value.

  None when nothing was changed (opted out, not on CPU, set by the user, unsupported, or
  JAX's backend already running, which a warning reports).
  """
  value = defaults_for(os.environ, flag_supported=flag_supported,
                       cpu_default=lambda: cpu_is_default_backend(os.environ))
  if value is None:
    return None
  if _backend_started():
    logging.warning("gen_jax.xla_flags.apply_defaults() ran after JAX started its backend; "
                    "%s has no effect. Call it before the first JAX computation.", CPU_CONV_FLAG)
    return None
  os.environ["XLA_FLAGS"] = value
  logging.info("XLA_FLAGS=%s (set %s=0 to turn gen_jax's defaults off)", value, OPT_OUT_ENV)
  return value


def ynn_convolution_counts(hlo_text: str) -> tuple[int, int]:
  """(convolutions inside YNNPACK fusions, convolutions left to XLA) in compiled HLO text.

  jaxlib 0.10's CPU backend wraps what it sends to YNNPACK in fusions whose backend config
  kind is "__ynn_fusion"; with CPU_CONV_FLAG the first count is 0.
  """
  bodies: dict[str, list[str]] = {}
  current: list[str] | None = None
  for line in hlo_text.splitlines():
    header = re.match(r"^(?:ENTRY )?%?([\w.\-]+) .*\{\s*$", line)
    if header:
      current = bodies.setdefault(header.group(1), [])
    elif current is not None:
      current.append(line)
  ynn = set(re.findall(r"calls=%?([\w.\-]+)[^\n]*__ynn_fusion", hlo_text))
  count = lambda names: sum(" convolution(" in line for n in names for line in bodies[n])
  return count(ynn & bodies.keys()), count(bodies.keys() - ynn)
