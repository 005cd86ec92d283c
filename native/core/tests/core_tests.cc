// native/core tests: the fused top-k against a float64 brute force, selection and merge rules,
// eligibility, exclusions, matrix statistics and file mapping. Built with ASan + UBSan by
// scripts/native-tests.mjs. Prints "N passed, N failed".
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "../compressed.h"
#include "../cpu.h"
#include "../errors.h"
#include "../kernels.h"
#include "../gemm.h"
#include "../mapped_file.h"
#include "../rnn_encoder.h"
#include "../rnn_model.h"
#include "../matrix_stats.h"
#include "../scorer.h"
#include "../thread_team.h"
#include "../topk.h"

using namespace recscore;

namespace {

int g_passed = 0, g_failed = 0;
std::string g_current;

#define CHECK(cond)                                                                          \
  do {                                                                                       \
    if (!(cond)) {                                                                           \
      std::fprintf(stderr, "  %s: CHECK failed at line %d: %s\n", g_current.c_str(), __LINE__, \
                   #cond);                                                                   \
      throw std::runtime_error("check failed");                                             \
    }                                                                                        \
  } while (0)

void run(const char* name, const std::function<void()>& fn) {
  g_current = name;
  try {
    fn();
    ++g_passed;
    std::printf("ok   %s\n", name);
  } catch (const std::exception& e) {
    ++g_failed;
    std::printf("FAIL %s (%s)\n", name, e.what());
  }
}

template <typename E>
bool throws(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const E&) {
    return true;
  }
  return false;
}

std::vector<float> random_matrix(size_t rows, size_t d, uint32_t seed) {
  std::mt19937 g(seed);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::vector<float> m(rows * d);
  for (auto& x : m) x = u(g);
  return m;
}

struct Case {
  size_t n, d, b, k;
  bool bias = false;
  bool exclude = false;
  bool allow = false;
  int threads = 1;
  Isa isa = Isa::kAvx2;
};

// Checks score_topk against float64 scores: every returned row is eligible and its float32 score
// is within tolerance of the float64 one, the list is ordered with ties by row, and no eligible
// row left out scores (in float64) above the last returned one by more than the tolerance.
void check_case(const Case& c, uint32_t seed) {
  auto items = random_matrix(c.n, c.d, seed);
  auto users = random_matrix(c.b, c.d, seed + 1);
  std::vector<float> bias;
  if (c.bias) bias = random_matrix(c.n, 1, seed + 2);
  std::vector<int32_t> offsets(c.b + 1, 0), rows;
  std::mt19937 g(seed + 3);
  if (c.exclude) {
    for (size_t u = 0; u < c.b; ++u) {
      size_t cnt = g() % 7;
      for (size_t i = 0; i < cnt; ++i) rows.push_back(static_cast<int32_t>(g() % c.n));
      offsets[u + 1] = static_cast<int32_t>(rows.size());
    }
    prepare_exclusions(offsets.data(), rows.data(), c.b, c.n);
  }
  std::vector<int32_t> allow;
  std::vector<uint64_t> elig;
  if (c.allow) {
    for (size_t j = 0; j < c.n; j += 3) allow.push_back(static_cast<int32_t>(j));
    elig = build_eligibility(c.n, true, allow.data(), allow.size(), nullptr, 0, 0, 0);
  }
  ScoreRequest r;
  r.items = items.data();
  r.n = c.n;
  r.d = c.d;
  r.bias = c.bias ? bias.data() : nullptr;
  r.users = users.data();
  r.b = c.b;
  r.k = c.k;
  r.excl_offsets = c.exclude ? offsets.data() : nullptr;
  r.excl_rows = c.exclude ? rows.data() : nullptr;
  r.eligible = c.allow ? elig.data() : nullptr;
  r.threads = c.threads;
  ThreadTeam team(3);
  r.team = &team;
  r.isa = c.isa;
  std::vector<int32_t> out_rows(c.b * c.k);
  std::vector<float> out_scores(c.b * c.k);
  score_topk(r, out_rows.data(), out_scores.data());

  for (size_t u = 0; u < c.b; ++u) {
    std::vector<double> ref(c.n);
    std::vector<char> ok(c.n, 1);
    double mag = 0;
    for (size_t j = 0; j < c.n; ++j) {
      double s = c.bias ? bias[j] : 0;
      double m = std::fabs(s);
      for (size_t p = 0; p < c.d; ++p) {
        s += static_cast<double>(users[u * c.d + p]) * items[j * c.d + p];
        m += std::fabs(static_cast<double>(users[u * c.d + p]) * items[j * c.d + p]);
      }
      ref[j] = s;
      mag = std::max(mag, m);
      if (c.allow && j % 3 != 0) ok[j] = 0;
    }
    if (c.exclude) {
      for (int32_t i = offsets[u]; i < offsets[u + 1]; ++i) ok[static_cast<size_t>(rows[i])] = 0;
    }
    size_t eligible = static_cast<size_t>(std::count(ok.begin(), ok.end(), 1));
    const double tol = 1e-6 * mag * static_cast<double>(c.d) + 1e-6;
    std::vector<char> returned(c.n, 0);
    size_t filled = 0;
    for (size_t i = 0; i < c.k; ++i) {
      int32_t row = out_rows[u * c.k + i];
      float s = out_scores[u * c.k + i];
      if (row < 0) {
        CHECK(std::isinf(s) && s < 0);
        continue;
      }
      CHECK(i == filled);  // -1 only at the tail
      ++filled;
      CHECK(static_cast<size_t>(row) < c.n);
      CHECK(ok[static_cast<size_t>(row)]);
      CHECK(!returned[static_cast<size_t>(row)]);
      returned[static_cast<size_t>(row)] = 1;
      CHECK(std::fabs(s - ref[static_cast<size_t>(row)]) <= tol);
      if (i > 0 && out_rows[u * c.k + i - 1] >= 0) {
        float prev = out_scores[u * c.k + i - 1];
        CHECK(prev > s || (prev == s && out_rows[u * c.k + i - 1] < row));
      }
    }
    CHECK(filled == std::min(c.k, eligible));
    if (filled > 0) {
      double last = ref[static_cast<size_t>(out_rows[u * c.k + filled - 1])];
      for (size_t j = 0; j < c.n; ++j) {
        if (ok[j] && !returned[j]) CHECK(ref[j] <= last + 2 * tol);
      }
    }
  }
}

std::vector<Isa> isas() {
  std::vector<Isa> v{Isa::kScalar};
  if (cpu_has_avx2_fma()) v.push_back(Isa::kAvx2);
  return v;
}

void run_topk(const Case& c, std::vector<int32_t>* rows, std::vector<float>* scores,
              const std::vector<float>& items, const std::vector<float>& users) {
  ScoreRequest r;
  r.items = items.data();
  r.n = c.n;
  r.d = c.d;
  r.users = users.data();
  r.b = c.b;
  r.k = c.k;
  r.threads = c.threads;
  static ThreadTeam team(3);
  r.team = &team;
  r.isa = c.isa;
  rows->assign(c.b * c.k, 0);
  scores->assign(c.b * c.k, 0);
  score_topk(r, rows->data(), scores->data());
}

// ---- recurrent encoder: a float64 reference of the ONNX LSTM/GRU equations ----

double sigm(double x) { return 1.0 / (1.0 + std::exp(-x)); }

std::vector<float> rand_vec(size_t n, std::mt19937& g, float scale) {
  std::uniform_real_distribution<float> u(-scale, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = u(g);
  return v;
}

EncoderModel random_model(CellKind kind, size_t layers, size_t dirs, bool reverse, bool peep, float clip,
                          bool input_forget, bool lbr, uint32_t seed) {
  std::mt19937 g(seed);
  EncoderModel m;
  m.vocab = 23;
  m.emb_dim = 5;
  m.embedding = rand_vec(m.vocab * m.emb_dim, g, 1.f);
  size_t in = m.emb_dim;
  for (size_t l = 0; l < layers; ++l) {
    RnnLayer L;
    L.kind = kind;
    L.input = in;
    L.hidden = 6 + l;
    L.clip = clip;
    L.input_forget = input_forget;
    L.linear_before_reset = lbr;
    L.reverse = reverse;
    const size_t gh = L.gates() * L.hidden;
    for (size_t d = 0; d < dirs; ++d) {
      RnnDirection rd;
      rd.w = rand_vec(gh * in, g, 0.6f);
      rd.r = rand_vec(gh * L.hidden, g, 0.6f);
      rd.bias_x = rand_vec(gh, g, 0.3f);
      if (kind == CellKind::kGru && lbr) rd.rbh = rand_vec(L.hidden, g, 0.3f);
      if (peep) rd.peep = rand_vec(3 * L.hidden, g, 0.5f);
      L.dirs.push_back(rd);
    }
    in = L.width();
    m.layers.push_back(L);
  }
  const RnnLayer& last = m.layers.back();
  for (size_t d = 0; d < dirs; ++d) m.output.push_back({layers - 1, d, OutputSegment::kYLast});
  m.output.push_back({0, 0, OutputSegment::kHFinal});
  if (kind == CellKind::kLstm) m.output.push_back({0, 0, OutputSegment::kCFinal});
  size_t w = m.segment_width();
  HeadOp dense;
  dense.kind = HeadOp::kDense;
  dense.in = w;
  dense.out = 4;
  dense.w = rand_vec(4 * w, g, 0.5f);
  dense.b = rand_vec(4, g, 0.2f);
  m.head.push_back(dense);
  HeadOp act;
  act.kind = HeadOp::kTanh;
  m.head.push_back(act);
  (void)last;
  return m;
}

// One history through the model in float64, straight from the equations.
std::vector<double> reference_encode(const EncoderModel& m, const std::vector<int32_t>& ids) {
  const size_t T = ids.size();
  std::vector<std::vector<double>> x(T);
  for (size_t t = 0; t < T; ++t) x[t].assign(m.embedding.begin() + ids[t] * static_cast<long>(m.emb_dim),
                                             m.embedding.begin() + (ids[t] + 1) * static_cast<long>(m.emb_dim));
  std::vector<std::vector<std::vector<double>>> hfin(m.layers.size()), cfin(m.layers.size()), ylast(m.layers.size());
  for (size_t l = 0; l < m.layers.size(); ++l) {
    const RnnLayer& L = m.layers[l];
    const size_t H = L.hidden, in = L.input;
    std::vector<std::vector<double>> y(T, std::vector<double>(L.width(), 0.0));
    for (size_t d = 0; d < L.dirs.size(); ++d) {
      const RnnDirection& D = L.dirs[d];
      std::vector<double> h(H, 0.0), c(H, 0.0);
      auto clipv = [&](double v) { return L.clip > 0 ? std::min<double>(L.clip, std::max<double>(-L.clip, v)) : v; };
      auto proj = [&](size_t gate, size_t q, const std::vector<double>& xv, const std::vector<double>& hv) {
        double s = D.bias_x[gate * H + q];
        for (size_t p = 0; p < in; ++p) s += static_cast<double>(D.w[(gate * H + q) * in + p]) * xv[p];
        double r = 0;
        for (size_t p = 0; p < H; ++p) r += static_cast<double>(D.r[(gate * H + q) * H + p]) * hv[p];
        return std::make_pair(s, r);
      };
      for (size_t s = 0; s < T; ++s) {
        const size_t t = L.backwards(d) ? T - 1 - s : s;
        std::vector<double> hn(H), cn(H);
        if (L.kind == CellKind::kLstm) {
          for (size_t q = 0; q < H; ++q) {
            auto pi = proj(0, q, x[t], h), po = proj(1, q, x[t], h), pf = proj(2, q, x[t], h), pc = proj(3, q, x[t], h);
            double Pi = D.peep.empty() ? 0 : D.peep[q], Po = D.peep.empty() ? 0 : D.peep[H + q], Pf = D.peep.empty() ? 0 : D.peep[2 * H + q];
            double i = sigm(clipv(pi.first + pi.second + Pi * c[q]));
            double f = L.input_forget ? 1 - i : sigm(clipv(pf.first + pf.second + Pf * c[q]));
            double gg = std::tanh(clipv(pc.first + pc.second));
            cn[q] = f * c[q] + i * gg;
            double o = sigm(clipv(po.first + po.second + Po * cn[q]));
            hn[q] = o * std::tanh(cn[q]);
          }
        } else {
          std::vector<double> z(H), r(H);
          for (size_t q = 0; q < H; ++q) {
            auto pz = proj(0, q, x[t], h), pr = proj(1, q, x[t], h);
            z[q] = sigm(clipv(pz.first + pz.second));
            r[q] = sigm(clipv(pr.first + pr.second));
          }
          std::vector<double> rh(H);
          for (size_t q = 0; q < H; ++q) rh[q] = r[q] * h[q];
          for (size_t q = 0; q < H; ++q) {
            double nn;
            if (L.linear_before_reset) {
              auto ph = proj(2, q, x[t], h);
              nn = std::tanh(clipv(ph.first + r[q] * (ph.second + D.rbh[q])));
            } else {
              auto ph = proj(2, q, x[t], rh);
              nn = std::tanh(clipv(ph.first + ph.second));
            }
            hn[q] = (1 - z[q]) * nn + z[q] * h[q];
          }
        }
        h = hn;
        c = cn;
        for (size_t q = 0; q < H; ++q) y[t][d * H + q] = h[q];
        if (s == 0) ylast[l].resize(L.dirs.size());
        if (s == 0 && L.backwards(d)) ylast[l][d] = h;
      }
      hfin[l].push_back(h);
      cfin[l].push_back(c);
      if (T == 0) ylast[l].resize(L.dirs.size());
      if (!L.backwards(d)) ylast[l][d] = h;
      if (T == 0) ylast[l][d] = std::vector<double>(H, 0.0);
    }
    x = y;
  }
  std::vector<double> feat;
  for (const OutputSegment& sg : m.output) {
    const auto& v = sg.what == OutputSegment::kCFinal ? cfin[sg.layer][sg.dir]
                    : sg.what == OutputSegment::kHFinal ? hfin[sg.layer][sg.dir] : ylast[sg.layer][sg.dir];
    feat.insert(feat.end(), v.begin(), v.end());
  }
  for (const HeadOp& op : m.head) {
    if (op.kind == HeadOp::kDense) {
      std::vector<double> o(op.out);
      for (size_t j = 0; j < op.out; ++j) {
        double s = op.b[j];
        for (size_t p = 0; p < op.in; ++p) s += static_cast<double>(op.w[j * op.in + p]) * feat[p];
        o[j] = s;
      }
      feat = o;
    } else if (op.kind == HeadOp::kTanh) {
      for (auto& v : feat) v = std::tanh(v);
    }
  }
  return feat;
}

// ref: the same model unfolded (the float64 reference reads the embedding).
void check_model(EncoderModel m, uint32_t seed, const EncoderModel* ref = nullptr) {
  m.validate();
  if (!ref) ref = &m;
  std::mt19937 g(seed);
  std::vector<std::vector<int32_t>> hs;
  for (size_t u = 0; u < 70; ++u) {  // more than one chunk of rows
    std::vector<int32_t> h(g() % 9);
    for (auto& id : h) id = static_cast<int32_t>(g() % m.vocab);
    hs.push_back(h);
  }
  std::vector<int32_t> ids, offsets{0};
  for (const auto& h : hs) {
    ids.insert(ids.end(), h.begin(), h.end());
    offsets.push_back(static_cast<int32_t>(ids.size()));
  }
  const size_t od = m.out_dim();
  ThreadTeam team2(1), team3(2);
  for (Isa isa : isas()) {
    for (ThreadTeam* team : {static_cast<ThreadTeam*>(nullptr), &team2, &team3}) {
      std::vector<float> out(hs.size() * od);
      rnn_encode(m, isa, ids.data(), offsets.data(), hs.size(), team, 8, out.data());
      // A few rows take the unit-parallel path: the same numbers.
      std::vector<float> few(2 * od);
      rnn_encode(m, isa, ids.data(), offsets.data(), 2, team, 8, few.data());
      CHECK(std::memcmp(few.data(), out.data(), few.size() * sizeof(float)) == 0);
      for (size_t u = 0; u < hs.size(); ++u) {
        auto expect = reference_encode(*ref, hs[u]);
        for (size_t j = 0; j < od; ++j) CHECK(std::fabs(expect[j] - out[u * od + j]) < 2e-6);
      }
    }
    if (m.unidirectional()) {  // step through every history: the same vectors, bit for bit
      std::vector<float> enc(hs.size() * od);
      rnn_encode(m, isa, ids.data(), offsets.data(), hs.size(), nullptr, 1, enc.data());
      for (size_t u = 0; u < hs.size(); ++u) {
        std::vector<float> state(m.state_size(), 0.f), out(od);
        rnn_output(m, isa, state.data(), 1, out.data());
        for (int32_t id : hs[u]) rnn_step(m, isa, state.data(), &id, 1, u % 2 ? &team2 : nullptr, 2, out.data());
        CHECK(std::memcmp(out.data(), enc.data() + u * od, od * sizeof(float)) == 0);
      }
    }
  }
}

}  // namespace

int main() {
  std::printf("native/core tests (best ISA: %s)\n", isa_name(best_isa()));

  run("topk_matches_float64_reference_odd_shapes", [] {
    uint32_t seed = 1;
    for (Isa isa : isas()) {
      for (size_t d : {1u, 3u, 8u, 61u, 64u, 130u}) {
        for (size_t b : {1u, 2u, 3u, 4u, 5u, 9u}) {
          check_case({1237, d, b, 10, false, false, false, 1, isa}, seed++);
        }
      }
      check_case({3001, 1024, 3, 7, true, false, false, 2, isa}, seed++);
    }
  });

  run("topk_bias_exclusions_allow_threads", [] {
    uint32_t seed = 100;
    for (Isa isa : isas()) {
      for (int threads : {1, 2, 3}) {
        check_case({20011, 17, 6, 25, true, true, false, threads, isa}, seed++);
        check_case({20011, 17, 6, 25, true, true, true, threads, isa}, seed++);
        check_case({513, 5, 7, 513, true, true, true, threads, isa}, seed++);  // k = n
        check_case({50, 4, 3, 1, false, true, false, threads, isa}, seed++);   // k = 1
      }
    }
  });

  run("identical_results_across_threads_and_batch_sizes", [] {
    for (Isa isa : isas()) {
      auto items = random_matrix(40000, 37, 7);
      auto users = random_matrix(11, 37, 8);
      std::vector<int32_t> r1, r2, rb;
      std::vector<float> s1, s2, sb;
      run_topk({40000, 37, 11, 50, false, false, false, 1, isa}, &r1, &s1, items, users);
      run_topk({40000, 37, 11, 50, false, false, false, 4, isa}, &r2, &s2, items, users);
      CHECK(r1 == r2);
      CHECK(std::memcmp(s1.data(), s2.data(), s1.size() * sizeof(float)) == 0);
      for (size_t u = 0; u < 11; ++u) {  // each user alone gives bit-identical scores
        std::vector<float> one(users.begin() + static_cast<long>(u * 37),
                               users.begin() + static_cast<long>((u + 1) * 37));
        run_topk({40000, 37, 1, 50, false, false, false, 2, isa}, &rb, &sb, items, one);
        CHECK(std::equal(rb.begin(), rb.end(), r1.begin() + static_cast<long>(u * 50)));
        CHECK(std::memcmp(sb.data(), s1.data() + u * 50, 50 * sizeof(float)) == 0);
      }
    }
  });

  run("exact_ties_break_by_lower_row", [] {
    for (Isa isa : isas()) {
      // Every 5th row is a copy of row 0: identical scores, so order must be by row.
      size_t n = 3000, d = 13;
      auto items = random_matrix(n, d, 9);
      for (size_t j = 5; j < n; j += 5) std::copy(items.begin(), items.begin() + static_cast<long>(d), items.begin() + static_cast<long>(j * d));
      std::vector<float> users(items.begin(), items.begin() + static_cast<long>(d));  // u = row 0
      for (int threads : {1, 2, 3}) {
        std::vector<int32_t> rows;
        std::vector<float> scores;
        run_topk({n, d, 1, 40, false, false, false, threads, isa}, &rows, &scores, items, users);
        for (size_t i = 0; i < 40; ++i) {
          CHECK(rows[i] == static_cast<int32_t>(i * 5));
          CHECK(scores[i] == scores[0]);
        }
      }
    }
  });

  run("unfillable_positions_are_minus_one", [] {
    size_t n = 10, d = 4;
    auto items = random_matrix(n, d, 11);
    auto users = random_matrix(1, d, 12);
    std::vector<int32_t> offsets{0, 8}, rows{9, 0, 1, 2, 3, 4, 5, 6};
    prepare_exclusions(offsets.data(), rows.data(), 1, n);
    CHECK(rows.front() == 0 && rows.back() == 9);
    ScoreRequest r;
    r.items = items.data();
    r.n = n;
    r.d = d;
    r.users = users.data();
    r.b = 1;
    r.k = 5;
    r.excl_offsets = offsets.data();
    r.excl_rows = rows.data();
    std::vector<int32_t> out(5);
    std::vector<float> sc(5);
    score_topk(r, out.data(), sc.data());
    CHECK(out[0] == 7 || out[0] == 8);
    CHECK(out[1] == 7 || out[1] == 8);
    for (size_t i = 2; i < 5; ++i) CHECK(out[i] == -1 && std::isinf(sc[i]) && sc[i] < 0);
  });

  run("eligibility_from_allow_list_and_attributes", [] {
    std::vector<uint32_t> attrs{0b001, 0b011, 0b110, 0b100, 0b111};
    auto bits = build_eligibility(5, false, nullptr, 0, attrs.data(), 0b001, 0, 0b100);
    CHECK(bits.size() == 1 && bits[0] == 0b00011);
    bits = build_eligibility(5, false, nullptr, 0, attrs.data(), 0, 0b110, 0);
    CHECK(bits[0] == 0b11110);
    std::vector<int32_t> allow{4, 1, 1};
    bits = build_eligibility(5, true, allow.data(), allow.size(), attrs.data(), 0, 0, 0b010);
    CHECK(bits[0] == 0);  // rows 4 and 1 are allowed, but both carry bit 0b010
    bits = build_eligibility(5, true, allow.data(), allow.size(), nullptr, 0, 0, 0);
    CHECK(build_eligibility(5, true, nullptr, 0, nullptr, 0, 0, 0)[0] == 0);  // empty allow-list: nothing
    CHECK(bits[0] == 0b10010);
    bits = build_eligibility(130, false, nullptr, 0, nullptr, 0, 0, 0);
    CHECK(bits.size() == 3 && bits[2] == 0b11);
    std::vector<int32_t> bad{5};
    CHECK(throws<OutOfRange>([&] { build_eligibility(5, true, bad.data(), 1, nullptr, 0, 0, 0); }));
  });

  run("bad_requests_throw", [] {
    auto items = random_matrix(10, 4, 1);
    ScoreRequest r;
    r.items = items.data();
    r.n = 10;
    r.d = 4;
    r.users = items.data();
    r.b = 1;
    std::vector<int32_t> o(20);
    std::vector<float> s(20);
    r.k = 0;
    CHECK(throws<OutOfRange>([&] { score_topk(r, o.data(), s.data()); }));
    r.k = 11;
    CHECK(throws<OutOfRange>([&] { score_topk(r, o.data(), s.data()); }));
    std::vector<int32_t> offs{0, 1}, rows{10};
    CHECK(throws<OutOfRange>([&] { prepare_exclusions(offs.data(), rows.data(), 1, 10); }));
    rows[0] = -1;
    CHECK(throws<OutOfRange>([&] { prepare_exclusions(offs.data(), rows.data(), 1, 10); }));
  });

  run("topk_buffer_and_merge", [] {
    std::vector<Scored> store(8);
    TopK t(3, store.data(), 8);
    float s[] = {1, 5, 5, 3, 7, 5, 0, 7, 2, 9, 5};
    for (int i = 0; i < 11; ++i) t.push(s[i], i);
    size_t n = t.finish();
    CHECK(n == 3);
    CHECK(t.data()[0].row == 9 && t.data()[1].row == 4 && t.data()[2].row == 7);
    std::vector<Scored> a{{9, 3}, {5, 10}}, b{{9, 1}, {5, 2}};
    std::vector<int32_t> rows(5);
    std::vector<float> sc(5);
    merge_topk({{a.data(), 2}, {b.data(), 2}}, 5, rows.data(), sc.data());
    CHECK(rows[0] == 1 && rows[1] == 3 && rows[2] == 2 && rows[3] == 10 && rows[4] == -1);
  });

  run("matrix_stats", [] {
    std::vector<float> m{3, 4, 0, 1, -2, 2};
    auto st = matrix_stats(m.data(), 3, 2);
    CHECK(st.first_non_finite == -1);
    CHECK(std::fabs(st.max_row_norm - 5.0) < 1e-12);
    CHECK(st.max_abs == 4);
    m[3] = std::numeric_limits<float>::quiet_NaN();
    CHECK(matrix_stats(m.data(), 3, 2).first_non_finite == 3);
    m[3] = -std::numeric_limits<float>::infinity();
    CHECK(matrix_stats(m.data(), 3, 2).first_non_finite == 3);
    // A recorded max_row_norm passes exactly as computed; anything below it names the row.
    std::vector<float> r{3, 4, 0, 1, -2, 2, 6, 8};
    const double mx = matrix_stats(r.data(), 4, 2).max_row_norm;
    CHECK(mx == 10.0);
    CHECK(matrix_stats(r.data(), 4, 2, mx).first_row_above == -1);
    auto above = matrix_stats(r.data(), 4, 2, 4.0);
    CHECK(above.first_row_above == 0 && above.row_norm_above == 5.0);
  });

  run("check_compressed_accepts_what_compress_writes_and_names_the_row_it_refuses", [] {
    const size_t n = 300, d = 19;
    auto x = random_matrix(n, d, 91);
    auto bias = random_matrix(n, 1, 92);
    for (size_t i = 0; i < d; ++i) x[5 * d + i] = 0;  // an all-zero row
    x[7 * d + 3] = 1e-41f;                            // a denormal
    for (Precision p : {Precision::kInt8, Precision::kBf16}) {
      Compressed c = compress(x.data(), n, d, bias.data(), p);
      auto view = [&] {
        return CompressedView{p, p == Precision::kInt8 ? static_cast<const void*>(c.q.data()) : static_cast<const void*>(c.h.data()),
                              c.scale.empty() ? nullptr : c.scale.data(), c.err.data(), c.err_bias.data()};
      };
      CHECK(check_compressed(x.data(), n, d, bias.data(), view()).row == -1);
      CHECK(check_compressed(x.data(), n, d, nullptr, view()).row == -1);
      const float e17 = c.err[17];
      c.err[17] = std::nextafter(e17, 0.0f);  // one float below what the row needs
      auto f = check_compressed(x.data(), n, d, bias.data(), view());
      CHECK(f.row == 17 && f.rule == CompressedRule::kErr && f.required == e17);
      c.err[17] = e17;
      c.err_bias[40] = 0;
      f = check_compressed(x.data(), n, d, bias.data(), view());
      CHECK(f.row == 40 && f.rule == CompressedRule::kErrBias);
      c.err_bias[40] = 1;
      if (p == Precision::kInt8) {
        const float s60 = c.scale[60];
        c.scale[60] = -1;
        CHECK(check_compressed(x.data(), n, d, bias.data(), view()).rule == CompressedRule::kScale);
        c.scale[60] = 4 * s60;  // the copy is then farther from the row than the row's norm
        f = check_compressed(x.data(), n, d, bias.data(), view());
        CHECK(f.row == 60 && f.rule == CompressedRule::kFarther);
      } else {
        c.h[60 * d + 2] = 0x7f80;  // +Infinity
        f = check_compressed(x.data(), n, d, bias.data(), view());
        CHECK(f.row == 60 && f.column == 2 && f.rule == CompressedRule::kNonFinite);
      }
    }
  });

  run("mapped_file", [] {
    char path[] = "/tmp/recscore-core-test-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    const char text[] = "hello mapping";
    CHECK(write(fd, text, sizeof text) == static_cast<ssize_t>(sizeof text));
    close(fd);
    {
      MappedFile f(path);
      CHECK(f.size() == sizeof text);
      CHECK(std::memcmp(f.data(), text, sizeof text) == 0);
      static_cast<char*>(f.data())[0] = 'J';  // private mapping: the file is untouched
      f.close();
      CHECK(f.data() == nullptr);
    }
    {
      MappedFile f(path);
      CHECK(static_cast<const char*>(f.data())[0] == 'h');
    }
    {
      int rfd = ::open(path, O_RDONLY);
      MappedFile f(rfd, path);  // from a descriptor the caller keeps
      ::close(rfd);
      CHECK(f.size() == sizeof text && static_cast<const char*>(f.data())[0] == 'h');
    }
    unlink(path);
    CHECK(throws<SystemError>([&] { MappedFile g("/nonexistent/recscore"); }));
    // A FIFO, a directory: refused at once (the FIFO is opened without blocking).
    CHECK(mkfifo(path, 0600) == 0);
    CHECK(throws<SystemError>([&] { MappedFile g(path); }));
    unlink(path);
    CHECK(throws<SystemError>([&] { MappedFile g("/tmp"); }));
  });

  run("gemm_abt_matches_float64", [] {
    for (Isa isa : isas()) {
      auto a = random_matrix(7, 19, 1), b = random_matrix(45, 19, 2), bias = random_matrix(45, 1, 3);
      std::vector<float> c(7 * 50, -1.f);
      gemm_abt(kernels_for(isa), a.data(), 7, 19, b.data(), 45, bias.data(), c.data(), 50);
      for (size_t i = 0; i < 7; ++i) {
        for (size_t j = 0; j < 45; ++j) {
          double s = bias[j];
          for (size_t p = 0; p < 19; ++p) s += static_cast<double>(a[i * 19 + p]) * b[j * 19 + p];
          CHECK(std::fabs(s - c[i * 50 + j]) < 1e-5);
        }
        CHECK(c[i * 50 + 49] == -1.f);  // beyond n: untouched
      }
    }
  });

  run("activations_sigmoid_tanh_accuracy", [] {
    for (Isa isa : isas()) {
      std::vector<float> xs;
      for (float x = -100.f; x <= 100.f; x += 0.0137f) xs.push_back(x);
      xs.push_back(0.f);
      xs.push_back(-0.f);
      xs.push_back(1e-30f);
      std::vector<float> s = xs, t = xs;
      kernels_for(isa).sigmoid(s.data(), s.size());
      kernels_for(isa).tanh(t.data(), t.size());
      for (size_t i = 0; i < xs.size(); ++i) {
        CHECK(std::fabs(s[i] - sigm(xs[i])) < 1e-6);
        CHECK(std::fabs(t[i] - std::tanh(static_cast<double>(xs[i]))) < 1e-6);
      }
    }
  });

  run("lstm_encode_matches_float64_reference", [] {
    check_model(random_model(CellKind::kLstm, 2, 1, false, false, 0, false, false, 1), 11);
    check_model(random_model(CellKind::kLstm, 2, 2, false, false, 0, false, false, 2), 12);  // bidirectional
    check_model(random_model(CellKind::kLstm, 1, 1, true, true, 0.9f, false, false, 3), 13);  // reverse, peepholes, clip
    check_model(random_model(CellKind::kLstm, 2, 1, false, true, 0, true, false, 4), 14);     // input_forget
  });

  run("gru_encode_matches_float64_reference", [] {
    check_model(random_model(CellKind::kGru, 2, 1, false, false, 0, false, true, 5), 15);
    check_model(random_model(CellKind::kGru, 2, 1, false, false, 0, false, false, 6), 16);  // linear_before_reset 0
    check_model(random_model(CellKind::kGru, 1, 2, false, false, 0.7f, false, true, 7), 17);
  });

  run("folded_first_layer_matches", [] {
    EncoderModel m = random_model(CellKind::kLstm, 2, 1, false, false, 0, false, false, 8);
    const EncoderModel m_ref = m;
    CHECK(m.fold_first_layer(1 << 20));
    CHECK(m.embedding.empty());
    check_model(m, 18, &m_ref);
    EncoderModel g = random_model(CellKind::kGru, 1, 2, false, false, 0, false, true, 9);
    const EncoderModel g_ref = g;
    CHECK(!g.fold_first_layer(16));  // too small a budget: stays unfolded
    CHECK(g.fold_first_layer(1 << 20));
    check_model(g, 19, &g_ref);
  });

  run("encoder_bad_input", [] {
    EncoderModel m = random_model(CellKind::kLstm, 1, 1, false, false, 0, false, false, 10);
    std::vector<int32_t> ids{1, 23}, offsets{0, 1, 2};
    std::vector<float> out(2 * m.out_dim()), state(m.state_size());
    ThreadTeam team(1);
    CHECK(throws<OutOfRange>([&] { rnn_encode(m, best_isa(), ids.data(), offsets.data(), 2, nullptr, 1, out.data()); }));
    ids[1] = -1;
    CHECK(throws<OutOfRange>([&] { rnn_encode(m, best_isa(), ids.data(), offsets.data(), 2, &team, 2, out.data()); }));
    CHECK(throws<OutOfRange>([&] { rnn_step(m, best_isa(), state.data(), &ids[1], 1, &team, 2, out.data()); }));
    EncoderModel bi = random_model(CellKind::kLstm, 1, 2, false, false, 0, false, false, 11);
    CHECK(throws<InvalidArgument>([&] { rnn_step(bi, best_isa(), state.data(), ids.data(), 1, nullptr, 1, out.data()); }));
    EncoderModel broken = m;
    broken.layers[0].dirs[0].r.pop_back();
    CHECK(throws<InvalidArgument>([&] { broken.validate(); }));
  });

  run("compressed_catalogues_give_the_exact_float32_topk", [] {
    std::mt19937 g(5);
    std::normal_distribution<float> nd(0.f, 1.f);
    const size_t d = 37;
    auto make = [&](int kind, size_t n) {
      std::vector<float> x(n * d);
      if (kind == 0) {  // random
        for (auto& v : x) v = nd(g);
      } else if (kind == 1) {  // clustered: many near-ties
        std::vector<float> centre(d);
        for (auto& v : centre) v = nd(g);
        for (size_t j = 0; j < n; ++j)
          for (size_t i = 0; i < d; ++i) x[j * d + i] = centre[i] + 1e-3f * nd(g);
      } else if (kind == 2) {  // low rank
        std::vector<float> a(3 * d);
        for (auto& v : a) v = nd(g);
        for (size_t j = 0; j < n; ++j) {
          float c0 = nd(g), c1 = nd(g), c2 = nd(g);
          for (size_t i = 0; i < d; ++i) x[j * d + i] = c0 * a[i] + c1 * a[d + i] + c2 * a[2 * d + i];
        }
      } else {  // exact duplicates and rows a quantisation step apart
        for (size_t i = 0; i < d; ++i) x[i] = nd(g);
        for (size_t j = 1; j < n; ++j)
          for (size_t i = 0; i < d; ++i) x[j * d + i] = x[i] + (j % 3 == 0 ? 0.f : 1e-6f * static_cast<float>(j % 7));
      }
      return x;
    };
    ThreadTeam team(1);
    for (Precision p : {Precision::kInt8, Precision::kBf16}) {
      for (int kind = 0; kind < 4; ++kind) {
        const size_t n = 20000;
        auto x = make(kind, n);
        auto bias = random_matrix(n, 1, 70 + kind);
        auto users = make(kind, 3);
        Compressed c = compress(x.data(), n, d, bias.data(), p);
        CompressedView v{p, p == Precision::kInt8 ? static_cast<const void*>(c.q.data()) : static_cast<const void*>(c.h.data()),
                         c.scale.empty() ? nullptr : c.scale.data(), c.err.data(), c.err_bias.data()};
        std::vector<int32_t> offsets{0, 2, 2, 3}, excl{0, 17, 5};
        prepare_exclusions(offsets.data(), excl.data(), 3, n);
        for (size_t k : {1u, 20u, 1000u}) {
          for (int threads : {1, 2}) {
            ScoreRequest r;
            r.items = x.data();
            r.n = n;
            r.d = d;
            r.bias = bias.data();
            r.users = users.data();
            r.b = 3;
            r.k = k;
            r.excl_offsets = offsets.data();
            r.excl_rows = excl.data();
            r.threads = threads;
            r.team = &team;
            std::vector<int32_t> rows_f(3 * k), rows_c(3 * k), cand(3);
            std::vector<float> sc_f(3 * k), sc_c(3 * k);
            score_topk(r, rows_f.data(), sc_f.data());
            score_topk_compressed(r, v, rows_c.data(), sc_c.data(), cand.data());
            CHECK(rows_f == rows_c);
            CHECK(std::memcmp(sc_f.data(), sc_c.data(), sc_f.size() * sizeof(float)) == 0);
            for (int32_t cc : cand) CHECK(static_cast<size_t>(cc) >= k - 1);
          }
        }
      }
    }
  });

  std::printf("%d passed, %d failed\n", g_passed, g_failed);
  return g_failed == 0 ? 0 : 1;
}
