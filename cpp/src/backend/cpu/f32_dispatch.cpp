// Runtime dispatch of the float32 (reference-precision) kernels: the AVX2 versions when the CPU
// has AVX2/FMA/F16C and the active path is not forced to scalar, else portable code that
// reproduces the same bits (std::fma for the vector FMAs).
#include <cmath>

#include "backend/cpu/dequant_fast.h"
#include "backend/cpu/isa.h"

namespace fastspec::cpu {
namespace {
inline bool use_avx2() { return isa_is_x86_simd(isa_active()); }
}  // namespace

bool dequantize_row_fast(DType t, const void* src, float* dst, int64_t n) {
  return use_avx2() && dequantize_row_fast_avx2(t, src, dst, n);
}

bool dot_rows_fast(DType t, const void* w, const float* x, int64_t T, int64_t n, float* y, int64_t y_stride) {
  return use_avx2() && dot_rows_fast_avx2(t, w, x, T, n, y, y_stride);
}

float dot_f32(const float* a, const float* b, int64_t n) {
  if (use_avx2()) return dot_f32_avx2(a, b, n);
  // Lane emulation of dot_f32_avx2: acc[k][l] takes element i + 8k + l of each 32-step.
  float acc[4][8] = {};
  int64_t i = 0;
  for (; i + 32 <= n; i += 32)
    for (int k = 0; k < 4; ++k)
      for (int l = 0; l < 8; ++l) acc[k][l] = std::fma(a[i + 8 * k + l], b[i + 8 * k + l], acc[k][l]);
  for (; i + 8 <= n; i += 8)
    for (int l = 0; l < 8; ++l) acc[0][l] = std::fma(a[i + l], b[i + l], acc[0][l]);
  float v[8];
  for (int l = 0; l < 8; ++l) v[l] = (acc[0][l] + acc[1][l]) + (acc[2][l] + acc[3][l]);
  float s = ((v[0] + v[1]) + (v[2] + v[3])) + ((v[4] + v[5]) + (v[6] + v[7]));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

}  // namespace fastspec::cpu
