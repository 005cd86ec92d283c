// Packing row-major rows into the panels of contract.h.
#pragma once
#include <cstddef>

#include "../platform/levels.h"

namespace recscore {

// [sync, any thread] Packs rows [0, n) of the row-major n x d matrix `src` (row stride ld) into
// panel_count(n) panels at dst (panel_count(n) * panel_floats(d) floats), zero-filling rows past n.
// A pure copy: the same bytes on every level.
void pack_panels(Level level, const float* src, size_t n, size_t d, size_t ld, float* dst);

// [sync, any thread] The inverse: rows [first, first + count) of the panels at src (which must
// hold them: panel_count(first + count) * panel_floats(d) floats at least) into the row-major
// count x d matrix dst (row stride ld). A pure copy.
void unpack_panels(const float* src, size_t first, size_t count, size_t d, size_t ld, float* dst);

}  // namespace recscore
