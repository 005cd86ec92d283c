// The scalar level: the contract's chain written out (built with -ffp-contract=off, and std::fma
// is the one rounding per step), the reference the other levels are tested against bit for bit.
#include "contract.h"
#include "panel_gemm.h"

namespace recscore {

void gemm_f32_1x1_scalar(const float* a, size_t lda, size_t m, const float* panels, size_t d, size_t n,
                         const float* init, size_t ldi, const float* bias, float* c, size_t ldc) {
  for (size_t j = 0; j < n; ++j) {
    const float* col = panels + (j / kPanel) * panel_floats(d) + j % kPanel;
    for (size_t r = 0; r < m; ++r) {
      const float acc = contract_dot(a + r * lda, col, d, kPanel, init ? init[r * ldi + j] : 0.0f);
      c[r * ldc + j] = bias ? acc + bias[j] : acc;
    }
  }
}

}  // namespace recscore
