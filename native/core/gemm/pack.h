// Packing row-major rows into the panels of contract.h.
#pragma once
#include <cstddef>

#include "../platform/levels.h"

namespace recscore {

// [sync, any thread] Packs rows [0, n) of the row-major n x d matrix `src` (row stride ld) into
// panel_count(n) panels at dst (panel_count(n) * panel_floats(d) floats), zero-filling rows past n.
// A pure copy: the same bytes on every level.
void pack_panels(Level level, const float* src, size_t n, size_t d, size_t ld, float* dst);

}  // namespace recscore
