// One pass over a float32 matrix: validity and the norms the scorer's overflow guard needs.
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>

namespace recscore {

struct MatrixStats {
  int64_t first_non_finite = -1;  // row-major flat index (row * d + column) of the first NaN/Inf, or -1
  double max_row_norm = 0;        // max over rows of the Euclidean norm (in float64)
  double max_abs = 0;             // max |value|
  int64_t first_row_above = -1;   // first row whose norm exceeds norm_limit, or -1
  double row_norm_above = 0;      // that row's norm
};

// [sync, any thread] Scans rows x d values (row-major), stopping at the first row holding a
// non-finite one. A row's norm is sqrt of its float64 sum of squares in index order, so a row
// checked against a recorded max_row_norm (norm_limit) compares exactly as the writer computed it.
MatrixStats matrix_stats(const float* data, size_t rows, size_t d, double norm_limit = HUGE_VAL);

// [sync, any thread] The same statistics, the same values, of rows x d values packed in panels
// (gemm/contract.h: panel_count(rows) * panel_floats(d) floats). Only the real rows are read:
// padding rows of the last panel are ignored. first_non_finite is the row-major index.
MatrixStats matrix_stats_panels(const float* panels, size_t rows, size_t d, double norm_limit = HUGE_VAL);

}  // namespace recscore
