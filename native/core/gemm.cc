#include "gemm.h"

#include <vector>

#include "gemm/contract.h"
#include "gemm/pack.h"

namespace recscore {

const float* PackCache::get(const Kernels& k, const float* b, size_t n, size_t kdim) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& slot = entries_[std::make_tuple(b, n, kdim)];
  if (!slot) {
    slot = std::make_unique<std::vector<float>>(panel_count(n) * panel_floats(kdim));
    pack_panels(k.isa, b, n, kdim, kdim, slot->data());
  }
  return slot->data();
}

void gemm_abt(const Kernels& k, const float* a, size_t m, size_t kdim, const float* b, size_t n,
              const float* bias, float* c, size_t ldc, PackCache* cache, const float* init, size_t ldi) {
  if (m == 0 || n == 0) return;
  if (cache) {
    k.gemm_panels(a, kdim, m, cache->get(k, b, n, kdim), kdim, n, init, ldi, bias, c, ldc);
    return;
  }
  // B is packed on the fly, a panel block at a time (kept in L1/L2 while every row of A passes).
  thread_local std::vector<float> packed;
  const size_t block = kPanel * 16;  // rows of B per packed block
  packed.resize(panel_count(block < n ? block : n) * panel_floats(kdim));
  for (size_t j0 = 0; j0 < n; j0 += block) {
    const size_t nj = n - j0 < block ? n - j0 : block;
    pack_panels(k.isa, b + j0 * kdim, nj, kdim, kdim, packed.data());
    k.gemm_panels(a, kdim, m, packed.data(), kdim, nj, init ? init + j0 : nullptr, ldi, bias ? bias + j0 : nullptr, c + j0,
                  ldc);
  }
}

}  // namespace recscore
