// The scalar reference of the integer-dot path (qdot.h has the formulas and the accumulation
// contract): activation quantizers, the 32-block dots, the layouts and the per-ISA table.
// Portable C++ with -ffp-contract=off: every SIMD path must reproduce these bits.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <mutex>

#include "backend/cpu/dequant.h"
#include "backend/cpu/qdot.h"
#include "backend/cpu/qpack.h"
#include "fastspec/status.h"

namespace fastspec::cpu {

ActLayout act_layout(ActFormat f, int64_t n) {
  ActLayout l;
  l.n = n;
  if (f == ActFormat::q8) {
    const int64_t groups = (n / 32 + 7) / 8;  // 8-block groups, the last one zero-padded
    l.q_stride = groups * 256;
    l.d_stride = l.s_stride = groups * 8;
  } else {
    l.q_stride = n;
    l.d_stride = n / 256;
    l.s_stride = n / 16;
  }
  return l;
}

bool qtype_of(DType t, QType* out) {
  switch (t) {
    case DType::Q4_0: *out = QType::q4_0; return true;
    case DType::Q4_1: *out = QType::q4_1; return true;
    case DType::Q5_0: *out = QType::q5_0; return true;
    case DType::Q5_1: *out = QType::q5_1; return true;
    case DType::Q8_0: *out = QType::q8_0; return true;
    case DType::Q4_K: *out = QType::q4_k; return true;
    case DType::Q5_K: *out = QType::q5_k; return true;
    case DType::Q6_K: *out = QType::q6_k; return true;
    case DType::AWQ_INT4: *out = QType::awq4; return true;  // only once packed (qpack.h)
    default: return false;
  }
}

bool act_format_for(DType t, ActFormat* f) {
  QType q;
  if (!qtype_of(t, &q)) return false;
  *f = (q == QType::q4_k || q == QType::q5_k || q == QType::q6_k) ? ActFormat::q8k : ActFormat::q8;
  return true;
}

namespace {

// q[i] = round_half_even(x[i] * id), id = 127 / max|x| over the block (0 for an all-zero block).
// Returns d = max|x| / 127.
float quant_block(const float* x, int64_t len, int8_t* q) {
  float amax = 0.0f;
  for (int64_t i = 0; i < len; ++i) amax = std::max(amax, std::fabs(x[i]));
  float id = amax > 0.0f ? 127.0f / amax : 0.0f;
  if (!std::isfinite(id)) id = 0.0f;  // amax tiny (< ~3.7e-37): treat the block as zero
  for (int64_t i = 0; i < len; ++i) q[i] = static_cast<int8_t>(std::nearbyint(x[i] * id));
  return amax / 127.0f;
}

}  // namespace

void quant_q8_scalar(const float* x, const ActLayout& lay, int8_t* q, float* d, int32_t* s, float* ds) {
  const int64_t nb = lay.n / 32;
  for (int64_t b = 0; b < lay.d_stride; ++b) {
    if (b >= nb) {
      std::memset(q + 32 * b, 0, 32);
      d[b] = ds[b] = 0.0f;
      s[b] = 0;
      continue;
    }
    d[b] = quant_block(x + 32 * b, 32, q + 32 * b);
    int32_t sum = 0;
    for (int i = 0; i < 32; ++i) sum += q[32 * b + i];
    s[b] = sum;
    ds[b] = d[b] * static_cast<float>(sum);
  }
}

void quant_q8k_scalar(const float* x, const ActLayout& lay, int8_t* q, float* d, int32_t* s, float*) {
  for (int64_t B = 0; B < lay.d_stride; ++B) d[B] = quant_block(x + 256 * B, 256, q + 256 * B);
  for (int64_t j = 0; j < lay.s_stride; ++j) {
    int32_t sum = 0;
    for (int i = 0; i < 16; ++i) sum += q[16 * j + i];
    s[j] = sum;
  }
}

namespace {

// The codes of one stored 32-block, signed (Q8_0) or unsigned as stored.
template <QType Q>
void decode_codes(const uint8_t* b, int code[32]) {
  if (Q == QType::q8_0) {
    for (int k = 0; k < 32; ++k) code[k] = static_cast<int8_t>(b[2 + k]) + 128;  // as packed
    return;
  }
  const bool has_min = Q == QType::q4_1 || Q == QType::q5_1;
  const bool five = Q == QType::q5_0 || Q == QType::q5_1;
  const int hdr = has_min ? 4 : 2;
  uint32_t qh = 0;
  if (five) std::memcpy(&qh, b + hdr, 4);
  const uint8_t* qs = b + hdr + (five ? 4 : 0);
  for (int k = 0; k < 16; ++k) {
    code[k] = (qs[k] & 0x0f) | (five ? static_cast<int>(((qh >> k) & 1u) << 4) : 0);
    code[k + 16] = (qs[k] >> 4) | (five ? static_cast<int>(((qh >> (k + 16)) & 1u) << 4) : 0);
  }
}

template <QType Q>
constexpr int offset32() {  // value = code - offset (qpack.h codes: Q8_0 is stored + 128)
  return Q == QType::q4_0 ? 8 : Q == QType::q5_0 ? 16 : Q == QType::q8_0 ? 128 : 0;
}

// Panel rows [0, n_rows) of packed weights w (qpack.h), T activation rows; qdot.h's formula, per
// output row j: acc = fma(d_j * da_b, float(P_bj), acc) [, acc = fma(m_j, da_b * float(S_b), acc)]
// over blocks b in order, P_bj = sum_k (code(j, k) - off) * a_k exact.
template <QType Q, int Bytes>
void rows32_scalar(const uint8_t* w, int64_t row_bytes, int64_t n_rows, const ActQ& a, int64_t T, float* y,
                   int64_t y_t, int64_t y_r) {
  constexpr DType kType = Q == QType::q4_0 ? DType::Q4_0 : Q == QType::q4_1 ? DType::Q4_1
                        : Q == QType::q5_0 ? DType::Q5_0 : Q == QType::q5_1 ? DType::Q5_1
                        : Q == QType::awq4 ? DType::AWQ_INT4 : DType::Q8_0;
  constexpr bool kMin = Q == QType::q4_1 || Q == QType::q5_1 || Q == QType::awq4;
  constexpr int kOff = offset32<Q>();
  const int64_t nb = a.lay.n / 32;
  const int64_t gb = Q == QType::awq4 ? awq_group_blocks(a.lay.n, row_bytes) : 1;  // AWQ: blocks per group (qpack.h)
  uint8_t stored[kPanelRows][Bytes];  // block b of the 16 rows, in the stored format
  for (int64_t p0 = 0; p0 < n_rows; p0 += kPanelRows) {
    const uint8_t* panel = w + p0 * row_bytes;
    const int64_t valid = std::min<int64_t>(kPanelRows, n_rows - p0);
    float acc[kQDotMaxRows][kPanelRows] = {};
    for (int64_t b = 0; b < nb; ++b) {
      int code[kPanelRows][32];
      float d[kPanelRows], m[kPanelRows];
      for (int j = 0; j < kPanelRows; ++j) {
        if (Q == QType::awq4) {  // qpack.h: per group d f16, m f32, then the blocks' nibble codes
          awq_panel_row(panel, gb, b, j, code[j], &d[j], &m[j]);
          continue;
        }
        const uint8_t* pb = panel + b * kPanelRows * Bytes;
        qunpack_block(kType, pb, j, stored[j]);
        d[j] = fp16_load(stored[j]);
        m[j] = kMin ? fp16_load(stored[j] + 2) : 0.0f;
        decode_codes<Q>(stored[j], code[j]);
      }
      for (int64_t t = 0; t < T; ++t) {
        const int8_t* q = a.q + t * a.lay.q_stride + 32 * b;
        const float da = a.d[t * a.lay.d_stride + b];
        const int32_t s = a.s[t * a.lay.s_stride + b];
        for (int j = 0; j < kPanelRows; ++j) {
          int32_t p = -kOff * s;
          for (int k = 0; k < 32; ++k) p += code[j][k] * q[k];
          float& r = acc[t][j];
          r = std::fma(d[j] * da, static_cast<float>(p), r);
          if (kMin) r = std::fma(m[j], a.ds[t * a.lay.d_stride + b], r);
        }
      }
    }
    for (int64_t t = 0; t < T; ++t)
      for (int64_t j = 0; j < valid; ++j) y[t * y_t + (p0 + j) * y_r] = acc[t][j];
  }
}

}  // namespace

void fill_scalar_32(QKernels& k) {  // packed panels (qpack.h): rows[] only
  k.rows[static_cast<int>(QType::q4_0)] = rows32_scalar<QType::q4_0, 18>;
  k.rows[static_cast<int>(QType::q4_1)] = rows32_scalar<QType::q4_1, 20>;
  k.rows[static_cast<int>(QType::q5_0)] = rows32_scalar<QType::q5_0, 22>;
  k.rows[static_cast<int>(QType::q5_1)] = rows32_scalar<QType::q5_1, 24>;
  k.rows[static_cast<int>(QType::q8_0)] = rows32_scalar<QType::q8_0, 34>;
  k.rows[static_cast<int>(QType::awq4)] = rows32_scalar<QType::awq4, 20>;  // Bytes unused: per group (qpack.h)
}

const QKernels* qkernels_scalar() {
  static const QKernels k = [] {
    QKernels t;
    t.isa = "scalar";
    fill_scalar_32(t);
    fill_scalar_k(t);
    t.quant[static_cast<int>(ActFormat::q8)] = quant_q8_scalar;
    t.quant[static_cast<int>(ActFormat::q8k)] = quant_q8k_scalar;
    return t;
  }();
  return &k;
}

const QKernels& qkernels(Isa isa) {
  static QKernels tables[kIsaCount];
  static std::once_flag once;
  std::call_once(once, [] {
    // Only touch an ISA's table when the CPU has it: its code (even the table's constructor) is
    // compiled with that ISA's flags.
    using Get = const QKernels* (*)();
    const Get get[kIsaCount] = {qkernels_scalar,      qkernels_avx2, qkernels_avx_vnni,
                                qkernels_avx512_vnni, qkernels_neon, qkernels_neon_dotprod};
    const QKernels* src[kIsaCount] = {};
    for (int i = 0; i < kIsaCount; ++i) src[i] = isa_supported(static_cast<Isa>(i)) ? get[i]() : nullptr;
    for (int i = 0; i < kIsaCount; ++i) {
      tables[i] = src[i] ? *src[i] : *src[0];
      if (!src[i]) tables[i].isa = "scalar";
      for (int k = 0; k < static_cast<int>(QType::count); ++k)
        if (!tables[i].rows[k]) tables[i].rows[k] = src[0]->rows[k];
      for (int k = 0; k < 2; ++k)
        if (!tables[i].quant[k]) tables[i].quant[k] = src[0]->quant[k];
    }
  });
  if (!isa_supported(isa))
    throw Error(std::string("CPU path '") + isa_name(isa) + "' is not supported by this CPU");
  return tables[static_cast<int>(isa)];
}

}  // namespace fastspec::cpu
