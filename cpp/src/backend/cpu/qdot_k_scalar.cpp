// Scalar reference integer dots of the K-quants (Q4_K, Q5_K, Q6_K) against Q8K activations
// (qdot.h has the formulas and the accumulation contract). Per 256-block b of a row:
//   Q4_K, Q5_K: S1 = sum_j sc_j * sum_{i in sub-block j of 32} q_i a_i
//               S2 = sum_j m_j * (s[2j] + s[2j+1])           (s: the activation sums per 16)
//               v_b = (d*da) * float(S1) - (dmin*da) * float(S2)
//   Q6_K:       S1 = sum_j sc_j * sum_{i in sub-block j of 16} (q_i - 32) a_i
//               v_b = (d*da) * float(S1)
//   acc[b % 8] += v_b; y = qdot_combine(acc).
// The integer sums are exact (int32 is ample: |S1| < 2^28), so any SIMD reduction order gives the
// same S1, S2; the float operations above are the only ones, in this order (-ffp-contract=off).
#include <cstring>

#include "backend/cpu/dequant.h"
#include "backend/cpu/qdot.h"

namespace fastspec::cpu {
namespace {

// One decoded 256-block: unsigned codes (Q6_K: 0..63 before the -32 offset), scales, mins.
struct BlockK {
  int code[256];
  int sc[16];  // Q4_K/Q5_K: 8 six-bit scales; Q6_K: 16 int8 scales
  int m[8];    // Q4_K/Q5_K: 8 six-bit mins
  float d, dmin;
};

// Q4_K {d, dmin, scales[12], qs[128]}: chunk c of 32 bytes: low nibbles sub-block 2c, high 2c+1.
void decode_q4_k(const uint8_t* b, BlockK* o) {
  o->d = fp16_load(b);
  o->dmin = fp16_load(b + 2);
  for (int j = 0; j < 8; ++j) scale_min_k4(j, b + 4, &o->sc[j], &o->m[j]);
  const uint8_t* qs = b + 16;
  for (int c = 0; c < 4; ++c)
    for (int l = 0; l < 32; ++l) {
      o->code[64 * c + l] = qs[32 * c + l] & 0x0f;
      o->code[64 * c + 32 + l] = qs[32 * c + l] >> 4;
    }
}

// Q5_K {d, dmin, scales[12], qh[32], qs[128]}: code = nibble (as Q4_K) | bit j of qh[l] << 4.
void decode_q5_k(const uint8_t* b, BlockK* o) {
  o->d = fp16_load(b);
  o->dmin = fp16_load(b + 2);
  for (int j = 0; j < 8; ++j) scale_min_k4(j, b + 4, &o->sc[j], &o->m[j]);
  const uint8_t* qh = b + 16;
  const uint8_t* qs = b + 48;
  for (int j = 0; j < 8; ++j)
    for (int l = 0; l < 32; ++l)
      o->code[32 * j + l] = ((qs[32 * (j / 2) + l] >> (4 * (j % 2))) & 0x0f) | (((qh[l] >> j) & 1) << 4);
}

// Q6_K {ql[128], qh[64], scales int8[16], d}: element i = 128 h + 32 k + l.
void decode_q6_k(const uint8_t* b, BlockK* o) {
  const uint8_t* ql = b;
  const uint8_t* qh = b + 128;
  for (int j = 0; j < 16; ++j) o->sc[j] = static_cast<int8_t>(b[192 + j]);
  o->d = fp16_load(b + 208);
  o->dmin = 0.0f;
  for (int h = 0; h < 2; ++h)
    for (int k = 0; k < 4; ++k)
      for (int l = 0; l < 32; ++l) {
        const int lo = (ql[64 * h + 32 * (k & 1) + l] >> (4 * (k >> 1))) & 0x0f;
        const int hi = (qh[32 * h + l] >> (2 * k)) & 3;
        o->code[128 * h + 32 * k + l] = lo | (hi << 4);
      }
}

template <QType Q>
void decode_k(const uint8_t* b, BlockK* o) {
  if (Q == QType::q4_k) decode_q4_k(b, o);
  else if (Q == QType::q5_k) decode_q5_k(b, o);
  else decode_q6_k(b, o);
}

template <QType Q, int Bytes>
void dotk_scalar(const uint8_t* w, const ActQ& a, int64_t T, float* y, int64_t y_stride) {
  const int64_t nb = a.lay.n / 256;
  float acc[kQDotMaxRows][8];
  for (int64_t t = 0; t < T; ++t)
    for (int i = 0; i < 8; ++i) acc[t][i] = 0.0f;
  BlockK blk;
  for (int64_t b = 0; b < nb; ++b) {
    decode_k<Q>(w + b * Bytes, &blk);  // once per block, for all T rows
    for (int64_t t = 0; t < T; ++t) {
      const int8_t* q = a.q + t * a.lay.q_stride + 256 * b;
      const float da = a.d[t * a.lay.d_stride + b];
      const int32_t* sa = a.s + t * a.lay.s_stride + 16 * b;
      float v;
      if (Q == QType::q6_k) {
        int32_t s1 = 0;
        for (int j = 0; j < 16; ++j) {
          int32_t sub = 0;
          for (int i = 16 * j; i < 16 * j + 16; ++i) sub += (blk.code[i] - 32) * q[i];
          s1 += blk.sc[j] * sub;
        }
        v = (blk.d * da) * static_cast<float>(s1);
      } else {
        int32_t s1 = 0, s2 = 0;
        for (int j = 0; j < 8; ++j) {
          int32_t sub = 0;
          for (int i = 32 * j; i < 32 * j + 32; ++i) sub += blk.code[i] * q[i];
          s1 += blk.sc[j] * sub;
          s2 += blk.m[j] * (sa[2 * j] + sa[2 * j + 1]);
        }
        v = (blk.d * da) * static_cast<float>(s1) - (blk.dmin * da) * static_cast<float>(s2);
      }
      acc[t][b % 8] += v;
    }
  }
  for (int64_t t = 0; t < T; ++t) y[t * y_stride] = qdot_combine(acc[t]);
}

}  // namespace

void fill_scalar_k(QKernels& k) {
  k.dot[static_cast<int>(QType::q4_k)] = dotk_scalar<QType::q4_k, 144>;
  k.rows[static_cast<int>(QType::q4_k)] = qdot_rows<dotk_scalar<QType::q4_k, 144>>;
  k.dot[static_cast<int>(QType::q5_k)] = dotk_scalar<QType::q5_k, 176>;
  k.rows[static_cast<int>(QType::q5_k)] = qdot_rows<dotk_scalar<QType::q5_k, 176>>;
  k.dot[static_cast<int>(QType::q6_k)] = dotk_scalar<QType::q6_k, 210>;
  k.rows[static_cast<int>(QType::q6_k)] = qdot_rows<dotk_scalar<QType::q6_k, 210>>;
}

}  // namespace fastspec::cpu
