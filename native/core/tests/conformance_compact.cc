// Conformance of compressed catalogues over packed copies (gemm/compact.h): the approximate
// kernels of every level against the scalar chain, and compressed scans of a catalogue that has
// no row-major matrix against the float32 top-k. Run by conformance_tests.cc's main.
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "../bf16.h"
#include "../compressed.h"
#include "../gemm/compact.h"
#include "../gemm/contract.h"
#include "../gemm/pack.h"
#include "../kernels.h"
#include "../scorer.h"
#include "../thread_team.h"
#include "conformance_common.h"

using namespace recscore;

namespace conformance {

// dot_rows_i8 / dot_rows_bf16 over compact copies packed in panels (gemm/compact.h): every level
// bit-exact against the scalar level, which is the chain written out over the row-major copy;
// padding (junk here) is never used and nothing past out[n - 1] is written.
void compact_dot_conformance() {
  for (size_t d : dims()) {
    for (size_t n : {size_t{1}, size_t{15}, size_t{16}, size_t{17}, size_t{64}, size_t{70}, size_t{131}}) {
      std::mt19937 g(static_cast<uint32_t>(d * 1009 + n));
      const auto x = random_values(n * d, static_cast<uint32_t>(d * 7 + n), 3.0f);
      const auto u = random_values(d, static_cast<uint32_t>(d + 5 * n));
      const auto scale = random_values(n, static_cast<uint32_t>(d + n + 1), 0.01f);
      std::vector<int8_t> q(n * d);
      std::vector<uint16_t> h(n * d);
      for (size_t i = 0; i < n * d; ++i) {
        q[i] = static_cast<int8_t>(static_cast<int>(g() % 255) - 127);
        h[i] = to_bf16(x[i]);
      }
      std::vector<int8_t> pq(i8_compact_elems(n, d), 0);
      std::vector<uint16_t> ph(bf16_compact_elems(n, d), 0);
      pack_compact(q.data(), n, d, kI8Width, pq.data());
      pack_compact(h.data(), n, d, kBf16Width, ph.data());
      for (size_t j = 0; j < panel_count(n) * kPanel; ++j) {  // junk in every padding slot
        for (size_t i = 0; i < compact_groups(d, kI8Width) * kI8Width; ++i) {
          if (j >= n || i >= d) pq[i8_index(j, i, d)] = 127;
        }
        for (size_t i = 0; i < compact_groups(d, kBf16Width) * kBf16Width; ++i) {
          if (j >= n || i >= d) ph[bf16_index(j, i, d)] = 0x7fc0;  // NaN
        }
      }
      std::vector<float> ref_q(n), ref_h(n);
      for (size_t j = 0; j < n; ++j) {
        float sq = 0, sh = 0;
        for (size_t p = 0; p < d; ++p) {
          sq = std::fma(u[p], static_cast<float>(q[j * d + p]), sq);
          sh = std::fma(u[p], from_bf16(h[j * d + p]), sh);
        }
        ref_q[j] = scale[j] * sq;
        ref_h[j] = sh;
      }
      digest(ref_q.data(), n);
      digest(ref_h.data(), n);
      for (Level level : levels()) {
        const Kernels& k = kernels_for(level);
        std::vector<float> oq(n + 16, -7.0f), oh(n + 16, -7.0f);
        k.dot_rows_i8(u.data(), pq.data(), d, n, scale.data(), oq.data());
        k.dot_rows_bf16(u.data(), ph.data(), d, n, oh.data());
        for (size_t j = 0; j < n + 16; ++j) {
          const float wq = j < n ? ref_q[j] : -7.0f, wh = j < n ? ref_h[j] : -7.0f;
          EXPECT(bits(oq[j]) == bits(wq), "%s int8 d=%zu n=%zu row %zu: %.9g vs %.9g", level_name(level), d, n, j,
                 static_cast<double>(oq[j]), static_cast<double>(wq));
          EXPECT(bits(oh[j]) == bits(wh), "%s bf16 d=%zu n=%zu row %zu: %.9g vs %.9g", level_name(level), d, n, j,
                 static_cast<double>(oh[j]), static_cast<double>(wh));
        }
      }
    }
  }
}

// Compressed scans over a panels-only catalogue (no row-major matrix): every level x threads 1/2
// gives the scalar float32 top-k, rows and score bits.
void compressed_topk_conformance() {
  ThreadTeam team(2);
  for (size_t d : dims()) {
    const size_t n = 9000 + d % 13, b = 3, k = 1 + d % 25;
    const auto items = random_values(n * d, static_cast<uint32_t>(d * 5 + 3));
    const auto bias = random_values(n, static_cast<uint32_t>(d + 91), 0.5f);
    const auto users = random_values(b * d, static_cast<uint32_t>(d * 13 + 1));
    std::vector<float> panels(panel_count(n) * panel_floats(d));
    pack_panels(Level::kScalar, items.data(), n, d, d, panels.data());
    ScoreRequest r;
    r.panels = panels.data();
    r.n = n;
    r.d = d;
    r.bias = bias.data();
    r.users = users.data();
    r.b = b;
    r.k = k;
    r.isa = Level::kScalar;
    std::vector<int32_t> ref_rows(b * k);
    std::vector<float> ref_scores(b * k);
    score_topk(r, ref_rows.data(), ref_scores.data());
    for (Precision p : {Precision::kInt8, Precision::kBf16}) {
      const Compressed c = compress(items.data(), n, d, bias.data(), p);
      const CompressedView v = c.view();  // row terms included: the quantised-user kernels where present
      for (Level level : levels()) {
        for (int threads : {1, 2}) {
          r.isa = level;
          r.threads = threads;
          r.team = threads > 1 ? &team : nullptr;
          std::vector<int32_t> rows(b * k);
          std::vector<float> scores(b * k);
          score_topk_compressed(r, v, rows.data(), scores.data(), nullptr);
          for (size_t i = 0; i < b * k; ++i) {
            EXPECT(rows[i] == ref_rows[i] && bits(scores[i]) == bits(ref_scores[i]), "%s %s threads=%d d=%zu at %zu",
                   p == Precision::kInt8 ? "int8" : "bf16", level_name(level), threads, d, i);
          }
        }
      }
    }
  }
}

}  // namespace conformance
