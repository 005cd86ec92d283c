// The compressed scans (compressed.h: score_topk_compressed). Each user's approximate scores and
// bounds come from compressed_approx.h; the team members split the rows into blocks, keep per
// user the k best lower bounds they have seen and the rows whose upper bound reaches them, and the
// caller merges the members' thresholds and rescores the candidates with the float32 chain.
//
// Users go one at a time (a pass over the rows each), or, for a batch of kGemmMinUsers or more on
// the VNNI path when the request asks (ScoreRequest::compressed_gemm), together: per tile of rows
// the int8 GEMM computes the approximate scores of up to kGemmChunk users, bit for bit those of the
// one-user kernel, so the candidates and the results are the same.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <queue>
#include <string>

#include "compressed.h"
#include "compressed_approx.h"
#include "compressed_select.h"
#include "errors.h"
#include "gemm/compact.h"
#include "gemm/contract.h"
#include "kernels.h"
#include "topk.h"

namespace recscore {
namespace {

constexpr size_t kBlockRows = 8192;  // rows a team member claims at a time
constexpr size_t kTile = 512;        // approximate scores computed together
constexpr size_t kGemmChunk = 48;    // users per GEMM call (its scores: kGemmChunk x kTile floats)
static_assert(kBlockRows % kPanel == 0 && kTile % kPanel == 0, "tiles start on panel boundaries");

// One team member's buffers (allocated once, on first use): approximate scores of `users` users,
// and one user's bounds and selection.
struct Scratch {
  std::vector<float> approx, lower, upper;
  std::vector<uint32_t> idx, idx2;  // idx2: the fused pass's candidates (lower: its heap entries, upper: their bounds)
  std::vector<const int32_t*> ex;  // batched: each user's exclusion cursor in the current block
  void ensure(size_t users) {
    if (approx.size() >= users * kTile) return;
    approx.resize(users * kTile);
    lower.resize(kTile);
    upper.resize(kTile);
    idx.resize(kTile);
    idx2.resize(kTile);
  }
};

// One team member's pass for one user: the top-k lower bounds it has seen and its candidates.
struct Pass {
  std::priority_queue<float, std::vector<float>, std::greater<float>> lower;  // min-heap, <= k
  std::vector<std::pair<int32_t, float>> cand;  // (row, upper bound)
  float threshold() const { return lower.size() ? lower.top() : -INFINITY; }
};

// User u's exclusions (sorted), or [null, null).
std::pair<const int32_t*, const int32_t*> exclusions(const ScoreRequest& r, size_t u) {
  if (!r.excl_offsets) return {nullptr, nullptr};
  return {r.excl_rows + r.excl_offsets[u], r.excl_rows + r.excl_offsets[u + 1]};
}

// Keeps the candidate list near its final size as the threshold rises.
void prune(Pass& ps, size_t k) {
  if (ps.cand.size() > 4 * k + 4096) {
    const float th = ps.threshold();
    ps.cand.erase(std::remove_if(ps.cand.begin(), ps.cand.end(), [th](const auto& p) { return p.second < th; }),
                  ps.cand.end());
  }
}

// One user's tile of rows [t0, t0 + nt): approx (bias included) and, in sc.upper, the bounds; the
// pass takes the tile's lower bounds and candidates. ex: the user's exclusion cursor (advanced).
void tile_update(const Kernels& kern, const ScoreRequest& r, size_t t0, size_t nt, const float* approx,
                 const int32_t*& ex, const int32_t* ex_last, Scratch& sc, Pass& ps) {
  float* lower = sc.lower.data();
  float* upper = sc.upper.data();
  uint32_t* idx = sc.idx.data();
  for (size_t i = 0; i < nt; ++i) {
    // An approximate score that overflowed (a user far larger than the rows) bounds nothing: the
    // row stays a candidate and the float32 rescoring decides. Written on the bits (finite: the
    // exponent is not all ones; the bounds then -Infinity, +Infinity), so that the loop
    // vectorises under the default trapping-math rules.
    const float a = approx[i], e = upper[i], lo = a - e, hi = a + e;
    uint32_t ab, eb, lb, hb;
    std::memcpy(&ab, &a, 4);
    std::memcpy(&eb, &e, 4);
    std::memcpy(&lb, &lo, 4);
    std::memcpy(&hb, &hi, 4);
    const uint32_t known = 0u - static_cast<uint32_t>(((ab & 0x7f800000u) != 0x7f800000u) & ((eb & 0x7f800000u) != 0x7f800000u));
    lb = (lb & known) | (0xff800000u & ~known);
    hb = (hb & known) | (0x7f800000u & ~known);
    std::memcpy(&lower[i], &lb, 4);
    std::memcpy(&upper[i], &hb, 4);
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
  const size_t k = r.k;
  const bool every = ps.lower.size() < k;  // the heap is not full yet: look at every row
  const size_t m = every ? nt : kern.select_gt(lower, nt, ps.lower.top(), idx);
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
  const size_t cnum = kern.select_gt(upper, nt, std::nextafter(t, -INFINITY), idx);
  for (size_t q = 0; q < cnum; ++q) {
    if (upper[idx[q]] != -INFINITY) ps.cand.emplace_back(static_cast<int32_t>(t0 + idx[q]), upper[idx[q]]);
  }
  prune(ps, k);
}

// One user's tile of rows [t0, t0 + nt), approx holding the kernel's scores (no bias): the bounds
// and the selection. At the AVX-512 level, once the user's heap is full and where the tile has no
// exclusion and the request no filter, one fused pass (compressed_select.h); otherwise
// approx_bounds then tile_update.
// maxima (or null): the tile's largest row terms (tile_maxima), for the loose first test.
void tile_pass(const Kernels& kern, const ScoreRequest& r, const ApproxUser& au, const CompressedView& c, size_t t0,
               size_t nt, float* approx, const int32_t*& ex, const int32_t* ex_last, Scratch& sc, Pass& ps,
               const SelectTerms* maxima) {
  const bool no_excl = !ex || ex == ex_last || static_cast<size_t>(*ex) >= t0 + nt;
  if (kern.isa == Level::kAvx512 && ps.lower.size() == r.k && no_excl && !r.eligible) {
    SelectTerms st;
    st.approx = approx;
    st.bias = r.bias ? r.bias + t0 : nullptr;
    st.err = c.err + t0;
    st.cnorm = au.path != CompactPath::kFloat ? c.cnorm + t0 : nullptr;
    st.nu = au.nu;
    st.du = au.du;
    st.cu = au.cu;
    st.gb = au.gb;
    if (maxima) {
      st.loose = true;
      st.err_max = maxima->err_max;
      st.cnorm_max = maxima->cnorm_max;
      st.bias_max = maxima->bias_max;
    }
    SelectHits h;
    h.lo_idx = sc.idx.data();
    h.lo_val = sc.lower.data();
    h.hi_idx = sc.idx2.data();
    h.hi_val = sc.upper.data();
    if (bound_select_avx512(st, nt, ps.lower.top(), h)) {
      for (size_t q = 0; q < h.nlo; ++q) {
        if (h.lo_val[q] > ps.lower.top()) {
          ps.lower.pop();
          ps.lower.push(h.lo_val[q]);
        }
      }
      for (size_t q = 0; q < h.nhi; ++q) ps.cand.emplace_back(static_cast<int32_t>(t0 + h.hi_idx[q]), h.hi_val[q]);
      prune(ps, r.k);
      return;
    }
  }
  approx_bounds(au, c, r.bias, t0, nt, approx, sc.upper.data());
  tile_update(kern, r, t0, nt, approx, ex, ex_last, sc, ps);
}

// User u's result from the members' passes (count of them, `stride` apart): the global threshold
// (the k-th largest lower bound over every member's best k), the candidates, their float32
// rescoring (the same bits as the float32 path) and the selection with the same tie rule.
void finish_user(const ScoreRequest& r, size_t u, Pass* first, size_t count, size_t stride, int32_t* out_rows,
                 float* out_scores, int32_t* candidates) {
  const size_t d = r.d, k = r.k;
  const float* user = r.users + u * d;
  std::vector<float> lows;
  for (size_t m = 0; m < count; ++m) {
    Pass& ps = first[m * stride];
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
  for (size_t m = 0; m < count; ++m) {
    for (const auto& p : first[m * stride].cand) {
      if (p.second >= t) rows.push_back(p.first);
    }
  }
  std::sort(rows.begin(), rows.end());
  if (candidates) candidates[u] = static_cast<int32_t>(rows.size());
  std::vector<Scored> store(std::max<size_t>(2 * k, k + 16));
  TopK top(k, store.data(), store.size());
  if (r.panels) {
    // The candidates' panels, each read once front to back by the level's float32 kernel (one
    // user against the panel's 16 rows: the contract's chains, bias last, the same bits as the
    // float32 scan), instead of one strided row at a time. Large candidate sets (k = 1000) are
    // rescored by the team in chunks of whole panels; the scores are pushed in row order either
    // way, so the selection is the same.
    const Kernels& kern = kernels_for(r.isa);
    std::vector<float> scores(rows.size());
    auto rescore = [&](size_t i, size_t end) {
      float panel_scores[kPanel];
      while (i < end) {
        const size_t q = static_cast<size_t>(rows[i]) / kPanel, j0 = q * kPanel;
        const size_t valid = std::min(kPanel, r.n - j0);
        kern.gemm_panels(user, d, 1, r.panels + q * panel_floats(d), d, valid, nullptr, 0,
                         r.bias ? r.bias + j0 : nullptr, panel_scores, kPanel);
        for (; i < end && static_cast<size_t>(rows[i]) / kPanel == q; ++i) scores[i] = panel_scores[rows[i] - j0];
      }
    };
    constexpr size_t kChunk = 256;  // candidates per team block
    if (r.team && count > 1 && rows.size() >= 2 * kChunk) {
      // Chunk starts moved forward to a panel boundary, so no panel is split between members.
      std::vector<size_t> starts;
      for (size_t i = 0; i < rows.size(); i += kChunk) {
        size_t s = i;
        while (s > 0 && s < rows.size() && rows[s] / static_cast<int32_t>(kPanel) == rows[s - 1] / static_cast<int32_t>(kPanel)) ++s;
        if (starts.empty() || s > starts.back()) starts.push_back(s);
      }
      starts.push_back(rows.size());
      parallel_blocks(r.team, count, starts.size() - 1, [&](size_t, size_t b) { rescore(starts[b], starts[b + 1]); });
    } else {
      rescore(0, rows.size());
    }
    for (size_t i = 0; i < rows.size(); ++i) top.push(scores[i], rows[i]);
  } else {
    for (int32_t row : rows) {
      // The contract's chain (gemm/contract.h) over the row-major row.
      float s = contract_dot(user, r.items + static_cast<size_t>(row) * d, d, 1, 0.0f);
      if (r.bias) s += r.bias[row];
      top.push(s, row);
    }
  }
  const size_t kept = top.finish();
  merge_topk({{top.data(), kept}}, k, out_rows + u * k, out_scores + u * k);
}

// One pass over the rows per user.
void scan_each_user(const ScoreRequest& r, const CompressedView& c, const Kernels& kern, size_t threads,
                    size_t nblocks, int32_t* out_rows, float* out_scores, int32_t* candidates) {
  ApproxUser au;
  for (size_t u = 0; u < r.b; ++u) {
    prepare_user(kern, c, r.d, r.users + u * r.d, au);  // the path, |u|, the quantised user and its terms
    const auto excl = exclusions(r, u);
    std::vector<Pass> passes(threads);
    std::vector<Scratch> scratch(threads);
    parallel_blocks(r.team, threads, nblocks, [&](size_t member, size_t bi) {
      Scratch& sc = scratch[member];
      sc.ensure(1);
      const size_t lo = bi * kBlockRows, hi = std::min(r.n, lo + kBlockRows);
      const int32_t* ex = excl.first ? std::lower_bound(excl.first, excl.second, static_cast<int32_t>(lo)) : nullptr;
      for (size_t t0 = lo; t0 < hi; t0 += kTile) {
        const size_t nt = std::min(kTile, hi - t0);
        approx_scores(kern, au, c, r.d, t0, nt, sc.approx.data());
        tile_pass(kern, r, au, c, t0, nt, sc.approx.data(), ex, excl.second, sc, passes[member], nullptr);
      }
    });
    finish_user(r, u, passes.data(), threads, 1, out_rows, out_scores, candidates);
  }
}

// Every user together: per tile, the int8 GEMM over chunks of users, then each user's bounds and
// selection. A user that is not on the VNNI path (a non-finite element) gets its own kernel.
void scan_users_together(const ScoreRequest& r, const CompressedView& c, const Kernels& kern, size_t threads,
                         size_t nblocks, int32_t* out_rows, float* out_scores, int32_t* candidates) {
  const size_t b = r.b, d = r.d, groups = compact_groups(d, kI8Width);
  std::vector<ApproxUser> aus(b);
  std::vector<uint32_t> ub(b * groups, 0u);
  std::vector<float> su(b, 0.0f);
  std::vector<int32_t> corr(b, 0);
  for (size_t u = 0; u < b; ++u) {
    prepare_user(kern, c, d, r.users + u * d, aus[u]);
    if (aus[u].path != CompactPath::kVnni) continue;
    std::copy(aus[u].op.begin(), aus[u].op.end(), ub.begin() + static_cast<std::ptrdiff_t>(u * groups));
    su[u] = aus[u].su;
    corr[u] = aus[u].corr;
  }
  const int8_t* q = static_cast<const int8_t*>(c.data);
  std::vector<Pass> passes(threads * b);  // member m, user u at m * b + u
  std::vector<Scratch> scratch(threads);
  parallel_blocks(r.team, threads, nblocks, [&](size_t member, size_t bi) {
    Scratch& sc = scratch[member];
    sc.ensure(std::min(b, kGemmChunk));
    const size_t lo = bi * kBlockRows, hi = std::min(r.n, lo + kBlockRows);
    sc.ex.assign(b, nullptr);
    for (size_t u = 0; u < b; ++u) {
      const auto excl = exclusions(r, u);
      if (excl.first) sc.ex[u] = std::lower_bound(excl.first, excl.second, static_cast<int32_t>(lo));
    }
    for (size_t t0 = lo; t0 < hi; t0 += kTile) {
      const size_t nt = std::min(kTile, hi - t0);
      SelectTerms mx;  // shared by every user of the tile
      tile_maxima(c.err + t0, c.cnorm ? c.cnorm + t0 : nullptr, r.bias ? r.bias + t0 : nullptr, nt, mx);
      for (size_t u0 = 0; u0 < b; u0 += kGemmChunk) {
        const size_t m = std::min(kGemmChunk, b - u0);
        kern.gemm_u8i8(ub.data() + u0 * groups, groups, su.data() + u0, corr.data() + u0, m,
                       q + (t0 / kPanel) * compact_panel_elems(d, kI8Width), d, nt, c.scale + t0, sc.approx.data(),
                       kTile);
        for (size_t u = u0; u < u0 + m; ++u) {
          float* a = sc.approx.data() + (u - u0) * kTile;
          if (aus[u].path != CompactPath::kVnni) approx_scores(kern, aus[u], c, d, t0, nt, a);
          tile_pass(kern, r, aus[u], c, t0, nt, a, sc.ex[u], exclusions(r, u).second, sc, passes[member * b + u], &mx);
        }
      }
    }
  });
  for (size_t u = 0; u < b; ++u) finish_user(r, u, &passes[u], threads, b, out_rows, out_scores, candidates);
}

}  // namespace

void score_topk_compressed(const ScoreRequest& r, const CompressedView& c, int32_t* out_rows, float* out_scores,
                           int32_t* candidates) {
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
  size_t threads = r.team ? std::min(static_cast<size_t>(std::max(1, r.threads)), r.team->size()) : 1;
  const size_t nblocks = (r.n + kBlockRows - 1) / kBlockRows;
  if (nblocks < 2) threads = 1;
  if (r.compressed_gemm && r.b >= kGemmMinUsers && kern.gemm_u8i8 && compact_path(kern.isa, c, r.d) == CompactPath::kVnni) {
    scan_users_together(r, c, kern, threads, nblocks, out_rows, out_scores, candidates);
  } else {
    scan_each_user(r, c, kern, threads, nblocks, out_rows, out_scores, candidates);
  }
}

}  // namespace recscore
