#include "fma_peak.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <thread>
#include <vector>

#include "target.h"

#if RS_X86
#include <immintrin.h>
#endif

namespace recscore {
namespace {

constexpr long kIters = 1 << 22;

// Twelve independent chains (more than latency x ports on every core we target); returns a value
// that depends on all of them so nothing is optimised away. Flops = iters * chains * lanes * 2.
float chains_scalar(float seed) {
  float a[12];
  for (int i = 0; i < 12; ++i) a[i] = seed + static_cast<float>(i);
  const float m = 0.999999f, c = 1e-7f;
  for (long it = 0; it < kIters / 8; ++it) {
    for (int i = 0; i < 12; ++i) a[i] = std::fma(a[i], m, c);
  }
  float s = 0;
  for (float v : a) s += v;
  return s;
}

#if RS_X86
RS_TARGET_AVX2 float chains_avx2(float seed) {
  __m256 a[12];
  for (int i = 0; i < 12; ++i) a[i] = _mm256_set1_ps(seed + static_cast<float>(i));
  const __m256 m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
  for (long it = 0; it < kIters; ++it) {
    for (int i = 0; i < 12; ++i) a[i] = _mm256_fmadd_ps(a[i], m, c);
  }
  __m256 s = a[0];
  for (int i = 1; i < 12; ++i) s = _mm256_add_ps(s, a[i]);
  alignas(32) float t[8];
  _mm256_store_ps(t, s);
  return t[0] + t[7];
}

RS_TARGET_AVX512 float chains_avx512(float seed) {
  __m512 a[12];
  for (int i = 0; i < 12; ++i) a[i] = _mm512_set1_ps(seed + static_cast<float>(i));
  const __m512 m = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
  for (long it = 0; it < kIters; ++it) {
    for (int i = 0; i < 12; ++i) a[i] = _mm512_fmadd_ps(a[i], m, c);
  }
  __m512 s = a[0];
  for (int i = 1; i < 12; ++i) s = _mm512_add_ps(s, a[i]);
  alignas(64) float t[16];
  _mm512_store_ps(t, s);
  return t[0] + t[15];
}
#endif

// Flops of one call of the level's chains.
double flops(Level level) {
  const double lanes = level == Level::kAvx512 ? 16 : level == Level::kAvx2 ? 8 : 1;
  const double iters = level == Level::kScalar ? kIters / 8 : kIters;
  return iters * 12 * lanes * 2;
}

float run(Level level, float seed) {
#if RS_X86
  if (level == Level::kAvx512) return chains_avx512(seed);
  if (level == Level::kAvx2) return chains_avx2(seed);
#endif
  return chains_scalar(seed);
}

}  // namespace

double fma_peak_gflops(Level level, int threads, int reps) {
  if (!level_supported(level)) return 0;
  const int t = std::max(1, threads);
  std::vector<float> sink(static_cast<size_t>(t), 0.f);
  double best = 0;
  for (int r = 0; r < std::max(1, reps); ++r) {
    auto start = std::chrono::steady_clock::now();
    std::vector<std::thread> pool;
    for (int i = 1; i < t; ++i) pool.emplace_back([&, i] { sink[static_cast<size_t>(i)] += run(level, static_cast<float>(i)); });
    sink[0] += run(level, 0.f);
    for (auto& th : pool) th.join();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    best = std::max(best, flops(level) * t / s / 1e9);
  }
  volatile float keep = 0;
  for (float v : sink) keep = keep + v;
  (void)keep;
  return best;
}

}  // namespace recscore
