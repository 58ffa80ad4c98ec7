// What every SIMD integer-dot kernel file shares, ISA-neutral (no intrinsics): the panel layout
// constants per type (qpack.h states the layout) and the panel walk that cuts T activation rows
// into tiles. Included by qdot_simd.inc / qdot_k_simd.inc (x86) and qdot_neon.inc (aarch64).
// Everything here has internal linkage (an unnamed namespace): each ISA's translation unit, built
// with its own compiler flags, gets its own copy, so the linker never merges an AVX-512 copy of
// a template into a path that runs on a CPU without it.
#pragma once
#include <algorithm>
#include <cstdint>

#include "backend/cpu/qdot.h"
#include "backend/cpu/qpack.h"

namespace fastspec::cpu {
namespace {

// A 32-element type's panel block (qpack.h): scales d at 0, mins at 32, Q5 fifth bits at kHi,
// codes at kCodes; kPB bytes per block of the 16 rows. AWQ: d and m once per group of blocks
// (PanelBlocks), block i of a group with its codes at group + kCodeStride * i + kCodes.
template <QType Q>
struct Panel32 {
  static constexpr bool kAwq = Q == QType::awq4;  // mins as f32 (qpack.h)
  static constexpr bool kMin = Q == QType::q4_1 || Q == QType::q5_1 || kAwq;
  static constexpr bool kFive = Q == QType::q5_0 || Q == QType::q5_1;
  static constexpr bool kQ8 = Q == QType::q8_0;
  static constexpr int kOff = Q == QType::q4_0 ? 8 : Q == QType::q5_0 ? 16 : kQ8 ? 128 : 0;
  static constexpr int kBytes = Q == QType::q4_0 ? 18 : Q == QType::q4_1 ? 20 : Q == QType::q5_0 ? 22
                              : Q == QType::q5_1 ? 24 : kAwq ? 22 : 34;
  static constexpr int kPB = 16 * kBytes;  // bytes of one panel block (AWQ: of a group of one block)
  static constexpr int kHi = 32 + (kMin ? (kAwq ? 64 : 32) : 0), kCodes = kHi + (kFive ? 64 : 0);
  static constexpr int kCodeStride = kAwq ? kAwqPanelCodeBytes : kPB;
  static_assert(!kAwq || (kCodes == kAwqPanelCodes && kPB == awq_group_bytes(1) && kHi == kAwqPanelCodes),
                "AWQ panel layout (qpack.h)");
};

// How the blocks of a 32-element type's panel lie: n blocks, in groups of per_group consecutive
// blocks that share one d / m header (AWQ: group / 32, taken from the packed row size; every
// other type: 1), group_bytes per group. Block b is block i = b % per_group of group b / per_group:
// d, m at the group's start, codes at group + kCodeStride * i + kCodes.
struct PanelBlocks {
  int64_t n = 0, per_group = 1, group_bytes = 0;
};
template <QType Q>
PanelBlocks panel_blocks(int64_t n_inputs, int64_t row_bytes) {
  PanelBlocks b;
  b.n = n_inputs / 32;
  b.per_group = Panel32<Q>::kAwq ? awq_group_blocks(n_inputs, row_bytes) : 1;
  b.group_bytes = Panel32<Q>::kAwq ? awq_group_bytes(b.per_group) : Panel32<Q>::kPB;
  return b;
}

// A K-quant's panel block: offsets from qpack.h's kpanel_off.
template <QType Q>
struct PanelK {
  static constexpr DType kType = Q == QType::q4_k ? DType::Q4_K : Q == QType::q5_k ? DType::Q5_K : DType::Q6_K;
  static constexpr bool kSix = Q == QType::q6_k, kFive = Q == QType::q5_k;
  static constexpr KPanelOff kO = kpanel_off(kType);
  static constexpr int kD = kO.d, kDmin = kO.dmin, kSc = kO.sc, kMn = kO.mn, kHi = kO.hi;
  static constexpr int kCodes = kO.codes, kH2 = kO.h2, kPB = kO.bytes;
};

// 4 activation bytes as one int32 (an unaligned, aliasing load the compiler folds into a broadcast).
typedef int32_t __attribute__((may_alias, aligned(1))) i32_unaligned;
inline int32_t load_i32(const int8_t* p) { return *reinterpret_cast<const i32_unaligned*>(p); }

constexpr int64_t kPrefetchPanels = 1;  // measured best of 1, 2, 4 (Zen 4)

// Prefetches the n bytes at p (a later panel's block) into the cache, one line per 64 bytes.
inline void prefetch_bytes(const uint8_t* p, int n) {
  for (int l = 0; l < n; l += 64) __builtin_prefetch(p + l, 0, 3);
}

// The panel walk every panel kernel shares: K::template tile<NT>(panel, nb, ...) computes NT
// activation rows against one panel (nb, passed through: how its blocks lie, the K-quants' block
// count, the 32-element types' PanelBlocks); rows [0, n_rows) of the panels at w (y_r == 1), T
// rows in tiles of 8 (K::kMaxTile >= 8) / 4 / 2 / 1 (a row's arithmetic does not depend on its
// tile). Tiles of 8: AVX-512 only, where they are as fast per row as tiles of 4 with the panel in
// L2 (Zen 5: 15.6 vs 2 x 8.75 ns per 16x32 Q4_1 block) and read a streamed panel once instead of
// twice (on Zen 4, double-pumped, tiles of 6 or 8 rows were slower: 30.9 / 29.5 vs 26.8 ns per
// block for 8 rows, L2-resident); 256-bit paths keep 4 (16 registers). The panel kPrefetchPanels
// ahead is prefetched by the first tile.
template <typename K, typename Blocks>
void panel_rows(const uint8_t* w, int64_t row_bytes, int64_t n_rows, const ActQ& a, const Blocks& nb, int64_t T,
                float* y, int64_t y_t, int64_t y_r) {
  for (int64_t p0 = 0; p0 < n_rows; p0 += 16) {
    const uint8_t* panel = w + p0 * row_bytes;
    const int valid = static_cast<int>(std::min<int64_t>(16, n_rows - p0));
    float* yp = y + p0 * y_r;
    // software prefetch: the hardware prefetchers fall behind when compute dominates (Zen 4, 35 MB
    // of Q4_1 streamed, ns per 16x32 block T=1 12.0 -> 10.0, T=4 20.7 -> 14.0, T=8 52 -> 32; the
    // L2-resident cost is 7, 16, 31)
    // the panel kPrefetchPanels on, also past this call's rows: callers walk a matrix in calls of
    // one panel (matmul_glu, the residual outputs), whose next call reads it; past the matrix's end
    // it is a wasted hint (a prefetch never faults; the address is formed as an integer)
    const auto* ahead = reinterpret_cast<const uint8_t*>(reinterpret_cast<uintptr_t>(panel) +
                                                         static_cast<uintptr_t>(16 * kPrefetchPanels * row_bytes));
    int64_t t = 0;
    if constexpr (K::kMaxTile >= 8)
      for (; t + 8 <= T; t += 8) K::template tile<8>(panel, nb, a, t, yp, y_t, valid, t == 0 ? ahead : nullptr);
    for (; t + 4 <= T; t += 4) K::template tile<4>(panel, nb, a, t, yp, y_t, valid, t == 0 ? ahead : nullptr);
    if (t + 2 <= T) K::template tile<2>(panel, nb, a, t, yp, y_t, valid, t == 0 ? ahead : nullptr), t += 2;
    if (t < T) K::template tile<1>(panel, nb, a, t, yp, y_t, valid, t == 0 ? ahead : nullptr);
  }
}

}  // namespace
}  // namespace fastspec::cpu
