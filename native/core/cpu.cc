#include "cpu.h"

namespace recscore {

bool cpu_has_avx2_fma() {
#if defined(__x86_64__) || defined(__i386__)
  // Immutable process-wide fact, so a function-local static is fine in a context-aware addon.
  static const bool has = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  }();
  return has;
#else
  return false;
#endif
}

Isa best_isa() { return cpu_has_avx2_fma() ? Isa::kAvx2 : Isa::kScalar; }

const char* isa_name(Isa isa) { return isa == Isa::kAvx2 ? "avx2" : "scalar"; }

}  // namespace recscore
