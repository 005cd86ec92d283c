#include "matrix_stats.h"

#include "gemm/contract.h"

namespace recscore {
namespace {

// Rows [0, rows), visited in groups of `group` rows (one panel: the group's values lie together);
// the value (row i0 + r, column p) is at(i0, r, p), i0 the group's first row. Each row's values
// are read in index order into its own sum, so its sum of squares is the same in any layout.
template <typename At>
MatrixStats stats(size_t rows, size_t d, double norm_limit, size_t group, At at) {
  MatrixStats st;
  double max_sq = 0;
  double sq[kPanel];
  for (size_t i0 = 0; i0 < rows; i0 += group) {
    const size_t m = rows - i0 < group ? rows - i0 : group;
    for (size_t r = 0; r < m; ++r) sq[r] = 0;
    for (size_t p = 0; p < d; ++p) {
      for (size_t r = 0; r < m; ++r) {
        const double v = at(i0, r, p);
        sq[r] += v * v;
        const double a = std::fabs(v);
        if (a > st.max_abs) st.max_abs = a;
      }
    }
    for (size_t r = 0; r < m; ++r) {
      const size_t i = i0 + r;
      if (!std::isfinite(sq[r])) {
        // NaN/Inf somewhere in this row (a finite row's sum of squares in float64 cannot overflow).
        for (size_t p = 0; p < d; ++p) {
          if (!std::isfinite(at(i0, r, p))) {
            st.first_non_finite = static_cast<int64_t>(i * d + p);
            return st;
          }
        }
      }
      if (sq[r] > max_sq) max_sq = sq[r];
      if (st.first_row_above < 0 && std::sqrt(sq[r]) > norm_limit) {
        st.first_row_above = static_cast<int64_t>(i);
        st.row_norm_above = std::sqrt(sq[r]);
      }
    }
  }
  st.max_row_norm = std::sqrt(max_sq);
  return st;
}

}  // namespace

MatrixStats matrix_stats(const float* data, size_t rows, size_t d, double norm_limit) {
  return stats(rows, d, norm_limit, 1, [data, d](size_t i0, size_t r, size_t p) { return data[(i0 + r) * d + p]; });
}

MatrixStats matrix_stats_panels(const float* panels, size_t rows, size_t d, double norm_limit) {
  return stats(rows, d, norm_limit, kPanel, [panels, d](size_t i0, size_t r, size_t p) {
    return panels[(i0 / kPanel) * panel_floats(d) + p * kPanel + r];
  });
}

}  // namespace recscore
