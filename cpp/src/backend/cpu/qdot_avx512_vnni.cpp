// The avx512_vnni copy of the SIMD integer-dot kernels (qdot_simd.inc, qdot_k_simd.inc), built with that
// ISA's compiler flags (CMakeLists.txt) and only called when the CPU has it (isa.cpp).
#if defined(__x86_64__) && !defined(FASTSPEC_NO_X86_SIMD)
#define FS_ISA_NS avx512_vnni
#define FS_DPBUSD 2
// GCC 12's AVX-512 headers fill unused operands with _mm512_undefined_epi32() (a self-initialized
// variable), which -Wmaybe-uninitialized reports at inlined shifts: a false positive.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#include "backend/cpu/qdot_simd.inc"
#include "backend/cpu/qdot_k_simd.inc"

namespace fastspec::cpu {
const QKernels* qkernels_avx512_vnni() {
  static const QKernels k = [] {
    QKernels t;
    t.isa = "avx512_vnni";
    avx512_vnni::fill_simd_32(t);
    avx512_vnni::fill_simd_k(t);
    return t;
  }();
  return &k;
}
}  // namespace fastspec::cpu
#else
#include "backend/cpu/qdot.h"
namespace fastspec::cpu {
const QKernels* qkernels_avx512_vnni() { return nullptr; }
}  // namespace fastspec::cpu
#endif
