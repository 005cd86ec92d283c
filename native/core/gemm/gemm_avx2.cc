// gemm_f32_6x16_avx2: six rows of A against one panel (16 packed rows of B, two ymm per inner
// index) in twelve accumulators; each lane is one output's chain (contract.h).
#include "../platform/target.h"
#include "contract.h"
#include "panel_gemm.h"

#if RS_X86
#include <immintrin.h>

namespace recscore {
namespace {

RS_INLINE_AVX2 __m256i lane_mask(size_t valid) {  // lanes [0, valid) of 8, valid 0..8
  alignas(32) static const int32_t m[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(m + 8 - valid));
}

// Loads 16 floats as two halves, only the first `valid` (masked when valid < 16).
RS_INLINE_AVX2 void load16(const float* p, size_t valid, __m256& lo, __m256& hi) {
  if (valid == 16) {
    lo = _mm256_loadu_ps(p);
    hi = _mm256_loadu_ps(p + 8);
  } else {
    lo = _mm256_maskload_ps(p, lane_mask(valid < 8 ? valid : 8));
    hi = _mm256_maskload_ps(p + 8, lane_mask(valid > 8 ? valid - 8 : 0));
  }
}

RS_INLINE_AVX2 void store16(float* p, size_t valid, __m256 lo, __m256 hi) {
  if (valid == 16) {
    _mm256_storeu_ps(p, lo);
    _mm256_storeu_ps(p + 8, hi);
  } else {
    _mm256_maskstore_ps(p, lane_mask(valid < 8 ? valid : 8), lo);
    _mm256_maskstore_ps(p + 8, lane_mask(valid > 8 ? valid - 8 : 0), hi);
  }
}

template <int MR>
RS_INLINE_AVX2 void tile(const float* a, size_t lda, const float* panel, size_t d, size_t valid,
                         const float* init, size_t ldi, const float* bias, float* c, size_t ldc) {
  __m256 lo[MR], hi[MR];
  for (int r = 0; r < MR; ++r) {
    if (init) {
      load16(init + r * ldi, valid, lo[r], hi[r]);
    } else {
      lo[r] = _mm256_setzero_ps();
      hi[r] = _mm256_setzero_ps();
    }
  }
  for (size_t p = 0; p < d; ++p) {
    const __m256 b0 = _mm256_loadu_ps(panel + p * kPanel);
    const __m256 b1 = _mm256_loadu_ps(panel + p * kPanel + 8);
    for (int r = 0; r < MR; ++r) {
      const __m256 av = _mm256_broadcast_ss(a + r * lda + p);
      lo[r] = _mm256_fmadd_ps(av, b0, lo[r]);
      hi[r] = _mm256_fmadd_ps(av, b1, hi[r]);
    }
  }
  if (bias) {
    __m256 blo, bhi;
    load16(bias, valid, blo, bhi);
    for (int r = 0; r < MR; ++r) {
      lo[r] = _mm256_add_ps(lo[r], blo);
      hi[r] = _mm256_add_ps(hi[r], bhi);
    }
  }
  for (int r = 0; r < MR; ++r) store16(c + r * ldc, valid, lo[r], hi[r]);
}

// MR rows (1 or 2) against NP whole panels at once: with one or two rows, a panel's two chains
// alone would wait on the FMA latency; NP panels give 2*MR*NP independent chains (8 or 12).
template <int MR, int NP>
RS_INLINE_AVX2 void tile_wide(const float* a, size_t lda, const float* panel, size_t d, const float* init,
                              size_t ldi, const float* bias, float* c, size_t ldc) {
  const size_t pf = panel_floats(d);
  __m256 acc[MR][NP][2];
  for (int r = 0; r < MR; ++r) {
    for (int q = 0; q < NP; ++q) {
      if (init) {
        acc[r][q][0] = _mm256_loadu_ps(init + r * ldi + q * kPanel);
        acc[r][q][1] = _mm256_loadu_ps(init + r * ldi + q * kPanel + 8);
      } else {
        acc[r][q][0] = acc[r][q][1] = _mm256_setzero_ps();
      }
    }
  }
  for (size_t p = 0; p < d; ++p) {
    __m256 av[MR];
    for (int r = 0; r < MR; ++r) av[r] = _mm256_broadcast_ss(a + r * lda + p);
    for (int q = 0; q < NP; ++q) {
      const __m256 b0 = _mm256_loadu_ps(panel + q * pf + p * kPanel);
      const __m256 b1 = _mm256_loadu_ps(panel + q * pf + p * kPanel + 8);
      for (int r = 0; r < MR; ++r) {
        acc[r][q][0] = _mm256_fmadd_ps(av[r], b0, acc[r][q][0]);
        acc[r][q][1] = _mm256_fmadd_ps(av[r], b1, acc[r][q][1]);
      }
    }
  }
  for (int q = 0; q < NP; ++q) {
    if (bias) {
      const __m256 b0 = _mm256_loadu_ps(bias + q * kPanel), b1 = _mm256_loadu_ps(bias + q * kPanel + 8);
      for (int r = 0; r < MR; ++r) {
        acc[r][q][0] = _mm256_add_ps(acc[r][q][0], b0);
        acc[r][q][1] = _mm256_add_ps(acc[r][q][1], b1);
      }
    }
    for (int r = 0; r < MR; ++r) {
      _mm256_storeu_ps(c + r * ldc + q * kPanel, acc[r][q][0]);
      _mm256_storeu_ps(c + r * ldc + q * kPanel + 8, acc[r][q][1]);
    }
  }
}

// One or two rows: NP whole panels at a time, then the rest (a partial panel last) one by one.
template <int MR, int NP>
RS_INLINE_AVX2 void few_rows(const float* a, size_t lda, const float* panels, size_t d, size_t n,
                             const float* init, size_t ldi, const float* bias, float* c, size_t ldc) {
  size_t j = 0;
  for (; j + NP * kPanel <= n; j += NP * kPanel) {
    tile_wide<MR, NP>(a, lda, panels + (j / kPanel) * panel_floats(d), d, init ? init + j : nullptr, ldi,
                      bias ? bias + j : nullptr, c + j, ldc);
  }
  for (; j < n; j += kPanel) {
    const size_t valid = n - j < kPanel ? n - j : kPanel;
    tile<MR>(a, lda, panels + (j / kPanel) * panel_floats(d), d, valid, init ? init + j : nullptr, ldi,
             bias ? bias + j : nullptr, c + j, ldc);
  }
}

}  // namespace

RS_TARGET_AVX2 void gemm_f32_6x16_avx2(const float* a, size_t lda, size_t m, const float* panels,
                                       size_t d, size_t n, const float* init, size_t ldi,
                                       const float* bias, float* c, size_t ldc) {
  if (m == 1) return few_rows<1, 4>(a, lda, panels, d, n, init, ldi, bias, c, ldc);
  if (m == 2) return few_rows<2, 3>(a, lda, panels, d, n, init, ldi, bias, c, ldc);
  for (size_t j = 0; j < n; j += kPanel) {
    const float* panel = panels + (j / kPanel) * panel_floats(d);
    const size_t valid = n - j < kPanel ? n - j : kPanel;
    const float* bj = bias ? bias + j : nullptr;
    for (size_t r = 0; r < m; r += 6) {
      const float* ar = a + r * lda;
      const float* ir = init ? init + r * ldi + j : nullptr;
      float* cr = c + r * ldc + j;
      switch (m - r < 6 ? m - r : 6) {
        case 6: tile<6>(ar, lda, panel, d, valid, ir, ldi, bj, cr, ldc); break;
        case 5: tile<5>(ar, lda, panel, d, valid, ir, ldi, bj, cr, ldc); break;
        case 4: tile<4>(ar, lda, panel, d, valid, ir, ldi, bj, cr, ldc); break;
        case 3: tile<3>(ar, lda, panel, d, valid, ir, ldi, bj, cr, ldc); break;
        case 2: tile<2>(ar, lda, panel, d, valid, ir, ldi, bj, cr, ldc); break;
        default: tile<1>(ar, lda, panel, d, valid, ir, ldi, bj, cr, ldc); break;
      }
    }
  }
}

}  // namespace recscore

#else
namespace recscore {
void gemm_f32_6x16_avx2(const float*, size_t, size_t, const float*, size_t, size_t, const float*, size_t,
                        const float*, float*, size_t) {}
}  // namespace recscore
#endif
