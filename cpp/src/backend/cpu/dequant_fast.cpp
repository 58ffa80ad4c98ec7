// AVX2 block decoders: 32 weights per block -> four 8-lane float vectors.
//   Q8_0: y = q * d          Q4_0: y = d * (q - 8)          Q4_1: y = d * q + m
//   F16/BF16/F32: exact widening to f32
#include "backend/cpu/dequant_fast.h"

#include <cstring>

#include "backend/cpu/dequant.h"

#if defined(__AVX2__)
#include <immintrin.h>
#endif

// Compiled with -mavx2 -mfma -mf16c on x86-64 (CMakeLists.txt); the *_avx2 entry points are only
// called when the CPU has them (the dispatching wrappers are in f32_dispatch.cpp).

namespace fastspec::cpu {

#if defined(__AVX2__)
namespace {

// Block scales. F16C converts in hardware: exact for every finite, infinite and subnormal half
// (only a signalling NaN comes back quieted, which no usable weight has).
inline float load_f16(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
#if defined(__F16C__)
  return _cvtsh_ss(h);
#else
  return fp16_to_f32(h);
#endif
}

// The 8 bytes at the low half of b, widened to int32 lanes.
inline __m256i widen_u8(__m128i b) { return _mm256_cvtepu8_epi32(b); }

// lo/hi nibbles of 16 bytes: element j (j < 16) is lo[j], element 16 + j is hi[j].
inline void nibbles(const uint8_t* qs, __m128i* lo, __m128i* hi) {
  const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m128i mask = _mm_set1_epi8(0x0F);
  *lo = _mm_and_si128(b, mask);
  *hi = _mm_and_si128(_mm_srli_epi16(b, 4), mask);
}

// Decoders of one 32-weight block into v[4] (8 lanes each), shared by the row and dot paths.
inline void block_q8_0(const uint8_t* src, __m256 v[4]) {
  const __m256 d = _mm256_set1_ps(load_f16(src));
  for (int k = 0; k < 4; ++k) {
    const __m128i q8 = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(src + 2 + 8 * k));
    v[k] = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q8)), d);
  }
}

inline void block_q4_0(const uint8_t* src, __m256 v[4]) {
  const __m256i eight = _mm256_set1_epi32(8);
  const __m256 d = _mm256_set1_ps(load_f16(src));
  __m128i lo, hi;
  nibbles(src + 2, &lo, &hi);
  const __m128i parts[4] = {lo, _mm_srli_si128(lo, 8), hi, _mm_srli_si128(hi, 8)};
  for (int k = 0; k < 4; ++k) v[k] = _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_sub_epi32(widen_u8(parts[k]), eight)));
}

inline void block_q4_1(const uint8_t* src, __m256 v[4]) {
  const __m256 d = _mm256_set1_ps(load_f16(src));
  const __m256 m = _mm256_set1_ps(load_f16(src + 2));
  __m128i lo, hi;
  nibbles(src + 4, &lo, &hi);
  const __m128i parts[4] = {lo, _mm_srli_si128(lo, 8), hi, _mm_srli_si128(hi, 8)};
  for (int k = 0; k < 4; ++k) v[k] = _mm256_add_ps(_mm256_mul_ps(d, _mm256_cvtepi32_ps(widen_u8(parts[k]))), m);
}

// The combine of dot_f32: (acc0 + acc1) + (acc2 + acc3), then lanes pairwise.
inline float combine(const __m256 acc[4]) {
  const __m256 a = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
  alignas(32) float l[8];
  _mm256_store_ps(l, a);
  return ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]));
}

// y[t * y_stride] = dot(dequant(w), x[t, :]) for t < T: each block is decoded once and used for
// all T rows; each row keeps its own four accumulators (the order of the one-row kernel).
template <void (*Block)(const uint8_t*, __m256*)>
void dot_blocks(const uint8_t* w, const float* x, int64_t T, int64_t cols, int64_t block_bytes, float* y,
                int64_t y_stride) {
  __m256 acc[kMaxFusedRows][4];
  for (int64_t t = 0; t < T; ++t)
    for (int k = 0; k < 4; ++k) acc[t][k] = _mm256_setzero_ps();
  __m256 v[4];
  for (int64_t c = 0; c < cols; c += 32, w += block_bytes) {
    Block(w, v);
    for (int64_t t = 0; t < T; ++t) {
      const float* xt = x + t * cols + c;
      for (int k = 0; k < 4; ++k) acc[t][k] = _mm256_fmadd_ps(v[k], _mm256_loadu_ps(xt + 8 * k), acc[t][k]);
    }
  }
  for (int64_t t = 0; t < T; ++t) y[t * y_stride] = combine(acc[t]);
}

// Plain types as 32-element "blocks" (exact conversions).
inline void block_f32(const uint8_t* src, __m256 v[4]) {
  for (int k = 0; k < 4; ++k) v[k] = _mm256_loadu_ps(reinterpret_cast<const float*>(src) + 8 * k);
}

inline void block_bf16(const uint8_t* src, __m256 v[4]) {  // bf16 bits << 16
  for (int k = 0; k < 4; ++k) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 16 * k));
    v[k] = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  }
}

#if defined(__F16C__)
inline void block_f16(const uint8_t* src, __m256 v[4]) {
  for (int k = 0; k < 4; ++k) v[k] = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 16 * k)));
}
#endif

template <void (*Block)(const uint8_t*, __m256*)>
void row_blocks(const uint8_t* src, float* dst, int64_t nb, int64_t block_bytes) {
  __m256 v[4];
  for (int64_t b = 0; b < nb; ++b, src += block_bytes, dst += 32) {
    Block(src, v);
    for (int k = 0; k < 4; ++k) _mm256_storeu_ps(dst + 8 * k, v[k]);
  }
}

}  // namespace
#endif

bool dot_rows_fast_avx2(DType t, const void* w, const float* x, int64_t T, int64_t n, float* y, int64_t y_stride) {
#if defined(__AVX2__) && defined(__FMA__)
  if (n % 32 != 0 || T < 1 || T > kMaxFusedRows) return false;
  const auto* s = static_cast<const uint8_t*>(w);
  switch (t) {
    case DType::Q8_0: dot_blocks<block_q8_0>(s, x, T, n, 34, y, y_stride); return true;
    case DType::Q4_0: dot_blocks<block_q4_0>(s, x, T, n, 18, y, y_stride); return true;
    case DType::Q4_1: dot_blocks<block_q4_1>(s, x, T, n, 20, y, y_stride); return true;
    case DType::F32: dot_blocks<block_f32>(s, x, T, n, 128, y, y_stride); return true;
    case DType::BF16: dot_blocks<block_bf16>(s, x, T, n, 64, y, y_stride); return true;
#if defined(__F16C__)
    case DType::F16: dot_blocks<block_f16>(s, x, T, n, 64, y, y_stride); return true;
#endif
    default: return false;
  }
#else
  (void)t; (void)w; (void)x; (void)T; (void)n; (void)y; (void)y_stride;
  return false;
#endif
}

bool dequantize_row_fast_avx2(DType t, const void* src, float* dst, int64_t n) {
#if defined(__AVX2__)
  if (n % 32 != 0) return false;
  const auto* s = static_cast<const uint8_t*>(src);
  switch (t) {
    case DType::Q8_0: row_blocks<block_q8_0>(s, dst, n / 32, 34); return true;
    case DType::Q4_0: row_blocks<block_q4_0>(s, dst, n / 32, 18); return true;
    case DType::Q4_1: row_blocks<block_q4_1>(s, dst, n / 32, 20); return true;
    case DType::BF16: row_blocks<block_bf16>(s, dst, n / 32, 64); return true;
#if defined(__F16C__)
    case DType::F16: row_blocks<block_f16>(s, dst, n / 32, 64); return true;
#endif
    default: return false;
  }
#else
  (void)t; (void)src; (void)dst; (void)n;
  return false;
#endif
}

float dot_f32_avx2(const float* a, const float* b, int64_t n) {
  // sum_i a[i] * b[i]: four 8-lane FMA accumulators over 32-element steps, fixed combine order.
#if defined(__AVX2__) && defined(__FMA__)
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
  int64_t i = 0;
  for (; i + 32 <= n; i += 32)
    for (int k = 0; k < 4; ++k)
      acc[k] = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8 * k), _mm256_loadu_ps(b + i + 8 * k), acc[k]);
  for (; i + 8 <= n; i += 8) acc[0] = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc[0]);
  float s = combine(acc);
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
#else
  (void)a; (void)b; (void)n;
  return 0.0f;
#endif
}

}  // namespace fastspec::cpu
