// Vectorized row dequantization for the matmul hot path. Bit-exact with dequantize_row (same
// float32 operations per element, no FMA), so the fast and the reference paths are
// interchangeable; tests/test_dequant_fast.py checks that on random blocks.
#pragma once
#include <cstdint>

#include "fastspec/tensor.h"

namespace fastspec::cpu {

// dst[n] = dequant(src); false (nothing written) when this type has no fast path on this CPU.
bool dequantize_row_fast(DType t, const void* src, float* dst, int64_t n);

// Fused dequant-dot for up to kMaxFusedRows activation rows (decode and verify passes):
//   y[t * y_stride] = dot(dequant(w[n]), x[t, 0:n])  for t < T
// Bit-equal to dot_f32(dequantize_row(w), x[t]): the same four 8-lane accumulators take the same
// elements in the same order and are combined the same way, whatever T is. false when this type
// has no fused path (or T is out of range).
constexpr int64_t kMaxFusedRows = 16;
bool dot_rows_fast(DType t, const void* w, const float* x, int64_t T, int64_t n, float* y, int64_t y_stride);

// sum_i a[i] * b[i] in a fixed order whatever the CPU: four 8-lane FMA accumulators over 32-element
// steps, combined (acc0 + acc1) + (acc2 + acc3) then lanes pairwise, then the tail in order. The
// portable fallback emulates the lanes with std::fma, so results are bit-equal on every path.
float dot_f32(const float* a, const float* b, int64_t n);

// The AVX2 implementations (dequant_fast.cpp); call only when cpu_has_avx2_fma_f16c().
bool dequantize_row_fast_avx2(DType t, const void* src, float* dst, int64_t n);
bool dot_rows_fast_avx2(DType t, const void* w, const float* x, int64_t T, int64_t n, float* y, int64_t y_stride);
float dot_f32_avx2(const float* a, const float* b, int64_t n);

}  // namespace fastspec::cpu
