// CPU feature detection (cpuid, xgetbv) and the FASTSPEC_ISA override.
#include "backend/cpu/isa.h"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif
#if defined(__aarch64__) && defined(__linux__)
#include <asm/hwcap.h>
#include <sys/auxv.h>
#elif defined(__aarch64__) && defined(__APPLE__)
#include <sys/sysctl.h>
#endif

#include "fastspec/status.h"

namespace fastspec::cpu {
namespace {

const char* const kNames[kIsaCount] = {"scalar", "avx2", "avx_vnni", "avx512_vnni", "neon", "neon_dotprod"};

#if defined(__x86_64__) || defined(__i386__)
// cpuid + xgetbv directly (not __builtin_cpu_supports, whose feature names differ between GCC
// and clang versions: clang 14 knows no "avxvnni"). A feature counts only when the OS also saves
// its registers (XCR0: SSE+AVX state for AVX2, plus opmask/ZMM state for AVX-512).
struct CpuFeatures {
  bool avx2 = false, fma = false, f16c = false, avx_vnni = false;
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512dq = false, avx512_vnni = false;
};

CpuFeatures read_features() {
  CpuFeatures f;
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  const bool osxsave = c >> 27 & 1, avx = c >> 28 & 1;
  if (!osxsave || !avx) return f;
  unsigned xlo, xhi;
  __asm__ volatile("xgetbv" : "=a"(xlo), "=d"(xhi) : "c"(0));
  const bool os_avx = (xlo & 0x6) == 0x6, os_avx512 = os_avx && (xlo & 0xe0) == 0xe0;
  if (!os_avx) return f;
  f.fma = c >> 12 & 1, f.f16c = c >> 29 & 1;
  if (__get_cpuid_max(0, nullptr) < 7) return f;
  __cpuid_count(7, 0, a, b, c, d);
  f.avx2 = b >> 5 & 1;
  if (os_avx512) {
    f.avx512f = b >> 16 & 1, f.avx512dq = b >> 17 & 1, f.avx512bw = b >> 30 & 1, f.avx512vl = b >> 31 & 1;
    f.avx512_vnni = c >> 11 & 1;
  }
  const unsigned subleaves = a;
  if (subleaves >= 1) {
    __cpuid_count(7, 1, a, b, c, d);
    f.avx_vnni = a >> 4 & 1;
  }
  return f;
}
#endif

#if defined(__aarch64__) && defined(__linux__)
// Linux reports the CPU's features in the auxiliary vector (AArch64 always has Advanced SIMD).
bool hwcap_bit(unsigned long bit) { return (getauxval(AT_HWCAP) & bit) != 0; }
#endif

bool detect(Isa isa) {
  if (isa == Isa::scalar) return true;
#if (defined(__x86_64__) || defined(__i386__)) && !defined(FASTSPEC_NO_X86_SIMD)
  static const CpuFeatures f = read_features();
  const bool avx2 = f.avx2 && f.fma && f.f16c;
  switch (isa) {
    case Isa::avx2: return avx2;
    case Isa::avx_vnni: return avx2 && f.avx_vnni;
    case Isa::avx512_vnni: return avx2 && f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq && f.avx512_vnni;
    default: return false;
  }
#elif defined(__aarch64__)
  if (isa == Isa::neon) return cpu_has_neon();
  if (isa == Isa::neon_dotprod) return cpu_has_neon_dotprod();
  return false;
#else
  return false;
#endif
}

Isa from_env() {
  const char* env = std::getenv("FASTSPEC_ISA");
  if (!env || !*env) return isa_best();
  Isa isa;
  if (!isa_from_name(env, &isa))
    throw Error(std::string("FASTSPEC_ISA='") + env + "' is not a CPU path (scalar, avx2, avx_vnni, avx512_vnni)");
  if (!isa_supported(isa))
    throw Error(std::string("FASTSPEC_ISA='") + env + "': this CPU does not support it (best here: " +
                isa_name(isa_best()) + ")");
  return isa;
}

std::atomic<int> g_active{-1};

}  // namespace

const char* isa_name(Isa isa) { return kNames[static_cast<int>(isa)]; }

bool isa_from_name(const char* name, Isa* out) {
  for (int k = 0; k < kIsaCount; ++k)
    if (std::strcmp(name, kNames[k]) == 0) return *out = static_cast<Isa>(k), true;
  return false;
}

bool isa_supported(Isa isa) {
  static const bool ok[kIsaCount] = {detect(Isa::scalar), detect(Isa::avx2),   detect(Isa::avx_vnni),
                                     detect(Isa::avx512_vnni), detect(Isa::neon), detect(Isa::neon_dotprod)};
  return ok[static_cast<int>(isa)];
}

Isa isa_best() {
  for (int k = kIsaCount - 1; k > 0; --k)
    if (isa_supported(static_cast<Isa>(k))) return static_cast<Isa>(k);
  return Isa::scalar;
}

Isa isa_active() {
  int a = g_active.load(std::memory_order_acquire);
  if (a < 0) {
    a = static_cast<int>(from_env());
    g_active.store(a, std::memory_order_release);
  }
  return static_cast<Isa>(a);
}

void isa_set(Isa isa) {
  if (!isa_supported(isa))
    throw Error(std::string("CPU path '") + isa_name(isa) + "' is not supported by this CPU (best here: " +
                isa_name(isa_best()) + ")");
  g_active.store(static_cast<int>(isa), std::memory_order_release);
}

bool cpu_has_avx2_fma_f16c() { return isa_supported(Isa::avx2); }

bool cpu_has_neon() {
#if defined(__aarch64__)
  return true;  // Advanced SIMD is mandatory in AArch64 (HWCAP_ASIMD is always set)
#else
  return false;
#endif
}

bool cpu_has_neon_dotprod() {
#if defined(__aarch64__) && defined(__linux__) && defined(HWCAP_ASIMDDP)
  static const bool v = hwcap_bit(HWCAP_ASIMDDP);
  return v;
#elif defined(__aarch64__) && defined(__APPLE__)
  static const bool v = [] {  // every Apple silicon core has it; ask anyway
    int on = 0;
    size_t len = sizeof(on);
    return sysctlbyname("hw.optional.arm.FEAT_DotProd", &on, &len, nullptr, 0) == 0 && on != 0;
  }();
  return v;
#else
  return false;
#endif
}

}  // namespace fastspec::cpu
