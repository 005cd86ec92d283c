// Kernels behind a run-time dispatch table, one table per level (platform/levels.h). The exact
// ones follow the arithmetic contract (gemm/contract.h): scores and pre-activations are the same
// bits on every level, whatever the batch, tile or thread.
#pragma once
#include <cstddef>
#include <cstdint>

#include "cpu.h"
#include "gemm/panel_gemm.h"

namespace recscore {

struct Kernels {
  // [sync, any thread] The contract's chains over packed panels (gemm/panel_gemm.h).
  GemmPanelsFn gemm_panels;
  // [sync, any thread] Writes the positions i < n with s[i] > thr into idx (ascending) and
  // returns how many there are. idx must hold n entries.
  size_t (*select_gt)(const float* s, size_t n, float thr, uint32_t* idx);
  // [sync, any thread] In place: v[i] = 1 / (1 + exp(-v[i])), and v[i] = tanh(v[i]); absolute
  // error below 1e-6 over the whole float range (the encoder's gate activations); the same
  // formula and the same bits on every level.
  void (*sigmoid)(float* v, size_t n);
  void (*tanh)(float* v, size_t n);
  // [sync, any thread] Approximate scores from compact rows packed in panels (gemm/compact.h;
  // compressed catalogues): q / h point at the panel holding row 0, rows [0, n) are scored (the
  // last panel may be partial; only out[0, n) is written). For each row one sequential FMA chain
  // over the dimensions in index order from zero (compressed.h's bound assumes no more rounding
  // than that): out[j] = scale[j] * chain(u, q_j) for int8 rows, out[j] = chain(u, h_j) for
  // bfloat16 rows (the upper 16 bits of a float32). Every level computes these same chains.
  void (*dot_rows_i8)(const float* u, const int8_t* q, size_t d, size_t n, const float* scale, float* out);
  void (*dot_rows_bf16)(const float* u, const uint16_t* h, size_t d, size_t n, float* out);
  Isa isa;
};

// [sync, any thread] The kernel table of a level; a level this CPU does not run gives the highest
// one it does (callers validate the level first when they need to know).
const Kernels& kernels_for(Level level);

// Implementations, one per file (the AVX-512 table is the AVX2 one with its own GEMM).
extern const Kernels kScalarKernels;
extern const Kernels kAvx2Kernels;

}  // namespace recscore
