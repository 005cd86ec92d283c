// Approximate scores of compressed scans and the bounds on their distance to the float32 scores,
// for each kernel path (docs/arithmetic.md, "Compressed scans", has the derivations):
//
//   kFloat    the user in float32, one FMA chain per row over the compact copy (dot_rows_i8 /
//             dot_rows_bf16, every level). E_j = |u| e_j + f_j (compressed.h).
//   kVnni     int8 catalogues at the AVX-512 level with VNNI: the user quantised to int8 codes
//             uq = round(u / su), su = max|u_i| / 127, û = su uq; I_j = uq . q_j exact in int32
//             (vpdpbusd of the row bytes read as q + 128 against uq, minus the user's constant
//             128 sum uq: no per-row term); a_j = float(I_j) * (su * scale_j) + b_j.
//   kMadd     int8 catalogues without VNNI (the AVX2 level, and AVX-512 on a CPU without VNNI):
//             as kVnni with 7-bit user codes, uq in [-63, 63], su = max|u_i| / 63, I_j exact in
//             int32 (vpmaddubsw of q + 128 against uq, which never saturates, then vpmaddwd; minus
//             128 sum uq); the same float32 arithmetic, so the same bound with its coarser Δ.
//   kBf16Dot  bf16 catalogues at the AVX-512 level with AVX512_BF16: û = the user rounded to
//             bfloat16 (to nearest even, finite, subnormals zero); vdpbf16ps chains.
//
// For the quantised paths, with Δ >= |û - u| and cnorm_j >= |x̂_j| (the compact row's norm):
//   E'_j = |u| e_j + f_j + (1 + g) Δ cnorm_j + c_u,
// where c_u is an absolute term: (d + 1) 2^-136 for kVnni and kMadd (products that underflow), and
// (|û|_1 + 2 (d + 1)) (1 + g) 2^-126 for kBf16Dot (vdpbf16ps reads subnormal inputs as zero and
// flushes subnormal results). Every bound is then inflated by 2^-18 relative and 1e-30 absolute,
// as the float path's is, for the float32 arithmetic that evaluates it.
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "compressed.h"
#include "kernels.h"
#include "scorer.h"

namespace recscore {

enum class CompactPath { kFloat = 0, kVnni = 1, kBf16Dot = 2, kMadd = 3 };

// "float", "vnni", "bf16dot", "madd".
const char* compact_path_name(CompactPath p);

// The largest d the VNNI and madd paths take: |sum_i ub_i q_ji| <= d * 255 * 127 < 2^31, so the
// int32 accumulator never wraps (65536 * 32385 = 2122383360 < 2147483648; madd: ub <= 127).
constexpr size_t kVnniMaxDim = 65536;

// Rounding up, for bound terms computed in float64: v (1 + 1e-12) covers a few float64 roundings;
// upf rounds a float64 up to a float.
inline double bound_up(double v) { return v * (1 + 1e-12) + 1e-300; }
inline float bound_upf(double v) { return std::nextafter(static_cast<float>(v), INFINITY); }
// A float64 sum of n non-negative terms, in any order, is within (n - 1) 2^-53 of the exact sum.
inline double bound_up_sum(double s, size_t n) { return s * (1 + (static_cast<double>(n) + 4) * 0x1p-52); }
// g = (d + 32) 2^-23 >= γ_{d+2}: a chain of d roundings plus two more (compressed.h).
inline double bound_g(size_t d) { return (static_cast<double>(d) + 32) * 0x1p-23; }

// [sync, any thread] The path a scan at `level` takes over c (d dimensions): kVnni / kBf16Dot
// when the level's kernel table has the kernel (kernels_for: AVX-512 with VNNI / AVX512_BF16),
// else kMadd for int8 at the AVX2 and AVX-512 levels, when c carries the row terms the path
// needs (cnorm); otherwise kFloat. The scalar level always takes kFloat.
CompactPath compact_path(Level level, const CompressedView& c, size_t d);

// [sync, any thread] Whether a scan at `level` over a copy of precision p and d dimensions would
// use row terms (so that a catalogue computes them, once, only where they serve).
bool compact_terms_used(Level level, Precision p, size_t d);

// [sync, any thread] The row terms of rows [0, n) of c (read from the packed compact copy; the
// padding is not read): cnorm_j >= |x̂_j| (float64 from the codes, rounded up to a float; int8:
// scale_j sqrt(sum q²)).
CompactRowTerms compact_row_terms(const CompressedView& c, size_t n, size_t d);

// One user, prepared for approx_tile: its norm bound and, on the quantised paths, its operand.
struct ApproxUser {
  CompactPath path = CompactPath::kFloat;
  const float* user = nullptr;
  float nu = 0;  // >= |u|
  float su = 0;  // kVnni, kMadd: the user's scale
  float du = 0;  // >= (1 + g) |û - u|
  float cu = 0;  // the absolute term c_u
  float gb = 0;  // >= 2 g (1 + 2^-20): f_j is taken as fl(gb |b_j|) (approx_bounds)
  int32_t corr = 0;  // kVnni, kMadd: 128 sum uq_i (the kernels read row bytes as q + 128)
  std::vector<uint32_t> op;  // kVnni, kMadd: ceil(d/4) words of signed codes; kBf16Dot: ceil(d/2) pairs
};

// [sync, any thread] Prepares user u (d floats) for scans at kernels k over c. A user with a
// non-finite element takes kFloat (its bounds are then not finite: every row stays a candidate).
void prepare_user(const Kernels& k, const CompressedView& c, size_t d, const float* u, ApproxUser& au);

// [sync, any thread] For rows [t0, t0 + nt) (t0 a multiple of kPanel): approx[i] = a_{t0+i}, the
// approximate score with the bias added (bias: n floats, or null), and err[i] >= |s - a| for the
// row's float32 score s, the inflation included (not finite where it bounds nothing).
void approx_tile(const Kernels& k, const ApproxUser& au, const CompressedView& c, const float* bias, size_t d,
                 size_t t0, size_t nt, float* approx, float* err);

// [sync, any thread] The two halves of approx_tile: the kernel's scores (no bias) into approx, then
// the bias added and the bounds into err (approx holding the kernel's scores for rows [t0, t0+nt):
// the batched scan gets them from the int8 GEMM, bit for bit the same).
void approx_scores(const Kernels& k, const ApproxUser& au, const CompressedView& c, size_t d, size_t t0, size_t nt,
                   float* approx);
void approx_bounds(const ApproxUser& au, const CompressedView& c, const float* bias, size_t t0, size_t nt,
                   float* approx, float* err);

// [sync] Tests and diagnostics: approx_tile over every row of r for user `user` (r.users row,
// r.isa's kernels), into approx and err (r.n floats each). Returns the path taken.
CompactPath compressed_approx(const ScoreRequest& r, const CompressedView& c, size_t user, float* approx, float* err);

}  // namespace recscore
