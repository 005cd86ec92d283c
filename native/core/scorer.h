// Exact fused maximum-inner-product top-k over an item matrix.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "cpu.h"
#include "thread_team.h"

namespace recscore {

// Everything one scoring call reads. Pointers are borrowed; the caller keeps them alive and
// unchanged for the duration of the call.
struct ScoreRequest {
  const float* items = nullptr;  // n x d, row-major; may be null when panels are given
  size_t n = 0;
  size_t d = 0;
  const float* bias = nullptr;   // n entries, or null
  // The items packed in panels (gemm/contract.h: panel_count(n) panels of panel_floats(d)), or
  // null: then each tile is packed on the fly from items. One of the two must be given; with
  // panels, items is never read.
  const float* panels = nullptr;
  const float* users = nullptr;  // b x d, row-major
  size_t b = 0;
  size_t k = 0;  // per-user results wanted, 1..n (callers clamp k > n to n)
  // Per-user exclusions: rows excl_rows[excl_offsets[u] .. excl_offsets[u+1]), sorted ascending
  // (duplicates allowed). Both null when there are none.
  const int32_t* excl_offsets = nullptr;
  const int32_t* excl_rows = nullptr;
  // Eligibility bitset over rows (bit j of word j/64), or null when every row is eligible.
  const uint64_t* eligible = nullptr;
  int threads = 1;             // members of `team` to use (1: the caller alone)
  ThreadTeam* team = nullptr;  // helpers for threads > 1; null: the caller alone
  Isa isa = Isa::kAvx2;
  // Compressed scans (score_topk_compressed) only: a batch of kGemmMinUsers users or more on the
  // VNNI path (int8, AVX-512 VNNI) computes its approximate scores through the int8 GEMM, every
  // user at once per tile of rows, instead of one pass over the rows per user. The same
  // approximate scores, bounds and results either way.
  bool compressed_gemm = false;
};

// [sync; the caller works, and up to req.threads - 1 helpers of req.team join while it does]
// Writes b x k results, best first (score descending, then row ascending); positions that no
// eligible row fills get row -1 and score -Infinity. Scores are computed tile by tile and fed
// into per-user selection; no b x n matrix is ever formed. Extra memory is
// O(threads * (b * k + tile)). Throws OutOfRange / InvalidArgument on inconsistent sizes.
void score_topk(const ScoreRequest& req, int32_t* out_rows, float* out_scores);

// [sync] Builds the eligibility bitset of n rows from an optional allow-list of rows and an
// optional attribute filter: a row is eligible when it is in the allow-list (if use_allow; an
// empty allow-list allows nothing)
// and its attribute word a satisfies (a & all) == all, (any == 0 || (a & any) != 0) and
// (a & none) == 0 (if attributes are given). Throws OutOfRange for allow rows outside [0, n).
std::vector<uint64_t> build_eligibility(size_t n, bool use_allow, const int32_t* allow,
                                        size_t allow_count, const uint32_t* attributes, uint32_t all,
                                        uint32_t any, uint32_t none);

// [sync] Sorts each user's exclusion segment in place and checks rows are in [0, n).
// Throws OutOfRange naming the user and the row.
void prepare_exclusions(const int32_t* offsets, int32_t* rows, size_t b, size_t n);

}  // namespace recscore
