#include "compressed.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <exception>
#include <functional>
#include <queue>
#include <string>

#include "bf16.h"
#include "errors.h"
#include "gemm/compact.h"
#include "gemm/contract.h"
#include "kernels.h"
#include "topk.h"

namespace recscore {
namespace {

constexpr size_t kBlockRows = 8192;  // rows a team member claims at a time
constexpr size_t kTile = 512;        // approximate scores computed together
static_assert(kBlockRows % kPanel == 0 && kTile % kPanel == 0, "tiles start on panel boundaries");

double up(double v) { return v * (1 + 1e-12) + 1e-300; }
float upf(double v) { return std::nextafter(static_cast<float>(v), INFINITY); }

// One team member's buffers for a tile (allocated once, on first use).
struct Scratch {
  std::vector<float> approx, lower, upper;
  std::vector<uint32_t> idx;
  void ensure() {
    if (!approx.empty()) return;
    approx.resize(kTile);
    lower.resize(kTile);
    upper.resize(kTile);
    idx.resize(kTile);
  }
};

// One team member's pass for one user: the top-k lower bounds it has seen and its candidates.
struct Pass {
  std::priority_queue<float, std::vector<float>, std::greater<float>> lower;  // min-heap, <= k
  std::vector<std::pair<int32_t, float>> cand;  // (row, upper bound)
  float threshold() const { return lower.size() ? lower.top() : -INFINITY; }
};

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

double bound_g(size_t d) { return (static_cast<double>(d) + 32) * std::ldexp(1.0, -23); }
float err_term(double xx, double rr, double g) {
  const double X = up(std::sqrt(xx)), R = up(std::sqrt(rr));
  return upf(up(R + g * (2 * X + R)));
}
float err_bias_term(float b, double g) { return upf(up(2 * g * std::fabs(static_cast<double>(b)))); }

}  // namespace

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

void score_topk_compressed(const ScoreRequest& r, const CompressedView& c, int32_t* out_rows,
                           float* out_scores, int32_t* candidates) {
  if (r.b == 0) return;
  if (r.d == 0) throw InvalidArgument("dim must be positive");
  if (r.n == 0) throw OutOfRange("the catalogue has no items");
  if (r.k == 0 || r.k > r.n) throw OutOfRange("k must be in 1..n, got " + std::to_string(r.k));
  if (r.n > static_cast<size_t>(INT32_MAX)) throw OutOfRange("catalogue larger than 2^31-1 rows");
  if (c.precision == Precision::kF32 || !c.data || !c.err || (c.precision == Precision::kInt8 && !c.scale)) {
    throw InvalidArgument("compressed view is incomplete");
  }
  if (!r.panels && !r.items) throw InvalidArgument("the request has neither panels nor items");
  const Kernels& kern = kernels_for(r.isa);
  const size_t d = r.d, k = r.k;
  size_t threads = r.team ? std::min(static_cast<size_t>(std::max(1, r.threads)), r.team->size()) : 1;
  const size_t nblocks = (r.n + kBlockRows - 1) / kBlockRows;
  if (nblocks < 2) threads = 1;
  const float margin = 1.0f + std::ldexp(1.0f, -18);

  for (size_t u = 0; u < r.b; ++u) {
    const float* user = r.users + u * d;
    double nu2 = 0;
    for (size_t i = 0; i < d; ++i) nu2 += static_cast<double>(user[i]) * user[i];
    const float nu = upf(up(std::sqrt(nu2)));
    const int32_t* ex_first = r.excl_offsets ? r.excl_rows + r.excl_offsets[u] : nullptr;
    const int32_t* ex_last = r.excl_offsets ? r.excl_rows + r.excl_offsets[u + 1] : nullptr;

    std::vector<Pass> passes(threads);
    std::vector<Scratch> scratch(threads);
    parallel_blocks(r.team, threads, nblocks, [&](size_t member, size_t bi) {
      Pass& ps = passes[member];
      Scratch& sc = scratch[member];
      sc.ensure();
      std::vector<float>& approx = sc.approx;
      std::vector<float>& lower = sc.lower;
      std::vector<float>& upper = sc.upper;
      std::vector<uint32_t>& idx = sc.idx;
      const size_t lo = bi * kBlockRows, hi = std::min(r.n, lo + kBlockRows);
      const int32_t* ex = ex_first ? std::lower_bound(ex_first, ex_last, static_cast<int32_t>(lo)) : nullptr;
      for (size_t t0 = lo; t0 < hi; t0 += kTile) {
        const size_t nt = std::min(kTile, hi - t0);
        // Tiles start on panel boundaries (kBlockRows and kTile are multiples of kPanel).
        if (c.precision == Precision::kInt8) {
          kern.dot_rows_i8(user, static_cast<const int8_t*>(c.data) + (t0 / kPanel) * compact_panel_elems(d, kI8Width),
                           d, nt, c.scale + t0, approx.data());
        } else {
          kern.dot_rows_bf16(user, static_cast<const uint16_t*>(c.data) + (t0 / kPanel) * compact_panel_elems(d, kBf16Width),
                             d, nt, approx.data());
        }
        // Bounds for the whole tile (vectorisable), then only the few rows that matter.
        const float* err = c.err + t0;
        const float* eb = c.err_bias ? c.err_bias + t0 : nullptr;
        const float* bias = r.bias ? r.bias + t0 : nullptr;
        for (size_t i = 0; i < nt; ++i) {
          const float a = approx[i] + (bias ? bias[i] : 0.0f);
          const float e = (nu * err[i] + (eb ? eb[i] : 0.0f)) * margin + 1e-30f;
          // An approximate score that overflowed (a user far larger than the rows) bounds nothing:
          // the row stays a candidate and the float32 rescoring decides.
          const bool known = std::isfinite(a) && std::isfinite(e);
          lower[i] = known ? a - e : -INFINITY;
          upper[i] = known ? a + e : INFINITY;
        }
        // Rows that can never be returned have no bounds.
        if (ex) {
          while (ex < ex_last && static_cast<size_t>(*ex) < t0 + nt) {
            const size_t j = static_cast<size_t>(*ex++) - t0;
            lower[j] = upper[j] = -INFINITY;
          }
        }
        if (r.eligible) {
          for (size_t i = 0; i < nt; ++i) {
            const size_t j = t0 + i;
            if (!((r.eligible[j >> 6] >> (j & 63)) & 1)) lower[i] = upper[i] = -INFINITY;
          }
        }
        // The k best lower bounds so far, then the rows whose upper bound reaches them.
        const bool every = ps.lower.size() < k;  // the heap is not full yet: look at every row
        const size_t m = every ? nt : kern.select_gt(lower.data(), nt, ps.lower.top(), idx.data());
        for (size_t q = 0; q < m; ++q) {
          const size_t i = every ? q : idx[q];
          const float lb = lower[i];
          if (lb == -INFINITY) continue;
          if (ps.lower.size() < k) {
            ps.lower.push(lb);
          } else if (lb > ps.lower.top()) {
            ps.lower.pop();
            ps.lower.push(lb);
          }
        }
        const float t = ps.threshold();
        const size_t cnum = kern.select_gt(upper.data(), nt, std::nextafter(t, -INFINITY), idx.data());
        for (size_t q = 0; q < cnum; ++q) {
          if (upper[idx[q]] != -INFINITY) ps.cand.emplace_back(static_cast<int32_t>(t0 + idx[q]), upper[idx[q]]);
        }
        // Keep the candidate list near its final size as the threshold rises.
        if (ps.cand.size() > 4 * k + 4096) {
          const float th = ps.threshold();
          ps.cand.erase(std::remove_if(ps.cand.begin(), ps.cand.end(), [th](const auto& p) { return p.second < th; }),
                        ps.cand.end());
        }
      }
    });
    // The global threshold: the k-th largest lower bound over every member's best k.
    std::vector<float> lows;
    for (Pass& ps : passes) {
      while (!ps.lower.empty()) {
        lows.push_back(ps.lower.top());
        ps.lower.pop();
      }
    }
    float t = -INFINITY;
    if (lows.size() >= k) {
      std::nth_element(lows.begin(), lows.begin() + static_cast<std::ptrdiff_t>(k - 1), lows.end(), std::greater<float>());
      t = lows[k - 1];
    }
    std::vector<int32_t> rows;
    for (const Pass& ps : passes) {
      for (const auto& p : ps.cand) {
        if (p.second >= t) rows.push_back(p.first);
      }
    }
    std::sort(rows.begin(), rows.end());
    if (candidates) candidates[u] = static_cast<int32_t>(rows.size());
    // Rescore the candidates with the float32 kernel: the same bits as the float32 path.
    std::vector<Scored> store(std::max<size_t>(2 * k, k + 16));
    TopK top(k, store.data(), store.size());
    for (int32_t row : rows) {
      // The contract's chain (gemm/contract.h): the same bits as every level's float32 scan,
      // from the row in its panel (stride kPanel) or row-major.
      const size_t j = static_cast<size_t>(row);
      float s = r.panels ? contract_dot(user, r.panels + (j / kPanel) * panel_floats(d) + j % kPanel, d, kPanel, 0.0f)
                         : contract_dot(user, r.items + j * d, d, 1, 0.0f);
      if (r.bias) s += r.bias[row];
      top.push(s, row);
    }
    const size_t kept = top.finish();
    merge_topk({{top.data(), kept}}, k, out_rows + u * k, out_scores + u * k);
  }
}

}  // namespace recscore
