// 16-row panels of the 32-element block types: packing at load and the exact inverse (qpack.h).
#include "backend/cpu/qpack.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "backend/cpu/dequant.h"
#include "fastspec/status.h"

namespace fastspec::cpu {
namespace {

// Where the parts of one stored block are.
struct Fmt {
  int bytes = 0;      // stored block bytes
  bool min = false;   // f16 m after d
  bool five = false;  // uint32 of fifth bits after the header
  bool q8 = false;    // 32 signed bytes of codes
};

bool fmt_of(DType t, Fmt* f) {
  switch (t) {
    case DType::Q4_0: *f = {18, false, false, false}; return true;
    case DType::Q4_1: *f = {20, true, false, false}; return true;
    case DType::Q5_0: *f = {22, false, true, false}; return true;
    case DType::Q5_1: *f = {24, true, true, false}; return true;
    case DType::Q8_0: *f = {34, false, false, true}; return true;
    default: return false;
  }
}

Fmt fmt_or_throw(DType t) {
  Fmt f;
  if (!fmt_of(t, &f)) throw Error(std::string("qpack: type ") + dtype_name(t) + " has no panel layout");
  return f;
}

// Offsets inside one panel block.
struct PanelOff {
  int m, hi, codes;
};
PanelOff panel_off(const Fmt& f) {
  PanelOff o;
  o.m = 32;
  o.hi = 32 + (f.min ? 32 : 0);
  o.codes = o.hi + (f.five ? 64 : 0);
  return o;
}

void encode_block(const Fmt& f, const uint8_t code[32], const uint8_t d[2], const uint8_t m[2], uint8_t* b) {
  std::memcpy(b, d, 2);
  if (f.min) std::memcpy(b + 2, m, 2);
  const int hdr = f.min ? 4 : 2;
  if (f.q8) {
    for (int k = 0; k < 32; ++k) b[hdr + k] = static_cast<uint8_t>(static_cast<int8_t>(code[k] - 128));
    return;
  }
  uint32_t qh = 0;
  uint8_t* qs = b + hdr + (f.five ? 4 : 0);
  for (int k = 0; k < 16; ++k) {
    qs[k] = static_cast<uint8_t>((code[k] & 0x0f) | ((code[k + 16] & 0x0f) << 4));
    qh |= static_cast<uint32_t>((code[k] >> 4) & 1) << k;
    qh |= static_cast<uint32_t>((code[k + 16] >> 4) & 1) << (k + 16);
  }
  if (f.five) std::memcpy(b + hdr, &qh, 4);
}

// Row j's codes (unsigned, as packed) and f16 scales out of one panel block pb.
void get_row(const Fmt& f, const PanelOff& o, int j, const uint8_t* pb, uint8_t code[32], uint8_t d[2], uint8_t m[2]) {
  std::memcpy(d, pb + 2 * j, 2);
  if (f.min) std::memcpy(m, pb + o.m + 2 * j, 2);
  const uint8_t* c = pb + o.codes;
  for (int k = 0; k < 32; ++k) {
    const int g = k / 4, i = k % 4;
    if (f.q8) {
      code[k] = c[64 * g + 4 * j + i];
      continue;
    }
    const uint8_t byte = c[64 * (g % 4) + 4 * j + i];
    uint8_t v = k < 16 ? (byte & 0x0f) : (byte >> 4);
    if (f.five && ((pb[o.hi + 8 * g + (4 * j + i) / 8] >> ((4 * j + i) % 8)) & 1)) v |= 0x10;
    code[k] = v;
  }
}

bool is_k(DType t) { return t == DType::Q4_K || t == DType::Q5_K || t == DType::Q6_K; }

void qpack_panel_k(DType t, const uint8_t* src, uint64_t src_row_bytes, int64_t n, int64_t cols, uint8_t* dst) {
  const int64_t nb = cols / 256, pb = kpanel_off(t).bytes, bb = dtype_traits(t)->block_bytes;
  std::memset(dst, 0, static_cast<size_t>(nb * pb));
  BlockK blk;
  for (int64_t j = 0; j < n; ++j)
    for (int64_t b = 0; b < nb; ++b) {
      decode_k_stored(t, src + j * src_row_bytes + b * bb, &blk);
      kpack_row(t, blk, static_cast<int>(j), dst + b * pb);
    }
}

}  // namespace

bool qpack_type(DType t) {
  Fmt f;
  return fmt_of(t, &f) || is_k(t);
}

uint64_t qpack_row_bytes(DType t, int64_t cols) {
  if (t == DType::AWQ_INT4)
    throw InvalidArgument("qpack: the packed size of AWQ_INT4 (" + std::to_string(cols) +
                          " columns) depends on its group: awq_pack_row_bytes(in, group)");
  if (is_k(t)) return static_cast<uint64_t>(cols / 256 * kpanel_off(t).bytes / kPanelRows);
  return static_cast<uint64_t>(cols / 32 * fmt_or_throw(t).bytes);
}

uint64_t qpack_bytes(DType t, int64_t rows, int64_t cols) {
  return static_cast<uint64_t>((rows + kPanelRows - 1) / kPanelRows * kPanelRows) * qpack_row_bytes(t, cols);
}

void qpack_panel(DType t, const uint8_t* src, uint64_t row_bytes, int64_t n, int64_t cols, uint8_t* dst) {
  if (is_k(t)) return qpack_panel_k(t, src, row_bytes, n, cols, dst);
  // Direct byte moves (qpack.h): a stored Q4/Q5 qs byte k already holds codes k (low nibble) and
  // k + 16 (high nibble), i.e. byte 4r + i of row j's qs is panel code byte 4j + i of register r;
  // the fifth bits of codes 4g..4g+3 are nibble g of qh; Q8_0 codes move with their sign bit flipped.
  const Fmt f = fmt_or_throw(t);
  const PanelOff o = panel_off(f);
  const int64_t nb = static_cast<int64_t>(row_bytes) / f.bytes, pb = kPanelRows * f.bytes;
  std::memset(dst, 0, static_cast<size_t>(nb * pb));
  const int hdr = f.min ? 4 : 2;
  for (int64_t j = 0; j < n; ++j)
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t* blk = src + j * row_bytes + b * f.bytes;
      uint8_t* out = dst + b * pb;
      std::memcpy(out + 2 * j, blk, 2);
      if (f.min) std::memcpy(out + o.m + 2 * j, blk + 2, 2);
      uint8_t* c = out + o.codes;
      if (f.q8) {
        for (int g = 0; g < 8; ++g)
          for (int i = 0; i < 4; ++i) c[64 * g + 4 * j + i] = blk[hdr + 4 * g + i] ^ 0x80;
        continue;
      }
      const uint8_t* qs = blk + hdr + (f.five ? 4 : 0);
      for (int r = 0; r < 4; ++r) std::memcpy(c + 64 * r + 4 * j, qs + 4 * r, 4);
      if (f.five) {
        uint32_t qh;
        std::memcpy(&qh, blk + hdr, 4);
        for (int g = 0; g < 8; ++g)  // nibble j of hi[g] (little-endian uint64: byte j / 2)
          out[o.hi + 8 * g + j / 2] |= static_cast<uint8_t>(((qh >> (4 * g)) & 0xf) << (4 * (j % 2)));
      }
    }
}

void qpack_matrix(DType t, const uint8_t* src, uint64_t src_row_bytes, int64_t rows, int64_t cols, uint8_t* dst) {
  const uint64_t prb = qpack_row_bytes(t, cols);
  for (int64_t r0 = 0; r0 < rows; r0 += kPanelRows)
    qpack_panel(t, src + static_cast<uint64_t>(r0) * src_row_bytes, src_row_bytes, std::min<int64_t>(kPanelRows, rows - r0),
                cols, dst + static_cast<uint64_t>(r0) * prb);
}

void qunpack_block(DType t, const uint8_t* pb, int j, uint8_t* dst) {
  const Fmt f = fmt_or_throw(t);
  uint8_t code[32], d[2], m[2] = {0, 0};
  get_row(f, panel_off(f), j, pb, code, d, m);
  encode_block(f, code, d, m, dst);
}

void qunpack_row(DType t, const uint8_t* packed, uint64_t row_bytes, int64_t r, uint8_t* dst) {
  const Fmt f = fmt_or_throw(t);
  const PanelOff o = panel_off(f);
  const int64_t nb = static_cast<int64_t>(row_bytes) / f.bytes, pb = kPanelRows * f.bytes;
  const uint8_t* panel = packed + static_cast<uint64_t>(r / kPanelRows) * kPanelRows * row_bytes;
  uint8_t code[32], d[2], m[2] = {0, 0};
  for (int64_t b = 0; b < nb; ++b) {
    get_row(f, o, static_cast<int>(r % kPanelRows), panel + b * pb, code, d, m);
    encode_block(f, code, d, m, dst + b * f.bytes);
  }
}

void dequant_packed_row(DType t, const uint8_t* packed, uint64_t row_bytes, int64_t cols, int64_t r, float* dst) {
  const uint8_t* panel = packed + static_cast<uint64_t>(r / kPanelRows) * kPanelRows * row_bytes;
  if (t == DType::AWQ_INT4) {  // d q + m == (q - z) s exactly (qpack.h)
    const int64_t gb = awq_group_blocks(cols, static_cast<int64_t>(row_bytes));
    int code[32];
    float d, m;
    for (int64_t b = 0; b < cols / 32; ++b) {
      awq_panel_row(panel, gb, b, static_cast<int>(r % kPanelRows), code, &d, &m);
      for (int k = 0; k < 32; ++k) dst[32 * b + k] = d * static_cast<float>(code[k]) + m;
    }
    return;
  }
  if (is_k(t)) {
    const int64_t pb = kpanel_off(t).bytes;
    BlockK blk;
    for (int64_t b = 0; b < cols / 256; ++b) {
      kunpack_row(t, panel + b * pb, static_cast<int>(r % kPanelRows), &blk);
      dequant_k_block(t, blk, dst + 256 * b);
    }
    return;
  }
  const Fmt f = fmt_or_throw(t);
  const PanelOff o = panel_off(f);
  const int64_t nb = cols / 32, pb = kPanelRows * f.bytes;
  uint8_t code[32], d[2], m[2] = {0, 0}, blk[34];
  for (int64_t b = 0; b < nb; ++b) {
    get_row(f, o, static_cast<int>(r % kPanelRows), panel + b * pb, code, d, m);
    encode_block(f, code, d, m, blk);
    dequantize_row(t, blk, dst + 32 * b, 32);
  }
}

}  // namespace fastspec::cpu
