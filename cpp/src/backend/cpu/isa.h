// Runtime CPU dispatch: which instruction-set path the CPU kernels use. One build runs on any
// x86-64; the best path the CPU supports is chosen at start-up. FASTSPEC_ISA forces one
// (scalar | avx2 | avx_vnni | avx512_vnni); forcing a path this CPU lacks is an Error.
#pragma once

namespace fastspec::cpu {

enum class Isa : int {
  scalar = 0,       // portable C++: the reference every SIMD path is tested against (bit-exact)
  avx2 = 1,         // AVX2 + FMA + F16C: maddubs/madd integer dots
  avx_vnni = 2,     // AVX2 + AVX-VNNI: vpdpbusd on 256-bit vectors (VEX)
  avx512_vnni = 3,  // AVX-512 F/BW/VL/DQ + VNNI (+ BF16 when present): vpdpbusd, 32 vector registers
};
constexpr int kIsaCount = 4;

const char* isa_name(Isa isa);
bool isa_from_name(const char* name, Isa* out);  // false for an unknown name
bool isa_supported(Isa isa);                     // this CPU (and this build) can run it
Isa isa_best();                                  // the best supported path
// The path in use: FASTSPEC_ISA when set (Error naming the value when unknown or unsupported),
// else isa_best(). Read once; isa_set() changes it (tests).
Isa isa_active();
void isa_set(Isa isa);  // Error when unsupported
bool cpu_has_avx2_fma_f16c();  // the f32 reference kernels' SIMD path

}  // namespace fastspec::cpu
