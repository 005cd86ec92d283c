// native/core tests: the fused top-k against a float64 brute force, selection and merge rules,
// eligibility, exclusions, matrix statistics and file mapping (core_tests_storage.cc), and the
// recurrent encoder (core_tests_encoder.cc). One executable: this file holds main. Built with
// ASan + UBSan by scripts/native-tests.mjs. Prints "N passed, N failed".
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "../cpu.h"
#include "../errors.h"
#include "../scorer.h"
#include "../thread_team.h"
#include "../topk.h"
#include "core_tests_common.h"

using namespace recscore;
using namespace core_tests;

namespace core_tests {

int g_passed = 0, g_failed = 0;
std::string g_current;

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

std::vector<float> random_matrix(size_t rows, size_t d, uint32_t seed) {
  std::mt19937 g(seed);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::vector<float> m(rows * d);
  for (auto& x : m) x = u(g);
  return m;
}

// Every level this CPU runs (platform/levels.h).
std::vector<Isa> isas() {
  std::vector<Isa> v;
  for (int i = 0; i < kLevelCount; ++i) {
    if (level_supported(static_cast<Level>(i))) v.push_back(static_cast<Level>(i));
  }
  return v;
}

}  // namespace core_tests

namespace {

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

}  // namespace

void core_tests::topk_tests() {
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
}

int main() {
  std::printf("native/core tests (best ISA: %s)\n", isa_name(best_isa()));

  topk_tests();
  storage_tests();
  encoder_tests();
  compressed_topk_tests();
  compact_tests();
  quant_exact_tests();
  quant_bound_tests();

  std::printf("%d passed, %d failed\n", g_passed, g_failed);
  return g_failed == 0 ? 0 : 1;
}
