#include "compressed.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "bf16.h"
#include "compressed_approx.h"
#include "errors.h"
#include "gemm/compact.h"
#include "gemm/contract.h"

namespace recscore {
namespace {

double up(double v) { return bound_up(v); }
float upf(double v) { return bound_upf(v); }

// float64 sums of squares, in index order, of a row (xx) and of its distance to the compact copy
// (rr); x(i) is the row's value i, xh(i) the compact copy's, exactly. compress and
// check_compressed share it (whatever the layouts they read, the same sums).
template <typename Row, typename Decode>
void row_sums(size_t d, Row x, Decode xh, double& xx, double& rr) {
  xx = 0;
  rr = 0;
  for (size_t i = 0; i < d; ++i) {
    const float v = x(i);
    const double h = xh(i);
    xx += static_cast<double>(v) * v;
    rr += (v - h) * (v - h);
  }
}

float err_term(double xx, double rr, double g) {
  const double X = up(std::sqrt(xx)), R = up(std::sqrt(rr));
  return upf(up(R + g * (2 * X + R)));
}
float err_bias_term(float b, double g) { return upf(up(2 * g * std::fabs(static_cast<double>(b)))); }

}  // namespace

CompressedView Compressed::view() const {
  CompressedView v;
  v.precision = precision;
  v.data = precision == Precision::kInt8 ? static_cast<const void*>(q.data()) : static_cast<const void*>(h.data());
  v.scale = scale.empty() ? nullptr : scale.data();
  v.err = err.data();
  v.err_bias = err_bias.empty() ? nullptr : err_bias.data();
  v.cnorm = terms.cnorm.empty() ? nullptr : terms.cnorm.data();
  return v;
}

Compressed compress(const float* x, size_t n, size_t d, const float* bias, Precision p) {
  if (p == Precision::kF32) throw InvalidArgument("compress: precision f32 has no compact copy");
  Compressed c;
  c.precision = p;
  const double g = bound_g(d);
  c.err.resize(n);
  if (p == Precision::kInt8) {
    c.q.assign(i8_compact_elems(n, d), 0);
    c.scale.resize(n);
  } else {
    c.h.assign(bf16_compact_elems(n, d), 0);
  }
  if (bias) c.err_bias.resize(n);
  std::vector<int8_t> q(d);
  std::vector<uint16_t> h(d);
  for (size_t j = 0; j < n; ++j) {
    const float* row = x + j * d;
    auto xv = [row](size_t i) { return row[i]; };
    double xx = 0, rr = 0;
    if (p == Precision::kInt8) {
      float mx = 0;
      for (size_t i = 0; i < d; ++i) mx = std::max(mx, std::fabs(row[i]));
      const float scale = mx > 0 ? mx / 127.0f : 0.0f;
      c.scale[j] = scale;
      for (size_t i = 0; i < d; ++i) {
        long qi = scale > 0 ? std::lround(row[i] / scale) : 0;
        qi = std::min(127L, std::max(-127L, qi));
        q[i] = static_cast<int8_t>(qi);
        c.q[i8_index(j, i, d)] = q[i];
      }
      row_sums(d, xv, [&](size_t i) { return static_cast<double>(scale) * static_cast<double>(q[i]); }, xx, rr);
    } else {
      for (size_t i = 0; i < d; ++i) {
        h[i] = to_bf16(row[i]);
        c.h[bf16_index(j, i, d)] = h[i];
      }
      row_sums(d, xv, [&](size_t i) { return static_cast<double>(from_bf16(h[i])); }, xx, rr);
    }
    c.err[j] = err_term(xx, rr, g);
    if (bias) c.err_bias[j] = err_bias_term(bias[j], g);
  }
  c.terms = compact_row_terms(c.view(), n, d);
  return c;
}

CompressedFault check_compressed(const float* panels, size_t n, size_t d, const float* bias,
                                 const CompressedView& c) {
  if (c.precision == Precision::kF32 || !c.data || !c.err || (c.precision == Precision::kInt8 && !c.scale) ||
      (bias && !c.err_bias)) {
    throw InvalidArgument("compressed view is incomplete");
  }
  const double g = bound_g(d);
  CompressedFault f;
  auto fail = [&](size_t j, CompressedRule rule, double recorded, double required) {
    f.row = static_cast<int64_t>(j);
    f.rule = rule;
    f.recorded = recorded;
    f.required = required;
    return f;
  };
  const size_t w = c.precision == Precision::kInt8 ? kI8Width : kBf16Width;
  for (size_t j = 0; j < n; ++j) {
    // Row j in its panels: element i of the float32 row at prow[i * kPanel], of the compact copy
    // at cofs + (i / w) * kPanel * w + i % w (gemm/contract.h, gemm/compact.h).
    const float* prow = panels + (j / kPanel) * panel_floats(d) + j % kPanel;
    auto xv = [prow](size_t i) { return prow[i * kPanel]; };
    const size_t cofs = compact_index(j, 0, d, w);
    auto at = [cofs, w](size_t i) { return cofs + (i / w) * (kPanel * w) + i % w; };
    double xx = 0, rr = 0;
    if (c.precision == Precision::kInt8) {
      const float scale = c.scale[j];
      if (!(std::isfinite(scale) && scale >= 0)) return fail(j, CompressedRule::kScale, scale, 0);
      const int8_t* q = static_cast<const int8_t*>(c.data);
      row_sums(d, xv, [&](size_t i) { return static_cast<double>(scale) * static_cast<double>(q[at(i)]); }, xx, rr);
    } else {
      const uint16_t* h = static_cast<const uint16_t*>(c.data);
      for (size_t i = 0; i < d; ++i) {
        if ((h[at(i)] & 0x7f80u) == 0x7f80u) {
          f.column = static_cast<int64_t>(i);
          return fail(j, CompressedRule::kNonFinite, from_bf16(h[at(i)]), 0);
        }
      }
      row_sums(d, xv, [&](size_t i) { return static_cast<double>(from_bf16(h[at(i)])); }, xx, rr);
    }
    // |x̂_j| <= 2 |x_j| keeps approximate scores as far from overflow as the float32 ones.
    if (rr > xx) return fail(j, CompressedRule::kFarther, std::sqrt(rr), std::sqrt(xx));
    const float need = err_term(xx, rr, g);
    if (!(std::isfinite(c.err[j]) && c.err[j] >= need)) return fail(j, CompressedRule::kErr, c.err[j], need);
    if (bias) {
      const float nb = err_bias_term(bias[j], g);
      if (!(std::isfinite(c.err_bias[j]) && c.err_bias[j] >= nb)) return fail(j, CompressedRule::kErrBias, c.err_bias[j], nb);
    }
  }
  return f;
}

}  // namespace recscore
