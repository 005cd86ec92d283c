// C = A · Bᵀ (+ bias per column) on the scoring micro-kernel (kernels.h), for the encoder's
// input projections, recurrent steps and dense layers.
#pragma once
#include <cstddef>

#include "kernels.h"

namespace recscore {

// [sync, calling thread only] A is M×K row-major, B is N×K row-major (so B's rows are the
// weight rows of an [out, in] matrix), C is M×N with row stride ldc. bias (N entries) is added
// to every row when not null. Each C element is computed exactly as the scorer computes a
// user/item score, so a row's result never depends on M or on which rows are batched with it.
void gemm_abt(const Kernels& k, const float* a, size_t m, size_t kdim, const float* b, size_t n,
              const float* bias, float* c, size_t ldc);

}  // namespace recscore
