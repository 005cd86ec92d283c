// The AVX-512 epilogue of compressed scans: one pass over a tile's approximate scores that adds
// the bias, evaluates each row's bound from approx_bounds' terms (compressed_approx.h; with FMAs,
// so fewer roundings inside the same margin: valid, though not always the same bits), and
// keeps only what the selection needs: the rows whose lower bound beats the threshold t (for the
// heap of the k best lower bounds) and the rows whose upper bound reaches t (the candidates),
// with their bounds. Rows whose score or bound is not finite bound nothing (lower -inf, upper
// +inf: always a candidate), as in the scan's other route. Used when the user's heap is full and
// the tile has no exclusions or filter (compressed_scan.cc); t is then the heap's smallest lower
// bound before the tile, so the candidates are a superset of what the tile-at-once route keeps
// (the final threshold, never lower, filters both the same way).
#pragma once
#include <cstddef>
#include <cstdint>

namespace recscore {

// approx_bounds' inflation of the bound's own float32 evaluation (compressed.h).
constexpr float kSelectMargin = 1.0f + 0x1p-18f;
constexpr float kSelectSlack = 1e-30f;

struct SelectTerms {
  const float* approx = nullptr;  // the kernel's scores, bias not yet added
  const float* bias = nullptr;    // or null
  const float* err = nullptr;     // e_j
  const float* cnorm = nullptr;   // the quantised paths' cnorm_j, or null (float path)
  float nu = 0, du = 0, cu = 0, gb = 0;  // ApproxUser's terms
  // Optional (loose = true): the tile's largest err, cnorm and |bias|. A 16-row vector is then
  // first tested against the bound those give, which dominates every row's (the same monotone
  // operations on larger inputs), with two loads and a few operations; only vectors that pass take
  // the exact bound. Worth it where many users scan one tile (the batched route).
  bool loose = false;
  float err_max = 0, cnorm_max = 0, bias_max = 0;
};

// The tile maxima of SelectTerms (rows [0, nt) of each array; cnorm or bias may be null).
void tile_maxima(const float* err, const float* cnorm, const float* bias, size_t nt, SelectTerms& s);

struct SelectHits {
  uint32_t* lo_idx = nullptr;  // tile indices whose lower bound > t, ascending (room for nt)
  float* lo_val = nullptr;
  size_t nlo = 0;
  uint32_t* hi_idx = nullptr;  // tile indices whose upper bound >= t, ascending (room for nt)
  float* hi_val = nullptr;
  size_t nhi = 0;
};

// [sync, any thread] The pass over rows [0, nt) of s (each array offset to the tile's first row).
// Returns false where the build has no AVX-512 (the caller takes the other route); callers check
// level_supported(kAvx512) first.
bool bound_select_avx512(const SelectTerms& s, size_t nt, float t, SelectHits& h);

}  // namespace recscore
