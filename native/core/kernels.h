// SIMD kernels behind a run-time dispatch table. Every implementation computes a user/item dot
// product the same way whatever the block shape it is part of: eight lane accumulators over d in
// order, a zero-padded tail, then one fixed reduction tree. So the score of a (user, item) pair
// does not depend on the batch size, the tile, or the thread that computed it, which is what
// makes results identical across batch sizes and thread counts.
#pragma once
#include <cstddef>
#include <cstdint>

#include "cpu.h"

namespace recscore {

struct Kernels {
  // [sync, any thread] out[r * ldo + j] = dot(users[r*d ..], items[j*d ..]) (+ bias[j] if bias)
  // for r < nu (1..4) and j < ni. Rows are contiguous with stride d; unaligned pointers are fine.
  void (*score_block)(const float* users, size_t nu, size_t d, const float* items, size_t ni,
                      const float* bias, float* out, size_t ldo);
  // [sync, any thread] Writes the positions i < n with s[i] > thr into idx (ascending) and
  // returns how many there are. idx must hold n entries.
  size_t (*select_gt)(const float* s, size_t n, float thr, uint32_t* idx);
  // [sync, any thread] In place: v[i] = 1 / (1 + exp(-v[i])), and v[i] = tanh(v[i]); absolute
  // error below 1e-6 over the whole float range (the encoder's gate activations).
  void (*sigmoid)(float* v, size_t n);
  void (*tanh)(float* v, size_t n);
  // [sync, any thread] Approximate scores from compact rows (compressed catalogues; any
  // summation order: the caller's error bound covers it). out[j] = scale[j] * (u · q_j) for
  // int8 rows, out[j] = u · h_j for bfloat16 rows (the upper 16 bits of a float32), j < n.
  void (*dot_rows_i8)(const float* u, const int8_t* q, size_t d, size_t n, const float* scale, float* out);
  void (*dot_rows_bf16)(const float* u, const uint16_t* h, size_t d, size_t n, float* out);
  Isa isa;
};

// [sync, any thread] The kernel table for an ISA; asking for AVX2 on a CPU without it returns
// the scalar table (callers check best_isa() first when they need to know).
const Kernels& kernels_for(Isa isa);

// Implementations, one per file.
extern const Kernels kScalarKernels;
extern const Kernels kAvx2Kernels;

}  // namespace recscore
