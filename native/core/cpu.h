// Compatibility names for the levels of platform/levels.h (the one definition).
#pragma once
#include "platform/levels.h"

namespace recscore {

using Isa = Level;

// [sync, any thread] True when the CPU and OS support AVX2 and FMA.
inline bool cpu_has_avx2_fma() { return cpu_features().avx2_fma; }

// [sync, any thread] The default level (see default_level()).
inline Isa best_isa() { return default_level(); }

inline const char* isa_name(Isa isa) { return level_name(isa); }

}  // namespace recscore
