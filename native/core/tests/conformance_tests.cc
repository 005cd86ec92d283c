// Conformance of every level against the scalar reference (FAISS's dispatch test is the model):
// each kernel x each level this CPU runs x awkward dims x batches x threads, BIT-exact against
// the scalar level (the arithmetic contract, gemm/contract.h), plus accuracy against float64
// within the chain's rounding bound. Quick grid by default; RECSCORE_CONFORMANCE=full runs the
// whole grid of the kernel issue. Prints "N passed, N failed".
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "../gemm/contract.h"
#include "../gemm/pack.h"
#include "../kernels.h"
#include "../platform/levels.h"
#include "../rnn_encoder.h"
#include "../rnn_model.h"
#include "../scorer.h"
#include "../thread_team.h"
#include "conformance_common.h"

using namespace recscore;
using namespace conformance;

namespace {

int g_passed = 0, g_failed = 0;

void run(const std::string& name, const std::function<void()>& fn) {
  try {
    fn();
    ++g_passed;
    std::printf("ok   %s\n", name.c_str());
  } catch (const std::exception& e) {
    ++g_failed;
    std::printf("FAIL %s (%s)\n", name.c_str(), e.what());
  }
}

// gemm_panels of every level against the scalar level, with and without init and bias, over
// item counts that leave partial panels; and the scalar level against float64.
void gemm_conformance() {
  for (size_t d : dims()) {
    for (size_t m : batches()) {
      const size_t n = 1 + (d * 7 + m * 5) % 70;  // 1..70 rows of B: partial panels
      const auto a = random_values(m * d, static_cast<uint32_t>(d * 131 + m));
      const auto b = random_values(n * d, static_cast<uint32_t>(d * 17 + m + 5));
      const auto bias = random_values(n, static_cast<uint32_t>(d + m + 9));
      const auto init = random_values(m * n, static_cast<uint32_t>(d + 3 * m + 1));
      std::vector<float> packed(panel_count(n) * panel_floats(d));
      pack_panels(Level::kScalar, b.data(), n, d, d, packed.data());
      for (int variant = 0; variant < 3; ++variant) {
        const float* bi = variant >= 1 ? bias.data() : nullptr;
        const float* in = variant == 2 ? init.data() : nullptr;
        std::vector<float> ref(m * n);
        kernels_for(Level::kScalar).gemm_panels(a.data(), d, m, packed.data(), d, n, in, n, bi, ref.data(), n);
        digest(ref.data(), ref.size());
        for (size_t r = 0; r < m; ++r) {
          for (size_t j = 0; j < n; ++j) {
            double s = in ? in[r * n + j] : 0.0, mag = std::fabs(s);
            for (size_t p = 0; p < d; ++p) {
              const double t = static_cast<double>(a[r * d + p]) * b[j * d + p];
              s += t;
              mag += std::fabs(t);
            }
            if (bi) {
              s += bi[j];
              mag += std::fabs(bi[j]);
            }
            const double bound = (static_cast<double>(d) + 2) * std::ldexp(1.0, -24) * mag;
            EXPECT(std::fabs(ref[r * n + j] - s) <= bound, "d=%zu m=%zu r=%zu j=%zu: %.9g vs %.9g", d, m, r, j,
                   static_cast<double>(ref[r * n + j]), s);
          }
        }
        for (Level level : levels()) {
          std::vector<float> out(m * n, -7.0f);
          kernels_for(level).gemm_panels(a.data(), d, m, packed.data(), d, n, in, n, bi, out.data(), n);
          for (size_t i = 0; i < m * n; ++i) {
            EXPECT(bits(out[i]) == bits(ref[i]), "%s d=%zu m=%zu variant=%d at %zu: %.9g vs %.9g", level_name(level), d,
                   m, variant, i, static_cast<double>(out[i]), static_cast<double>(ref[i]));
          }
        }
      }
    }
  }
}

// The fused top-k of every level, 1 and 2 threads, against the scalar level on one thread:
// rows and score bits; and each user's answer alone equals its answer in the batch.
void topk_conformance() {
  ThreadTeam team(2);
  for (size_t d : dims()) {
    const size_t n = 2000 + d % 13;
    const auto items = random_values(n * d, static_cast<uint32_t>(d * 3 + 1));
    const auto bias = random_values(n, static_cast<uint32_t>(d + 77), 0.5f);
    std::vector<float> panels(panel_count(n) * panel_floats(d));
    pack_panels(Level::kScalar, items.data(), n, d, d, panels.data());
    for (size_t b : batches()) {
      const auto users = random_values(b * d, static_cast<uint32_t>(d * 11 + b));
      const size_t k = 1 + (d + b) % 40;
      auto score = [&](Level level, int threads, const float* u, size_t nb, std::vector<int32_t>& rows,
                       std::vector<float>& scores, bool packed = false) {
        ScoreRequest r;
        r.items = packed ? nullptr : items.data();  // with panels nothing reads the rows
        r.n = n;
        r.d = d;
        r.bias = bias.data();
        r.panels = packed ? panels.data() : nullptr;
        r.users = u;
        r.b = nb;
        r.k = k;
        r.threads = threads;
        r.team = threads > 1 ? &team : nullptr;
        r.isa = level;
        rows.assign(nb * k, 0);
        scores.assign(nb * k, 0);
        score_topk(r, rows.data(), scores.data());
      };
      std::vector<int32_t> ref_rows;
      std::vector<float> ref_scores;
      score(Level::kScalar, 1, users.data(), b, ref_rows, ref_scores);
      digest(ref_scores.data(), ref_scores.size());
      for (Level level : levels()) {
        for (int variant = 0; variant < 4; ++variant) {
          const int threads = 1 + variant % 2;
          const bool packed = variant >= 2;  // pre-packed panels, as catalogues hand them over
          std::vector<int32_t> rows;
          std::vector<float> scores;
          score(level, threads, users.data(), b, rows, scores, packed);
          for (size_t i = 0; i < b * k; ++i) {
            EXPECT(rows[i] == ref_rows[i] && bits(scores[i]) == bits(ref_scores[i]),
                   "%s threads=%d packed=%d d=%zu b=%zu at %zu: row %d %.9g vs %d %.9g", level_name(level), threads,
                   packed ? 1 : 0, d, b, i, rows[i], static_cast<double>(scores[i]), ref_rows[i],
                   static_cast<double>(ref_scores[i]));
          }
        }
        // The last user alone, on this level.
        std::vector<int32_t> rows;
        std::vector<float> scores;
        score(level, 1, users.data() + (b - 1) * d, 1, rows, scores);
        for (size_t i = 0; i < k; ++i) {
          EXPECT(rows[i] == ref_rows[(b - 1) * k + i] && bits(scores[i]) == bits(ref_scores[(b - 1) * k + i]),
                 "%s alone d=%zu b=%zu at %zu", level_name(level), d, b, i);
        }
      }
    }
  }
}

// sigmoid and tanh: one formula, the same bits on every level, over a sweep of the float range.
void activation_conformance() {
  std::vector<float> xs;
  for (float x = -100.0f; x <= 100.0f; x += 0.0137f) xs.push_back(x);
  for (float x : {0.0f, -0.0f, 1e-30f, -1e-30f, 88.0f, -88.0f, 89.0f, -89.0f, 1e30f, -1e30f, INFINITY, -INFINITY}) {
    xs.push_back(x);
  }
  for (int which = 0; which < 2; ++which) {
    std::vector<float> ref = xs;
    const Kernels& s = kernels_for(Level::kScalar);
    (which ? s.tanh : s.sigmoid)(ref.data(), ref.size());
    for (size_t i = 0; i < xs.size(); ++i) {
      const double want = which ? std::tanh(static_cast<double>(xs[i])) : 1.0 / (1.0 + std::exp(-static_cast<double>(xs[i])));
      EXPECT(std::fabs(ref[i] - want) <= 1e-6, "%s(%.9g) = %.9g, want %.9g", which ? "tanh" : "sigmoid",
             static_cast<double>(xs[i]), static_cast<double>(ref[i]), want);
    }
    for (Level level : levels()) {
      std::vector<float> v = xs;
      const Kernels& k = kernels_for(level);
      (which ? k.tanh : k.sigmoid)(v.data(), v.size());
      for (size_t i = 0; i < xs.size(); ++i) {
        EXPECT(bits(v[i]) == bits(ref[i]), "%s %s(%.9g): %.9g vs %.9g", level_name(level), which ? "tanh" : "sigmoid",
               static_cast<double>(xs[i]), static_cast<double>(v[i]), static_cast<double>(ref[i]));
      }
    }
  }
}

EncoderModel encoder_model(CellKind kind, bool lbr, size_t hidden, bool fold, uint32_t seed) {
  std::mt19937 g(seed);
  auto vec = [&](size_t count, float scale) {
    std::vector<float> v(count);
    for (auto& x : v) x = uniform(g, scale);
    return v;
  };
  EncoderModel m;
  m.vocab = 41;
  m.emb_dim = 67;
  m.embedding = vec(m.vocab * m.emb_dim, 1.0f);
  size_t in = m.emb_dim;
  for (size_t l = 0; l < 2; ++l) {
    RnnLayer L;
    L.kind = kind;
    L.input = in;
    L.hidden = hidden + l;
    L.linear_before_reset = lbr;
    const size_t gh = L.gates() * L.hidden;
    RnnDirection d;
    d.w = vec(gh * in, 0.3f);
    d.r = vec(gh * L.hidden, 0.3f);
    d.bias_x = vec(gh, 0.2f);
    if (kind == CellKind::kGru && lbr) d.rbh = vec(L.hidden, 0.2f);
    L.dirs.push_back(d);
    in = L.width();
    m.layers.push_back(L);
  }
  m.output.push_back({1, 0, OutputSegment::kHFinal});
  HeadOp dense;
  dense.kind = HeadOp::kDense;
  dense.in = m.segment_width();
  dense.out = 19;
  dense.w = vec(dense.out * dense.in, 0.4f);
  dense.b = vec(dense.out, 0.1f);
  m.head.push_back(dense);
  HeadOp act;
  act.kind = HeadOp::kSigmoid;
  m.head.push_back(act);
  m.validate();
  if (fold) m.fold_first_layer(size_t{1} << 30);
  return m;
}

// Encoders: every level x threads 1/2 x batch sizes bit-exact against the scalar level on one
// thread, and stepping a history event by event gives exactly its encoding (encode == step).
void encoder_conformance() {
  ThreadTeam team(2);
  const size_t rows = full() ? 300 : 37;
  std::mt19937 g(5);
  std::vector<int32_t> ids, offsets{0};
  for (size_t u = 0; u < rows; ++u) {
    const size_t len = g() % 13;
    for (size_t t = 0; t < len; ++t) ids.push_back(static_cast<int32_t>(g() % 41));
    offsets.push_back(static_cast<int32_t>(ids.size()));
  }
  struct Spec {
    const char* name;
    CellKind kind;
    bool lbr;
    size_t hidden;
    bool fold;
  };
  const Spec specs[] = {{"lstm", CellKind::kLstm, false, 33, false},
                        {"lstm folded", CellKind::kLstm, false, 17, true},
                        {"gru lbr=0", CellKind::kGru, false, 17, false},
                        {"gru lbr=1 folded", CellKind::kGru, true, 31, true}};
  for (const Spec& spec : specs) {
    const EncoderModel m = encoder_model(spec.kind, spec.lbr, spec.hidden, spec.fold, 99);
    const size_t out = m.out_dim();
    std::vector<float> ref(rows * out);
    rnn_encode(m, Level::kScalar, ids.data(), offsets.data(), rows, nullptr, 1, ref.data());
    digest(ref.data(), ref.size());
    for (Level level : levels()) {
      for (int threads : {1, 2}) {
        for (size_t b : {rows, size_t{1}, size_t{7}}) {
          std::vector<float> enc(b * out);
          rnn_encode(m, level, ids.data(), offsets.data(), b, threads > 1 ? &team : nullptr, threads, enc.data());
          for (size_t i = 0; i < b * out; ++i) {
            EXPECT(bits(enc[i]) == bits(ref[i]), "%s %s threads=%d b=%zu at %zu: %.9g vs %.9g", spec.name,
                   level_name(level), threads, b, i, static_cast<double>(enc[i]), static_cast<double>(ref[i]));
          }
        }
        // encode == step, one row at a time through its history.
        for (size_t u = 0; u < rows; u += 5) {
          std::vector<float> state(m.state_size(), 0.0f), o(out);
          rnn_output(m, level, state.data(), 1, o.data());
          for (int32_t t = offsets[u]; t < offsets[u + 1]; ++t) {
            rnn_step(m, level, state.data(), &ids[static_cast<size_t>(t)], 1, threads > 1 ? &team : nullptr, threads,
                     o.data());
          }
          for (size_t i = 0; i < out; ++i) {
            EXPECT(bits(o[i]) == bits(ref[u * out + i]), "%s %s threads=%d step row %zu at %zu", spec.name,
                   level_name(level), threads, u, i);
          }
        }
      }
    }
  }
}

}  // namespace

int main() {
  std::string present;
  for (Level l : levels()) present += std::string(present.empty() ? "" : ", ") + level_name(l);
  std::printf("conformance (%s grid) at levels: %s\n", full() ? "full" : "quick", present.c_str());
  run("gemm_panels: every level bit-exact vs scalar, scalar within (d+2)u of float64", gemm_conformance);
  run("score_topk: every level x threads 1/2 x packed or not, bit-exact vs scalar; alone == in batch", topk_conformance);
  run("dot_rows_i8/bf16 on packed compact copies: every level bit-exact vs the scalar chain", compact_dot_conformance);
  run("compressed top-k on panels only: every level x threads 1/2 == scalar float32 top-k", compressed_topk_conformance);
  run("dot_rows_u8i8 / gemm_u8i8 (VNNI), dot_rows_u7i8 (madd) exact, dot_rows_bf16_pairs (BF16) within its bound",
      quantised_kernel_conformance);
  run("sigmoid/tanh: every level bit-exact vs scalar, scalar within 1e-6", activation_conformance);
  run("encoders: every level x threads 1/2 x batches bit-exact vs scalar; encode == step", encoder_conformance);
  std::printf("digest of the scalar results: %016llx\n", static_cast<unsigned long long>(g_digest));
  std::printf("%d passed, %d failed\n", g_passed, g_failed);
  return g_failed == 0 ? 0 : 1;
}
