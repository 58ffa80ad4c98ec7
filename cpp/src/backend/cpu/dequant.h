// Reference dequantization of stored weight formats to f32 (CPU). Bit-exact with ggml /
// gguf-py for the ggml types; used by ModelFile::dequantize, tests and as the ground truth
// that the fast matmul kernels are checked against.
#pragma once
#include <cstdint>

#include "fastspec/tensor.h"

namespace fastspec::cpu {

// dst[0..n) = dequant(src); n must be a multiple of dtype_traits(t)->block_size.
// src holds n / block_size blocks of block_bytes each. Throws FormatError for types it cannot
// dequantize (the caller adds file/tensor context).
void dequantize_row(DType t, const void* src, float* dst, int64_t n);

// IEEE half / bfloat16 bit patterns -> float (exact).
float fp16_to_f32(uint16_t h);
float bf16_to_f32(uint16_t h);
// The f16 stored at p (any alignment) as float.
float fp16_load(const uint8_t* p);

// K-quant 6-bit scale/min of sub-block j (0..7) from the 12 packed scale bytes s (ggml's
// get_scale_min_k4).
void scale_min_k4(int j, const uint8_t* s, int* sc, int* mn);

}  // namespace fastspec::cpu
