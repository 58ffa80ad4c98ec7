#!/usr/bin/env bash
# The GPU check of the W4A16 kernel, as one prepared script for a machine with an NVIDIA GPU:
# builds tests/cuda/test_w4a16.cu (+ cuBLAS when the toolkit has it), runs correctness and the bench
# (M = 1, 2, 4, 8, 16 on 4096x4096, 4096x14336, 14336x4096; W4A16 vs cuBLAS f16; bandwidth at M = 1
# vs a device copy), writes the output to ${OUT:-.}/gpu_w4a16.txt.
#   bash bench/gpu_w4a16.sh            (ARCH=sm_90 by default)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-.}
arch=${ARCH:-sm_90}
cuda_home=$(dirname "$(dirname "$(command -v nvcc)")")
extra=()
if [ -e "$cuda_home/lib64/libcublas.so" ] || [ -e "$cuda_home/targets/x86_64-linux/lib/libcublas.so" ]; then
  extra=(-DFASTSPEC_HAVE_CUBLAS -lcublas)
fi
nvcc -std=c++17 -O3 --fmad=false -arch="$arch" -Icuda "${extra[@]}" -o /tmp/fastspec-test-w4a16 \
  tests/cuda/test_w4a16.cu cuda/kernels/w4a16.cu
nvidia-smi --query-gpu=name,clocks.max.sm,memory.total --format=csv | tee "$out/gpu_w4a16.txt"
/tmp/fastspec-test-w4a16 --bench | tee -a "$out/gpu_w4a16.txt"
