// Issue #13 item 5: would an int4 compact copy beat int8 by 1.3x at B = 1? A prototype of the
// scan's memory traffic and work, not a product kernel: the same tile loop for both widths
// (kernel into a 512-row tile, the bound loop over scale/err/cnorm/bias, the threshold compare and
// candidate appends), then the float32 rescoring of C candidate rows at random panels (each row of
// a 16-row float32 panel touches the panel's 64 cache lines, as the product's rescoring does).
// int8: the product's VNNI panel (64 B per 4 dimensions x 16 rows, xor 0x80, vpdpbusd); int4: 64 B
// per 8 dimensions x 16 rows, low nibbles dimensions 0-3, high nibbles 4-7 (two vpdpbusd per load).
// The candidate counts come from bench/int4-estimate.mjs (int4) and the benchmark (int8).
//   bench/int4/run.sh   (builds with -O2 -march=native; prints medians of 31 calls, 2 threads)
#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

namespace {
constexpr size_t N = 1 << 20, D = 64, kTile = 512;

struct Data {
  std::vector<uint8_t> i8, i4;  // panels
  std::vector<float> f32, scale, err, cnorm, bias;
};

template <int kBits>
__attribute__((target("avx512f,avx512bw,avx512vnni"))) void kernel(const uint8_t* base, const uint32_t* uq, size_t rows,
                                                                    float* out, const float* scale) {
  constexpr size_t kGroupBytes = 64, kDimsPerLoad = kBits == 8 ? 4 : 8, kLoads = D / kDimsPerLoad;
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80)), low = _mm512_set1_epi8(0x0f);
  for (size_t p = 0; p < rows / 16; ++p) {
    const uint8_t* panel = base + p * kLoads * kGroupBytes;
    __m512i acc[4] = {_mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512()};
    for (size_t g = 0; g < kLoads; ++g) {
      const __m512i v = _mm512_loadu_si512(panel + g * kGroupBytes);
      if (kBits == 8) {
        acc[g % 4] = _mm512_dpbusd_epi32(acc[g % 4], _mm512_xor_si512(v, flip), _mm512_set1_epi32(static_cast<int>(uq[g])));
      } else {
        const __m512i lo = _mm512_and_si512(v, low), hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), low);
        acc[(2 * g) % 4] = _mm512_dpbusd_epi32(acc[(2 * g) % 4], lo, _mm512_set1_epi32(static_cast<int>(uq[2 * g])));
        acc[(2 * g + 1) % 4] = _mm512_dpbusd_epi32(acc[(2 * g + 1) % 4], hi, _mm512_set1_epi32(static_cast<int>(uq[2 * g + 1])));
      }
    }
    const __m512i s = _mm512_add_epi32(_mm512_add_epi32(acc[0], acc[1]), _mm512_add_epi32(acc[2], acc[3]));
    const __m512i exact = _mm512_sub_epi32(s, _mm512_set1_epi32(1000));
    _mm512_storeu_ps(out + p * 16, _mm512_mul_ps(_mm512_cvtepi32_ps(exact), _mm512_loadu_ps(scale + p * 16)));
  }
}

template <int kBits>
size_t scan(const Data& x, size_t lo, size_t hi, float threshold, std::vector<std::pair<int32_t, float>>& cand) {
  const uint32_t uq[16] = {0x01020304u, 0x05060708u, 0x01010101u, 0x02020202u, 0x03030303u, 0x04040404u, 0x01020304u,
                           0x05060708u, 0x01010101u, 0x02020202u, 0x03030303u, 0x04040404u, 0x01020304u, 0x05060708u,
                           0x01010101u, 0x02020202u};
  alignas(64) float a[kTile], e[kTile];
  const uint8_t* codes = kBits == 8 ? x.i8.data() : x.i4.data();
  const size_t panel_bytes = kBits == 8 ? 1024 : 512;
  const float nu = 1.0f, du = 0.01f, cu = 1e-30f, gb = 1e-5f;
  for (size_t t0 = lo; t0 < hi; t0 += kTile) {
    kernel<kBits>(codes + (t0 / 16) * panel_bytes, uq, kTile, a, x.scale.data() + t0);
    for (size_t i = 0; i < kTile; ++i) {
      const float b = x.bias[t0 + i];
      e[i] = (nu * x.err[t0 + i] + gb * std::fabs(b) + du * x.cnorm[t0 + i] + cu) * 1.0000038f + 1e-30f;
      a[i] += b;
    }
    for (size_t i = 0; i < kTile; ++i) {
      if (a[i] + e[i] >= threshold) cand.emplace_back(static_cast<int32_t>(t0 + i), a[i] + e[i]);
    }
  }
  return cand.size();
}

// Rescoring: row j of its 16-row float32 panel (dimension i at panel + i * 16 + j % 16).
float rescore(const Data& x, const std::vector<int32_t>& rows) {
  float best = -1e30f;
  const float u[D] = {};
  for (int32_t j : rows) {
    const float* panel = x.f32.data() + (static_cast<size_t>(j) / 16) * 16 * D + (j % 16);
    float s = 0;
    for (size_t i = 0; i < D; ++i) s = std::fma(u[i] + 0.5f, panel[i * 16], s);
    best = std::max(best, s);
  }
  return best;
}

template <int kBits>
double call(const Data& x, float threshold, const std::vector<int32_t>& rescored) {
  const auto t = std::chrono::steady_clock::now();
  std::vector<std::pair<int32_t, float>> c0, c1;
  std::thread other([&] { scan<kBits>(x, N / 2, N, threshold, c1); });
  scan<kBits>(x, 0, N / 2, threshold, c0);
  other.join();
  const size_t half = rescored.size() / 2;
  volatile float sink = 0;
  std::thread r2([&] { sink = rescore(x, std::vector<int32_t>(rescored.begin() + half, rescored.end())); });
  sink = rescore(x, std::vector<int32_t>(rescored.begin(), rescored.begin() + half));
  r2.join();
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
}
}  // namespace

int main() {
  Data x;
  std::mt19937 g(7);
  x.i8.resize(N * D);
  x.i4.resize(N * D / 2);
  for (auto& v : x.i8) v = static_cast<uint8_t>(g());
  for (auto& v : x.i4) v = static_cast<uint8_t>(g());
  x.f32.assign(N * D, 0.25f);
  x.scale.assign(N, 1e-3f);
  x.err.resize(N);
  x.cnorm.resize(N);
  x.bias.resize(N);
  std::uniform_real_distribution<float> un(0.0f, 1.0f);
  for (size_t j = 0; j < N; ++j) x.err[j] = 0.01f * un(g), x.cnorm[j] = un(g), x.bias[j] = un(g) - 0.5f;
  auto rows = [&](size_t c) {
    std::vector<int32_t> r(c);
    for (auto& v : r) v = static_cast<int32_t>(g() % N);
    return r;
  };
  struct Case { const char* name; int bits; size_t cand; };
  const Case cases[] = {{"int8, 43 candidates (measured)", 8, 43}, {"int4, 1445 candidates (estimate, low)", 4, 1445},
                        {"int4, 1858 candidates (estimate, high)", 4, 1858}, {"int4, 0 candidates (scan alone)", 4, 0}};
  std::vector<std::vector<double>> t(4);
  std::vector<std::vector<int32_t>> rs;
  for (const Case& c : cases) rs.push_back(rows(c.cand));
  for (int round = 0; round < 31; ++round) {  // interleaved: one call of each per round
    for (size_t i = 0; i < 4; ++i) {
      t[i].push_back(cases[i].bits == 8 ? call<8>(x, 1e30f, rs[i]) : call<4>(x, 1e30f, rs[i]));
    }
  }
  for (auto& v : t) std::sort(v.begin(), v.end());
  const double i8 = t[0][15];
  const double bytes8 = N * (64.0 + 16), bytes4 = N * (32.0 + 16);
  for (size_t i = 0; i < 4; ++i) {
    const double b = (cases[i].bits == 8 ? bytes8 : bytes4) + cases[i].cand * 4096.0;
    std::printf("%-40s %7.3f ms  int8 / this %.2fx  %5.1f GB/s\n", cases[i].name, t[i][15], i8 / t[i][15], b / t[i][15] / 1e6);
  }
  return 0;
}
