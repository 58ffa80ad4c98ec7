// CPU feature detection (cpuid through the compiler's builtins) and the FASTSPEC_ISA override.
#include "backend/cpu/isa.h"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>

#include "fastspec/status.h"

namespace fastspec::cpu {
namespace {

const char* const kNames[kIsaCount] = {"scalar", "avx2", "avx_vnni", "avx512_vnni"};

bool detect(Isa isa) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                    __builtin_cpu_supports("f16c");
  switch (isa) {
    case Isa::scalar: return true;
    case Isa::avx2: return avx2;
    case Isa::avx_vnni: return avx2 && __builtin_cpu_supports("avxvnni");
    case Isa::avx512_vnni:
      return avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
             __builtin_cpu_supports("avx512vnni");
  }
  return false;
#else
  return isa == Isa::scalar;
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
  static const bool ok[kIsaCount] = {detect(Isa::scalar), detect(Isa::avx2), detect(Isa::avx_vnni),
                                     detect(Isa::avx512_vnni)};
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

}  // namespace fastspec::cpu
