// Runtime CPU dispatch: which instruction-set path the CPU kernels use. One build runs on any
// x86-64 (or any aarch64); the best path the CPU supports is chosen at start-up. FASTSPEC_ISA
// forces one (scalar | avx2 | avx_vnni | avx512_vnni | neon | neon_dotprod); forcing a path this
// CPU (or this build: x86 paths exist only in x86 builds, NEON ones only in aarch64 builds) lacks
// is an Error.
#pragma once

namespace fastspec::cpu {

enum class Isa : int {
  scalar = 0,       // portable C++: the reference every SIMD path is tested against (bit-exact)
  avx2 = 1,         // AVX2 + FMA + F16C: maddubs/madd integer dots
  avx_vnni = 2,     // AVX2 + AVX-VNNI: vpdpbusd on 256-bit vectors (VEX)
  avx512_vnni = 3,  // AVX-512 F/BW/VL/DQ + VNNI (+ BF16 when present): vpdpbusd, 32 vector registers
  neon = 4,         // aarch64 Advanced SIMD (every ARMv8-A): smull + pairwise adds for the integer dots
  neon_dotprod = 5, // + the dot-product extension (ARMv8.2-A+dotprod: Cortex-A76/A78, Apple M1+): sdot
};
constexpr int kIsaCount = 6;
// The x86 SIMD paths: the float32 kernels (attention, GLU, F16/BF16 rows) have AVX2 versions
// taken on these; every other path (scalar, NEON) runs their portable versions.
inline bool isa_is_x86_simd(Isa isa) { return isa == Isa::avx2 || isa == Isa::avx_vnni || isa == Isa::avx512_vnni; }

const char* isa_name(Isa isa);
bool isa_from_name(const char* name, Isa* out);  // false for an unknown name
bool isa_supported(Isa isa);                     // this CPU (and this build) can run it
Isa isa_best();                                  // the best supported path
// The path in use: FASTSPEC_ISA when set (Error naming the value when unknown or unsupported),
// else isa_best(). Read once; isa_set() changes it (tests).
Isa isa_active();
void isa_set(Isa isa);  // Error when unsupported
bool cpu_has_avx2_fma_f16c();  // the f32 reference kernels' SIMD path
// The aarch64 features read at start-up (false elsewhere): HWCAP_ASIMD, HWCAP_ASIMDDP.
bool cpu_has_neon();
bool cpu_has_neon_dotprod();

}  // namespace fastspec::cpu
