// Shared by the conformance test files (conformance_tests.cc holds main): the digest of the
// scalar-level results, EXPECT, the grids of dims and batches, and platform-independent random
// values.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "../platform/levels.h"

namespace conformance {

using recscore::Level;
using recscore::kLevelCount;
using recscore::level_supported;

// FNV-1a over the bits of every scalar-level reference result: equal digests on two machines
// (x86-64 and arm64, say) mean they compute the same bits (scripts/cross-arm64.sh compares them).
inline uint64_t g_digest = 1469598103934665603ull;
inline void digest(const float* v, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    uint32_t b;
    std::memcpy(&b, &v[i], sizeof b);
    for (int k = 0; k < 4; ++k) g_digest = (g_digest ^ ((b >> (8 * k)) & 0xffu)) * 1099511628211ull;
  }
}

struct Failure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

#define EXPECT(cond, ...)                                         \
  do {                                                            \
    if (!(cond)) {                                                \
      char msg_[512];                                             \
      std::snprintf(msg_, sizeof msg_, __VA_ARGS__);              \
      throw Failure(std::string(#cond) + ": " + msg_);            \
    }                                                             \
  } while (0)

inline bool full() {
  const char* v = std::getenv("RECSCORE_CONFORMANCE");
  return v && std::strcmp(v, "full") == 0;
}

inline std::vector<Level> levels() {
  std::vector<Level> v;
  for (int i = 0; i < kLevelCount; ++i) {
    if (level_supported(static_cast<Level>(i))) v.push_back(static_cast<Level>(i));
  }
  return v;
}

// Uniform in [-scale, scale) from integers only, so every platform draws the same floats
// (std::uniform_real_distribution goes through long double, which differs between x86 and arm64).
inline float uniform(std::mt19937& g, float scale) {
  return static_cast<float>(static_cast<int32_t>(g() >> 8) - (1 << 23)) * 0x1p-23f * scale;
}

inline std::vector<float> random_values(size_t count, uint32_t seed, float scale = 1.0f) {
  std::mt19937 g(seed);
  std::vector<float> m(count);
  for (auto& x : m) x = uniform(g, scale);
  return m;
}

inline uint32_t bits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, sizeof b);
  return b;
}

inline std::vector<size_t> dims() {
  if (full()) {
    std::vector<size_t> v;
    for (size_t d = 1; d <= 17; ++d) v.push_back(d);
    for (size_t d : {31, 32, 33, 63, 64, 65, 67, 127, 128, 129, 130, 255, 256, 257, 1000}) v.push_back(d);
    return v;
  }
  return {1, 7, 16, 17, 33, 64, 67, 130, 257};
}

inline std::vector<size_t> batches() {
  if (full()) return {1, 2, 3, 7, 16, 31, 32, 33, 37, 64, 256};
  return {1, 3, 13, 37};
}

// conformance_compact.cc: compressed catalogues' kernels and scans over packed copies.
void compact_dot_conformance();
void compressed_topk_conformance();
// conformance_quant.cc: the quantised-user kernels (AVX-512 VNNI / AVX512_BF16) where present.
void quantised_kernel_conformance();

}  // namespace conformance
