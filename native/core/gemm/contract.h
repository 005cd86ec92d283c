// The arithmetic contract (docs/arithmetic.md): every score and every pre-activation is ONE
// sequential chain of fused multiply-adds over the inner dimension, in index order, starting from
// zero (or from a given partial value, for a chain continued over a second operand), with the
// bias added last by one rounded addition:
//
//     acc = init;  for p in 0..d-1: acc = fma(a[p], b[p], acc);  out = acc + bias
//
// FMA rounds once, so this value is the same on every level (scalar std::fma, AVX2, AVX-512),
// whatever the batch, the other rows, the tile or the thread: every kernel here vectorises
// ACROSS outputs (one lane per output), never along the chain.
#pragma once
#include <cmath>
#include <cstddef>

namespace recscore {

// Items (or weight rows) are packed in panels of kPanel rows: panel q holds rows
// [q*kPanel, q*kPanel + kPanel) as d groups of kPanel floats (element p of each row, then p+1,
// ...), rows past the end zero. One layout for every level: AVX-512 reads a group as one zmm,
// AVX2 as two ymm.
constexpr size_t kPanel = 16;

inline size_t panel_count(size_t rows) { return (rows + kPanel - 1) / kPanel; }
inline size_t panel_floats(size_t d) { return kPanel * d; }

// [sync] The reference chain (scalar level and tests).
inline float contract_dot(const float* a, const float* b, size_t d, size_t b_stride, float init) {
  float acc = init;
  for (size_t p = 0; p < d; ++p) acc = std::fma(a[p], b[p * b_stride], acc);
  return acc;
}

}  // namespace recscore
