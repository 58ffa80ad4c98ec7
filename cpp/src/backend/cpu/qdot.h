// 8-bit-activation integer dot products: the fast matmul path (llama.cpp's lever).
//
// An activation row x[n] is quantized once per matmul input into 8-bit blocks:
//   Q8   (for the 32-element weight blocks Q4_0 Q4_1 Q5_0 Q5_1 Q8_0):
//        x[i] ~ d[b] * q[i], b = i / 32, d[b] = max|x in b| / 127, q = round(x * (127 / max|x in b|)),
//        s[b] = sum of q in block b, ds[b] = d[b] * float(s[b]). Rows are padded to a multiple of
//        8 blocks (zeros).
//   Q8K  (for the 256-element K-quant blocks Q4_K Q5_K Q6_K):
//        x[i] ~ d[B] * q[i], B = i / 256 (same rule over 256 elements), s[j] = sum of q over the
//        16 elements of group j = i / 16.
// Weights are dotted with T activation rows at once (the weights are decoded once for all T rows).
// The float accumulation order is part of the contract, so that every ISA path is bit-exact with the
// scalar reference and a row's result never depends on T (batch invariance).
// 32-element types, packed in 16-row panels at load (qpack.h; codes c unsigned as packed: 0..15,
// 0..31, or the signed Q8_0 value + 128), per output row j and activation row t:
//   P_bj = sum_k (c_jk - off) * a_k, exact (off = 8 Q4_0, 16 Q5_0, 128 Q8_0, 0 Q4_1 / Q5_1)
//   acc_j = +0; for each block b in order: acc_j = fma(d_jb * da_b, float(P_bj), acc_j)
//   Q4_1 / Q5_1 (value = d c + m), after that:   acc_j = fma(m_jb, ds_b, acc_j)   (ds_b = da_b * float(S_b))
//   y = acc_j; S_b(a) = the activation block sum.
// AWQ int4 (W = (q - z) s per group of inputs, group a multiple of 32), packed like Q4_1 with
// d = s and an f32 min m = -s z (exact), stored once per group (qpack.h): the Q4_1 formula above,
// d_jb and m_jb the same for every block b of a group.
// K-quants, packed in 16-row panels too (qpack.h), per output row j and 256-block b in order:
//   Q4_K, Q5_K (8 sub-blocks u of 32, 6-bit scale sc_u and min m_u):
//     acc = fma(d*da, float(sum_u sc_u * P_u), acc);  acc = fma(-(dmin*da), float(sum_u m_u * S_u(a)), acc)
//   Q6_K (16 sub-blocks u of 16, int8 scale sc_u):   acc = fma(d*da, float(sum_u sc_u * P_u), acc)
//   P_u = exact sum over the sub-block of code * a (Q6_K: (code - 32) * a); y = acc.
#pragma once
#include <cstdint>

#include "backend/cpu/isa.h"
#include "fastspec/tensor.h"

namespace fastspec::cpu {

enum class ActFormat : int { q8 = 0, q8k = 1 };

// Sizes of one quantized activation row (elements of each array); strides of the [T, ...] arrays.
struct ActLayout {
  int64_t n = 0;         // row length (elements)
  int64_t q_stride = 0;  // int8 codes per row (n, padded to 256 for Q8)
  int64_t d_stride = 0;  // float scales per row (Q8: padded blocks, a multiple of 8; Q8K: n / 256)
  int64_t s_stride = 0;  // int32 sums per row (Q8: one per block, padded; Q8K: n / 16)
};
ActLayout act_layout(ActFormat f, int64_t n);
// The activation format a weight type needs; false when the type has no integer dot (F16/BF16/F32,
// AWQ and other types take the float32 path).
bool act_format_for(DType t, ActFormat* f);

// T quantized activation rows (views into the backend's workspace).
struct ActQ {
  ActLayout lay;
  const int8_t* q = nullptr;   // [T, lay.q_stride]
  const float* d = nullptr;    // [T, lay.d_stride]
  const int32_t* s = nullptr;  // [T, lay.s_stride]
  const float* ds = nullptr;   // [T, lay.d_stride] Q8 only: d * float(s)
  // The same rows from row t0 on (callers cut T into chunks of kQDotMaxRows).
  ActQ from_row(int64_t t0) const {
    ActQ r = *this;
    r.q += t0 * lay.q_stride, r.d += t0 * lay.d_stride, r.s += t0 * lay.s_stride;
    if (r.ds) r.ds += t0 * lay.d_stride;
    return r;
  }
};

// Rows per dot call: callers chunk larger T (the result of a row does not depend on the chunk).
constexpr int64_t kQDotMaxRows = 64;

// Rows [0, n_rows) of a packed weight matrix (qpack.h: w starts at a panel, 16 rows of row_bytes
// per panel), T <= kQDotMaxRows activation rows: y[t * y_t + r * y_r] = dot(weight row r, row t);
// rows past n_rows in the last panel are not written. One call per task keeps the dispatch off the rows.
// AWQ: row_bytes = awq_pack_row_bytes(n, group) also tells the kernel the group (awq_group_blocks).
using QRowsFn = void (*)(const uint8_t* w, int64_t row_bytes, int64_t n_rows, const ActQ& a, int64_t T, float* y,
                         int64_t y_t, int64_t y_r);

// One row x[n] -> q[lay.q_stride], d[lay.d_stride], s[lay.s_stride], and for Q8 ds[lay.d_stride]
// (padding written as zeros; Q8K leaves ds alone).
using QuantFn = void (*)(const float* x, const ActLayout& lay, int8_t* q, float* d, int32_t* s, float* ds);

enum class QType : int { q4_0 = 0, q4_1, q5_0, q5_1, q8_0, q4_k, q5_k, q6_k, awq4, count };
bool qtype_of(DType t, QType* out);  // false for types without an integer dot

struct QKernels {
  const char* isa = "";
  QRowsFn rows[static_cast<int>(QType::count)] = {};  // nullptr: this ISA has none (use scalar's)
  QuantFn quant[2] = {};                             // by ActFormat
};

// The kernels of one ISA path (every entry filled: missing SIMD kernels fall back to scalar).
const QKernels& qkernels(Isa isa);

// Per-ISA tables (qdot_<isa>.cpp); each returns nullptr when the path is not compiled in.
const QKernels* qkernels_scalar();
const QKernels* qkernels_avx2();
const QKernels* qkernels_avx_vnni();
const QKernels* qkernels_avx512_vnni();
const QKernels* qkernels_neon();
const QKernels* qkernels_neon_dotprod();

// Scalar reference pieces the SIMD files and tests share (qdot_scalar.cpp, qdot_k_scalar.cpp).
void quant_q8_scalar(const float* x, const ActLayout& lay, int8_t* q, float* d, int32_t* s, float* ds);
void quant_q8k_scalar(const float* x, const ActLayout& lay, int8_t* q, float* d, int32_t* s, float* ds);
void fill_scalar_32(QKernels& k);   // Q4_0 Q4_1 Q5_0 Q5_1 Q8_0
void fill_scalar_k(QKernels& k);    // Q4_K Q5_K Q6_K

// The fixed final combine of the 8 accumulators.
inline float qdot_combine(const float acc[8]) {
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

}  // namespace fastspec::cpu
