#!/usr/bin/env bash
# The GPU tables of issue 17 on one H100/H200 in about 8 minutes (compilation included).
#
#   bash experiments/bench/gpu_suite.sh            # writes experiments/bench/*_gpu.md
#   bash experiments/bench/gpu_suite.sh --smoke    # tiny models: checks the script anywhere
#
# 1. gpu_suite.py: the DDPM CIFAR-10 UNet (35.7M) train step (batch 128) in fp32 and bf16:
#    images/s, MFU, XLA's planned and the device's measured peak memory; optionally DDIM-100,
#    NCSN++ and Glow (GPU_SUITE_SECTIONS, default "ddpm").
# 2. vs_pytorch.py --device=cuda: the same UNet against diffusers' UNet2DModel (fp32 and
#    bf16 autocast, batch 128 train / 256 forward, and torch.compile) and the DCGAN MNIST
#    step against its PyTorch twin, when torch and diffusers import.
#
# Install: with a folder .whl/ of wheels (a GPU machine without package registries: carry
# ml_collections, clu, grain, array_record, portpicker, diffusers and importlib_metadata built
# for its Python), they are unpacked into /tmp/site; otherwise pip installs JAX's CUDA build
# and gen_jax (skip with SKIP_INSTALL=1). Tables go to GPU_SUITE_OUT (default
# experiments/bench).
set -euo pipefail
cd "$(dirname "$0")/../.."
py=${PYTHON:-python3}
if [[ -d .whl && "${SKIP_INSTALL:-0}" != "1" ]]; then
  $py -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl
  export PYTHONPATH="/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
elif [[ "${SKIP_INSTALL:-0}" != "1" ]]; then
  $py -m pip install -q -U "jax[cuda12]" && $py -m pip install -q -e .
fi
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
$py -c "import jax; print(jax.__version__, jax.devices())"
out=${GPU_SUITE_OUT:-experiments/bench}
mkdir -p "$out"
suite=(--steps=10 --warmup=2 --sections="${GPU_SUITE_SECTIONS:-ddpm}")
vs=(--device=cuda --precisions=fp32,bf16 --train_batch=128 --forward_batch=256 --gan_batch=64
    --repeats=10 --warmup=3 --nodcgan_old --torch_compile)
for arg in "$@"; do
  if [[ "$arg" == "--smoke" ]]; then
    out=/tmp/gpu_suite_smoke
    mkdir -p "$out"
    suite=(--smoke --steps=1 --warmup=0 --sections=ddpm)
    vs=(--device=cpu --precisions=fp32 --train_batch=2 --forward_batch=2 --gan_batch=4
        --repeats=1 --warmup=0 --nodcgan_old)
  fi
done
timeout 200 $py experiments/bench/gpu_suite.py "${suite[@]}" \
  --markdown_out="$out/gpu_suite_gpu.md" || echo "gpu_suite.py failed or timed out"
if $py -c "import torch, diffusers" 2>/dev/null; then
  timeout 300 $py experiments/bench/vs_pytorch.py "${vs[@]}" \
    --markdown_out="$out/vs_pytorch_gpu.md" || echo "vs_pytorch.py failed or timed out"
else
  echo "torch or diffusers missing: no PyTorch comparison"
fi
echo "Tables written to $out"
