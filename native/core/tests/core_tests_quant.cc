// native/core tests: compressed scans on every route this machine has (every level with the float
// kernels; the AVX-512 level with the VNNI / AVX512_BF16 quantised-user kernels where the CPU has
// them) x threads 1/2 give the float32 top-k exactly, rows and score bits, on catalogues built to
// stress the bounds. Run by core_tests.cc's main.
#include <algorithm>
#include <cstring>
#include <limits>
#include <set>
#include <vector>

#include "../bf16.h"
#include "../compressed.h"
#include "../compressed_approx.h"
#include "../gemm/compact.h"
#include "../scorer.h"
#include "../thread_team.h"
#include "core_tests_quant_common.h"

using namespace recscore;
using namespace core_tests;

namespace {

const char* prec_name(Precision p) { return p == Precision::kInt8 ? "int8" : "bf16"; }

// The float32 top-k (scalar level) against every route x threads 1/2, for each k.
void expect_exact(const QuantData& D, Precision p, const std::vector<size_t>& ks, ThreadTeam& team,
                  std::set<CompactPath>& seen) {
  const Compressed c = compress(D.x.data(), D.n, D.d, D.bias.empty() ? nullptr : D.bias.data(), p);
  std::vector<int32_t> offsets = D.offsets, excl = D.excl;
  if (!offsets.empty()) prepare_exclusions(offsets.data(), excl.data(), D.b, D.n);
  for (size_t k : ks) {
    ScoreRequest r = quant_request(D, k, Level::kScalar);
    r.excl_offsets = offsets.empty() ? nullptr : offsets.data();
    r.excl_rows = offsets.empty() ? nullptr : excl.data();
    std::vector<int32_t> ref_rows(D.b * k), rows(D.b * k), cand(D.b);
    std::vector<float> ref_scores(D.b * k), scores(D.b * k);
    score_topk(r, ref_rows.data(), ref_scores.data());
    for (const Route& route : quant_routes(p, D.d)) {
      const CompressedView v = route_view(c, route);
      const CompactPath path = compact_path(route.level, v, D.d);
      seen.insert(path);
      for (int threads : {1, 2}) {
        r.isa = route.level;
        r.threads = threads;
        r.team = threads > 1 ? &team : nullptr;
        std::fill(rows.begin(), rows.end(), -2);
        score_topk_compressed(r, v, rows.data(), scores.data(), cand.data());
        const bool ok = rows == ref_rows && std::memcmp(scores.data(), ref_scores.data(), scores.size() * 4) == 0;
        if (!ok) {
          size_t at = 0;
          while (at < rows.size() && rows[at] == ref_rows[at] &&
                 std::memcmp(&scores[at], &ref_scores[at], 4) == 0) {
            ++at;
          }
          std::fprintf(stderr, "  %s %s d=%zu k=%zu %s/%s threads=%d: first difference at %zu\n", D.name.c_str(),
                       prec_name(p), D.d, k, level_name(route.level), compact_path_name(path), threads, at);
        }
        CHECK(ok);
        for (int32_t cc : cand) CHECK(cc >= 0 && static_cast<size_t>(cc) <= D.n);
      }
    }
  }
}

QuantData random_catalogue(size_t d, QuantGen& g, bool bias) {
  QuantData D;
  D.name = "random";
  D.n = 8192 + 37;  // two blocks (threads 2 share them), a partial last panel
  D.d = d;
  D.b = 3;
  D.x = g.normals(D.n * d);
  if (bias) D.bias = g.normals(D.n, 0.5f);
  D.users = g.normals(D.b * d);
  for (size_t i = 0; i < d; ++i) D.users[d + i] = 0.0f;  // user 1: the zero user
  add_exclusions(D);
  return D;
}

// Bias decreasing with the row: the threshold rises on the first rows.
QuantData bias_sorted(size_t d, QuantGen& g) {
  QuantData D = random_catalogue(d, g, true);
  D.name = "bias-sorted";
  for (auto& v : D.x) v *= 0.01f;
  for (size_t j = 0; j < D.n; ++j) D.bias[j] = 1.0f - 2.0f * static_cast<float>(j) / static_cast<float>(D.n);
  return D;
}

// Exact duplicates, rows differing below an int8 step (and below a bf16 ulp), rows half a step
// apart: near-ties everywhere, rows that quantise alike but score differently in float32.
QuantData near_duplicates(size_t d, QuantGen& g) {
  QuantData D;
  D.name = "near-duplicates";
  D.n = 8192 + 100;
  D.d = d;
  D.b = 3;
  const std::vector<float> base = g.normals(d);
  float mx = 0;
  for (float v : base) mx = std::max(mx, std::fabs(v));
  const float step = mx / 127.0f;
  D.x.resize(D.n * d);
  for (size_t j = 0; j < D.n; ++j) {
    for (size_t i = 0; i < d; ++i) {
      float v = base[i];
      const size_t kind = j % 4, at = (j / 4) % d;
      if (kind == 1 && i == at) v = std::nextafter(v, 10.0f);  // one ulp: the same codes
      if (kind == 2 && i == at) v += step * 1e-3f * static_cast<float>(1 + j % 5);
      if (kind == 3) v += step * 0.5f * (g.next() % 2 ? 1.0f : -1.0f);
      D.x[j * d + i] = v;
    }
  }
  D.users = g.normals(D.b * d);
  for (size_t i = 0; i < d; ++i) D.users[2 * d + i] = base[i];  // user 2: the base row itself
  add_exclusions(D);
  return D;
}

// Rows scaled by 10^e, e uniform in [lo, hi], and users at the scales given: every score within
// float32 range (or, for "tiny", deep in the subnormals).
QuantData scaled(size_t d, QuantGen& g, float lo, float hi, std::vector<float> user_scales, const char* name) {
  QuantData D;
  D.name = name;
  D.n = 8192 + 5;
  D.d = d;
  D.b = user_scales.size();
  D.x = g.normals(D.n * d);
  for (size_t j = 0; j < D.n; ++j) {
    const float s = std::pow(10.0f, g.uniform(lo, hi));
    for (size_t i = 0; i < d; ++i) D.x[j * d + i] *= s;
  }
  D.users = g.normals(D.b * d);
  for (size_t u = 0; u < D.b; ++u) {
    for (size_t i = 0; i < d; ++i) D.users[u * d + i] *= user_scales[u];
  }
  return D;
}

// Every row the same: every score equal (ties by row), with or without a constant bias.
QuantData all_equal(size_t d, QuantGen& g, bool bias) {
  QuantData D;
  D.name = bias ? "all-equal+bias" : "all-equal";
  D.n = 8192 + 3;
  D.d = d;
  D.b = 2;
  const std::vector<float> row = g.normals(d);
  D.x.resize(D.n * d);
  for (size_t j = 0; j < D.n; ++j) std::copy(row.begin(), row.end(), D.x.begin() + static_cast<std::ptrdiff_t>(j * d));
  if (bias) D.bias.assign(D.n, 0.25f);
  D.users = g.normals(D.b * d);
  add_exclusions(D);
  return D;
}

}  // namespace

void core_tests::quant_exact_tests() {
  run("quantised_paths_give_the_float32_topk_on_every_route_and_dim", [] {
    ThreadTeam team(1);
    QuantGen g(2024);
    std::set<CompactPath> seen;
    for (size_t d : {1u, 2u, 3u, 4u, 5u, 7u, 16u, 29u, 64u, 65u, 130u}) {
      const QuantData D = random_catalogue(d, g, d % 2 == 1);
      for (Precision p : {Precision::kInt8, Precision::kBf16}) expect_exact(D, p, {1, 1000, D.n}, team, seen);
    }
    // This CPU's quantised-user kernels did run.
    CHECK(seen.count(CompactPath::kFloat) == 1);
    if (level_supported(Level::kAvx512) && cpu_features().avx512_vnni) CHECK(seen.count(CompactPath::kVnni) == 1);
    if (level_supported(Level::kAvx2)) CHECK(seen.count(CompactPath::kMadd) == 1);  // forced avx2, or no VNNI
    if (level_supported(Level::kAvx512) && cpu_features().avx512_bf16) CHECK(seen.count(CompactPath::kBf16Dot) == 1);
  });

  run("quantised_paths_exact_on_bias_sorted_near_duplicate_and_equal_catalogues", [] {
    ThreadTeam team(1);
    QuantGen g(77);
    std::set<CompactPath> seen;
    for (size_t d : {7u, 64u}) {
      for (Precision p : {Precision::kInt8, Precision::kBf16}) {
        const QuantData bs = bias_sorted(d, g);
        expect_exact(bs, p, {1, 1000, bs.n}, team, seen);
        const QuantData nd = near_duplicates(d, g);
        expect_exact(nd, p, {1, 1000, nd.n}, team, seen);
        for (bool bias : {false, true}) {
          const QuantData ae = all_equal(d, g, bias);
          expect_exact(ae, p, {1, 1000, ae.n}, team, seen);
        }
      }
    }
  });

  run("quantised_paths_exact_on_huge_tiny_and_subnormal_scales", [] {
    ThreadTeam team(1);
    QuantGen g(31337);
    std::set<CompactPath> seen;
    for (size_t d : {5u, 16u, 65u}) {
      std::vector<QuantData> sets;
      sets.push_back(scaled(d, g, -30.0f, 5.0f, {1e30f, 1.0f, 1e-5f}, "rows 1e-30..1e5"));
      sets.push_back(scaled(d, g, -5.0f, 30.0f, {1e-30f, 1e-5f, 1.0f}, "rows 1e-5..1e30"));
      sets.push_back(scaled(d, g, -20.0f, -20.0f, {1e-20f, 1e-25f}, "tiny: subnormal scores"));
      sets.push_back(scaled(d, g, -39.0f, -39.0f, {1e30f, 1e25f}, "subnormal rows, huge users"));
      sets.back().bias = g.normals(sets.back().n, 1e-9f);
      for (QuantData& D : sets) {
        for (Precision p : {Precision::kInt8, Precision::kBf16}) expect_exact(D, p, {1, 1000, D.n}, team, seen);
      }
    }
  });

  run("prepare_user_quantises_as_documented", [] {
   for (Level level : {Level::kAvx512, Level::kAvx2}) {
    if (!level_supported(level)) continue;
    const Kernels& k = kernels_for(level);
    QuantGen g(11);
    const size_t d = 13, n = 20;
    const std::vector<float> x = g.normals(n * d);
    for (Precision p : {Precision::kInt8, Precision::kBf16}) {
      const Compressed c = compress(x.data(), n, d, nullptr, p);
      const CompactPath want = compact_path(level, c.view(), d);
      if (level == Level::kAvx2) CHECK(want == (p == Precision::kInt8 ? CompactPath::kMadd : CompactPath::kFloat));
      std::vector<std::vector<float>> users = {g.normals(d), std::vector<float>(d, 0.0f), g.normals(d, 1e-41f),
                                               std::vector<float>(d, 3.4e38f)};
      users.back()[3] = -3.39e38f;
      for (const std::vector<float>& u : users) {
        ApproxUser au;
        prepare_user(k, c.view(), d, u.data(), au);
        CHECK(au.path == want);
        if (want == CompactPath::kFloat) continue;
        double r2 = 0, mx = 0;
        for (float v : u) mx = std::max(mx, std::fabs(static_cast<double>(v)));
        if (want == CompactPath::kVnni || want == CompactPath::kMadd) {
          const int range = want == CompactPath::kVnni ? 127 : 63;
          CHECK(au.su == static_cast<float>(mx) / static_cast<float>(range) && au.op.size() == 4);
          int64_t sum = 0;
          for (size_t i = 0; i < 16; ++i) {
            const int code = static_cast<int8_t>(static_cast<uint8_t>((au.op[i / 4] >> (8 * (i % 4))) & 0xffu));
            if (i >= d) {
              CHECK(code == 0);  // padding adds nothing, whatever the row's padding holds
              continue;
            }
            CHECK(code >= -range && code <= range);  // madd: |code| <= 63, no pair saturates
            sum += code;
            const double uh = static_cast<double>(au.su) * code, diff = u[i] - uh;
            if (au.su > 0 && au.su >= 0x1p-126f) CHECK(std::fabs(diff) <= 0.5000001 * au.su);
            r2 += diff * diff;
          }
          CHECK(au.corr == 128 * sum);  // the kernels read the row bytes as q + 128
        } else {
          CHECK(au.op.size() == 7 && (au.op[6] >> 16) == 0);  // the half past d is zero
          for (size_t i = 0; i < d; ++i) {
            const uint16_t h = static_cast<uint16_t>(au.op[i / 2] >> (16 * (i % 2)));
            CHECK((h & 0x7f80u) != 0x7f80u);           // finite: huge values clamp to the largest
            CHECK((h & 0x7f80u) != 0 || h == 0);      // no subnormal: vdpbf16ps would read zero
            const double diff = u[i] - static_cast<double>(from_bf16(h));
            r2 += diff * diff;
          }
        }
        const double g1 = 1 + bound_g(d);
        CHECK(au.du >= g1 * std::sqrt(r2) && au.du <= g1 * std::sqrt(r2) * (1 + 1e-6) + 1e-44);
        CHECK(au.cu > 0 && std::isfinite(au.cu) && std::isfinite(au.du));
      }
      std::vector<float> bad = g.normals(d);
      bad[4] = std::numeric_limits<float>::infinity();
      ApproxUser au;
      prepare_user(k, c.view(), d, bad.data(), au);
      CHECK(au.path == CompactPath::kFloat);  // then nothing is bounded: every row is rescored
    }
   }
  });

  run("batched_vnni_scan_gives_the_float32_topk_and_the_per_user_candidates", [] {
    ThreadTeam team(1);
    QuantGen g(606);
    const bool vnni = level_supported(Level::kAvx512) && cpu_features().avx512_vnni;
    for (size_t d : {3u, 29u, 65u}) {
      for (size_t b : {16u, 17u, 50u}) {
        std::vector<QuantData> sets;  // each catalogue at one batch size, k = n at b = 16 only
        if (b == 16) sets.push_back(random_catalogue(d, g, true));
        if (b == 17) sets.push_back(scaled(d, g, -30.0f, 5.0f, {1e30f, 1.0f, 1e-5f}, "rows 1e-30..1e5"));
        if (b != 17) sets.push_back(near_duplicates(d, g));
        for (QuantData& D : sets) {
          // b users: the catalogue's own, repeated with changes, the zero user among them.
          std::vector<float> users(b * d);
          for (size_t i = 0; i < b * d; ++i) users[i] = D.users[i % (D.b * d)] * (1.0f + 0.01f * static_cast<float>(i / (D.b * d)));
          for (size_t i = 0; i < d; ++i) users[5 * d + i] = 0.0f;
          D.users = users;
          D.b = b;
          add_exclusions(D);
          std::vector<int32_t> offsets = D.offsets, excl = D.excl;
          prepare_exclusions(offsets.data(), excl.data(), b, D.n);
          const Compressed c = compress(D.x.data(), D.n, d, D.bias.empty() ? nullptr : D.bias.data(), Precision::kInt8);
          for (size_t k : {size_t{1}, size_t{1000}, D.n}) {
            if (k == D.n && b != 16) continue;
            ScoreRequest r;
            r.items = D.x.data();
            r.n = D.n;
            r.d = d;
            r.bias = D.bias.empty() ? nullptr : D.bias.data();
            r.users = D.users.data();
            r.b = b;
            r.k = k;
            r.excl_offsets = offsets.data();
            r.excl_rows = excl.data();
            r.isa = Level::kScalar;
            std::vector<int32_t> ref_rows(b * k), rows(b * k), one_cand(b), cand(b);
            std::vector<float> ref_scores(b * k), scores(b * k);
            score_topk(r, ref_rows.data(), ref_scores.data());
            r.isa = Level::kAvx512;
            score_topk_compressed(r, c.view(), rows.data(), scores.data(), one_cand.data());  // one user at a time
            CHECK(rows == ref_rows);
            r.compressed_gemm = true;
            for (int threads : {1, 2}) {
              r.threads = threads;
              r.team = threads > 1 ? &team : nullptr;
              std::fill(rows.begin(), rows.end(), -2);
              score_topk_compressed(r, c.view(), rows.data(), scores.data(), cand.data());
              const bool ok = rows == ref_rows && std::memcmp(scores.data(), ref_scores.data(), scores.size() * 4) == 0;
              if (!ok) std::fprintf(stderr, "  %s d=%zu b=%zu k=%zu threads=%d\n", D.name.c_str(), d, b, k, threads);
              CHECK(ok);
              if (vnni) CHECK(cand == one_cand);  // the same approximate scores and bounds
            }
          }
        }
      }
    }
    // A user with an infinite element takes the float kernel inside the batch: every row stays a
    // candidate, as one at a time.
    const QuantData D = random_catalogue(9, g, false);
    std::vector<float> users = g.normals(16 * 9);
    users[3 * 9 + 4] = std::numeric_limits<float>::infinity();
    const Compressed c = compress(D.x.data(), D.n, 9, nullptr, Precision::kInt8);
    ScoreRequest r;
    r.items = D.x.data();
    r.n = D.n;
    r.d = 9;
    r.users = users.data();
    r.b = 16;
    r.k = 7;
    r.isa = Level::kAvx512;
    std::vector<int32_t> a(16 * 7), bb(16 * 7), ca(16), cb(16);
    std::vector<float> sa(16 * 7), sb(16 * 7);
    score_topk_compressed(r, c.view(), a.data(), sa.data(), ca.data());
    r.compressed_gemm = true;
    score_topk_compressed(r, c.view(), bb.data(), sb.data(), cb.data());
    CHECK(a == bb && ca == cb && std::memcmp(sa.data(), sb.data(), sa.size() * 4) == 0);
    if (vnni) CHECK(static_cast<size_t>(cb[3]) == D.n);
  });

  run("row_terms_are_ignored_at_scalar_used_at_avx2_for_int8_and_match_compress", [] {
    QuantGen g(5);
    const size_t n = 70, d = 13;
    const std::vector<float> x = g.normals(n * d);
    for (Precision p : {Precision::kInt8, Precision::kBf16}) {
      const Compressed c = compress(x.data(), n, d, nullptr, p);
      const CompactRowTerms t = compact_row_terms(c.view(), n, d);
      CHECK(t.cnorm == c.terms.cnorm && t.cnorm.size() == n);
      for (size_t j = 0; j < n; ++j) {
        double xx = 0;
        for (size_t i = 0; i < d; ++i) {
          double v = 0;
          if (p == Precision::kInt8) {
            const int8_t q = c.q[compact_index(j, i, d, kI8Width)];
            v = static_cast<double>(c.scale[j]) * q;
          } else {
            uint32_t b = static_cast<uint32_t>(c.h[compact_index(j, i, d, kBf16Width)]) << 16;
            float f;
            std::memcpy(&f, &b, 4);
            v = f;
          }
          xx += v * v;
        }
        CHECK(t.cnorm[j] >= std::sqrt(xx) && t.cnorm[j] <= std::sqrt(xx) * (1 + 1e-6) + 1e-40);
      }
      CHECK(compact_path(Level::kScalar, c.view(), d) == CompactPath::kFloat);
      CHECK(!compact_terms_used(Level::kScalar, p, d));
      if (level_supported(Level::kAvx2)) {  // AVX2: the madd path for int8 only
        const bool i8 = p == Precision::kInt8;
        CHECK(compact_path(Level::kAvx2, c.view(), d) == (i8 ? CompactPath::kMadd : CompactPath::kFloat));
        CHECK(compact_terms_used(Level::kAvx2, p, d) == i8);
        CompressedView bare2 = c.view();
        bare2.cnorm = nullptr;
        CHECK(compact_path(Level::kAvx2, bare2, d) == CompactPath::kFloat);
      }
      CompressedView bare = c.view();
      bare.cnorm = nullptr;
      CHECK(compact_path(Level::kAvx512, bare, d) == CompactPath::kFloat);
    }
    CHECK(!compact_terms_used(Level::kAvx512, Precision::kInt8, kVnniMaxDim + 1));
    CHECK(!compact_terms_used(Level::kAvx2, Precision::kInt8, kVnniMaxDim + 1));
  });
}
