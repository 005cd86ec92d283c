#include "bandwidth.h"

#include <algorithm>
#include <chrono>
#include <thread>
#include <vector>

#include "cpu.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace recscore {
namespace {

#if defined(__x86_64__) || defined(__i386__)
__attribute__((target("avx2"))) float sum_avx2(const float* p, size_t n) {
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    a0 = _mm256_add_ps(a0, _mm256_loadu_ps(p + i));
    a1 = _mm256_add_ps(a1, _mm256_loadu_ps(p + i + 8));
    a2 = _mm256_add_ps(a2, _mm256_loadu_ps(p + i + 16));
    a3 = _mm256_add_ps(a3, _mm256_loadu_ps(p + i + 24));
  }
  alignas(32) float t[8];
  _mm256_store_ps(t, _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
  float s = 0;
  for (float v : t) s += v;
  for (; i < n; ++i) s += p[i];
  return s;
}
#endif

float sum_scalar(const float* p, size_t n) {
  float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    s0 += p[i];
    s1 += p[i + 1];
    s2 += p[i + 2];
    s3 += p[i + 3];
  }
  for (; i < n; ++i) s0 += p[i];
  return s0 + s1 + s2 + s3;
}

float sum(const float* p, size_t n) {
#if defined(__x86_64__) || defined(__i386__)
  if (cpu_has_avx2_fma()) return sum_avx2(p, n);
#endif
  return sum_scalar(p, n);
}

}  // namespace

double read_bandwidth_gbs(const float* data, size_t n, int threads, int reps) {
  const size_t t = static_cast<size_t>(std::max(1, threads));
  const size_t per = (n + t - 1) / t;
  std::vector<float> sink(t, 0.f);
  double best = 0;
  for (int r = 0; r < std::max(1, reps); ++r) {
    auto start = std::chrono::steady_clock::now();
    std::vector<std::thread> pool;
    for (size_t i = 1; i < t; ++i) {
      pool.emplace_back([&, i] {
        size_t lo = std::min(n, i * per), hi = std::min(n, lo + per);
        sink[i] += sum(data + lo, hi - lo);
      });
    }
    sink[0] += sum(data, std::min(n, per));
    for (auto& th : pool) th.join();
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    best = std::max(best, static_cast<double>(n) * sizeof(float) / s / 1e9);
  }
  volatile float keep = 0;
  for (float v : sink) keep = keep + v;  // the sums must not be optimised away
  (void)keep;
  return best;
}

}  // namespace recscore
