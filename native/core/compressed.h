// Compressed catalogues that still give the exact float32 top-k.
//
// Every row x_j keeps its float32 form (it stays in the file, memory-mapped) and gains a compact
// copy x̂_j: int8 with a per-row scale, or bfloat16. A scan computes the approximate score
// a_j = u·x̂_j + b_j from the compact copy and a bound E_j with |s_j - a_j| <= E_j, where s_j is
// the score the float32 kernel computes for the same user and row. With T the k-th largest
// lower bound a_j - E_j, every row of the float32 top-k has s_j >= T, so rows whose upper bound
// a_j + E_j is below T cannot be in it. The rows left (the candidates) are rescored by the
// float32 kernel itself, bit for bit as the float32 path scores them, and selected with the same
// tie rule: the result equals the float32 top-k exactly. A loose bound only makes the candidate
// set bigger (slower, still exact).
//
// The bound. Let R_j >= |x_j - x̂_j| and X_j >= |x_j| (Euclidean norms, float64 rounded up),
// g = (d + 32) * 2^-23, and |u| the user's norm. Both kernels are sequential FMA chains in index
// order: the float32 one is the contract's chain (gemm/contract.h) plus the bias add; the
// approximate one is one chain per row over the compact copy (kernels.h: dot_rows_*), then the
// int8 scale product, then the bias add. A chain of d FMAs followed by two more rounded
// operations is within γ_{d+2} = (d+2)u / (1 - (d+2)u) (u = 2^-24) of the exact value relative to
// Σ|u_i x_i| + |b_j|, and g >= γ_{d+2} for every d below 2^22 (with a factor 2 to spare for d
// below 20000). Then
//   |s_j - (u·x_j + b_j)|   <= g (|u| X_j + |b_j|)              (float32 kernel)
//   |a_j - (u·x̂_j + b_j)|  <= g (|u| (X_j + R_j) + |b_j|)      (approximate kernel)
//   |u·x̂_j - u·x_j|        <= |u| R_j                            (Cauchy–Schwarz)
// so E_j = |u| (R_j + g (2 X_j + R_j)) + 2 g |b_j|, stored per row as e_j = R_j + g (2 X_j + R_j)
// and f_j = 2 g |b_j|, and inflated by 2^-18 relative (plus a tiny absolute term) to absorb the
// float32 arithmetic that evaluates E_j and a_j ± E_j themselves.
//
// That is the float kernels' bound (every level); the quantised-user kernels of the AVX-512 level
// add terms for the user's own rounding (compressed_approx.h).
//
// Layouts. The float32 rows are read as packed panels (gemm/contract.h) or, where a caller still
// has them, row-major; the compact copy is always packed in panels (gemm/compact.h: int8 in
// groups of 4 dimensions, bf16 in pairs), and scale, err and err_bias are arrays of n floats.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "scorer.h"

namespace recscore {

enum class Precision { kF32 = 0, kInt8 = 1, kBf16 = 2 };

struct CompressedView {
  Precision precision = Precision::kF32;
  // int8 or uint16 (bf16) packed in panels (gemm/compact.h): i8_compact_elems(n, d) or
  // bf16_compact_elems(n, d) elements.
  const void* data = nullptr;
  const float* scale = nullptr;  // int8: per-row scale (x̂ = scale * q); null for bf16
  const float* err = nullptr;    // e_j (see above)
  const float* err_bias = nullptr;  // f_j, or null when there is no bias
  // Row terms of the quantised-user kernels (compressed_approx.h: compact_row_terms), or null:
  // without them every level scans with the float kernels (the same exact top-k).
  const float* cnorm = nullptr;     // cnorm_j >= |x̂_j|
};

// Derived from a compact copy, never stored in a file (compressed_approx.h).
struct CompactRowTerms {
  std::vector<float> cnorm;
};

struct Compressed {
  Precision precision = Precision::kF32;
  std::vector<int8_t> q;       // int8, packed in panels (gemm/compact.h)
  std::vector<uint16_t> h;     // bf16, packed in panels
  std::vector<float> scale, err, err_bias;
  CompactRowTerms terms;
  // The view of all of the above (row terms included).
  CompressedView view() const;
};

// [sync] Builds the compact copy (packed in panels), per-row bound terms and row terms of the
// row-major n x d matrix x (and bias, or null).
Compressed compress(const float* x, size_t n, size_t d, const float* bias, Precision p);

// What check_compressed found wrong with a row (kOk: nothing).
enum class CompressedRule {
  kOk = 0,
  kScale,      // an int8 row scale is negative or not finite
  kNonFinite,  // a bf16 value is NaN or infinite (at `column`)
  kFarther,    // the compact row is farther from x_j than |x_j| (rounding to nearest never is)
  kErr,        // the recorded e_j is below the bound terms of the actual compact row, or not finite
  kErrBias,    // the recorded f_j is below 2 g |b_j|, or not finite
};

struct CompressedFault {
  int64_t row = -1;  // -1: every row passed
  CompressedRule rule = CompressedRule::kOk;
  int64_t column = -1;   // kNonFinite
  double recorded = 0;   // kScale, kErr, kErrBias: the stored value
  double required = 0;   // kErr, kErrBias: the least value the scan's bound needs
};

// [sync, any thread] Checks a compact copy (as read from a file) against the float32 rows it
// stands for, rows [0, n), given as packed panels (panel_count(n) * panel_floats(d) floats,
// gemm/contract.h): that its bound terms cover its actual error, computed exactly as compress
// computes them (so whatever compress wrote passes), and that approximate scores stay within
// float32 range wherever float32 scores do. Returns the first row that fails (`column`: the
// dimension). The rows and bias must be finite (checked first by the caller). Padding (rows past
// n, dimensions past d) is not read.
CompressedFault check_compressed(const float* panels, size_t n, size_t d, const float* bias,
                                 const CompressedView& c);

// Batches of at least this many users may scan together (ScoreRequest::compressed_gemm).
constexpr size_t kGemmMinUsers = 16;

// [sync; caller + team helpers] The float32 top-k of req (same contract as score_topk) computed
// from the compact copy plus float32 rescoring of candidates, read from req.panels when given,
// else from req.items (the same chain, the same bits). candidates (b entries, optional) receives
// each user's candidate-set size. Implemented in compressed_scan.cc: one pass over the rows per
// user, or, with req.compressed_gemm, b >= kGemmMinUsers and the VNNI path, every user per tile
// through the int8 GEMM (the same candidates and results).
void score_topk_compressed(const ScoreRequest& req, const CompressedView& c, int32_t* out_rows,
                           float* out_scores, int32_t* candidates);

}  // namespace recscore
