#include "matrix_stats.h"

namespace recscore {

MatrixStats matrix_stats(const float* data, size_t rows, size_t d, double norm_limit) {
  MatrixStats st;
  double max_sq = 0;
  for (size_t i = 0; i < rows; ++i) {
    const float* row = data + i * d;
    double sq = 0;
    for (size_t p = 0; p < d; ++p) {
      double v = row[p];
      sq += v * v;
      double a = std::fabs(v);
      if (a > st.max_abs) st.max_abs = a;
    }
    if (!std::isfinite(sq)) {
      // NaN/Inf somewhere in this row (a finite row's sum of squares in float64 cannot overflow).
      for (size_t p = 0; p < d; ++p) {
        if (!std::isfinite(row[p])) {
          st.first_non_finite = static_cast<int64_t>(i * d + p);
          return st;
        }
      }
    }
    if (sq > max_sq) max_sq = sq;
    if (st.first_row_above < 0 && std::sqrt(sq) > norm_limit) {
      st.first_row_above = static_cast<int64_t>(i);
      st.row_norm_above = std::sqrt(sq);
    }
  }
  st.max_row_norm = std::sqrt(max_sq);
  return st;
}

}  // namespace recscore
