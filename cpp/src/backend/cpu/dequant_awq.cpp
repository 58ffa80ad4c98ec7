// W[o, i] = (q[i, o] - z[i / group, o]) * s[i / group, o]   (AutoAWQ GEMM int4 -> f32, Linear layout)
// Packing (AutoAWQ WQLinear_GEMM.from_linear): int32 column j of qweight/qzeros holds output
// columns j*8 .. j*8+7; nibble k (bits 4k..4k+3) holds column j*8 + awq_order[k] with
// awq_order = [0, 2, 4, 6, 1, 3, 5, 7]. Equivalently column j*8 + c sits in nibble
// awq_reverse_order[c] = [0, 4, 1, 5, 2, 6, 3, 7][c] (AutoAWQ's reverse_awq_order after unpacking
// with shifts 0, 4, ..., 28). q and z are unsigned 0..15; (q - z) * s is exact in f32 (a 5-bit
// integer times an f16 fits f32's 24-bit significand), so this equals AutoAWQ's result computed
// without fp16 rounding.
#include <cstring>
#include <string>
#include <vector>

#include "backend/cpu/dequant.h"
#include "fastspec/status.h"

namespace fastspec::cpu {
namespace {

constexpr int awq_order[8] = {0, 2, 4, 6, 1, 3, 5, 7};  // nibble k -> column offset

// Reads one packed int32 through memcpy: the parts may sit unaligned in a mapping.
inline uint32_t load_u32(const int32_t* p, int64_t idx) {
  uint32_t v;
  std::memcpy(&v, reinterpret_cast<const uint8_t*>(p) + idx * 4, 4);
  return v;
}

}  // namespace

void dequantize_awq(const int32_t* qweight, const int32_t* qzeros, const uint16_t* scales,
                    int64_t in_features, int64_t out_features, int64_t group_size, float* dst) {
  const int64_t packed = out_features / 8;  // int32 columns per row
  if (group_size <= 0 || in_features % group_size != 0 || out_features % 8 != 0)
    throw FormatError("dequantize_awq: bad sizes (in " + std::to_string(in_features) + ", out " +
                      std::to_string(out_features) + ", group " + std::to_string(group_size) + ")");
  std::vector<float> zero(static_cast<size_t>(out_features));   // [out]: z of the current group
  std::vector<float> scale(static_cast<size_t>(out_features));  // [out]: s of the current group
  for (int64_t i = 0; i < in_features; ++i) {
    if (i % group_size == 0) {
      const int64_t g = i / group_size;
      for (int64_t j = 0; j < packed; ++j) {
        const uint32_t zw = load_u32(qzeros, g * packed + j);
        for (int k = 0; k < 8; ++k) {
          const int64_t o = j * 8 + awq_order[k];
          uint16_t sbits;
          std::memcpy(&sbits, reinterpret_cast<const uint8_t*>(scales) + (g * out_features + o) * 2, 2);
          scale[o] = fp16_to_f32(sbits);
          zero[o] = static_cast<float>((zw >> (4 * k)) & 15u);
        }
      }
    }
    for (int64_t j = 0; j < packed; ++j) {
      const uint32_t qw = load_u32(qweight, i * packed + j);
      for (int k = 0; k < 8; ++k) {
        const int64_t o = j * 8 + awq_order[k];
        const float q = static_cast<float>((qw >> (4 * k)) & 15u);
        dst[o * in_features + i] = (q - zero[o]) * scale[o];
      }
    }
  }
}

}  // namespace fastspec::cpu
