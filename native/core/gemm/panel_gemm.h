// Register-tiled micro-kernels over packed panels (contract.h), one per level. Each vectorises
// across outputs, so every output is the contract's chain and the three give the same bits.
#pragma once
#include <cstddef>

namespace recscore {

// [sync, any thread] For r < m and j < n:
//   c[r*ldc + j] = chain over p < d of a[r*lda + p] * B[j][p], starting from init[r*ldi + j]
//                  (0 when init is null), then + bias[j] when bias is not null,
// where B's rows are packed in panels at `panels` (panel_count(n) panels of panel_floats(d)).
// c may alias init (same ld). Nothing past column n of c, init or bias is read or written.
using GemmPanelsFn = void (*)(const float* a, size_t lda, size_t m, const float* panels, size_t d,
                              size_t n, const float* init, size_t ldi, const float* bias, float* c,
                              size_t ldc);

void gemm_f32_1x1_scalar(const float* a, size_t lda, size_t m, const float* panels, size_t d, size_t n,
                         const float* init, size_t ldi, const float* bias, float* c, size_t ldc);
void gemm_f32_6x16_avx2(const float* a, size_t lda, size_t m, const float* panels, size_t d, size_t n,
                        const float* init, size_t ldi, const float* bias, float* c, size_t ldc);
void gemm_f32_12x32_avx512(const float* a, size_t lda, size_t m, const float* panels, size_t d,
                           size_t n, const float* init, size_t ldi, const float* bias, float* c,
                           size_t ldc);

}  // namespace recscore
