// native/core tests: matrix statistics, the checks of compressed copies, file mapping, and
// compressed scans that must give the exact float32 top-k. Run by core_tests.cc's main.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "../compressed.h"
#include "../errors.h"
#include "../gemm/compact.h"
#include "../gemm/contract.h"
#include "../gemm/pack.h"
#include "../mapped_file.h"
#include "../matrix_stats.h"
#include "../scorer.h"
#include "../thread_team.h"
#include "core_tests_common.h"

using namespace recscore;
using namespace core_tests;

void core_tests::storage_tests() {
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
    std::vector<float> panels(panel_count(n) * panel_floats(d));
    pack_panels(Level::kScalar, x.data(), n, d, d, panels.data());
    for (size_t i = 0; i < 16 * d; ++i) {  // padding rows (n = 300 leaves 4 in the last panel)
      const size_t q = panel_count(n) - 1, r = i % 16;
      if (q * 16 + r >= n) panels[q * panel_floats(d) + i] = std::numeric_limits<float>::quiet_NaN();
    }
    for (Precision p : {Precision::kInt8, Precision::kBf16}) {
      Compressed c = compress(x.data(), n, d, bias.data(), p);
      auto view = [&] {
        return CompressedView{p, p == Precision::kInt8 ? static_cast<const void*>(c.q.data()) : static_cast<const void*>(c.h.data()),
                              c.scale.empty() ? nullptr : c.scale.data(), c.err.data(), c.err_bias.data()};
      };
      CHECK(check_compressed(panels.data(), n, d, bias.data(), view()).row == -1);
      CHECK(check_compressed(panels.data(), n, d, nullptr, view()).row == -1);
      const float e17 = c.err[17];
      c.err[17] = std::nextafter(e17, 0.0f);  // one float below what the row needs
      auto f = check_compressed(panels.data(), n, d, bias.data(), view());
      CHECK(f.row == 17 && f.rule == CompressedRule::kErr && f.required == e17);
      c.err[17] = e17;
      c.err_bias[40] = 0;
      f = check_compressed(panels.data(), n, d, bias.data(), view());
      CHECK(f.row == 40 && f.rule == CompressedRule::kErrBias);
      c.err_bias[40] = 1;
      if (p == Precision::kInt8) {
        const float s60 = c.scale[60];
        c.scale[60] = -1;
        CHECK(check_compressed(panels.data(), n, d, bias.data(), view()).rule == CompressedRule::kScale);
        c.scale[60] = 4 * s60;  // the copy is then farther from the row than the row's norm
        f = check_compressed(panels.data(), n, d, bias.data(), view());
        CHECK(f.row == 60 && f.rule == CompressedRule::kFarther);
      } else {
        c.h[bf16_index(60, 2, d)] = 0x7f80;  // +Infinity
        f = check_compressed(panels.data(), n, d, bias.data(), view());
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
}

void core_tests::compressed_topk_tests() {
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
        const CompressedView v = c.view();  // row terms included: every path of the level
        std::vector<int32_t> offsets{0, 2, 2, 3}, excl{0, 17, 5};
        prepare_exclusions(offsets.data(), excl.data(), 3, n);
        for (size_t k : {1u, 20u, 1000u}) {
          for (int threads : {1, 2}) {
            ScoreRequest r;
            r.items = x.data();  // rescoring reads the rows row-major here (panels: core_tests_compact.cc)
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
}
