// One pass over a float32 matrix: validity and the norms the scorer's overflow guard needs.
#pragma once
#include <cstddef>
#include <cstdint>

namespace recscore {

struct MatrixStats {
  int64_t first_non_finite = -1;  // flat index of the first NaN/Inf, or -1
  double max_row_norm = 0;        // max over rows of the Euclidean norm (in float64)
  double max_abs = 0;             // max |value|
};

// [sync, any thread] Scans rows x d values.
MatrixStats matrix_stats(const float* data, size_t rows, size_t d);

}  // namespace recscore
