// AutoAWQ GEMM int4 weights in 16-row panels (qpack.h): read through the one AWQ unpacker's
// layout (dequant_awq.h), written in the 4-bit panel layout with d = s and an f32 min m = -s z,
// once per group of inputs.
#include <cstring>
#include <string>

#include "backend/cpu/dequant.h"
#include "backend/cpu/dequant_awq.h"
#include "backend/cpu/qpack.h"
#include "fastspec/status.h"

namespace fastspec::cpu {
bool awq_packable(int64_t in, int64_t group) { return in % 32 == 0 && group > 0 && group % 32 == 0; }

uint64_t awq_pack_row_bytes(int64_t in, int64_t group) {
  if (!awq_packable(in, group) || in % group != 0)
    throw InvalidArgument("awq_pack_row_bytes: " + std::to_string(in) + " inputs in groups of " + std::to_string(group) +
                          " (both multiples of 32, inputs a multiple of the group)");
  return static_cast<uint64_t>(in / group * awq_group_bytes(group / 32) / kPanelRows);
}

uint64_t awq_pack_bytes(int64_t out, int64_t in, int64_t group) {
  return static_cast<uint64_t>((out + kPanelRows - 1) / kPanelRows * kPanelRows) * awq_pack_row_bytes(in, group);
}

int64_t awq_group_blocks(int64_t in, int64_t row_bytes) {
  // 16 row_bytes = groups * 96 + nb * 256 (qpack.h), groups = nb / G
  const int64_t nb = in / 32, rest = kPanelRows * row_bytes - nb * kAwqPanelCodeBytes;
  const int64_t groups = rest > 0 && rest % kAwqPanelCodes == 0 ? rest / kAwqPanelCodes : 0;
  if (in % 32 != 0 || groups <= 0 || nb % groups != 0)
    throw InvalidArgument("AWQ panels: " + std::to_string(row_bytes) + " bytes per row is no packed size of " +
                          std::to_string(in) + " inputs (awq_pack_row_bytes)");
  return nb / groups;
}

void awq_pack_panel(const AwqParts& p, int64_t panel, uint8_t* dst) {
  const int64_t gb = p.group / 32, groups = p.in / p.group, o0 = panel * kPanelRows, gbytes = awq_group_bytes(gb);
  std::memset(dst, 0, static_cast<size_t>(groups * gbytes));
  for (int j = 0; j < kPanelRows && o0 + j < p.out; ++j) {
    const int64_t o = o0 + j;
    for (int64_t g = 0; g < groups; ++g) {
      uint8_t* pg = dst + g * gbytes;
      const uint8_t z = awq_code(p.qzeros, p.out, g, o);
      uint16_t sh;
      std::memcpy(&sh, p.scales + (g * p.out + o) * 2, 2);
      std::memcpy(pg + 2 * j, &sh, 2);
      const float m = -(fp16_to_f32(sh) * static_cast<float>(z));
      std::memcpy(pg + kAwqPanelMin + 4 * j, &m, 4);
      for (int64_t i = 0; i < gb; ++i) {
        uint8_t* c = pg + kAwqPanelCodes + kAwqPanelCodeBytes * i;
        uint8_t q[32];
        for (int k = 0; k < 32; ++k) q[k] = awq_code(p.qweight, p.out, p.group * g + 32 * i + k, o);
        for (int r = 0; r < 4; ++r)
          for (int k = 0; k < 4; ++k) c[64 * r + 4 * j + k] = static_cast<uint8_t>(q[4 * r + k] | (q[16 + 4 * r + k] << 4));
      }
    }
  }
}

void awq_panel_row(const uint8_t* panel, int64_t gb, int64_t b, int j, int code[32], float* d, float* m) {
  const uint8_t* pg = panel + b / gb * awq_group_bytes(gb);
  const uint8_t* c = pg + kAwqPanelCodes + kAwqPanelCodeBytes * (b % gb);
  *d = fp16_load(pg + 2 * j);
  std::memcpy(m, pg + kAwqPanelMin + 4 * j, 4);
  for (int k = 0; k < 32; ++k) {
    const int g = k / 4, i = k % 4;
    const uint8_t byte = c[64 * (g % 4) + 4 * j + i];
    code[k] = k < 16 ? (byte & 0x0f) : (byte >> 4);
  }
}

}  // namespace fastspec::cpu
