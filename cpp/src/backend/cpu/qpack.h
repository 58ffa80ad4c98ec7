// The CPU backend's own layout for the 32-element block types (Q4_0 Q4_1 Q5_0 Q5_1 Q8_0):
// 16-row panels, prepared once at load (cpu_weights.cpp) for the integer-dot kernels (qdot.h).
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
#pragma once
#include <cstdint>

#include "fastspec/tensor.h"

namespace fastspec::cpu {

constexpr int64_t kPanelRows = 16;

// True for the types stored in panels (the 32-element block types with an integer dot).
bool qpack_type(DType t);
// Bytes of `rows` stored rows once packed (rows rounded up to a whole panel).
uint64_t qpack_bytes(int64_t rows, uint64_t row_bytes);
// Packs stored rows [16p, 16p + n) (n <= 16, row r at src + r * row_bytes, src = row 16p) into
// panel bytes dst[16 * row_bytes]; missing rows are zero.
void qpack_panel(DType t, const uint8_t* src, uint64_t row_bytes, int64_t n, uint8_t* dst);
// The stored block of row j (< 16) from one panel block pb (the exact inverse of the packing).
void qunpack_block(DType t, const uint8_t* pb, int j, uint8_t* dst);
// The stored bytes of row r (row_bytes of them) from a packed matrix (the exact inverse).
void qunpack_row(DType t, const uint8_t* packed, uint64_t row_bytes, int64_t r, uint8_t* dst);
// dst[cols] = dequant(row r) of a packed matrix, block by block (no row-sized scratch).
void dequant_packed_row(DType t, const uint8_t* packed, uint64_t row_bytes, int64_t cols, int64_t r, float* dst);

}  // namespace fastspec::cpu
