// native/core tests: the bounds of compressed scans at their edges. For every route (every level's
// float kernels, the VNNI and AVX512_BF16 quantised-user kernels where the CPU has them) and many
// rows, the exact distance |s_j - a_j| (float64) between the float32 score s_j and the
// approximate score a_j stays within the bound E'_j the scan uses; on worst cases built for each
// kernel (quantisation residuals aligned on both sides, subnormal rows read as zero) the bound is
// nearly reached, and dropping the user's term would break it. Run by core_tests.cc's main.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

#include "../bf16.h"
#include "../compressed.h"
#include "../compressed_approx.h"
#include "../gemm/contract.h"
#include "../scorer.h"
#include "core_tests_quant_common.h"

using namespace recscore;
using namespace core_tests;

namespace {

struct BoundStats {
  double max_ratio = 0;      // max |s - a| / E'
  size_t over_reduced = 0;   // rows where |s - a| exceeds the float path's bound (|u| e + f)
  size_t checked = 0;
};

// Checks |s_j - a_j| <= E'_j for every row of every user of D on one route; returns the tightness.
BoundStats check_bounds(const QuantData& D, const Compressed& c, const Route& route, CompactPath* path) {
  const ScoreRequest r = quant_request(D, 1, route.level);
  const CompressedView v = route_view(c, route);
  std::vector<float> approx(D.n), err(D.n);
  BoundStats st;
  for (size_t u = 0; u < D.b; ++u) {
    *path = compressed_approx(r, v, u, approx.data(), err.data());
    const float* user = D.users.data() + u * D.d;
    double nu = 0;
    for (size_t i = 0; i < D.d; ++i) nu += static_cast<double>(user[i]) * user[i];
    nu = std::sqrt(nu);
    for (size_t j = 0; j < D.n; ++j) {
      float s = contract_dot(user, D.x.data() + j * D.d, D.d, 1, 0.0f);  // the float32 path's bits
      if (r.bias) s += r.bias[j];
      if (!std::isfinite(s) || !std::isfinite(approx[j]) || !std::isfinite(err[j])) continue;
      const double dist = std::fabs(static_cast<double>(s) - static_cast<double>(approx[j]));
      if (!(dist <= static_cast<double>(err[j]))) {
        std::fprintf(stderr, "  %s %s/%s user %zu row %zu: |s - a| = %.9g > E' = %.9g (s %.9g, a %.9g)\n",
                     D.name.c_str(), level_name(route.level), compact_path_name(*path), u, j, dist,
                     static_cast<double>(err[j]), static_cast<double>(s), static_cast<double>(approx[j]));
      }
      CHECK(dist <= static_cast<double>(err[j]));
      st.max_ratio = std::max(st.max_ratio, dist / static_cast<double>(err[j]));
      const double fb = r.bias ? 2 * bound_g(D.d) * std::fabs(static_cast<double>(r.bias[j])) : 0.0;
      const double reduced = (nu * v.err[j] + fb) * (1 + 0x1p-18) + 1e-30;
      if (dist > reduced) ++st.over_reduced;
      ++st.checked;
    }
  }
  return st;
}

// Every route on D for precision p; returns the stats of the quantised path `want` (zeros when
// this CPU lacks it).
BoundStats bounds_all_routes(const QuantData& D, Precision p, CompactPath want) {
  const Compressed c = compress(D.x.data(), D.n, D.d, D.bias.empty() ? nullptr : D.bias.data(), p);
  BoundStats out;
  for (const Route& route : quant_routes(p, D.d)) {
    CompactPath path = CompactPath::kFloat;
    const BoundStats st = check_bounds(D, c, route, &path);
    if (path == CompactPath::kFloat) CHECK(st.over_reduced == 0);  // the float path's own bound
    if (path == want && want != CompactPath::kFloat) out = st;
  }
  return out;
}

bool has(CompactPath p) {
  if (p == CompactPath::kMadd) return level_supported(Level::kAvx2);  // the AVX2 level's int8 path
  if (!level_supported(Level::kAvx512)) return false;
  return p == CompactPath::kVnni ? cpu_features().avx512_vnni : cpu_features().avx512_bf16;
}

// int8 worst case: su = 1 (u_0 = range: 127 for VNNI, 63 for madd's 7-bit codes) and every
// other |u_i| = m + 0.4999 (m = range - 2 or range - 1), rounded down, so
// û - u = -0.4999 sgn(u); rows with scale 2^-7 (x_0 = 127 / 128) and |x_i| = (k + 0.4999) 2^-7
// of the opposite sign, rounded down too: u . (x̂ - x) and (û - u) . x̂ are both positive and
// near |u| |x - x̂| and |û - u| |x̂| (the Cauchy-Schwarz bounds the kernel's bound adds).
QuantData aligned_int8(size_t d, QuantGen& g, int range = 127) {
  QuantData D;
  D.name = "aligned-int8";
  D.n = 2000;
  D.d = d;
  D.b = 1;
  D.users.resize(d);
  std::vector<float> sgn(d);
  for (size_t i = 0; i < d; ++i) sgn[i] = g.next() % 2 ? 1.0f : -1.0f;
  D.users[0] = static_cast<float>(range);
  const float m0 = static_cast<float>(range - 2);
  for (size_t i = 1; i < d; ++i) D.users[i] = sgn[i] * (m0 + static_cast<float>(g.next() % 2) + 0.4999f);
  D.x.resize(D.n * d);
  for (size_t j = 0; j < D.n; ++j) {
    D.x[j * d] = 127.0f / 128.0f;
    for (size_t i = 1; i < d; ++i) {
      D.x[j * d + i] = -sgn[i] * (static_cast<float>(120 + g.next() % 7) + 0.4999f) / 128.0f;
    }
  }
  return D;
}

// bf16 worst case: |u_i| = 1 + 2^-8 - 2^-20 rounds to 1, and rows of the opposite sign likewise.
QuantData aligned_bf16(size_t d, QuantGen& g) {
  QuantData D;
  D.name = "aligned-bf16";
  D.n = 2000;
  D.d = d;
  D.b = 1;
  D.users.resize(d);
  std::vector<float> sgn(d);
  for (size_t i = 0; i < d; ++i) sgn[i] = g.next() % 2 ? 1.0f : -1.0f;
  const float off = 0x1p-8f - 0x1p-20f;
  for (size_t i = 0; i < d; ++i) D.users[i] = sgn[i] * (1.0f + off);
  D.x.resize(D.n * d);
  for (size_t j = 0; j < D.n; ++j) {
    for (size_t i = 0; i < d; ++i) {
      const float e = std::ldexp(1.0f, static_cast<int>(g.next() % 3));  // 1, 2 or 4
      D.x[j * d + i] = -sgn[i] * e * (1.0f + off);
    }
  }
  return D;
}

// Subnormal rows (vdpbf16ps reads them as zero) under a huge user, mixed with normal rows.
QuantData subnormal_rows(size_t d, QuantGen& g) {
  QuantData D;
  D.name = "subnormal rows";
  D.n = 3000;
  D.d = d;
  D.b = 2;
  D.x = g.normals(D.n * d);
  for (size_t j = 0; j < D.n; ++j) {
    const float s = j % 3 ? 1e-39f : 1e-30f;
    for (size_t i = 0; i < d; ++i) D.x[j * d + i] = std::fabs(D.x[j * d + i]) * s;
  }
  D.users.assign(D.b * d, 1e30f);
  for (size_t i = 0; i < d; ++i) D.users[d + i] = 3e29f * (i % 2 ? 1.0f : 2.0f);
  return D;
}


// On the int8 worst case for a user code range (127: VNNI, 63: madd's 7-bit codes), the path's
// bound is nearly reached and needs its user term.
void int8_bound_reached(uint32_t seed, int range, CompactPath path) {
  QuantGen g(seed);
  for (size_t d : {2u, 7u, 64u, 130u}) {
    const BoundStats st = bounds_all_routes(aligned_int8(d, g, range), Precision::kInt8, path);
    if (!has(path)) continue;
    std::printf("       %s d=%zu: max |s-a|/E' = %.4f, rows past the float path's bound %zu of %zu\n", compact_path_name(path), d,
                st.max_ratio, st.over_reduced, st.checked);
    CHECK(st.checked == 2000);
    CHECK(st.max_ratio > 0.45);      // the worst case comes close to the bound
    CHECK(st.over_reduced > 1000);   // and needs the user's rounding term
  }
}
}  // namespace

void core_tests::quant_bound_tests() {
  run("bounds_cover_every_row_on_every_route", [] {
    QuantGen g(99);
    for (size_t d : {1u, 2u, 3u, 4u, 5u, 7u, 16u, 29u, 64u, 65u, 130u}) {
      QuantData D;
      D.name = "random";
      D.n = 1500;
      D.d = d;
      D.b = 3;
      D.x = g.normals(D.n * d);
      D.bias = g.normals(D.n);
      D.users = g.normals(D.b * d);
      for (size_t i = 0; i < d; ++i) D.users[d + i] = 0.0f;  // the zero user
      for (Precision p : {Precision::kInt8, Precision::kBf16}) {
        bounds_all_routes(D, p, CompactPath::kFloat);
      }
    }
    for (size_t d : {16u, 65u}) {
      QuantData huge = aligned_int8(d, g);  // rescaled: scores near 1e36 and near 1e-30
      for (auto& v : huge.x) v *= 1e30f;
      huge.name = "aligned-int8 x 1e30";
      bounds_all_routes(huge, Precision::kInt8, CompactPath::kVnni);
      for (auto& v : huge.x) v = v * 1e-30f * 1e-30f;
      huge.name = "aligned-int8 x 1e-30";
      bounds_all_routes(huge, Precision::kInt8, CompactPath::kVnni);
    }
  });

  run("vnni_bound_is_nearly_reached_and_needs_the_user_term", [] { int8_bound_reached(7, 127, CompactPath::kVnni); });
  run("madd_bound_is_nearly_reached_and_needs_the_user_term", [] { int8_bound_reached(9, 63, CompactPath::kMadd); });

  run("bf16dot_bound_is_nearly_reached_and_needs_the_user_and_daz_terms", [] {
    QuantGen g(8);
    for (size_t d : {1u, 2u, 7u, 64u, 129u}) {
      const BoundStats st = bounds_all_routes(aligned_bf16(d, g), Precision::kBf16, CompactPath::kBf16Dot);
      const BoundStats sub = bounds_all_routes(subnormal_rows(d, g), Precision::kBf16, CompactPath::kBf16Dot);
      bounds_all_routes(subnormal_rows(d, g), Precision::kInt8, CompactPath::kVnni);
      if (!has(CompactPath::kBf16Dot)) continue;
      std::printf("       bf16dot d=%zu: aligned max |s-a|/E' = %.4f (%zu of %zu past the float bound); "
                  "subnormal rows %.4f (%zu of %zu)\n",
                  d, st.max_ratio, st.over_reduced, st.checked, sub.max_ratio, sub.over_reduced, sub.checked);
      CHECK(st.max_ratio > 0.45 && st.over_reduced > 1000);
      CHECK(sub.over_reduced > 1000);  // read as zero: only the DAZ term covers them
    }
  });
}
