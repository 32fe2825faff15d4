#!/usr/bin/env bash
# The GPU table of issue 17 on one H100/H200 in under 8 minutes (compilation included).
#
#   bash experiments/bench/gpu_suite.sh            # writes experiments/bench/gpu_suite_gpu.md
#   bash experiments/bench/gpu_suite.sh --smoke    # tiny models: checks the script anywhere
#
# Rows: DDPM CIFAR-10 UNet (35.7M) train images/s and MFU in fp32 and bf16 (batch 128),
# DDIM-100 images/s (batch 256), NCSN++ and Glow CIFAR-10 train steps (batch 64), each
# with XLA's planned peak memory and the device's measured peak (gpu_suite.py).
set -euo pipefail
cd "$(dirname "$0")/../.."

# Install (skip with SKIP_INSTALL=1): JAX with its CUDA 12 plugin, then gen_jax itself.
if [[ "${SKIP_INSTALL:-0}" != "1" ]]; then
  python -m pip install -q -U "jax[cuda12]" && python -m pip install -q -e .
fi

python -c "import jax; print(jax.devices())"
# A GPU run keeps XLA's default convolution choices; the CPU flag of gen_jax.xla_flags only
# applies on CPU.
out="experiments/bench/gpu_suite_gpu.md"
limit=540  # seconds: the whole table within the 8-minute budget (plus the install)
extra=()
for arg in "$@"; do
  if [[ "$arg" == "--smoke" ]]; then
    out="/tmp/gpu_suite_smoke.md"
    limit=3600  # a loaded CPU compiles slowly
    extra+=("--steps=1" "--warmup=0")
  fi
  extra+=("$arg")
done
timeout "$limit" python experiments/bench/gpu_suite.py --steps=10 --warmup=2 --markdown_out="$out" \
  "${extra[@]}"
echo "Table written to $out"
