// The CPU backend's own layout for the integer-dot weight types (Q4_0 Q4_1 Q5_0 Q5_1 Q8_0, and the
// K-quants Q4_K Q5_K Q6_K below): 16-row panels, prepared once at load (cpu_weights.cpp) for the
// integer-dot kernels (qdot.h).
//
// Why: a stored row keeps each 32-block's codes together, so a row-at-a-time kernel reduces every
// block horizontally and broadcasts per-row scales; decoding the block costs more than the dots
// once several activation rows share it (the verify pass). In a panel, one 32-bit lane j of a
// register holds 4 consecutive codes of weight row j, so one vpdpbusd against the 4 broadcast
// activation bytes advances 16 output rows at once, with no horizontal sums: the per-block
// scales of the 16 rows are one vector.
//
// Panel p holds weight rows 16p .. 16p+15 (rows past the end are zero: scale 0, codes 0); block b
// of the panel (blocks in row order) takes PB = 16 * block_bytes bytes, so the packed matrix has
// the stored size (rounded up to 16 rows) and row 16p's panel starts at 16p * row_bytes:
//   d[16]      f16     the 16 rows' scales                                        32 bytes
//   m[16]      f16     Q4_1 / Q5_1 only: the rows' mins                           32 bytes
//   hi[8]      uint64  Q5_0 / Q5_1 only: bit 4j+i of hi[g] = bit 4 of code(j, 4g+i)  64 bytes
//   codes:     Q4/Q5: 4 x 64 bytes, byte 4j+i of register r (r < 4) =
//                     low4(code(j, 4r+i)) | low4(code(j, 16+4r+i)) << 4
//              Q8_0:  8 x 64 bytes, byte 4j+i of register g = code(j, 4g+i) + 128 (unsigned)
// code(j, k) is the stored unsigned code (Q4: 0..15, Q5: 0..31, Q8_0: the signed value + 128).
//
// K-quants: block b of a panel is one 256-element super-block of the 16 rows, in "units" u of 32
// codes (Q4_K/Q5_K: sub-block u; Q6_K: sub-blocks 2u, 2u + 1), PB bytes (Q4_K 2368, Q5_K 2880:
// 64 more than the stored 16 x 144 / 16 x 176, the 6-bit scales unpacked to bytes; Q6_K 3360, the
// stored size); offsets in KPanelOff:
//   d[16], dmin[16] f16 (Q6_K: no dmin);  sc[s][16] u8 (Q6_K: [16][16] int8);  mn[8][16] u8
//   hi (Q5_K): 8 x 8 uint64 per unit, bit 4j+i of [u][g] = bit 4 of code(j, 32u + 4g + i)
//   codes: 4 x 64 bytes per unit, byte 4j+i of register r = low4(code(j, 32u+4r+i)) |
//          low4(code(j, 32u+16+4r+i)) << 4  (as the 32-element types)
//   h2 (Q6_K): 2 x 64 bytes per unit, byte 4j+i of register h, bits 2f..2f+1 = code(j, 32u +
//          4(4h+f) + i) >> 4
#pragma once
#include <cstdint>

#include "fastspec/tensor.h"

namespace fastspec::cpu {

constexpr int64_t kPanelRows = 16;

// True for the types stored in panels (the types with an integer dot).
bool qpack_type(DType t);
// Bytes per row once packed (16 rows of a panel take 16x this; the 32-element types: the stored
// row size; the K-quants: see above). Not AWQ_INT4, whose size depends on its group
// (awq_pack_row_bytes): throws.
uint64_t qpack_row_bytes(DType t, int64_t cols);
// Bytes of a packed [rows, cols] matrix (rows rounded up to a whole panel; not AWQ_INT4).
uint64_t qpack_bytes(DType t, int64_t rows, int64_t cols);
// Packs stored rows [16p, 16p + n) (n <= 16, row r at src + r * src_row_bytes, src = row 16p) of
// `cols` elements into one panel dst[16 * qpack_row_bytes]; missing rows are zero.
void qpack_panel(DType t, const uint8_t* src, uint64_t src_row_bytes, int64_t n, int64_t cols, uint8_t* dst);
// All stored rows [0, rows) into dst[qpack_bytes(t, rows, cols)], panel by panel.
void qpack_matrix(DType t, const uint8_t* src, uint64_t src_row_bytes, int64_t rows, int64_t cols, uint8_t* dst);
// 32-element types: the stored block of row j (< 16) from one panel block pb, and the stored bytes
// of row r (row_bytes of them) from a packed matrix (the exact inverse of the packing).
void qunpack_block(DType t, const uint8_t* pb, int j, uint8_t* dst);
void qunpack_row(DType t, const uint8_t* packed, uint64_t row_bytes, int64_t r, uint8_t* dst);
// dst[cols] = dequant(row r) of a packed matrix of row_bytes per row (qpack_row_bytes; AWQ_INT4:
// awq_pack_row_bytes, which tells the group), bit-equal to dequantize_row on the stored row
// (AWQ_INT4: to dequantize_awq_row).
void dequant_packed_row(DType t, const uint8_t* packed, uint64_t row_bytes, int64_t cols, int64_t r, float* dst);

// ---- AWQ int4 (qpack_awq.cpp) ----
// AutoAWQ GEMM weights (the parts of dequant_awq.h; in and group multiples of 32, in a multiple of
// group) in panels, the scale and zero stored once per group: a panel is in / group groups of
// G = group / 32 blocks of 32 inputs, each group of the 16 rows
//   d[16]      f16     the rows' group scale s                                    at 0, 32 bytes
//   m[16]      f32     -s z (exact: an f16 times a 4-bit integer)                at 32, 64 bytes
//   G x codes  block i of the group at 96 + 256 i: the 4-bit layout above (4 x 64 bytes)
// = awq_group_bytes(G) = 96 + 256 G bytes; block b of the panel is block b % G of group b / G.
// The value d q + m equals (q - z) s exactly. Row bytes (16 rows of a panel take 16x this):
//   awq_pack_row_bytes(in, group) = in / group * (96 + 256 G) / 16 = in / 32 * 16 + in / group * 6
// i.e. 16 + 6 / G bytes per 32 inputs: group 32 22, 64 19, 128 17.5 (Q4_0: 18).
// The kernels take G from the packed row size (awq_group_blocks), so QRowsFn needs no group.
constexpr int kAwqPanelMin = 32, kAwqPanelCodes = 96, kAwqPanelCodeBytes = 256;  // offsets in a group / per block
constexpr int64_t awq_group_bytes(int64_t gb) { return kAwqPanelCodes + kAwqPanelCodeBytes * gb; }  // G = gb
struct AwqParts;
bool awq_packable(int64_t in, int64_t group);  // in and group multiples of 32 (check_awq_sizes: in % group)
uint64_t awq_pack_row_bytes(int64_t in, int64_t group);
uint64_t awq_pack_bytes(int64_t out, int64_t in, int64_t group);  // out rounded up to a whole panel
// G of a packed matrix of `in` inputs from its row bytes (the inverse of awq_pack_row_bytes;
// throws naming the sizes when row_bytes is no AWQ packed size of `in`).
int64_t awq_group_blocks(int64_t in, int64_t row_bytes);
// Packs output rows [16p, 16p + n) of the AWQ matrix into one panel dst[16 * awq_pack_row_bytes].
void awq_pack_panel(const AwqParts& p, int64_t panel, uint8_t* dst);
// Row j's codes, scale and min of block b of one AWQ panel with gb blocks per group.
void awq_panel_row(const uint8_t* panel, int64_t gb, int64_t b, int j, int code[32], float* d, float* m);

// ---- K-quant pieces (qpack_k.cpp) ----
// One 256-element super-block of one row, decoded: unsigned codes (Q6_K: 0..63, before -32).
struct BlockK {
  uint8_t code[256];
  int sc[16];  // Q4_K/Q5_K: 8 six-bit scales; Q6_K: 16 int8 scales
  int m[8];    // Q4_K/Q5_K: 8 six-bit mins
  uint8_t d[2], dmin[2];  // f16 bits
};
struct KPanelOff {
  int d = 0, dmin = 0, sc = 0, mn = 0, hi = 0, codes = 0, h2 = 0, bytes = 0;
};
// constexpr: the SIMD kernels take their offsets from here at compile time.
constexpr KPanelOff kpanel_off(DType t) {
  KPanelOff o;
  if (t == DType::Q6_K) {
    o.sc = 32, o.codes = 288, o.h2 = 2336, o.bytes = 3360;
  } else {
    o.dmin = 32, o.sc = 64, o.mn = 192, o.hi = 320;
    o.codes = t == DType::Q5_K ? 832 : 320;
    o.bytes = t == DType::Q5_K ? 2880 : 2368;
  }
  return o;
}
void decode_k_stored(DType t, const uint8_t* b, BlockK* o);   // a stored block
void kpack_row(DType t, const BlockK& blk, int j, uint8_t* pb);  // row j into panel block pb (zeroed)
void kunpack_row(DType t, const uint8_t* pb, int j, BlockK* blk);
void dequant_k_block(DType t, const BlockK& blk, float* y);    // y[256], dequant.cpp's float ops

}  // namespace fastspec::cpu
