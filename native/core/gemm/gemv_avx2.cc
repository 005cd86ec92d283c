// gemv_f32_32x8t_avx2: one user against row-major items, the B = 1 path. 32 items at a time as
// four groups of eight rows; each 8x8 block is transposed in registers, so lane i of a group's
// accumulator runs item i's chain (contract.h) in index order; nothing is packed or stored, and
// the scan streams the catalogue once.
#include "../platform/target.h"
#include "contract.h"
#include "panel_gemm.h"
#include "transpose_avx2.h"

#if RS_X86
#include <immintrin.h>

#include <algorithm>
#include <vector>

namespace recscore {
namespace {

RS_INLINE_AVX2 __m256i lanes(size_t valid) {
  alignas(32) static const int32_t m[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(m + 8 - valid));
}

// G groups of eight consecutive rows (row i of the block at base + i * ld), their chains
// interleaved so the core overlaps them (one group's chain alone is latency-bound: d dependent
// FMAs). Addresses are one base and multiples of ld, which keeps them in registers.
template <int G>
RS_INLINE_AVX2 void block(const float* u, const float* base, size_t ld, size_t d8, size_t rem, __m256i tail,
                          __m256* acc) {
  for (int g = 0; g < G; ++g) acc[g] = _mm256_setzero_ps();
  for (size_t p = 0; p <= d8; p += 8) {
    const bool last = p == d8;
    if (last && rem == 0) break;
    for (int g = 0; g < G; ++g) {
      const float* x = base + 8 * g * ld + p;
      __m256 r[8], c[8];
      if (!last) {
        for (size_t i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(x + i * ld);
      } else {
        for (size_t i = 0; i < 8; ++i) r[i] = _mm256_maskload_ps(x + i * ld, tail);
      }
      transpose8x8(r, c);
      const size_t kn = last ? rem : 8;
      for (size_t k = 0; k < kn; ++k) acc[g] = _mm256_fmadd_ps(_mm256_broadcast_ss(u + p + k), c[k], acc[g]);
    }
  }
}

RS_INLINE_AVX2 void store8(const __m256& acc, const float* bias, float* out, size_t valid) {
  const __m256i m = lanes(valid);
  __m256 s = acc;
  if (bias) s = _mm256_add_ps(s, _mm256_maskload_ps(bias, m));
  _mm256_maskstore_ps(out, m, s);
}

}  // namespace

RS_TARGET_AVX2 void gemv_f32_32x8t_avx2(const float* u, const float* items, size_t n, size_t d, size_t ld,
                                        const float* bias, float* out) {
  constexpr int G = 4;
  constexpr size_t kBlock = 8 * G;
  const size_t d8 = d & ~static_cast<size_t>(7);
  const size_t rem = d - d8;
  const __m256i tail = lanes(rem);
  const size_t full = n - n % kBlock;
  for (size_t j = 0; j < full; j += kBlock) {
    // Ask for the block after next now, so its loads find it on the way.
    if (j + 2 * kBlock < full) {
      const char* from = reinterpret_cast<const char*>(items + (j + 2 * kBlock) * ld);
      for (size_t off = 0; off < kBlock * ld * sizeof(float); off += 64) _mm_prefetch(from + off, _MM_HINT_T0);
    }
    __m256 acc[G];
    block<G>(u, items + j * ld, ld, d8, rem, tail, acc);
    for (int g = 0; g < G; ++g) store8(acc[g], bias ? bias + j + 8 * g : nullptr, out + j + 8 * g, 8);
  }
  if (full < n) {
    // The last rows, copied into a zero-filled block (the padding rows' results are dropped).
    std::vector<float> pad(kBlock * d, 0.0f);
    for (size_t i = full; i < n; ++i) std::copy(items + i * ld, items + i * ld + d, pad.data() + (i - full) * d);
    __m256 acc[G];
    block<G>(u, pad.data(), d, d8, rem, tail, acc);
    for (int g = 0; g < G; ++g) {
      const size_t first = full + 8 * static_cast<size_t>(g);
      if (first >= n) break;
      store8(acc[g], bias ? bias + first : nullptr, out + first, n - first < 8 ? n - first : 8);
    }
  }
}

}  // namespace recscore

#else
namespace recscore {
void gemv_f32_32x8t_avx2(const float*, const float*, size_t, size_t, size_t, const float*, float*) {}
}  // namespace recscore
#endif
