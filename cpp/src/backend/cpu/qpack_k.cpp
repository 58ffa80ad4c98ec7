// 16-row panels of the K-quants (Q4_K Q5_K Q6_K): packing at load, rows read back (qpack.h).
#include <cstring>

#include "backend/cpu/dequant.h"
#include "backend/cpu/qpack.h"
#include "fastspec/status.h"

namespace fastspec::cpu {

void decode_k_stored(DType t, const uint8_t* b, BlockK* o) {
  std::memset(o, 0, sizeof(*o));
  if (t == DType::Q6_K) {  // {ql[128], qh[64], scales int8[16], d}: element i = 128 h + 32 k + l
    const uint8_t* ql = b;
    const uint8_t* qh = b + 128;
    for (int j = 0; j < 16; ++j) o->sc[j] = static_cast<int8_t>(b[192 + j]);
    std::memcpy(o->d, b + 208, 2);
    for (int h = 0; h < 2; ++h)
      for (int k = 0; k < 4; ++k)
        for (int l = 0; l < 32; ++l) {
          const int lo = (ql[64 * h + 32 * (k & 1) + l] >> (4 * (k >> 1))) & 0x0f;
          const int hi = (qh[32 * h + l] >> (2 * k)) & 3;
          o->code[128 * h + 32 * k + l] = static_cast<uint8_t>(lo | (hi << 4));
        }
    return;
  }
  // Q4_K {d, dmin, scales[12], qs[128]} / Q5_K {d, dmin, scales[12], qh[32], qs[128]}: chunk c of
  // 32 qs bytes holds sub-block 2c (low nibbles) and 2c + 1 (high); Q5_K's bit 4 of sub-block j is
  // bit j of qh[l].
  const bool five = t == DType::Q5_K;
  std::memcpy(o->d, b, 2);
  std::memcpy(o->dmin, b + 2, 2);
  for (int j = 0; j < 8; ++j) {
    int sc, mn;
    scale_min_k4(j, b + 4, &sc, &mn);
    o->sc[j] = sc, o->m[j] = mn;
  }
  const uint8_t* qh = b + 16;
  const uint8_t* qs = b + (five ? 48 : 16);
  for (int j = 0; j < 8; ++j)
    for (int l = 0; l < 32; ++l) {
      int v = (qs[32 * (j / 2) + l] >> (4 * (j % 2))) & 0x0f;
      if (five) v |= ((qh[l] >> j) & 1) << 4;
      o->code[32 * j + l] = static_cast<uint8_t>(v);
    }
}

namespace {

// Byte 4j + i of code register r (< 4) of 32-code unit u: codes 32u + 4r + i (low nibble) and
// 32u + 16 + 4r + i (high nibble) of row j.
inline uint8_t& code_byte(uint8_t* pb, const KPanelOff& o, int u, int r, int j, int i) {
  return pb[o.codes + 256 * u + 64 * r + 4 * j + i];
}

}  // namespace

void kpack_row(DType t, const BlockK& blk, int j, uint8_t* pb) {
  const KPanelOff o = kpanel_off(t);
  std::memcpy(pb + o.d + 2 * j, blk.d, 2);
  if (t == DType::Q6_K) {
    for (int s = 0; s < 16; ++s) pb[o.sc + 16 * s + j] = static_cast<uint8_t>(static_cast<int8_t>(blk.sc[s]));
  } else {
    std::memcpy(pb + o.dmin + 2 * j, blk.dmin, 2);
    for (int s = 0; s < 8; ++s) {
      pb[o.sc + 16 * s + j] = static_cast<uint8_t>(blk.sc[s]);
      pb[o.mn + 16 * s + j] = static_cast<uint8_t>(blk.m[s]);
    }
  }
  for (int u = 0; u < 8; ++u)
    for (int r = 0; r < 4; ++r)
      for (int i = 0; i < 4; ++i) {
        const uint8_t lo = blk.code[32 * u + 4 * r + i], hi = blk.code[32 * u + 16 + 4 * r + i];
        code_byte(pb, o, u, r, j, i) = static_cast<uint8_t>((lo & 0x0f) | ((hi & 0x0f) << 4));
      }
  for (int u = 0; u < 8; ++u)
    for (int g = 0; g < 8; ++g)
      for (int i = 0; i < 4; ++i) {
        const int c = blk.code[32 * u + 4 * g + i], bit = 4 * j + i;
        if (t == DType::Q5_K && (c & 0x10)) pb[o.hi + 64 * u + 8 * g + bit / 8] |= static_cast<uint8_t>(1u << (bit % 8));
        if (t == DType::Q6_K)
          pb[o.h2 + 128 * u + 64 * (g / 4) + 4 * j + i] |= static_cast<uint8_t>(((c >> 4) & 3) << (2 * (g % 4)));
      }
}

void kunpack_row(DType t, const uint8_t* pb, int j, BlockK* blk) {
  const KPanelOff o = kpanel_off(t);
  std::memset(blk, 0, sizeof(*blk));
  std::memcpy(blk->d, pb + o.d + 2 * j, 2);
  if (t == DType::Q6_K) {
    for (int s = 0; s < 16; ++s) blk->sc[s] = static_cast<int8_t>(pb[o.sc + 16 * s + j]);
  } else {
    std::memcpy(blk->dmin, pb + o.dmin + 2 * j, 2);
    for (int s = 0; s < 8; ++s) blk->sc[s] = pb[o.sc + 16 * s + j], blk->m[s] = pb[o.mn + 16 * s + j];
  }
  for (int u = 0; u < 8; ++u)
    for (int g = 0; g < 8; ++g)
      for (int i = 0; i < 4; ++i) {
        const uint8_t byte = pb[o.codes + 256 * u + 64 * (g % 4) + 4 * j + i];
        int c = g < 4 ? (byte & 0x0f) : (byte >> 4);
        const int bit = 4 * j + i;
        if (t == DType::Q5_K && ((pb[o.hi + 64 * u + 8 * g + bit / 8] >> (bit % 8)) & 1)) c |= 0x10;
        if (t == DType::Q6_K) c |= ((pb[o.h2 + 128 * u + 64 * (g / 4) + 4 * j + i] >> (2 * (g % 4))) & 3) << 4;
        blk->code[32 * u + 4 * g + i] = static_cast<uint8_t>(c);
      }
}

void dequant_k_block(DType t, const BlockK& blk, float* y) {
  // the float operations of dequant.cpp's block_q4_k / block_q5_k / block_q6_k, in their order
  const float d = fp16_load(blk.d);
  if (t == DType::Q6_K) {
    for (int i = 0; i < 256; ++i) {
      const float dk = d * static_cast<float>(blk.sc[i / 16]);
      y[i] = dk * static_cast<float>(static_cast<int>(blk.code[i]) - 32);
    }
    return;
  }
  const float dmin = fp16_load(blk.dmin);
  for (int j = 0; j < 8; ++j) {
    const float dj = d * static_cast<float>(blk.sc[j]), dmj = dmin * static_cast<float>(blk.m[j]);
    for (int l = 0; l < 32; ++l) y[32 * j + l] = dj * static_cast<float>(blk.code[32 * j + l]) - dmj;
  }
}

}  // namespace fastspec::cpu
