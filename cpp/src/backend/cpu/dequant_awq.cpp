// The AutoAWQ GEMM int4 unpacker (layout and formula: dequant_awq.h).
#include "backend/cpu/dequant_awq.h"

#include <cstring>
#include <string>

#include "fastspec/status.h"

namespace fastspec::cpu {
namespace {

constexpr int kNibbleOfColumn[8] = {0, 4, 1, 5, 2, 6, 3, 7};  // AutoAWQ's reverse_awq_order

// Packed int32 number idx of a part (any alignment).
inline uint32_t load_u32(const uint8_t* part, int64_t idx) {
  uint32_t v;
  std::memcpy(&v, part + idx * 4, 4);
  return v;
}

inline float nibble(uint32_t word, int shift) { return static_cast<float>((word >> shift) & 15u); }

}  // namespace

void check_awq_sizes(const AwqParts& p) {
  if (p.group <= 0 || p.in <= 0 || p.out <= 0 || p.in % p.group != 0 || p.out % 8 != 0)
    throw FormatError("AWQ weight: bad sizes (in " + std::to_string(p.in) + ", out " + std::to_string(p.out) +
                      ", group " + std::to_string(p.group) + "): in must be a multiple of group, out of 8");
}

uint8_t awq_code(const uint8_t* part, int64_t out, int64_t i, int64_t o) {
  return static_cast<uint8_t>((load_u32(part, i * (out / 8) + o / 8) >> (4 * kNibbleOfColumn[o % 8])) & 15u);
}

void dequantize_awq_row(const AwqParts& p, int64_t o, float* dst) {
  const int64_t out8 = p.out / 8, j = o / 8;  // the packed int32 column holding output o
  const int shift = 4 * kNibbleOfColumn[o % 8];
  for (int64_t i0 = 0; i0 < p.in; i0 += p.group) {
    const int64_t g = i0 / p.group;
    const float z = nibble(load_u32(p.qzeros, g * out8 + j), shift);
    const float s = fp16_load(p.scales + (g * p.out + o) * 2);
    for (int64_t i = i0; i < i0 + p.group; ++i) dst[i] = (nibble(load_u32(p.qweight, i * out8 + j), shift) - z) * s;
  }
}

void dequantize_awq(const AwqParts& p, float* dst) {
  check_awq_sizes(p);
  for (int64_t o = 0; o < p.out; ++o) dequantize_awq_row(p, o, dst + o * p.in);
}

}  // namespace fastspec::cpu
