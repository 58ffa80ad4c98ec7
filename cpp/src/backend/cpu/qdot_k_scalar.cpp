// Scalar reference integer dots of the K-quants (Q4_K, Q5_K, Q6_K) on 16-row panels (qpack.h)
// against Q8K activations (qdot.h has the accumulation contract). Per output row j, per 256-block
// b of it, in block order (s: the activation sums per 16, da: the block's activation scale):
//   Q4_K, Q5_K: I = sum_u sc_u * P_u    P_u = sum over sub-block u of 32 of code * a
//               M = sum_u m_u * (s[2u] + s[2u+1])
//               acc = fma(d * da, float(I), acc);  acc = fma(-(dmin * da), float(M), acc)
//   Q6_K:       I = sum_u sc_u * P_u    P_u = sum over sub-block u of 16 of (code - 32) * a
//               acc = fma(d * da, float(I), acc)
//   y = acc (from +0).
// The integer sums are exact (int32 is ample: |I| < 2^28), so any SIMD reduction order gives the
// same I, M; the float operations above are the only ones, in this order (-ffp-contract=off).
#include <algorithm>
#include <cmath>

#include "backend/cpu/dequant.h"
#include "backend/cpu/qdot.h"
#include "backend/cpu/qpack.h"

namespace fastspec::cpu {
namespace {

template <QType Q>
void rowsk_scalar(const uint8_t* w, int64_t row_bytes, int64_t n_rows, const ActQ& a, int64_t T, float* y,
                  int64_t y_t, int64_t y_r) {
  constexpr DType kType = Q == QType::q4_k ? DType::Q4_K : Q == QType::q5_k ? DType::Q5_K : DType::Q6_K;
  const int64_t nb = a.lay.n / 256, pb = kpanel_off(kType).bytes;
  for (int64_t p0 = 0; p0 < n_rows; p0 += kPanelRows) {
    const uint8_t* panel = w + p0 * row_bytes;
    const int64_t valid = std::min<int64_t>(kPanelRows, n_rows - p0);
    for (int64_t j = 0; j < valid; ++j) {
      float acc[kQDotMaxRows] = {};
      BlockK blk;
      for (int64_t b = 0; b < nb; ++b) {
        kunpack_row(kType, panel + b * pb, static_cast<int>(j), &blk);  // once per block, for all T rows
        const float d = fp16_load(blk.d), dmin = fp16_load(blk.dmin);
        for (int64_t t = 0; t < T; ++t) {
          const int8_t* q = a.q + t * a.lay.q_stride + 256 * b;
          const float da = a.d[t * a.lay.d_stride + b];
          const int32_t* sa = a.s + t * a.lay.s_stride + 16 * b;
          int32_t I = 0, M = 0;
          if (Q == QType::q6_k) {
            for (int u = 0; u < 16; ++u) {
              int32_t p = 0;
              for (int i = 16 * u; i < 16 * u + 16; ++i) p += (blk.code[i] - 32) * q[i];
              I += blk.sc[u] * p;
            }
          } else {
            for (int u = 0; u < 8; ++u) {
              int32_t p = 0;
              for (int i = 32 * u; i < 32 * u + 32; ++i) p += blk.code[i] * q[i];
              I += blk.sc[u] * p;
              M += blk.m[u] * (sa[2 * u] + sa[2 * u + 1]);
            }
          }
          acc[t] = std::fma(d * da, static_cast<float>(I), acc[t]);
          if (Q != QType::q6_k) acc[t] = std::fma(-(dmin * da), static_cast<float>(M), acc[t]);
        }
      }
      for (int64_t t = 0; t < T; ++t) y[t * y_t + (p0 + j) * y_r] = acc[t];
    }
  }
}

}  // namespace

void fill_scalar_k(QKernels& k) {  // packed panels (qpack.h): rows[] only
  k.rows[static_cast<int>(QType::q4_k)] = rowsk_scalar<QType::q4_k>;
  k.rows[static_cast<int>(QType::q5_k)] = rowsk_scalar<QType::q5_k>;
  k.rows[static_cast<int>(QType::q6_k)] = rowsk_scalar<QType::q6_k>;
}

}  // namespace fastspec::cpu
