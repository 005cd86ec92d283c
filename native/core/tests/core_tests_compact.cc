// native/core tests: the panel layouts of catalogues without a row-major matrix — the compact
// copies packed in panels (gemm/compact.h), check_compressed and matrix statistics on packed
// float32 panels, rescoring from panels, and the helper team's spin setting. Run by
// core_tests.cc's main.
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "../bf16.h"
#include "../compressed.h"
#include "../errors.h"
#include "../gemm/compact.h"
#include "../gemm/contract.h"
#include "../gemm/pack.h"
#include "../kernels.h"
#include "../matrix_stats.h"
#include "../scorer.h"
#include "../thread_team.h"
#include "core_tests_common.h"

using namespace recscore;
using namespace core_tests;

namespace {

std::vector<float> packed(const std::vector<float>& x, size_t n, size_t d) {
  std::vector<float> p(panel_count(n) * panel_floats(d));
  pack_panels(Level::kScalar, x.data(), n, d, d, p.data());
  return p;
}

// Every padding slot of a packed float32 copy (rows past n) set to v.
void fill_float_padding(std::vector<float>& p, size_t n, size_t d, float v) {
  for (size_t j = n; j < panel_count(n) * kPanel; ++j) {
    for (size_t i = 0; i < d; ++i) p[(j / kPanel) * panel_floats(d) + i * kPanel + j % kPanel] = v;
  }
}

// Every padding slot of a packed compact copy (rows past n, dimensions past d) set to v.
template <typename T>
void fill_compact_padding(std::vector<T>& c, size_t n, size_t d, size_t w, T v) {
  const size_t dd = compact_groups(d, w) * w;
  for (size_t j = 0; j < panel_count(n) * kPanel; ++j) {
    for (size_t i = 0; i < dd; ++i) {
      if (j >= n || i >= d) c[compact_index(j, i, d, w)] = v;
    }
  }
}

// Row terms included: at the AVX-512 level the quantised-user kernels run where the CPU has them.
CompressedView view_of(const Compressed& c) { return c.view(); }

}  // namespace

void core_tests::compact_tests() {
  run("compact_layout_index_formula_and_sizes", [] {
    for (size_t d : {1u, 3u, 4u, 5u, 19u, 64u}) {
      const size_t g4 = (d + 3) / 4, g2 = (d + 1) / 2;
      CHECK(i8_compact_elems(33, d) == 3 * 64 * g4);
      CHECK(bf16_compact_elems(33, d) == 3 * 32 * g2);
      CHECK(i8_compact_elems(0, d) == 0 && bf16_compact_elems(16, d) == 32 * g2);
      for (size_t j : {0u, 1u, 15u, 16u, 17u, 40u}) {
        for (size_t i = 0; i < d; ++i) {
          CHECK(i8_index(j, i, d) == (j / 16) * 64 * g4 + (i / 4) * 64 + (j % 16) * 4 + i % 4);
          CHECK(bf16_index(j, i, d) == (j / 16) * 32 * g2 + (i / 2) * 32 + (j % 16) * 2 + i % 2);
        }
      }
    }
  });

  run("compress_writes_packed_compact_copies_equal_to_packing_row_major", [] {
    for (size_t d : {1u, 2u, 3u, 5u, 19u, 33u}) {
      for (size_t n : {1u, 15u, 16u, 17u, 50u}) {
        auto x = random_matrix(n, d, static_cast<uint32_t>(7 * n + d));
        Compressed ci = compress(x.data(), n, d, nullptr, Precision::kInt8);
        Compressed cb = compress(x.data(), n, d, nullptr, Precision::kBf16);
        CHECK(ci.q.size() == i8_compact_elems(n, d) && cb.h.size() == bf16_compact_elems(n, d));
        CHECK(ci.scale.size() == n && ci.err.size() == n && cb.err.size() == n);
        // The row-major copies, quantised as compress does, then packed.
        std::vector<int8_t> q(n * d);
        std::vector<uint16_t> h(n * d);
        for (size_t j = 0; j < n; ++j) {
          for (size_t i = 0; i < d; ++i) {
            const float s = ci.scale[j];
            long v = s > 0 ? std::lround(x[j * d + i] / s) : 0;
            q[j * d + i] = static_cast<int8_t>(std::min(127L, std::max(-127L, v)));
            h[j * d + i] = to_bf16(x[j * d + i]);
          }
        }
        std::vector<int8_t> pq(i8_compact_elems(n, d), 5);
        std::vector<uint16_t> ph(bf16_compact_elems(n, d), 5);
        pack_compact(q.data(), n, d, kI8Width, pq.data());
        pack_compact(h.data(), n, d, kBf16Width, ph.data());
        CHECK(pq == ci.q && ph == cb.h);  // padding included: zero
        std::vector<int8_t> uq(n * d);
        std::vector<uint16_t> uh(n * d);
        unpack_compact(ci.q.data(), n, d, kI8Width, uq.data());
        unpack_compact(cb.h.data(), n, d, kBf16Width, uh.data());
        CHECK(uq == q && uh == h);
      }
    }
  });

  run("check_compressed_on_panels_follows_the_row_major_rules", [] {
    const size_t n = 45, d = 7;  // partial last panel, partial last groups
    auto x = random_matrix(n, d, 3);
    auto bias = random_matrix(n, 1, 4);
    auto p = packed(x, n, d);
    fill_float_padding(p, n, d, std::numeric_limits<float>::quiet_NaN());  // never read
    for (Precision pr : {Precision::kInt8, Precision::kBf16}) {
      Compressed c = compress(x.data(), n, d, bias.data(), pr);
      if (pr == Precision::kInt8) fill_compact_padding<int8_t>(c.q, n, d, kI8Width, 127);
      else fill_compact_padding<uint16_t>(c.h, n, d, kBf16Width, 0x7f80);
      CHECK(check_compressed(p.data(), n, d, bias.data(), view_of(c)).row == -1);
      // A corrupted compact value of row j is reported as row j.
      for (size_t j : {0u, 16u, 33u, 44u}) {
        for (size_t i : {0u, 3u, 6u}) {
          Compressed bad = c;
          if (pr == Precision::kInt8) {
            int8_t& v = bad.q[i8_index(j, i, d)];
            v = static_cast<int8_t>(v > 0 ? -127 : 127);
          } else {
            bad.h[bf16_index(j, i, d)] = 0xff80;  // -Infinity
          }
          const CompressedFault f = check_compressed(p.data(), n, d, bias.data(), view_of(bad));
          CHECK(f.row == static_cast<int64_t>(j));
          if (pr == Precision::kBf16) CHECK(f.rule == CompressedRule::kNonFinite && f.column == static_cast<int64_t>(i));
          else CHECK(f.rule == CompressedRule::kErr || f.rule == CompressedRule::kFarther);
        }
      }
      // A float32 value of row j changed: the bound terms no longer cover it, at row j.
      auto p2 = p;
      p2[(33 / 16) * panel_floats(d) + 4 * kPanel + 33 % 16] += 0.5f;
      CHECK(check_compressed(p2.data(), n, d, bias.data(), view_of(c)).row == 33);
    }
  });

  run("matrix_stats_on_panels_equals_row_major", [] {
    for (size_t n : {1u, 16u, 37u}) {
      for (size_t d : {1u, 5u, 16u}) {
        auto x = random_matrix(n, d, static_cast<uint32_t>(n * 31 + d));
        x[(n / 2) * d] = 3.0f;  // a larger row
        auto p = packed(x, n, d);
        fill_float_padding(p, n, d, 1e30f);  // padding ignored
        for (double limit : {HUGE_VAL, 1.0, 0.5}) {
          const MatrixStats a = matrix_stats(x.data(), n, d, limit), b = matrix_stats_panels(p.data(), n, d, limit);
          CHECK(a.first_non_finite == -1 && b.first_non_finite == -1);
          CHECK(a.max_row_norm == b.max_row_norm && a.max_abs == b.max_abs);
          CHECK(a.first_row_above == b.first_row_above && a.row_norm_above == b.row_norm_above);
        }
        const size_t j = n - 1, i = d - 1;
        x[j * d + i] = -std::numeric_limits<float>::infinity();
        p[(j / kPanel) * panel_floats(d) + i * kPanel + j % kPanel] = x[j * d + i];
        CHECK(matrix_stats(x.data(), n, d).first_non_finite == static_cast<int64_t>(j * d + i));
        CHECK(matrix_stats_panels(p.data(), n, d).first_non_finite == static_cast<int64_t>(j * d + i));
      }
    }
    std::vector<float> p(2 * panel_floats(3), 0.0f);
    p[1 * kPanel + 5] = std::numeric_limits<float>::quiet_NaN();   // row 5, column 1
    p[panel_floats(3) + 0 * kPanel + 2] = std::numeric_limits<float>::quiet_NaN();  // row 18
    CHECK(matrix_stats_panels(p.data(), 20, 3).first_non_finite == 5 * 3 + 1);
  });

  run("rescoring_from_panels_equals_rescoring_from_rows", [] {
    const size_t n = 9000, d = 21, b = 3;
    auto x = random_matrix(n, d, 61);
    auto bias = random_matrix(n, 1, 62);
    auto users = random_matrix(b, d, 63);
    auto p = packed(x, n, d);
    ThreadTeam team(1);
    for (Precision pr : {Precision::kInt8, Precision::kBf16}) {
      Compressed c = compress(x.data(), n, d, bias.data(), pr);
      for (Isa isa : isas()) {
        for (size_t k : {1u, 30u}) {
          ScoreRequest r;
          r.n = n;
          r.d = d;
          r.bias = bias.data();
          r.users = users.data();
          r.b = b;
          r.k = k;
          r.threads = 2;
          r.team = &team;
          r.isa = isa;
          std::vector<int32_t> rr(b * k), rp(b * k), rf(b * k);
          std::vector<float> sr(b * k), sp(b * k), sf(b * k);
          r.items = x.data();
          score_topk_compressed(r, view_of(c), rr.data(), sr.data(), nullptr);
          r.items = nullptr;  // panels only: nothing reads a row-major matrix
          r.panels = p.data();
          score_topk_compressed(r, view_of(c), rp.data(), sp.data(), nullptr);
          score_topk(r, rf.data(), sf.data());
          CHECK(rr == rp && rp == rf);
          CHECK(std::memcmp(sr.data(), sp.data(), sr.size() * sizeof(float)) == 0);
          CHECK(std::memcmp(sp.data(), sf.data(), sp.size() * sizeof(float)) == 0);
        }
      }
      ScoreRequest none;
      none.n = n;
      none.d = d;
      none.users = users.data();
      none.b = 1;
      none.k = 1;
      std::vector<int32_t> o(1);
      std::vector<float> s(1);
      CHECK(throws<InvalidArgument>([&] { score_topk_compressed(none, view_of(c), o.data(), s.data(), nullptr); }));
      CHECK(throws<InvalidArgument>([&] { score_topk(none, o.data(), s.data()); }));
    }
  });

  run("thread_team_sleeps_or_spins_and_always_finishes", [] {
    const uint32_t before = ThreadTeam::spin_us();
    for (uint32_t spin : {0u, 300u}) {
      ThreadTeam::set_spin_us(spin);
      CHECK(ThreadTeam::spin_us() == spin);
      ThreadTeam team(2);
      for (int rep = 0; rep < 50; ++rep) {
        std::atomic<size_t> sum{0};
        parallel_blocks(&team, 3, 64, [&](size_t, size_t blk) { sum += blk; });
        CHECK(sum == 64 * 63 / 2);
        std::atomic<size_t> phase{0}, bad{0};
        team.run_fixed(
            [&](size_t, size_t members) {
              for (size_t step = 0; step < 20; ++step) {
                phase.fetch_add(1);
                team.barrier();
                if (phase.load() < (step + 1) * members) bad.fetch_add(1);
                team.barrier();
              }
            },
            3, rep % 2 ? 0.0 : 200.0);
        CHECK(bad == 0);
      }
    }
    ThreadTeam::set_spin_us(ThreadTeam::kMaxSpinUs + 1);  // clamped
    CHECK(ThreadTeam::spin_us() == ThreadTeam::kMaxSpinUs);
    ThreadTeam::set_spin_us(before);
  });
}
