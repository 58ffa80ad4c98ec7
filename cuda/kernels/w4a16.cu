// W4A16 GEMM for AutoAWQ "GEMM" int4 weights on the GPU (issue: AWQ int4 end to end).
//
//   W[k, n] = (q[k, n] - z[k / G, n]) * s[k / G, n]     q, z: 4-bit, s: f16, G: the group size
//   y[m, n] = sum_k float(x[m, k]) * W[k, n]            x f16 [M, K], y f32 [M, N], f32 sums
// Layout (as dequant_awq.h): qweight int32 [K, N/8], qzeros int32 [K/G, N/8], scales f16 [K/G, N];
// int32 column j holds outputs 8j .. 8j+7, output 8j + c in nibble kNib[c] = [0,4,1,5,2,6,3,7][c].
//
// Kernel: thread = one packed column j (8 outputs) x one K-slice of whole groups; its loads of
// qweight[k][j] are coalesced across the warp, x rows are staged in shared memory. Each thread
// keeps MT x 8 f32 sums in registers, k in increasing order; the K-slices' partial sums
// [splits, M, N] are added in slice order by a second kernel. The split depends on (N, K) only and
// a row's arithmetic does not depend on MT or M, so a row's result is bit-equal alone or in a
// batch of up to 17 rows (batch invariance, as on the CPU). CUDA cores, not tensor cores: a
// Marlin-class tensor-core kernel for 2..17 rows is the next step (see the issue's bench).
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/w4a16.h"

namespace fastspec::cuda {
namespace {

constexpr int kThreads = 128;  // packed columns per block (1024 outputs)
constexpr int kKTile = 128;    // k values of x staged in shared memory at a time

__device__ __forceinline__ float nib(uint32_t w, int c) {
  constexpr int kNib[8] = {0, 4, 1, 5, 2, 6, 3, 7};
  return static_cast<float>((w >> (4 * kNib[c])) & 15u);
}

template <int MT>
__global__ void w4a16_partial(const __half* __restrict__ x, int ldx, const int32_t* __restrict__ qweight,
                              const int32_t* __restrict__ qzeros, const __half* __restrict__ scales,
                              float* __restrict__ partial, int M, int N, int K, int G, int k_per_split) {
  __shared__ float xs[MT][kKTile];
  const int n8 = N / 8;
  const int j = blockIdx.x * kThreads + threadIdx.x;
  const int k_begin = blockIdx.y * k_per_split, k_end = min(K, k_begin + k_per_split);
  float acc[MT][8];
#pragma unroll
  for (int m = 0; m < MT; ++m)
#pragma unroll
    for (int c = 0; c < 8; ++c) acc[m][c] = 0.0f;
  float z[8], s[8];
  for (int k0 = k_begin; k0 < k_end; k0 += kKTile) {
    const int kn = min(kKTile, k_end - k0);
    __syncthreads();
    for (int i = threadIdx.x; i < MT * kKTile; i += kThreads) {
      const int m = i / kKTile, kk = i % kKTile;
      xs[m][kk] = (m < M && kk < kn) ? __half2float(x[m * ldx + k0 + kk]) : 0.0f;
    }
    __syncthreads();
    if (j >= n8) continue;
    for (int kk = 0; kk < kn; ++kk) {
      const int k = k0 + kk;
      if (k % G == 0 || kk == 0) {  // a new group (slices and tiles start on group boundaries or mid-group)
        const int g = k / G;
        const uint32_t zw = static_cast<uint32_t>(qzeros[g * n8 + j]);
#pragma unroll
        for (int c = 0; c < 8; ++c) {
          z[c] = nib(zw, c);
          s[c] = __half2float(scales[g * N + 8 * j + c]);
        }
      }
      const uint32_t w = static_cast<uint32_t>(qweight[k * n8 + j]);
#pragma unroll
      for (int c = 0; c < 8; ++c) {
        const float wv = (nib(w, c) - z[c]) * s[c];  // exact in f32, as the CPU unpacker
#pragma unroll
        for (int m = 0; m < MT; ++m) acc[m][c] = acc[m][c] + xs[m][kk] * wv;
      }
    }
  }
  if (j >= n8) return;
  float* out = partial + static_cast<size_t>(blockIdx.y) * M * N;
#pragma unroll
  for (int m = 0; m < MT; ++m)
    if (m < M)
#pragma unroll
      for (int c = 0; c < 8; ++c) out[m * N + 8 * j + c] = acc[m][c];
}

// y[m, n] = sum over slices in order of partial[slice, m, n]
__global__ void w4a16_reduce(const float* __restrict__ partial, float* __restrict__ y, int ldy, int M, int N,
                             int splits) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= M * N) return;
  float v = 0.0f;
  for (int sl = 0; sl < splits; ++sl) v = v + partial[static_cast<size_t>(sl) * M * N + i];
  y[(i / N) * ldy + i % N] = v;
}

template <int MT>
cudaError_t launch_tile(const W4A16Args& a, const __half* x, float* y, int M, int k_per_split, cudaStream_t st) {
  const int n8 = a.N / 8;
  dim3 grid((n8 + kThreads - 1) / kThreads, a.splits);
  w4a16_partial<MT><<<grid, kThreads, 0, st>>>(x, a.K, a.qweight, a.qzeros, a.scales, a.workspace, M, a.N, a.K,
                                               a.group, k_per_split);
  const int total = M * a.N;
  w4a16_reduce<<<(total + 255) / 256, 256, 0, st>>>(a.workspace, y, a.N, M, a.N, a.splits);
  return cudaGetLastError();
}

}  // namespace

int w4a16_splits(int N, int K, int group, int sm_count) {
  // enough blocks for every SM twice, in whole groups of K
  const int blocks_x = (N / 8 + kThreads - 1) / kThreads;
  int s = (2 * sm_count + blocks_x - 1) / blocks_x;
  s = s < 1 ? 1 : s;
  const int groups = K / group;
  return s > groups ? groups : s;
}

W4A16Status w4a16_gemm(const W4A16Args& a, cudaStream_t stream) {
  if (a.M < 1 || a.M > kW4A16MaxRows) return W4A16Status::bad_rows;
  if (a.N % 8 != 0 || a.group <= 0 || a.K % a.group != 0 || a.splits < 1 || a.splits > a.K / a.group)
    return W4A16Status::bad_shape;
  if (!a.x || !a.qweight || !a.qzeros || !a.scales || !a.y || !a.workspace) return W4A16Status::null_pointer;
  const int groups_per_split = (a.K / a.group + a.splits - 1) / a.splits;
  const int k_per_split = groups_per_split * a.group;
  // rows in tiles of 8 / 4 / 2 / 1: a row's arithmetic is the same in any tile
  for (int m0 = 0; m0 < a.M;) {
    const int left = a.M - m0;
    const __half* x = a.x + static_cast<size_t>(m0) * a.K;
    float* y = a.y + static_cast<size_t>(m0) * a.N;
    const int mt = left >= 8 ? 8 : left >= 4 ? 4 : left >= 2 ? 2 : 1;
    cudaError_t err;
    switch (mt) {
      case 8: err = launch_tile<8>(a, x, y, 8, k_per_split, stream); break;
      case 4: err = launch_tile<4>(a, x, y, 4, k_per_split, stream); break;
      case 2: err = launch_tile<2>(a, x, y, 2, k_per_split, stream); break;
      default: err = launch_tile<1>(a, x, y, 1, k_per_split, stream); break;
    }
    if (err != cudaSuccess) return W4A16Status::launch_failed;
    m0 += mt;
  }
  return W4A16Status::ok;
}

size_t w4a16_workspace_floats(int M, int N, int splits) {
  // one tile's partial sums at a time (tiles run in order on the stream)
  return static_cast<size_t>(splits) * (M < 8 ? M : 8) * N;
}

const char* w4a16_status_name(W4A16Status s) {
  switch (s) {
    case W4A16Status::ok: return "ok";
    case W4A16Status::bad_rows: return "M must be 1..17";
    case W4A16Status::bad_shape: return "N must be a multiple of 8, K of the group, 1 <= splits <= K / group";
    case W4A16Status::null_pointer: return "a null pointer";
    case W4A16Status::launch_failed: return "a kernel launch failed";
  }
  return "?";
}

}  // namespace fastspec::cuda
