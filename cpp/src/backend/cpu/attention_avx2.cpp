// The AVX2 + FMA + F16C attention kernels and the f32 -> f16 conversion of the KV cache (declared
// in attention.h). Built with that ISA's flags (CMakeLists.txt), called only when the active path
// is not scalar. Every result is bit-equal to the scalar twin in attention.cpp: same lanes, same
// FMAs, same summation tree. Only intrinsics and this file's own helpers here (an inline function
// shared with baseline files could be emitted with AVX2 instructions and picked by the linker).
#include "backend/cpu/attention.h"

#if defined(__x86_64__) && !defined(FASTSPEC_NO_X86_SIMD) && defined(__AVX2__) && defined(__FMA__) && \
    defined(__F16C__)
#include <immintrin.h>

namespace fastspec::cpu {
namespace {

inline int64_t imin(int64_t a, int64_t b) { return a < b ? a : b; }

inline __m256 load8(const float* p) { return _mm256_loadu_ps(p); }
inline __m256 load8(const uint16_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
inline float load1(const float* p) { return *p; }
inline float load1(const uint16_t* p) { return _cvtsh_ss(*p); }

// r[k] = ((a_k0 + a_k1) + (a_k2 + a_k3)) + ((a_k4 + a_k5) + (a_k6 + a_k7)) for the 8 vectors a_k.
inline __m256 reduce8(const __m256 a[8]) {
  const __m256 t0 = _mm256_hadd_ps(a[0], a[1]), t1 = _mm256_hadd_ps(a[2], a[3]);
  const __m256 t2 = _mm256_hadd_ps(a[4], a[5]), t3 = _mm256_hadd_ps(a[6], a[7]);
  const __m256 u0 = _mm256_hadd_ps(t0, t1), u1 = _mm256_hadd_ps(t2, t3);
  // u0 = [k0..k3: (01 + 23) | k0..k3: (45 + 67)], u1 the same for k4..k7
  return _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20), _mm256_permute2f128_ps(u0, u1, 0x31));
}

// Scores of G heads against 8 key rows (rows[kk] of floats), nb of them valid.
inline void scores8(const float* q, int64_t G, int64_t hd, const float* const rows[8], int64_t nb, float* s,
                    int64_t lds) {
  const int64_t hd8 = hd & ~int64_t{7};
  for (int64_t g = 0; g < G; ++g) {
    const float* qg = q + g * hd;
    __m256 acc[8];
    for (int kk = 0; kk < 8; ++kk) acc[kk] = _mm256_setzero_ps();
    for (int64_t i = 0; i < hd8; i += 8) {
      const __m256 qv = _mm256_loadu_ps(qg + i);
      for (int kk = 0; kk < 8; ++kk) acc[kk] = _mm256_fmadd_ps(qv, _mm256_loadu_ps(rows[kk] + i), acc[kk]);
    }
    const __m256 r = reduce8(acc);
    float* sg = s + g * lds;
    if (nb == 8 && hd8 == hd) {
      _mm256_storeu_ps(sg, r);
      continue;
    }
    alignas(32) float tmp[8];
    _mm256_store_ps(tmp, r);
    for (int64_t kk = 0; kk < nb; ++kk) {
      float x = tmp[kk];
      for (int64_t i = hd8; i < hd; ++i) x += qg[i] * rows[kk][i];
      sg[kk] = x;
    }
  }
}

void scores_f32(const float* q, int64_t G, int64_t hd, const float* k, int64_t stride, int64_t n, float* s,
                int64_t lds) {
  for (int64_t j = 0; j < n; j += 8) {
    const int64_t nb = imin(8, n - j);
    const float* rows[8];
    for (int64_t kk = 0; kk < 8; ++kk) rows[kk] = k + (j + imin(kk, nb - 1)) * stride;
    scores8(q, G, hd, rows, nb, s + j, lds);
  }
}

void scores_f16(const float* q, int64_t G, int64_t hd, const uint16_t* k, int64_t stride, int64_t n, float* s,
                int64_t lds, float* kbuf) {
  const int64_t hd8 = hd & ~int64_t{7};
  for (int64_t j = 0; j < n; j += 8) {
    const int64_t nb = imin(8, n - j);
    const float* rows[8];
    for (int64_t kk = 0; kk < nb; ++kk) {  // widen the valid rows once for all G heads
      const uint16_t* src = k + (j + kk) * stride;
      float* dst = kbuf + kk * hd;
      for (int64_t i = 0; i < hd8; i += 8) _mm256_storeu_ps(dst + i, load8(src + i));
      for (int64_t i = hd8; i < hd; ++i) dst[i] = load1(src + i);
    }
    for (int64_t kk = 0; kk < 8; ++kk) rows[kk] = kbuf + imin(kk, nb - 1) * hd;
    scores8(q, G, hd, rows, nb, s + j, lds);
  }
}

// o[g][d0 .. d0 + 8 * NV) for NG heads: acc = fma(p_j, v_j, acc) over j in order.
template <int NG, int NV, typename VT>
inline void pv_block(const float* p, int64_t ldp, const VT* v, int64_t stride, int64_t n, float* o, int64_t ldo) {
  __m256 acc[NG][NV];
  for (int g = 0; g < NG; ++g)
    for (int u = 0; u < NV; ++u) acc[g][u] = _mm256_setzero_ps();
  for (int64_t j = 0; j < n; ++j) {
    const VT* vr = v + j * stride;
    __m256 x[NV];
    for (int u = 0; u < NV; ++u) x[u] = load8(vr + 8 * u);
    for (int g = 0; g < NG; ++g) {
      const __m256 pb = _mm256_broadcast_ss(p + g * ldp + j);
      for (int u = 0; u < NV; ++u) acc[g][u] = _mm256_fmadd_ps(pb, x[u], acc[g][u]);
    }
  }
  for (int g = 0; g < NG; ++g)
    for (int u = 0; u < NV; ++u) _mm256_storeu_ps(o + g * ldo + 8 * u, acc[g][u]);
}

template <int NG, typename VT>
void pv_heads(const float* p, int64_t ldp, int64_t hd, const VT* v, int64_t stride, int64_t n, float* o,
              int64_t ldo) {
  int64_t d = 0;
  for (; d + 16 <= hd; d += 16) pv_block<NG, 2>(p, ldp, v + d, stride, n, o + d, ldo);
  for (; d + 8 <= hd; d += 8) pv_block<NG, 1>(p, ldp, v + d, stride, n, o + d, ldo);
  for (; d < hd; ++d)
    for (int g = 0; g < NG; ++g) {
      float acc = 0.0f;
      for (int64_t j = 0; j < n; ++j) {
        // scalar FMA, the same rounding as the vector lanes (and std::fma)
        const __m128 r = _mm_fmadd_ss(_mm_set_ss(p[g * ldp + j]), _mm_set_ss(load1(v + j * stride + d)),
                                      _mm_set_ss(acc));
        acc = _mm_cvtss_f32(r);
      }
      o[g * ldo + d] = acc;
    }
}

template <typename VT>
void pv(const float* p, int64_t ldp, int64_t G, int64_t hd, const VT* v, int64_t stride, int64_t n, float* o,
        int64_t ldo) {
  int64_t g = 0;
  for (; g + 4 <= G; g += 4) pv_heads<4>(p + g * ldp, ldp, hd, v, stride, n, o + g * ldo, ldo);
  switch (G - g) {
    case 3: pv_heads<3>(p + g * ldp, ldp, hd, v, stride, n, o + g * ldo, ldo); break;
    case 2: pv_heads<2>(p + g * ldp, ldp, hd, v, stride, n, o + g * ldo, ldo); break;
    case 1: pv_heads<1>(p + g * ldp, ldp, hd, v, stride, n, o + g * ldo, ldo); break;
    default: break;
  }
}

}  // namespace

void attn_scores_avx2(const float* q, int64_t G, int64_t hd, const void* k, bool f16, int64_t stride,
                      int64_t n, float* s, int64_t lds, float* kbuf) {
  if (f16) scores_f16(q, G, hd, static_cast<const uint16_t*>(k), stride, n, s, lds, kbuf);
  else scores_f32(q, G, hd, static_cast<const float*>(k), stride, n, s, lds);
}

void attn_pv_avx2(const float* p, int64_t ldp, int64_t G, int64_t hd, const void* v, bool f16, int64_t stride,
                  int64_t n, float* o, int64_t ldo, float* kbuf) {
  if (f16) pv(p, ldp, G, hd, static_cast<const uint16_t*>(v), stride, n, o, ldo);
  else pv(p, ldp, G, hd, static_cast<const float*>(v), stride, n, o, ldo);
}

void f32_to_f16_avx2(const float* x, uint16_t* y, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y + i), _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
  for (; i < n; ++i) y[i] = static_cast<uint16_t>(_cvtss_sh(x[i], _MM_FROUND_TO_NEAREST_INT));
}

}  // namespace fastspec::cpu

#else  // no AVX2 build of this file: never called (isa_active() is scalar), kept for the link

namespace fastspec::cpu {
void attn_scores_avx2(const float* q, int64_t G, int64_t hd, const void* k, bool f16, int64_t stride,
                      int64_t n, float* s, int64_t lds, float* kbuf) {
  attn_scores_scalar(q, G, hd, k, f16, stride, n, s, lds, kbuf);
}
void attn_pv_avx2(const float* p, int64_t ldp, int64_t G, int64_t hd, const void* v, bool f16, int64_t stride,
                  int64_t n, float* o, int64_t ldo, float* kbuf) {
  attn_pv_scalar(p, ldp, G, hd, v, f16, stride, n, o, ldo, kbuf);
}
void f32_to_f16_avx2(const float* x, uint16_t* y, int64_t n) { f32_to_f16_scalar(x, y, n); }
}  // namespace fastspec::cpu

#endif
