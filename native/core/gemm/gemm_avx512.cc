// gemm_f32_12x32_avx512: twelve rows of A against two panels (32 packed rows of B, one zmm per
// panel and inner index) in 24 of the 32 zmm registers; each lane is one output's chain
// (contract.h). Partial panels use lane masks.
#include "../platform/target.h"
#include "contract.h"
#include "panel_gemm.h"

#if RS_X86
#include <immintrin.h>

namespace recscore {
namespace {

RS_INLINE_AVX512 __mmask16 mask_of(size_t valid) {
  return static_cast<__mmask16>(valid >= 16 ? 0xffffu : ((1u << valid) - 1u));
}

// MR rows x NP panels (NP 1 or 2); valid[q]: rows of B in panel q (1..16).
template <int MR, int NP>
RS_INLINE_AVX512 void tile(const float* a, size_t lda, const float* panel, size_t d, const size_t* valid,
                           const float* init, size_t ldi, const float* bias, float* c, size_t ldc) {
  const size_t pf = panel_floats(d);
  __mmask16 m[NP];
  for (int q = 0; q < NP; ++q) m[q] = mask_of(valid[q]);
  __m512 acc[MR][NP];
  for (int r = 0; r < MR; ++r) {
    for (int q = 0; q < NP; ++q) {
      acc[r][q] = init ? _mm512_maskz_loadu_ps(m[q], init + r * ldi + q * kPanel) : _mm512_setzero_ps();
    }
  }
  for (size_t p = 0; p < d; ++p) {
    __m512 b[NP];
    for (int q = 0; q < NP; ++q) b[q] = _mm512_loadu_ps(panel + q * pf + p * kPanel);
    for (int r = 0; r < MR; ++r) {
      const __m512 av = _mm512_set1_ps(a[r * lda + p]);
      for (int q = 0; q < NP; ++q) acc[r][q] = _mm512_fmadd_ps(av, b[q], acc[r][q]);
    }
  }
  if (bias) {
    for (int q = 0; q < NP; ++q) {
      const __m512 bv = _mm512_maskz_loadu_ps(m[q], bias + q * kPanel);
      for (int r = 0; r < MR; ++r) acc[r][q] = _mm512_add_ps(acc[r][q], bv);
    }
  }
  for (int r = 0; r < MR; ++r) {
    for (int q = 0; q < NP; ++q) _mm512_mask_storeu_ps(c + r * ldc + q * kPanel, m[q], acc[r][q]);
  }
}

template <int NP>
RS_INLINE_AVX512 void rows(const float* a, size_t lda, size_t m, const float* panel, size_t d,
                           const size_t* valid, const float* init, size_t ldi, const float* bias,
                           float* c, size_t ldc) {
  for (size_t r = 0; r < m; r += 12) {
    const float* ar = a + r * lda;
    const float* ir = init ? init + r * ldi : nullptr;
    float* cr = c + r * ldc;
    switch (m - r < 12 ? m - r : 12) {
      case 12: tile<12, NP>(ar, lda, panel, d, valid, ir, ldi, bias, cr, ldc); break;
      case 11: tile<11, NP>(ar, lda, panel, d, valid, ir, ldi, bias, cr, ldc); break;
      case 10: tile<10, NP>(ar, lda, panel, d, valid, ir, ldi, bias, cr, ldc); break;
      case 9: tile<9, NP>(ar, lda, panel, d, valid, ir, ldi, bias, cr, ldc); break;
      case 8: tile<8, NP>(ar, lda, panel, d, valid, ir, ldi, bias, cr, ldc); break;
      case 7: tile<7, NP>(ar, lda, panel, d, valid, ir, ldi, bias, cr, ldc); break;
      case 6: tile<6, NP>(ar, lda, panel, d, valid, ir, ldi, bias, cr, ldc); break;
      case 5: tile<5, NP>(ar, lda, panel, d, valid, ir, ldi, bias, cr, ldc); break;
      case 4: tile<4, NP>(ar, lda, panel, d, valid, ir, ldi, bias, cr, ldc); break;
      case 3: tile<3, NP>(ar, lda, panel, d, valid, ir, ldi, bias, cr, ldc); break;
      case 2: tile<2, NP>(ar, lda, panel, d, valid, ir, ldi, bias, cr, ldc); break;
      default: tile<1, NP>(ar, lda, panel, d, valid, ir, ldi, bias, cr, ldc); break;
    }
  }
}

// One to three rows: their chains alone would wait on the FMA latency, so NP panels (8, 6 or 4:
// up to 24 accumulators) go together while NP whole panels remain; then two or one at a time.
template <int MR, int NP>
RS_INLINE_AVX512 void few_rows(const float* a, size_t lda, const float* panels, size_t d, size_t n,
                               const float* init, size_t ldi, const float* bias, float* c, size_t ldc) {
  size_t j = 0;
  size_t full[NP];
  for (int q = 0; q < NP; ++q) full[q] = kPanel;
  for (; j + NP * kPanel <= n; j += NP * kPanel) {
    tile<MR, NP>(a, lda, panels + (j / kPanel) * panel_floats(d), d, full, init ? init + j : nullptr, ldi,
                 bias ? bias + j : nullptr, c + j, ldc);
  }
  for (; j < n; j += kPanel) {
    const size_t valid[1] = {n - j < kPanel ? n - j : kPanel};
    tile<MR, 1>(a, lda, panels + (j / kPanel) * panel_floats(d), d, valid, init ? init + j : nullptr, ldi,
                bias ? bias + j : nullptr, c + j, ldc);
  }
}

}  // namespace

RS_TARGET_AVX512 void gemm_f32_12x32_avx512(const float* a, size_t lda, size_t m, const float* panels,
                                           size_t d, size_t n, const float* init, size_t ldi,
                                           const float* bias, float* c, size_t ldc) {
  if (m == 1) return few_rows<1, 8>(a, lda, panels, d, n, init, ldi, bias, c, ldc);
  if (m == 2) return few_rows<2, 6>(a, lda, panels, d, n, init, ldi, bias, c, ldc);
  if (m == 3) return few_rows<3, 4>(a, lda, panels, d, n, init, ldi, bias, c, ldc);
  for (size_t j = 0; j < n; j += 2 * kPanel) {
    const float* panel = panels + (j / kPanel) * panel_floats(d);
    const size_t left = n - j;
    const size_t valid[2] = {left < kPanel ? left : kPanel, left > kPanel ? (left - kPanel < kPanel ? left - kPanel : kPanel) : 0};
    const float* ij = init ? init + j : nullptr;
    const float* bj = bias ? bias + j : nullptr;
    if (valid[1] > 0) {
      rows<2>(a, lda, m, panel, d, valid, ij, ldi, bj, c + j, ldc);
    } else {
      rows<1>(a, lda, m, panel, d, valid, ij, ldi, bj, c + j, ldc);
    }
  }
}

}  // namespace recscore

#else
namespace recscore {
void gemm_f32_12x32_avx512(const float*, size_t, size_t, const float*, size_t, size_t, const float*,
                           size_t, const float*, float*, size_t) {}
}  // namespace recscore
#endif
