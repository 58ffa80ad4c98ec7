// The AVX-512 attention kernels (declared in attention.h), called only when the active path is
// avx512_vnni. The same arithmetic as attention.cpp's scalar kernels (and the AVX2 ones): the
// 16-lane dot accumulator is one zmm here, p*v keeps one fma per key per lane in key order.
// Only intrinsics and this file's own helpers here (see attention_avx2.cpp).
#include "backend/cpu/attention.h"

#if defined(__x86_64__) && !defined(FASTSPEC_NO_X86_SIMD) && defined(__AVX512F__) && defined(__AVX512BW__) && \
    defined(__AVX512VL__) && defined(__AVX512DQ__) && defined(__F16C__)
#include <immintrin.h>
#include <math.h>

// GCC 12's AVX-512 headers fill unused operands with _mm512_undefined_ps() (a self-initialized
// variable), which -Wmaybe-uninitialized reports at every inlined shuffle/convert: a false positive.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

namespace fastspec::cpu {
namespace {

inline int64_t imin(int64_t a, int64_t b) { return a < b ? a : b; }

inline __m512 load16(const float* p) { return _mm512_loadu_ps(p); }
inline __m512 load16(const uint16_t* p) {
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}
inline __m512 load8z(const float* p) { return _mm512_castps256_ps512(_mm256_loadu_ps(p)); }  // lanes 0..7
inline __m512 load8z(const uint16_t* p) {
  return _mm512_castps256_ps512(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
}
inline __m256 load8(const float* p) { return _mm256_loadu_ps(p); }
inline __m256 load8(const uint16_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
inline float load1(const float* p) { return *p; }
inline float load1(const uint16_t* p) { return _cvtsh_ss(*p); }

// hadd on each 128-bit lane: [a0 + a1, a2 + a3, b0 + b1, b2 + b3] per lane
inline __m512 hadd512(__m512 a, __m512 b) {
  return _mm512_add_ps(_mm512_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0)),
                       _mm512_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1)));
}

// [v_a | v_b] with v[l] = acc[l] + acc[l + 8]: the first step of the dot's lane sum for two keys
inline __m512 fold2(__m512 a, __m512 b) {
  return _mm512_add_ps(_mm512_shuffle_f32x4(a, b, _MM_SHUFFLE(1, 0, 1, 0)),
                       _mm512_shuffle_f32x4(a, b, _MM_SHUFFLE(3, 2, 3, 2)));
}

// z[g][2 * half + 0] = [v_k0 | v_k1], z[g][2 * half + 1] = [v_k2 | v_k3] for the 4 rows r (keys k0..k3)
// and NG heads: 16-lane accumulators of q_g . row, each 16-element step of the rows loaded
// (widened) once for all NG heads.
template <int NG, int HDC, typename KT>
__attribute__((always_inline)) inline void dots(const float* q, int64_t hd_rt, const KT* const r[4], __m512 z[][4],
                                                int half) {
  const int64_t hd = HDC ? HDC : hd_rt, hd16 = hd & ~int64_t{15}, hd8 = hd & ~int64_t{7};
  __m512 acc[NG][4];
  for (int g = 0; g < NG; ++g)
    for (int kk = 0; kk < 4; ++kk) acc[g][kk] = _mm512_setzero_ps();
  for (int64_t i = 0; i < hd16; i += 16) {
    __m512 kz[4];
    for (int kk = 0; kk < 4; ++kk) kz[kk] = load16(r[kk] + i);
    for (int g = 0; g < NG; ++g) {
      const __m512 qz = _mm512_loadu_ps(q + g * hd + i);
      for (int kk = 0; kk < 4; ++kk) acc[g][kk] = _mm512_fmadd_ps(qz, kz[kk], acc[g][kk]);
    }
  }
  if (hd8 > hd16) {  // one 8-element step into lanes 0..7
    __m512 kz[4];
    for (int kk = 0; kk < 4; ++kk) kz[kk] = load8z(r[kk] + hd16);
    for (int g = 0; g < NG; ++g) {
      const __m512 qz = load8z(q + g * hd + hd16);
      for (int kk = 0; kk < 4; ++kk) acc[g][kk] = _mm512_mask3_fmadd_ps(qz, kz[kk], acc[g][kk], 0x00ff);
    }
  }
  for (int g = 0; g < NG; ++g) {
    z[g][2 * half] = fold2(acc[g][0], acc[g][1]);
    z[g][2 * half + 1] = fold2(acc[g][2], acc[g][3]);
  }
}

// r[k] = ((v_k0 + v_k1) + (v_k2 + v_k3)) + ((v_k4 + v_k5) + (v_k6 + v_k7)) from z = [v0|v1], [v2|v3],
// [v4|v5], [v6|v7] (the tree of reduce8 in attention_avx2.cpp, on two keys per instruction).
inline __m256 reduce8z(const __m512 z[4]) {
  const __m512 ta = hadd512(z[0], z[1]), tb = hadd512(z[2], z[3]);
  // u: lane quarters [k0,k2,k4,k6: 0123], [same: 4567], [k1,k3,k5,k7: 0123], [same: 4567]
  const __m512 u = hadd512(ta, tb);
  const __m512 r = _mm512_add_ps(_mm512_shuffle_f32x4(u, u, _MM_SHUFFLE(2, 0, 2, 0)),
                                 _mm512_shuffle_f32x4(u, u, _MM_SHUFFLE(3, 1, 3, 1)));
  // low 256 bits: keys 0, 2, 4, 6, 1, 3, 5, 7
  return _mm256_permutexvar_ps(_mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7), _mm512_castps512_ps256(r));
}

// Scores of NG heads (q: [NG, hd]) against the 8 rows of a block, nb of them valid.
template <int NG, int HDC, typename KT>
__attribute__((always_inline)) inline void scores8(const float* q, int64_t hd_rt, const KT* const rows[8], int64_t nb,
                                                   float* s, int64_t lds) {
  const int64_t hd = HDC ? HDC : hd_rt, hd8 = hd & ~int64_t{7};
  __m512 z[NG][4];
  dots<NG, HDC>(q, hd, rows, z, 0);
  dots<NG, HDC>(q, hd, rows + 4, z, 1);
  for (int g = 0; g < NG; ++g) {
    const __m256 r = reduce8z(z[g]);
    float* sg = s + g * lds;
    if (nb == 8 && hd8 == hd) {
      _mm256_storeu_ps(sg, r);
      continue;
    }
    alignas(32) float tmp[8];
    _mm256_store_ps(tmp, r);
    const float* qg = q + g * hd;
    for (int64_t kk = 0; kk < nb; ++kk) {
      float x = tmp[kk];
      for (int64_t i = hd8; i < hd; ++i) x += qg[i] * load1(rows[kk] + i);
      sg[kk] = x;
    }
  }
}

// Prefetch row j (all of its head_dim elements) into L1/L2: the cache streams from memory in decode.
template <typename KT>
inline void prefetch_row(const KT* row, int64_t hd) {
  const char* p = reinterpret_cast<const char*>(row);
  for (int64_t b = 0; b < hd * static_cast<int64_t>(sizeof(KT)); b += 64) _mm_prefetch(p + b, _MM_HINT_T0);
}

constexpr int64_t kPrefetchRows = 16;

template <int NG, int HDC, typename KT>
void scores_heads(const float* q, int64_t hd, const KT* k, int64_t stride, int64_t n, float* s, int64_t lds) {
  for (int64_t j = 0; j < n; j += 8) {
    for (int64_t kk = 0; kk < 8 && j + kPrefetchRows + kk < n; ++kk)
    prefetch_row(k + (j + kPrefetchRows + kk) * stride, hd);
    const int64_t nb = imin(8, n - j);
    const KT* rows[8];
    for (int64_t kk = 0; kk < 8; ++kk) rows[kk] = k + (j + imin(kk, nb - 1)) * stride;
    scores8<NG, HDC>(q, hd, rows, nb, s + j, lds);
  }
}

// Heads in passes of up to 4 (NG * 4 accumulators + 4 rows + q within the 32 registers).
template <int HDC, typename KT>
void scores(const float* q, int64_t G, int64_t hd, const KT* k, int64_t stride, int64_t n, float* s, int64_t lds) {
  int64_t g = 0;
  for (; g + 4 <= G; g += 4) scores_heads<4, HDC>(q + g * hd, hd, k, stride, n, s + g * lds, lds);
  switch (G - g) {
    case 3: scores_heads<3, HDC>(q + g * hd, hd, k, stride, n, s + g * lds, lds); break;
    case 2: scores_heads<2, HDC>(q + g * hd, hd, k, stride, n, s + g * lds, lds); break;
    case 1: scores_heads<1, HDC>(q + g * hd, hd, k, stride, n, s + g * lds, lds); break;
    default: break;
  }
}

template <typename KT>
void scores_any(const float* q, int64_t G, int64_t hd, const KT* k, int64_t stride, int64_t n, float* s,
                int64_t lds) {
  switch (hd) {
    case 64: return scores<64>(q, G, hd, k, stride, n, s, lds);
    case 128: return scores<128>(q, G, hd, k, stride, n, s, lds);
    case 256: return scores<256>(q, G, hd, k, stride, n, s, lds);
    default: return scores<0>(q, G, hd, k, stride, n, s, lds);
  }
}

// o[g][0 .. 16 * NV) for NG heads: acc = fma(p_j, v_j, acc) over j in order, from 0 or (ac) from o.
// pf: elements of each row to prefetch ahead (the first block of a row streams it in), or 0.
template <int NG, int NV, typename VT>
inline void pv_block(const float* p, int64_t ldp, const VT* v, int64_t stride, int64_t n, float* o, int64_t ldo,
                     bool ac, int64_t pf = 0) {
  __m512 acc[NG][NV];
  for (int g = 0; g < NG; ++g)
    for (int u = 0; u < NV; ++u) acc[g][u] = ac ? _mm512_loadu_ps(o + g * ldo + 16 * u) : _mm512_setzero_ps();
  for (int64_t j = 0; j < n; ++j) {
    const VT* vr = v + j * stride;
    if (pf && j + kPrefetchRows < n) prefetch_row(vr + kPrefetchRows * stride, pf);
    __m512 x[NV];
    for (int u = 0; u < NV; ++u) x[u] = load16(vr + 16 * u);
    for (int g = 0; g < NG; ++g) {
      const __m512 pb = _mm512_set1_ps(p[g * ldp + j]);
      for (int u = 0; u < NV; ++u) acc[g][u] = _mm512_fmadd_ps(pb, x[u], acc[g][u]);
    }
  }
  for (int g = 0; g < NG; ++g)
    for (int u = 0; u < NV; ++u) _mm512_storeu_ps(o + g * ldo + 16 * u, acc[g][u]);
}

template <int NG, typename VT>
void pv_tail8(const float* p, int64_t ldp, const VT* v, int64_t stride, int64_t n, float* o, int64_t ldo, bool ac) {
  __m256 acc[NG];
  for (int g = 0; g < NG; ++g) acc[g] = ac ? _mm256_loadu_ps(o + g * ldo) : _mm256_setzero_ps();
  for (int64_t j = 0; j < n; ++j) {
    const __m256 x = load8(v + j * stride);
    for (int g = 0; g < NG; ++g) acc[g] = _mm256_fmadd_ps(_mm256_set1_ps(p[g * ldp + j]), x, acc[g]);
  }
  for (int g = 0; g < NG; ++g) _mm256_storeu_ps(o + g * ldo, acc[g]);
}

template <int NG, int NV, typename VT>
void pv_heads(const float* p, int64_t ldp, int64_t hd, const VT* v, int64_t stride, int64_t n, float* o,
              int64_t ldo, bool ac) {
  for (int64_t j = 0; j < kPrefetchRows && j < n; ++j) prefetch_row(v + j * stride, hd);
  int64_t d = 0;
  for (; d + 16 * NV <= hd; d += 16 * NV) pv_block<NG, NV>(p, ldp, v + d, stride, n, o + d, ldo, ac, d == 0 ? hd : 0);
  for (; d + 16 <= hd; d += 16) pv_block<NG, 1>(p, ldp, v + d, stride, n, o + d, ldo, ac, d == 0 ? hd : 0);
  for (; d + 8 <= hd; d += 8) pv_tail8<NG>(p, ldp, v + d, stride, n, o + d, ldo, ac);
  for (; d < hd; ++d)
    for (int g = 0; g < NG; ++g) {
      float acc = ac ? o[g * ldo + d] : 0.0f;
      for (int64_t j = 0; j < n; ++j) {
        const __m128 r = _mm_fmadd_ss(_mm_set_ss(p[g * ldp + j]), _mm_set_ss(load1(v + j * stride + d)),
                                      _mm_set_ss(acc));
        acc = _mm_cvtss_f32(r);
      }
      o[g * ldo + d] = acc;
    }
}

template <typename VT>
void pv(const float* p, int64_t ldp, int64_t G, int64_t hd, const VT* v, int64_t stride, int64_t n, float* o,
        int64_t ldo, bool ac) {
  if (G == 1) return pv_heads<1, 8>(p, ldp, hd, v, stride, n, o, ldo, ac);
  if (G == 2) return pv_heads<2, 4>(p, ldp, hd, v, stride, n, o, ldo, ac);
  int64_t g = 0;
  for (; g + 4 <= G; g += 4) pv_heads<4, 4>(p + g * ldp, ldp, hd, v, stride, n, o + g * ldo, ldo, ac);
  switch (G - g) {
    case 3: pv_heads<3, 4>(p + g * ldp, ldp, hd, v, stride, n, o + g * ldo, ldo, ac); break;
    case 2: pv_heads<2, 4>(p + g * ldp, ldp, hd, v, stride, n, o + g * ldo, ldo, ac); break;
    case 1: pv_heads<1, 8>(p + g * ldp, ldp, hd, v, stride, n, o + g * ldo, ldo, ac); break;
    default: break;
  }
}

// attn_exp_neg on 16 lanes (attention.cpp has the scalar twin).
inline __m512 exp_neg16(__m512 x) {
  const __m512 magic = _mm512_set1_ps(12582912.0f);
  const __m512 t = _mm512_fmadd_ps(x, _mm512_set1_ps(1.44269504088896341f), magic);
  const __m512 nf = _mm512_sub_ps(t, magic);
  __m512 r = _mm512_fmadd_ps(nf, _mm512_set1_ps(-0.693359375f), x);
  r = _mm512_fmadd_ps(nf, _mm512_set1_ps(2.12194440e-4f), r);
  const __m512 z = _mm512_mul_ps(r, r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  __m512 y = _mm512_add_ps(_mm512_fmadd_ps(p, z, r), _mm512_set1_ps(1.0f));
  const __m512i eb = _mm512_slli_epi32(
      _mm512_add_epi32(_mm512_sub_epi32(_mm512_castps_si512(t), _mm512_set1_epi32(0x4B400000)), _mm512_set1_epi32(127)),
      23);
  y = _mm512_mul_ps(y, _mm512_castsi512_ps(eb));
  return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(x, _mm512_set1_ps(-80.0f), _CMP_NLT_UQ), y);
}

inline float fmax2(float a, float b) { return a > b ? a : b; }

inline __mmask16 valid16(int64_t left) {  // lanes < left
  return left >= 16 ? static_cast<__mmask16>(0xffff) : left <= 0 ? static_cast<__mmask16>(0)
                                                                  : static_cast<__mmask16>((1u << left) - 1);
}

}  // namespace

void attn_softmax_avx512(float* s, int64_t n, float scale, float softcap, float* m_out, float* l_out) {
  const int64_t n16 = (n + 15) & ~int64_t{15};
  const __m512 ninf = _mm512_set1_ps(-INFINITY);
  if (softcap > 0) {  // scalar tanhf, as the scalar path
    for (int64_t j = 0; j < n; ++j) {
      const float x = s[j] * scale;
      s[j] = softcap * tanhf(x / softcap);
    }
    scale = 1.0f;
  }
  const __m512 vs = _mm512_set1_ps(scale);
  __m512 mx = ninf;
  for (int64_t j = 0; j < n16; j += 16) {
    __m512 x = _mm512_mul_ps(_mm512_loadu_ps(s + j), vs);
    if (j + 16 > n) x = _mm512_mask_mov_ps(ninf, valid16(n - j), x);
    _mm512_storeu_ps(s + j, x);
    mx = _mm512_max_ps(mx, x);
  }
  alignas(32) float ml[8];
  _mm256_store_ps(ml, _mm256_max_ps(_mm512_castps512_ps256(mx), _mm512_extractf32x8_ps(mx, 1)));
  const float m =
      fmax2(fmax2(fmax2(ml[0], ml[1]), fmax2(ml[2], ml[3])), fmax2(fmax2(ml[4], ml[5]), fmax2(ml[6], ml[7])));
  const __m512 vm = _mm512_set1_ps(m);
  __m512 acc = _mm512_setzero_ps();
  for (int64_t j = 0; j < n16; j += 16) {
    __m512 p = exp_neg16(_mm512_sub_ps(_mm512_loadu_ps(s + j), vm));
    if (j + 16 > n) p = _mm512_maskz_mov_ps(valid16(n - j), p);
    _mm512_storeu_ps(s + j, p);
    acc = _mm512_add_ps(acc, p);
  }
  alignas(32) float al[8];
  _mm256_store_ps(al, _mm256_add_ps(_mm512_castps512_ps256(acc), _mm512_extractf32x8_ps(acc, 1)));
  *m_out = m;
  *l_out = ((al[0] + al[1]) + (al[2] + al[3])) + ((al[4] + al[5]) + (al[6] + al[7]));
}

void attn_scores_avx512(const float* q, int64_t G, int64_t hd, const void* k, bool f16, int64_t stride,
                        int64_t n, float* s, int64_t lds, float* kbuf) {
  (void)kbuf;
  if (f16) scores_any(q, G, hd, static_cast<const uint16_t*>(k), stride, n, s, lds);
  else scores_any(q, G, hd, static_cast<const float*>(k), stride, n, s, lds);
}

void attn_pv_avx512(const float* p, int64_t ldp, int64_t G, int64_t hd, const void* v, bool f16, int64_t stride,
                    int64_t n, float* o, int64_t ldo, float* kbuf, bool accumulate) {
  (void)kbuf;
  if (f16) pv(p, ldp, G, hd, static_cast<const uint16_t*>(v), stride, n, o, ldo, accumulate);
  else pv(p, ldp, G, hd, static_cast<const float*>(v), stride, n, o, ldo, accumulate);
}

}  // namespace fastspec::cpu

#else  // no AVX-512 build of this file: never called (isa_active() is not avx512_vnni)

namespace fastspec::cpu {
void attn_scores_avx512(const float* q, int64_t G, int64_t hd, const void* k, bool f16, int64_t stride,
                        int64_t n, float* s, int64_t lds, float* kbuf) {
  attn_scores_scalar(q, G, hd, k, f16, stride, n, s, lds, kbuf);
}
void attn_pv_avx512(const float* p, int64_t ldp, int64_t G, int64_t hd, const void* v, bool f16, int64_t stride,
                    int64_t n, float* o, int64_t ldo, float* kbuf, bool accumulate) {
  attn_pv_scalar(p, ldp, G, hd, v, f16, stride, n, o, ldo, kbuf, accumulate);
}
void attn_softmax_avx512(float* s, int64_t n, float scale, float softcap, float* m, float* l) {
  attn_softmax_scalar(s, n, scale, softcap, m, l);
}
}  // namespace fastspec::cpu

#endif
