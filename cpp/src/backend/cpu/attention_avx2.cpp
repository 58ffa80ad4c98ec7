// The AVX2 + FMA + F16C attention kernels and the f32 -> f16 conversion of the KV cache (declared
// in attention.h). Built with that ISA's flags (CMakeLists.txt), called only when the active path
// is not scalar. Every result is bit-equal to the scalar twin in attention.cpp: same lanes, same
// FMAs, same summation tree. Only intrinsics and this file's own helpers here (an inline function
// shared with baseline files could be emitted with AVX2 instructions and picked by the linker).
#include "backend/cpu/attention.h"

#if defined(__x86_64__) && !defined(FASTSPEC_NO_X86_SIMD) && defined(__AVX2__) && defined(__FMA__) && \
    defined(__F16C__)
#include <immintrin.h>
#include <math.h>

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

// One head against 4 rows: v[kk] = (lanes 0..7) + (lanes 8..15) of the 16-lane accumulator of
// q.row[kk] (the hd % 8 tail is left to the caller). HDC: head_dim known at compile time, or 0.
template <int HDC>
__attribute__((always_inline)) inline void dot4(const float* qg, int64_t hd_rt, const float* const r[4], __m256 v[4]) {
  const int64_t hd = HDC ? HDC : hd_rt, hd16 = hd & ~int64_t{15}, hd8 = hd & ~int64_t{7};
  __m256 a[4], b[4];
  for (int kk = 0; kk < 4; ++kk) a[kk] = b[kk] = _mm256_setzero_ps();
  for (int64_t i = 0; i < hd16; i += 16) {
    const __m256 q0 = _mm256_loadu_ps(qg + i), q1 = _mm256_loadu_ps(qg + i + 8);
    for (int kk = 0; kk < 4; ++kk) {
      a[kk] = _mm256_fmadd_ps(q0, _mm256_loadu_ps(r[kk] + i), a[kk]);
      b[kk] = _mm256_fmadd_ps(q1, _mm256_loadu_ps(r[kk] + i + 8), b[kk]);
    }
  }
  if (hd8 > hd16) {
    const __m256 q0 = _mm256_loadu_ps(qg + hd16);
    for (int kk = 0; kk < 4; ++kk) a[kk] = _mm256_fmadd_ps(q0, _mm256_loadu_ps(r[kk] + hd16), a[kk]);
  }
  for (int kk = 0; kk < 4; ++kk) v[kk] = _mm256_add_ps(a[kk], b[kk]);
}

// Scores of G heads against 8 key rows (rows[kk] of floats), nb of them valid.
template <int HDC>
__attribute__((always_inline)) inline void scores8(const float* q, int64_t G, int64_t hd_rt, const float* const rows[8],
                                                   int64_t nb, float* s, int64_t lds) {
  const int64_t hd = HDC ? HDC : hd_rt, hd8 = hd & ~int64_t{7};
  for (int64_t g = 0; g < G; ++g) {
    const float* qg = q + g * hd;
    __m256 v[8];
    dot4<HDC>(qg, hd, rows, v);
    dot4<HDC>(qg, hd, rows + 4, v + 4);
    const __m256 r = reduce8(v);
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

// Prefetch row j (all of its head_dim elements): in decode the cache streams from memory.
template <typename KT>
inline void prefetch_row(const KT* row, int64_t hd) {
  const char* p = reinterpret_cast<const char*>(row);
  for (int64_t b = 0; b < hd * static_cast<int64_t>(sizeof(KT)); b += 64) _mm_prefetch(p + b, _MM_HINT_T0);
}

constexpr int64_t kPrefetchRows = 16;

template <typename KT>
inline void prefetch_block(const KT* k, int64_t stride, int64_t hd, int64_t j, int64_t n) {
  for (int64_t kk = 0; kk < 8 && j + kPrefetchRows + kk < n; ++kk)
    prefetch_row(k + (j + kPrefetchRows + kk) * stride, hd);
}

template <int HDC>
void scores_f32(const float* q, int64_t G, int64_t hd, const float* k, int64_t stride, int64_t n, float* s,
                int64_t lds) {
  for (int64_t j = 0; j < n; j += 8) {
    prefetch_block(k, stride, hd, j, n);
    const int64_t nb = imin(8, n - j);
    const float* rows[8];
    for (int64_t kk = 0; kk < 8; ++kk) rows[kk] = k + (j + imin(kk, nb - 1)) * stride;
    scores8<HDC>(q, G, hd, rows, nb, s + j, lds);
  }
}

template <int HDC>
void scores_f16(const float* q, int64_t G, int64_t hd_rt, const uint16_t* k, int64_t stride, int64_t n, float* s,
                int64_t lds, float* kbuf) {
  const int64_t hd = HDC ? HDC : hd_rt, hd8 = hd & ~int64_t{7};
  for (int64_t j = 0; j < n; j += 8) {
    prefetch_block(k, stride, hd, j, n);
    const int64_t nb = imin(8, n - j);
    const float* rows[8];
    for (int64_t kk = 0; kk < nb; ++kk) {  // widen the valid rows once for all G heads
      const uint16_t* src = k + (j + kk) * stride;
      float* dst = kbuf + kk * hd;
      for (int64_t i = 0; i < hd8; i += 8) _mm256_storeu_ps(dst + i, load8(src + i));
      for (int64_t i = hd8; i < hd; ++i) dst[i] = load1(src + i);
    }
    for (int64_t kk = 0; kk < 8; ++kk) rows[kk] = kbuf + imin(kk, nb - 1) * hd;
    scores8<HDC>(q, G, hd, rows, nb, s + j, lds);
  }
}

// o[g][d0 .. d0 + 8 * NV) for NG heads: acc = fma(p_j, v_j, acc) over j in order, from 0 or (ac) from o.
// pf: elements of each row to prefetch ahead (the first block of a row streams it in), or 0.
template <int NG, int NV, typename VT>
inline void pv_block(const float* p, int64_t ldp, const VT* v, int64_t stride, int64_t n, float* o, int64_t ldo,
                     bool ac, int64_t pf = 0) {
  __m256 acc[NG][NV];
  for (int g = 0; g < NG; ++g)
    for (int u = 0; u < NV; ++u) acc[g][u] = ac ? _mm256_loadu_ps(o + g * ldo + 8 * u) : _mm256_setzero_ps();
  for (int64_t j = 0; j < n; ++j) {
    const VT* vr = v + j * stride;
    if (pf && j + kPrefetchRows < n) prefetch_row(vr + kPrefetchRows * stride, pf);
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

template <int NG, int NV, typename VT>
void pv_heads(const float* p, int64_t ldp, int64_t hd, const VT* v, int64_t stride, int64_t n, float* o,
              int64_t ldo, bool ac) {
  for (int64_t j = 0; j < kPrefetchRows && j < n; ++j) prefetch_row(v + j * stride, hd);
  int64_t d = 0;
  for (; d + 8 * NV <= hd; d += 8 * NV) pv_block<NG, NV>(p, ldp, v + d, stride, n, o + d, ldo, ac, d == 0 ? hd : 0);
  if (NV > 2)
    for (; d + 16 <= hd; d += 16) pv_block<NG, 2>(p, ldp, v + d, stride, n, o + d, ldo, ac, d == 0 ? hd : 0);
  for (; d + 8 <= hd; d += 8) pv_block<NG, 1>(p, ldp, v + d, stride, n, o + d, ldo, ac, d == 0 ? hd : 0);
  for (; d < hd; ++d)
    for (int g = 0; g < NG; ++g) {
      float acc = ac ? o[g * ldo + d] : 0.0f;
      for (int64_t j = 0; j < n; ++j) {
        // scalar FMA, the same rounding as the vector lanes (and std::fma)
        const __m128 r = _mm_fmadd_ss(_mm_set_ss(p[g * ldp + j]), _mm_set_ss(load1(v + j * stride + d)),
                                      _mm_set_ss(acc));
        acc = _mm_cvtss_f32(r);
      }
      o[g * ldo + d] = acc;
    }
}

// Head blocking: NG heads x NV vectors of accumulators (8 independent FMA chains where G allows).
template <typename VT>
void pv(const float* p, int64_t ldp, int64_t G, int64_t hd, const VT* v, int64_t stride, int64_t n, float* o,
        int64_t ldo, bool ac) {
  if (G == 1) return pv_heads<1, 4>(p, ldp, hd, v, stride, n, o, ldo, ac);
  if (G == 2) return pv_heads<2, 4>(p, ldp, hd, v, stride, n, o, ldo, ac);
  int64_t g = 0;
  for (; g + 4 <= G; g += 4) pv_heads<4, 2>(p + g * ldp, ldp, hd, v, stride, n, o + g * ldo, ldo, ac);
  switch (G - g) {
    case 3: pv_heads<3, 2>(p + g * ldp, ldp, hd, v, stride, n, o + g * ldo, ldo, ac); break;
    case 2: pv_heads<2, 4>(p + g * ldp, ldp, hd, v, stride, n, o + g * ldo, ldo, ac); break;
    case 1: pv_heads<1, 4>(p + g * ldp, ldp, hd, v, stride, n, o + g * ldo, ldo, ac); break;
    default: break;
  }
}

template <int HDC>
void scores_typed(const float* q, int64_t G, int64_t hd, const void* k, bool f16, int64_t stride, int64_t n, float* s,
                  int64_t lds, float* kbuf) {
  if (f16) scores_f16<HDC>(q, G, hd, static_cast<const uint16_t*>(k), stride, n, s, lds, kbuf);
  else scores_f32<HDC>(q, G, hd, static_cast<const float*>(k), stride, n, s, lds);
}

// attn_exp_neg on 8 lanes (attention.cpp has the scalar twin and the constants' origin).
inline __m256 exp_neg8(__m256 x) {
  const __m256 magic = _mm256_set1_ps(12582912.0f);
  const __m256 t = _mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504088896341f), magic);
  const __m256 nf = _mm256_sub_ps(t, magic);
  __m256 r = _mm256_fmadd_ps(nf, _mm256_set1_ps(-0.693359375f), x);
  r = _mm256_fmadd_ps(nf, _mm256_set1_ps(2.12194440e-4f), r);
  const __m256 z = _mm256_mul_ps(r, r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  __m256 y = _mm256_add_ps(_mm256_fmadd_ps(p, z, r), _mm256_set1_ps(1.0f));
  const __m256i eb = _mm256_slli_epi32(
      _mm256_add_epi32(_mm256_sub_epi32(_mm256_castps_si256(t), _mm256_set1_epi32(0x4B400000)), _mm256_set1_epi32(127)),
      23);
  y = _mm256_mul_ps(y, _mm256_castsi256_ps(eb));
  return _mm256_andnot_ps(_mm256_cmp_ps(x, _mm256_set1_ps(-80.0f), _CMP_LT_OQ), y);
}

inline float fmax2(float a, float b) { return a > b ? a : b; }

// lanes j >= n of the block at j0 (n - j0 < 8): all-ones for the valid ones
inline __m256 valid_mask(int64_t left) {
  const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(left)), idx));
}

}  // namespace

void attn_softmax_avx2(float* s, int64_t n, float scale, float softcap, float* m_out, float* l_out) {
  // 16 lanes as two vectors: lo takes the blocks at j = 16i, hi those at j = 16i + 8
  const int64_t n16 = (n + 15) & ~int64_t{15};
  const __m256 ninf = _mm256_set1_ps(-INFINITY);
  if (softcap > 0) {  // scalar tanhf, as the scalar path
    for (int64_t j = 0; j < n; ++j) {
      const float x = s[j] * scale;
      s[j] = softcap * tanhf(x / softcap);
    }
    scale = 1.0f;  // x * 1 == x: the loop below leaves the capped scores as they are
  }
  const __m256 vs = _mm256_set1_ps(scale);
  __m256 mx[2] = {ninf, ninf};
  for (int64_t j = 0; j < n16; j += 8) {
    __m256 x = _mm256_mul_ps(_mm256_loadu_ps(s + j), vs);
    if (j + 8 > n) x = _mm256_blendv_ps(ninf, x, valid_mask(n - j));
    _mm256_storeu_ps(s + j, x);
    mx[(j >> 3) & 1] = _mm256_max_ps(mx[(j >> 3) & 1], x);
  }
  alignas(32) float ml[8];
  _mm256_store_ps(ml, _mm256_max_ps(mx[0], mx[1]));
  const float m =
      fmax2(fmax2(fmax2(ml[0], ml[1]), fmax2(ml[2], ml[3])), fmax2(fmax2(ml[4], ml[5]), fmax2(ml[6], ml[7])));
  const __m256 vm = _mm256_set1_ps(m);
  __m256 acc[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
  for (int64_t j = 0; j < n16; j += 8) {
    __m256 p = exp_neg8(_mm256_sub_ps(_mm256_loadu_ps(s + j), vm));
    if (j + 8 > n) p = _mm256_and_ps(p, valid_mask(n - j));
    _mm256_storeu_ps(s + j, p);
    acc[(j >> 3) & 1] = _mm256_add_ps(acc[(j >> 3) & 1], p);
  }
  alignas(32) float al[8];
  _mm256_store_ps(al, _mm256_add_ps(acc[0], acc[1]));
  *m_out = m;
  *l_out = ((al[0] + al[1]) + (al[2] + al[3])) + ((al[4] + al[5]) + (al[6] + al[7]));
}

void attn_scores_avx2(const float* q, int64_t G, int64_t hd, const void* k, bool f16, int64_t stride,
                      int64_t n, float* s, int64_t lds, float* kbuf) {
  switch (hd) {
    case 64: return scores_typed<64>(q, G, hd, k, f16, stride, n, s, lds, kbuf);
    case 128: return scores_typed<128>(q, G, hd, k, f16, stride, n, s, lds, kbuf);
    case 256: return scores_typed<256>(q, G, hd, k, f16, stride, n, s, lds, kbuf);
    default: return scores_typed<0>(q, G, hd, k, f16, stride, n, s, lds, kbuf);
  }
}

void attn_pv_avx2(const float* p, int64_t ldp, int64_t G, int64_t hd, const void* v, bool f16, int64_t stride,
                  int64_t n, float* o, int64_t ldo, float* kbuf, bool accumulate) {
  (void)kbuf;
  if (f16) pv(p, ldp, G, hd, static_cast<const uint16_t*>(v), stride, n, o, ldo, accumulate);
  else pv(p, ldp, G, hd, static_cast<const float*>(v), stride, n, o, ldo, accumulate);
}

void f32_to_f16_avx2(const float* x, uint16_t* y, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y + i),
                     _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
  for (; i < n; ++i) y[i] = static_cast<uint16_t>(_cvtss_sh(x[i], _MM_FROUND_TO_NEAREST_INT));
}

void act_glu_avx2(const float* g, const float* u, float* out, int64_t n, bool gelu) {
  const __m256 sign = _mm256_set1_ps(-0.0f), one = _mm256_set1_ps(1.0f), zero = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 x = _mm256_loadu_ps(g + i);
    __m256 v = x;
    if (gelu) {
      __m256 c = _mm256_mul_ps(_mm256_set1_ps(0.044715f), x);
      c = _mm256_mul_ps(c, x);
      c = _mm256_mul_ps(c, x);
      v = _mm256_mul_ps(_mm256_set1_ps(2.0f), _mm256_mul_ps(_mm256_set1_ps(0.7978845608028654f), _mm256_add_ps(x, c)));
    }
    const __m256 e = exp_neg8(_mm256_or_ps(v, sign));  // exp(-|v|)
    const __m256 num = _mm256_blendv_ps(e, one, _mm256_cmp_ps(v, zero, _CMP_GE_OQ));
    const __m256 sig = _mm256_div_ps(num, _mm256_add_ps(one, e));
    _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_mul_ps(x, sig), _mm256_loadu_ps(u + i)));
  }
  act_glu_scalar(g + i, u + i, out + i, n - i, gelu);
}

}  // namespace fastspec::cpu

#else  // no AVX2 build of this file: never called (isa_active() is scalar), kept for the link

namespace fastspec::cpu {
void attn_scores_avx2(const float* q, int64_t G, int64_t hd, const void* k, bool f16, int64_t stride,
                      int64_t n, float* s, int64_t lds, float* kbuf) {
  attn_scores_scalar(q, G, hd, k, f16, stride, n, s, lds, kbuf);
}
void attn_pv_avx2(const float* p, int64_t ldp, int64_t G, int64_t hd, const void* v, bool f16, int64_t stride,
                  int64_t n, float* o, int64_t ldo, float* kbuf, bool accumulate) {
  attn_pv_scalar(p, ldp, G, hd, v, f16, stride, n, o, ldo, kbuf, accumulate);
}
void attn_softmax_avx2(float* s, int64_t n, float scale, float softcap, float* m, float* l) {
  attn_softmax_scalar(s, n, scale, softcap, m, l);
}
void f32_to_f16_avx2(const float* x, uint16_t* y, int64_t n) { f32_to_f16_scalar(x, y, n); }
void act_glu_avx2(const float* g, const float* u, float* out, int64_t n, bool gelu) {
  act_glu_scalar(g, u, out, n, gelu);
}

}  // namespace fastspec::cpu

#endif
