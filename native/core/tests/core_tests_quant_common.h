// Shared by core_tests_quant.cc and core_tests_bounds.cc: catalogues that stress the compressed
// scans' bounds, and the routes a scan can take on this machine (every level with the float
// kernels, and with the quantised-user kernels where the level has them).
#pragma once

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "../compressed.h"
#include "../compressed_approx.h"
#include "../platform/levels.h"
#include "core_tests_common.h"

namespace core_tests {

struct QuantData {
  std::string name;
  size_t n = 0, d = 0, b = 0;
  std::vector<float> x, bias, users;  // bias empty: none
  std::vector<int32_t> offsets, excl;  // empty: no exclusions
};

// A route: a level, and whether the view carries the row terms (without them every level scans
// with the float kernels).
struct Route {
  recscore::Level level;
  bool terms;
};

// Every level with the float kernels, and the levels whose quantised-user kernel this CPU has for
// precision p and d dimensions with them (the test
// row_terms_are_ignored_at_scalar_used_at_avx2_for_int8_and_match_compress checks the others
// ignore the terms).
inline std::vector<Route> quant_routes(recscore::Precision p, size_t d) {
  std::vector<Route> v;
  for (recscore::Isa l : isas()) {
    v.push_back({l, false});
    if (recscore::compact_terms_used(l, p, d)) v.push_back({l, true});
  }
  return v;
}

// A request for D's users over D's rows (and bias), k results each, at `level`.
inline recscore::ScoreRequest quant_request(const QuantData& D, size_t k, recscore::Level level) {
  recscore::ScoreRequest r;
  r.items = D.x.data();
  r.n = D.n;
  r.d = D.d;
  r.bias = D.bias.empty() ? nullptr : D.bias.data();
  r.users = D.users.data();
  r.b = D.b;
  r.k = k;
  r.isa = level;
  return r;
}

inline recscore::CompressedView route_view(const recscore::Compressed& c, const Route& r) {
  recscore::CompressedView v = c.view();
  if (!r.terms) v.cnorm = nullptr;
  return v;
}

class QuantGen {
 public:
  explicit QuantGen(uint32_t seed) : g_(seed) {}
  float normal() { return nd_(g_); }
  float uniform(float lo, float hi) { return std::uniform_real_distribution<float>(lo, hi)(g_); }
  uint32_t next() { return static_cast<uint32_t>(g_()); }
  std::vector<float> normals(size_t count, float scale = 1.0f) {
    std::vector<float> v(count);
    for (auto& x : v) x = scale * normal();
    return v;
  }

 private:
  std::mt19937 g_;
  std::normal_distribution<float> nd_{0.0f, 1.0f};
};

// Exclusions for b users: user 0 a few rows, user 2 (if any) every 29th row.
inline void add_exclusions(QuantData& D) {
  D.offsets.assign(D.b + 1, 0);
  D.excl.clear();
  for (size_t u = 0; u < D.b; ++u) {
    if (u == 0) {
      for (int32_t r : {0, 5, 17, 4096}) {
        if (static_cast<size_t>(r) < D.n) D.excl.push_back(r);
      }
    } else if (u == 2) {
      for (size_t r = 3; r < D.n; r += 29) D.excl.push_back(static_cast<int32_t>(r));
    }
    D.offsets[u + 1] = static_cast<int32_t>(D.excl.size());
  }
}

}  // namespace core_tests
