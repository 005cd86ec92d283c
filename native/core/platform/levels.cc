#include "levels.h"

#include <cstdlib>
#include <cstring>

namespace recscore {

const CpuFeatures& cpu_features() {
  // Immutable process-wide fact, so a function-local static is fine in a context-aware addon.
  static const CpuFeatures f = [] {
    CpuFeatures c;
#if defined(__x86_64__) || defined(__i386__)
    // libgcc's checks include the OS's XSAVE support for the ymm/zmm state.
    __builtin_cpu_init();
    c.avx2_fma = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    c.avx512 = c.avx2_fma && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
    c.avx512_vnni = c.avx512 && __builtin_cpu_supports("avx512vnni");
    c.avx512_bf16 = c.avx512 && __builtin_cpu_supports("avx512bf16");
    c.avx_vnni = c.avx2_fma && __builtin_cpu_supports("avxvnni");
#endif
    return c;
  }();
  return f;
}

bool level_supported(Level level) {
  switch (level) {
    case Level::kScalar:
      return true;
    case Level::kAvx2:
      return cpu_features().avx2_fma;
    case Level::kAvx512:
      return cpu_features().avx512;
  }
  return false;
}

Level max_supported_level() {
  if (level_supported(Level::kAvx512)) return Level::kAvx512;
  if (level_supported(Level::kAvx2)) return Level::kAvx2;
  return Level::kScalar;
}

Level default_level() {
  Level best = max_supported_level();
  const char* cap = std::getenv("RECSCORE_MAX_LEVEL");
  Level c;
  if (cap && parse_level(cap, &c) && static_cast<int>(c) < static_cast<int>(best)) return c;
  return best;
}

const char* level_name(Level level) {
  switch (level) {
    case Level::kScalar:
      return "scalar";
    case Level::kAvx2:
      return "avx2";
    case Level::kAvx512:
      return "avx512";
  }
  return "scalar";
}

bool parse_level(const char* name, Level* out) {
  for (int i = 0; i < kLevelCount; ++i) {
    Level l = static_cast<Level>(i);
    if (std::strcmp(name, level_name(l)) == 0) {
      *out = l;
      return true;
    }
  }
  return false;
}

}  // namespace recscore
