// Vectorized row dequantization for the matmul hot path. Bit-exact with dequantize_row (same
// float32 operations per element, no FMA), so the fast and the reference paths are
// interchangeable; tests/test_dequant_fast.py checks that on random blocks.
#pragma once
#include <cstdint>

#include "fastspec/tensor.h"

namespace fastspec::cpu {

// dst[n] = dequant(src); false (nothing written) when this type has no fast path on this CPU.
bool dequantize_row_fast(DType t, const void* src, float* dst, int64_t n);

// *out = dot(dequant(w[n]), x[n]) fused (no scratch row), for one activation row. Bit-equal to
// dot_f32(dequantize_row(w), x): the same four 8-lane accumulators take the same elements in the
// same order and are combined the same way. false when this type has no fused path.
bool dot_row_fast(DType t, const void* w, const float* x, int64_t n, float* out);

}  // namespace fastspec::cpu
