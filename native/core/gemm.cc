#include "gemm.h"

#include <algorithm>

namespace recscore {

void gemm_abt(const Kernels& k, const float* a, size_t m, size_t kdim, const float* b, size_t n,
              const float* bias, float* c, size_t ldc) {
  // Keep a panel of B (about 16 KiB) in L1 while every 4-row group of A passes over it: each
  // A group is then read from L2 once per panel and B's rows come from L1.
  size_t tile = std::max<size_t>(24, ((16u << 10) / (kdim * sizeof(float))) / 24 * 24);
  for (size_t j0 = 0; j0 < n; j0 += tile) {
    const size_t nj = std::min(tile, n - j0);
    for (size_t i = 0; i < m; i += 4) {
      const size_t nu = std::min<size_t>(4, m - i);
      k.score_block(a + i * kdim, nu, kdim, b + j0 * kdim, nj, bias ? bias + j0 : nullptr,
                    c + i * ldc + j0, ldc);
    }
  }
}

}  // namespace recscore
