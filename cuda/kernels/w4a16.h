// W4A16 GEMM for AutoAWQ GEMM int4 weights (w4a16.cu has the formula and the layout).
// Kernel level (FlashInfer style): raw device pointers in, a status out, no allocation; the
// caller (the CUDA backend's adapter, or tests/cuda/test_w4a16.cu) checks shapes and names sizes.
#pragma once
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace fastspec::cuda {

constexpr int kW4A16MaxRows = 17;  // a verify pass: k_max + 1 rows

struct W4A16Args {
  const __half* x = nullptr;         // [M, K] activations
  const int32_t* qweight = nullptr;  // [K, N / 8]
  const int32_t* qzeros = nullptr;   // [K / group, N / 8]
  const __half* scales = nullptr;    // [K / group, N]
  float* y = nullptr;                // [M, N]
  float* workspace = nullptr;        // [w4a16_workspace_floats(M, N, splits)]
  int M = 0, N = 0, K = 0, group = 0;
  int splits = 1;                    // K-slices (whole groups): w4a16_splits(N, K, group, SMs)
};

enum class W4A16Status : int { ok = 0, bad_rows, bad_shape, null_pointer, launch_failed };

// K-slices for an N x K matrix on a GPU with sm_count SMs (depends on the matrix only, so a row's
// result does not depend on M).
int w4a16_splits(int N, int K, int group, int sm_count);
size_t w4a16_workspace_floats(int M, int N, int splits);
// Enqueues y = x @ dequant(W) on `stream`.
W4A16Status w4a16_gemm(const W4A16Args& a, cudaStream_t stream);
const char* w4a16_status_name(W4A16Status s);

}  // namespace fastspec::cuda
