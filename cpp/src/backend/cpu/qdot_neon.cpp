// The neon copy of the NEON integer-dot kernels (qdot_neon.inc), built with that path's compiler
// flags (CMakeLists.txt) and only called when the CPU has it (isa.cpp: HWCAP on Linux).
#if defined(__aarch64__)
#define FS_ISA_NS neon
#define FS_DOTPROD 0
#include "backend/cpu/qdot_neon.inc"

namespace fastspec::cpu {
const QKernels* qkernels_neon() {
  static const QKernels k = [] {
    QKernels t;
    t.isa = "neon";
    neon::fill_neon(t);
    return t;
  }();
  return &k;
}
}  // namespace fastspec::cpu
#else
#include "backend/cpu/qdot.h"
namespace fastspec::cpu {
const QKernels* qkernels_neon() { return nullptr; }
}  // namespace fastspec::cpu
#endif
