// AutoAWQ "GEMM" int4 weights: the one unpacker, used by the loader (whole matrix, dequantize_awq) and by the CPU backend (one output row at a time, in place in the mapping).
//   W[o, i] = (q[i, o] - z[i / group, o]) * s[i / group, o]          (Linear layout [out, in])
// qweight: int32 [in, out / 8]; qzeros: int32 [in / group, out / 8]; scales: f16 [in / group, out].
// Packing (AutoAWQ WQLinear_GEMM.from_linear): int32 column j holds output columns j*8 .. j*8+7,
// column j*8 + c in nibble awq_reverse_order[c] = [0, 4, 1, 5, 2, 6, 3, 7][c] (bits 4n..4n+3 of
// nibble n). q and z are unsigned 0..15; (q - z) * s is exact in f32 (a 5-bit integer times an
// f16 fits f32's 24-bit significand), so this equals AutoAWQ's result without fp16 rounding.
// The parts may sit at any byte offset of a mapping (safetensors aligns nothing): every load is
// a memcpy, never an int32/uint16 pointer read.
#pragma once
#include <cstdint>

#include "backend/cpu/dequant.h"

namespace fastspec::cpu {

struct AwqParts {
  const uint8_t* qweight = nullptr;  // int32 [in, out / 8]
  const uint8_t* qzeros = nullptr;   // int32 [in / group, out / 8]
  const uint8_t* scales = nullptr;   // f16 [in / group, out]
  int64_t in = 0, out = 0, group = 0;
};

// FormatError naming the sizes unless group > 0, in % group == 0 and out % 8 == 0.
void check_awq_sizes(const AwqParts& p);

// The 4-bit code of output column o in row i of a packed int32 part (qweight: i = input row;
// qzeros: i = group), out columns in all.
uint8_t awq_code(const uint8_t* part, int64_t out, int64_t i, int64_t o);

// dst[0..in) = W[o, 0..in) for 0 <= o < out (sizes as check_awq_sizes accepts; not re-checked).
void dequantize_awq_row(const AwqParts& p, int64_t o, float* dst);

// The whole matrix: dst [out, in] (checks the sizes first).
void dequantize_awq(const AwqParts& p, float* dst);

}  // namespace fastspec::cpu
