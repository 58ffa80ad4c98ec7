// AutoAWQ GEMM int4 weights in 16-row panels (qpack.h): read through the one AWQ unpacker's
// layout (dequant_awq.h), written in the 4-bit panel layout with d = s and an f32 min m = -s z.
#include <cstring>

#include "backend/cpu/dequant.h"
#include "backend/cpu/dequant_awq.h"
#include "backend/cpu/qpack.h"

namespace fastspec::cpu {
bool awq_packable(int64_t in, int64_t group) { return in % 32 == 0 && group > 0 && group % 32 == 0; }

uint64_t awq_pack_row_bytes(int64_t in) { return static_cast<uint64_t>(in / 32 * (kAwqPanelBlock / kPanelRows)); }

void awq_pack_panel(const AwqParts& p, int64_t panel, uint8_t* dst) {
  const int64_t nb = p.in / 32, o0 = panel * kPanelRows;
  std::memset(dst, 0, static_cast<size_t>(nb * kAwqPanelBlock));
  for (int j = 0; j < kPanelRows && o0 + j < p.out; ++j) {
    const int64_t o = o0 + j;
    uint8_t q[32];
    for (int64_t b = 0; b < nb; ++b) {
      uint8_t* pb = dst + b * kAwqPanelBlock;
      const int64_t g = 32 * b / p.group;
      const uint8_t z = awq_code(p.qzeros, p.out, g, o);
      uint16_t sh;
      std::memcpy(&sh, p.scales + (g * p.out + o) * 2, 2);
      std::memcpy(pb + 2 * j, &sh, 2);
      const float m = -(fp16_to_f32(sh) * static_cast<float>(z));
      std::memcpy(pb + kAwqPanelMin + 4 * j, &m, 4);
      for (int k = 0; k < 32; ++k) q[k] = awq_code(p.qweight, p.out, 32 * b + k, o);
      for (int r = 0; r < 4; ++r)
        for (int i = 0; i < 4; ++i)
          pb[kAwqPanelCodes + 64 * r + 4 * j + i] = static_cast<uint8_t>(q[4 * r + i] | (q[16 + 4 * r + i] << 4));
    }
  }
}

void awq_panel_row(const uint8_t* pb, int j, int code[32], float* d, float* m) {
  *d = fp16_load(pb + 2 * j);
  std::memcpy(m, pb + kAwqPanelMin + 4 * j, 4);
  for (int k = 0; k < 32; ++k) {
    const int g = k / 4, i = k % 4;
    const uint8_t byte = pb[kAwqPanelCodes + 64 * (g % 4) + 4 * j + i];
    code[k] = k < 16 ? (byte & 0x0f) : (byte >> 4);
  }
}

}  // namespace fastspec::cpu
