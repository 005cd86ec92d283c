// C = A · Bᵀ (+ bias per column) with the contract's chains (gemm/contract.h), for the encoder's
// input projections, recurrent steps and dense layers.
#pragma once
#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>
#include <vector>

#include "kernels.h"

namespace recscore {

// Packed panels of immutable row blocks (an encoder's weights), made on first use and kept for
// the owner's lifetime, so a recurrent step does not repack its weights. Packing is the same
// bytes on every level, so one entry serves every level and thread.
class PackCache {
 public:
  // [sync, any thread] The panels of rows [b, b + n*kdim) (n rows of kdim floats).
  const float* get(const Kernels& k, const float* b, size_t n, size_t kdim);

 private:
  std::mutex mu_;
  std::map<std::tuple<const float*, size_t, size_t>, std::unique_ptr<std::vector<float>>> entries_;
};

// [sync, calling thread only] A is M×K row-major, B is N×K row-major (so B's rows are the
// weight rows of an [out, in] matrix), C is M×N with row stride ldc. bias (N entries) is added
// to every row when not null, after the chain. Each C element is the contract's chain, so a
// row's result never depends on M, on which rows are batched with it, or on the level.
// With a cache, B is taken as immutable and packed once; without, it is packed on the fly. With
// init (row stride ldi; it may be c itself), each chain continues from init's element instead of
// starting at zero.
void gemm_abt(const Kernels& k, const float* a, size_t m, size_t kdim, const float* b, size_t n,
              const float* bias, float* c, size_t ldc, PackCache* cache = nullptr,
              const float* init = nullptr, size_t ldi = 0);

}  // namespace recscore
