#include "pack.h"

#include <cstring>

#include "../platform/target.h"
#include "contract.h"
#include "transpose_avx2.h"

namespace recscore {
namespace {

void pack_scalar(const float* src, size_t n, size_t d, size_t ld, float* dst) {
  for (size_t q = 0; q < panel_count(n); ++q) {
    float* out = dst + q * panel_floats(d);
    const size_t rows = n - q * kPanel < kPanel ? n - q * kPanel : kPanel;
    if (rows < kPanel) std::memset(out, 0, panel_floats(d) * sizeof(float));
    for (size_t r = 0; r < rows; ++r) {
      const float* row = src + (q * kPanel + r) * ld;
      for (size_t p = 0; p < d; ++p) out[p * kPanel + r] = row[p];
    }
  }
}

#if RS_X86
// Eight rows by eight columns at a time through a register transpose; rows past n read zeros.
RS_TARGET_AVX2 void pack_avx2(const float* src, size_t n, size_t d, size_t ld, float* dst) {
  const size_t d8 = d & ~static_cast<size_t>(7);
  for (size_t q = 0; q < panel_count(n); ++q) {
    float* out = dst + q * panel_floats(d);
    for (size_t h = 0; h < kPanel; h += 8) {
      const size_t first = q * kPanel + h;
      const size_t rows = first >= n ? 0 : (n - first < 8 ? n - first : 8);
      for (size_t p = 0; p < d8; p += 8) {
        __m256 r[8], c[8];
        for (size_t i = 0; i < 8; ++i) r[i] = i < rows ? _mm256_loadu_ps(src + (first + i) * ld + p) : _mm256_setzero_ps();
        transpose8x8(r, c);
        for (size_t k = 0; k < 8; ++k) _mm256_storeu_ps(out + (p + k) * kPanel + h, c[k]);
      }
      for (size_t p = d8; p < d; ++p) {
        for (size_t i = 0; i < 8; ++i) out[p * kPanel + h + i] = i < rows ? src[(first + i) * ld + p] : 0.0f;
      }
    }
  }
}
#endif

}  // namespace

void pack_panels(Level level, const float* src, size_t n, size_t d, size_t ld, float* dst) {
#if RS_X86
  if (level != Level::kScalar && level_supported(Level::kAvx2)) {
    pack_avx2(src, n, d, ld, dst);
    return;
  }
#endif
  (void)level;
  pack_scalar(src, n, d, ld, dst);
}

void unpack_panels(const float* src, size_t first, size_t count, size_t d, size_t ld, float* dst) {
  for (size_t i = 0; i < count; ++i) {
    const size_t j = first + i;
    const float* in = src + (j / kPanel) * panel_floats(d) + j % kPanel;
    float* row = dst + i * ld;
    for (size_t p = 0; p < d; ++p) row[p] = in[p * kPanel];
  }
}

}  // namespace recscore
