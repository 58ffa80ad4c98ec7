// The neon_dotprod copy of the NEON integer-dot kernels (qdot_neon.inc), built with that path's compiler
// flags (CMakeLists.txt) and only called when the CPU has it (isa.cpp: HWCAP on Linux).
#if defined(__aarch64__)
#define FS_ISA_NS neon_dotprod
#define FS_DOTPROD 1
#include "backend/cpu/qdot_neon.inc"

namespace fastspec::cpu {
const QKernels* qkernels_neon_dotprod() {
  static const QKernels k = [] {
    QKernels t;
    t.isa = "neon_dotprod";
    neon_dotprod::fill_neon(t);
    return t;
  }();
  return &k;
}
}  // namespace fastspec::cpu
#else
#include "backend/cpu/qdot.h"
namespace fastspec::cpu {
const QKernels* qkernels_neon_dotprod() { return nullptr; }
}  // namespace fastspec::cpu
#endif
