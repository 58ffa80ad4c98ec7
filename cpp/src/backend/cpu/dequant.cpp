// Reference dequantization of stored formats to f32 (scalar, CPU).
//
// Bit-exact with gguf-py's gguf.quants.dequantize (which follows ggml's dequantize_row_*):
// every value is computed with the same float32 operations in the same order, e.g.
// Q4_1 is `d * q + m` and Q4_K is `(d * sc) * q - (dmin * m)`. The build uses
// -ffp-contract=off, so none of these multiply-adds are fused. Loads go through memcpy, so
// `src` needs no alignment.
#include "backend/cpu/dequant.h"

#include <cstring>
#include <string>

#include "fastspec/status.h"

namespace fastspec::cpu {

// value = (-1)^s * 2^(e-15) * 1.m  (e == 0: 2^-14 * 0.m; e == 31: inf / nan, payload kept)
float fp16_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t man = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (man << 13);  // inf, or nan with the same payload (not quieted)
  } else if (exp != 0) {
    bits = sign | ((exp + (127 - 15)) << 23) | (man << 13);
  } else if (man == 0) {
    bits = sign;  // +-0
  } else {
    // subnormal man * 2^-24: shift until the implicit bit (bit 10) is set, 2^-14 * 1.m' * 2^-s
    exp = 127 - 15 + 1;
    while ((man & 0x400u) == 0) {
      man <<= 1;
      --exp;
    }
    bits = sign | (exp << 23) | ((man & 0x3ffu) << 13);
  }
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

// value = float with bits h << 16
float bf16_to_f32(uint16_t h) {
  const uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

namespace {

constexpr int kQK = 32;    // elements per block of the legacy quants (Q4_0 .. Q8_0)
constexpr int kQKK = 256;  // elements per super-block of the K-quants

template <typename T>
T load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

float load_f16(const uint8_t* p) { return fp16_load(p); }

// y[i] = (float)x[i]  (round to nearest for f64 / 64-bit ints; bool: nonzero -> 1)
template <typename T>
void convert_plain(const uint8_t* src, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = static_cast<float>(load<T>(src + i * sizeof(T)));
}

void convert_bool(const uint8_t* src, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = src[i] != 0 ? 1.0f : 0.0f;
}

void convert_f16(const uint8_t* src, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = load_f16(src + 2 * i);
}

void convert_bf16(const uint8_t* src, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = bf16_to_f32(load<uint16_t>(src + 2 * i));
}

// Block layouts (bytes): d f16 | m f16 | qh u32 | qs; nibble j of qs[] holds element j (low)
// and element j + 16 (high). Each function dequantizes one block b into y[0..block_size).

// Q4_0 {d, qs[16]}: y = d * (q - 8), q in [0, 16)
void block_q4_0(const uint8_t* b, float* y) {
  const float d = load_f16(b);
  const uint8_t* qs = b + 2;
  for (int j = 0; j < kQK / 2; ++j) {
    y[j] = d * static_cast<float>((qs[j] & 0x0f) - 8);
    y[j + kQK / 2] = d * static_cast<float>((qs[j] >> 4) - 8);
  }
}

// Q4_1 {d, m, qs[16]}: y = d * q + m, q in [0, 16)
void block_q4_1(const uint8_t* b, float* y) {
  const float d = load_f16(b);
  const float m = load_f16(b + 2);
  const uint8_t* qs = b + 4;
  for (int j = 0; j < kQK / 2; ++j) {
    y[j] = d * static_cast<float>(qs[j] & 0x0f) + m;
    y[j + kQK / 2] = d * static_cast<float>(qs[j] >> 4) + m;
  }
}

// Q5_0 {d, qh u32, qs[16]}: y = d * (q - 16), q = nibble | bit_i(qh) << 4 in [0, 32)
void block_q5_0(const uint8_t* b, float* y) {
  const float d = load_f16(b);
  const uint32_t qh = load<uint32_t>(b + 2);
  const uint8_t* qs = b + 6;
  for (int j = 0; j < kQK / 2; ++j) {
    const int q0 = (qs[j] & 0x0f) | static_cast<int>(((qh >> j) & 1u) << 4);
    const int q1 = (qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1u) << 4);
    y[j] = d * static_cast<float>(q0 - 16);
    y[j + kQK / 2] = d * static_cast<float>(q1 - 16);
  }
}

// Q5_1 {d, m, qh u32, qs[16]}: y = d * q + m, q = nibble | bit_i(qh) << 4 in [0, 32)
void block_q5_1(const uint8_t* b, float* y) {
  const float d = load_f16(b);
  const float m = load_f16(b + 2);
  const uint32_t qh = load<uint32_t>(b + 4);
  const uint8_t* qs = b + 8;
  for (int j = 0; j < kQK / 2; ++j) {
    const int q0 = (qs[j] & 0x0f) | static_cast<int>(((qh >> j) & 1u) << 4);
    const int q1 = (qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1u) << 4);
    y[j] = d * static_cast<float>(q0) + m;
    y[j + kQK / 2] = d * static_cast<float>(q1) + m;
  }
}

// Q8_0 {d, qs int8[32]}: y = q * d
void block_q8_0(const uint8_t* b, float* y) {
  const float d = load_f16(b);
  const int8_t* qs = reinterpret_cast<const int8_t*>(b + 2);
  for (int j = 0; j < kQK; ++j) y[j] = static_cast<float>(qs[j]) * d;
}

// Q4_K {d, dmin, scales[12], qs[128]}: y = (d * sc_j) * q - (dmin * m_j), sub-block j of 32
void block_q4_k(const uint8_t* b, float* y) {
  const float d = load_f16(b);
  const float dmin = load_f16(b + 2);
  const uint8_t* scales = b + 4;
  const uint8_t* qs = b + 16;
  // 4 chunks of 32 bytes: low nibbles are sub-block 2c, high nibbles sub-block 2c + 1
  for (int c = 0; c < 4; ++c) {
    int sc0, m0, sc1, m1;
    scale_min_k4(2 * c, scales, &sc0, &m0);
    scale_min_k4(2 * c + 1, scales, &sc1, &m1);
    const float d0 = d * static_cast<float>(sc0), dm0 = dmin * static_cast<float>(m0);
    const float d1 = d * static_cast<float>(sc1), dm1 = dmin * static_cast<float>(m1);
    const uint8_t* q = qs + 32 * c;
    for (int l = 0; l < 32; ++l) {
      y[64 * c + l] = d0 * static_cast<float>(q[l] & 0x0f) - dm0;
      y[64 * c + 32 + l] = d1 * static_cast<float>(q[l] >> 4) - dm1;
    }
  }
}

// Q5_K {d, dmin, scales[12], qh[32], qs[128]}: y = (d * sc_j) * q - (dmin * m_j),
// q = nibble | bit_j(qh[l]) << 4, sub-block j of 32 (nibbles laid out as in Q4_K)
void block_q5_k(const uint8_t* b, float* y) {
  const float d = load_f16(b);
  const float dmin = load_f16(b + 2);
  const uint8_t* scales = b + 4;
  const uint8_t* qh = b + 16;
  const uint8_t* qs = b + 48;
  for (int j = 0; j < 8; ++j) {
    int sc, mn;
    scale_min_k4(j, scales, &sc, &mn);
    const float dj = d * static_cast<float>(sc), dmj = dmin * static_cast<float>(mn);
    const uint8_t* q = qs + 32 * (j / 2);
    const int shift = 4 * (j % 2);
    for (int l = 0; l < 32; ++l) {
      const int v = ((q[l] >> shift) & 0x0f) | (((qh[l] >> j) & 1) << 4);
      y[32 * j + l] = dj * static_cast<float>(v) - dmj;
    }
  }
}

// Q6_K {ql[128], qh[64], scales int8[16], d}: y = (d * sc_{i/16}) * (q - 32),
// q = 4 bits of ql | 2 bits of qh << 4, element i = 128 h + 32 k + l
void block_q6_k(const uint8_t* b, float* y) {
  const uint8_t* ql = b;
  const uint8_t* qh = b + 128;
  const int8_t* scales = reinterpret_cast<const int8_t*>(b + 192);
  const float d = load_f16(b + 208);
  for (int h = 0; h < 2; ++h) {
    for (int k = 0; k < 4; ++k) {
      for (int l = 0; l < 32; ++l) {
        const int i = 128 * h + 32 * k + l;
        const int lo = (ql[64 * h + 32 * (k & 1) + l] >> (4 * (k >> 1))) & 0x0f;
        const int hi = (qh[32 * h + l] >> (2 * k)) & 3;
        const float dk = d * static_cast<float>(scales[i / 16]);
        y[i] = dk * static_cast<float>((lo | (hi << 4)) - 32);
      }
    }
  }
}

using BlockFn = void (*)(const uint8_t* b, float* y);

void for_blocks(BlockFn fn, const uint8_t* src, float* dst, int64_t n, int64_t block_size,
                int64_t block_bytes) {
  for (int64_t i = 0; i < n / block_size; ++i) fn(src + i * block_bytes, dst + i * block_size);
}

}  // namespace

// K-quant 6-bit scale/min pairs for the 8 sub-blocks, packed in 12 bytes (ggml
// get_scale_min_k4): j < 4: sc = s[j] & 63, mn = s[j+4] & 63; else the low/high nibble of
// s[j+4] plus the top two bits of s[j-4] / s[j].
void scale_min_k4(int j, const uint8_t* s, int* sc, int* mn) {
  if (j < 4) {
    *sc = s[j] & 63;
    *mn = s[j + 4] & 63;
  } else {
    *sc = (s[j + 4] & 0x0f) | ((s[j - 4] >> 6) << 4);
    *mn = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}

float fp16_load(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return fp16_to_f32(h);
}

// dst[0..n) = dequant(src), dispatched on the stored type.
void dequantize_row(DType t, const void* src_v, float* dst, int64_t n) {
  const DTypeTraits* tr = dtype_traits(t);
  if (tr == nullptr)
    throw FormatError("cannot dequantize unknown type id " +
                      std::to_string(static_cast<uint32_t>(t)));
  if (n < 0 || n % tr->block_size != 0)
    throw FormatError(std::string("cannot dequantize ") + tr->name + ": n=" + std::to_string(n) +
                      " is not a non-negative multiple of its block size " + std::to_string(tr->block_size));
  const uint8_t* src = static_cast<const uint8_t*>(src_v);
  const int64_t bs = tr->block_size, bb = tr->block_bytes;
  switch (t) {
    case DType::F32: std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float)); return;
    case DType::F16: convert_f16(src, dst, n); return;
    case DType::BF16: convert_bf16(src, dst, n); return;
    case DType::F64: convert_plain<double>(src, dst, n); return;
    case DType::I8: convert_plain<int8_t>(src, dst, n); return;
    case DType::I16: convert_plain<int16_t>(src, dst, n); return;
    case DType::I32: convert_plain<int32_t>(src, dst, n); return;
    case DType::I64: convert_plain<int64_t>(src, dst, n); return;
    case DType::U8: convert_plain<uint8_t>(src, dst, n); return;
    case DType::BOOL: convert_bool(src, dst, n); return;
    case DType::Q4_0: for_blocks(block_q4_0, src, dst, n, bs, bb); return;
    case DType::Q4_1: for_blocks(block_q4_1, src, dst, n, bs, bb); return;
    case DType::Q5_0: for_blocks(block_q5_0, src, dst, n, bs, bb); return;
    case DType::Q5_1: for_blocks(block_q5_1, src, dst, n, bs, bb); return;
    case DType::Q8_0: for_blocks(block_q8_0, src, dst, n, bs, bb); return;
    case DType::Q4_K: for_blocks(block_q4_k, src, dst, n, bs, bb); return;
    case DType::Q5_K: for_blocks(block_q5_k, src, dst, n, bs, bb); return;
    case DType::Q6_K: for_blocks(block_q6_k, src, dst, n, bs, bb); return;
    case DType::AWQ_INT4:
      throw FormatError("cannot dequantize AWQ_INT4 row by row (it is dequantize_awq's job)");
    default: break;  // Q8_1, Q2_K, Q3_K, Q8_K
  }
  throw FormatError(std::string("cannot dequantize ") + tr->name);
}

}  // namespace fastspec::cpu
