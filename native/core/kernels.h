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
  // [sync, any thread] The quantised-user kernels of compressed scans (compressed_approx.h), null
  // where the level or the CPU lacks them (the AVX-512 table has them with VNNI / AVX512_BF16).
  // Same panels and rows as above. Their values differ from dot_rows_*'s; the bound covers each.
  //   int8: uq4 holds ceil(d / 4) words of 4 signed user codes (dimension 4g + t in byte t,
  //   uq in [-127, 127], bytes past d zero); each row byte is read as the unsigned q + 128 (xor
  //   0x80), so the instruction sums (q + 128) uq and corr = 128 sum_i uq_i takes the offset
  //   back: I_j = sum_i uq_i q_ji, exact in int32 (vpdpbusd; d <= kVnniMaxDim); out[j] =
  //   float(I_j) * (su * scale[j]). No per-row term is read but the scale.
  void (*dot_rows_u8i8)(const uint32_t* uq4, float su, int32_t corr, const int8_t* q, size_t d, size_t n,
                        const float* scale, float* out);
  //   bf16: pairs holds ceil(d / 2) words, the user's bfloat16 of dimensions 2g (low half) and
  //   2g + 1 (high half; zero past d); out[j] = one vdpbf16ps chain over the groups in order
  //   (the row's half past d, odd d, is masked to zero: padding is never used).
  void (*dot_rows_bf16_pairs)(const uint32_t* pairs, const uint16_t* h, size_t d, size_t n, float* out);
  //   int8, m users at once (batched scans): out[u * ldo + j] = dot_rows_u8i8's value for user u
  //   (operand uq4 + u * ldu, scale su[u], correction corr[u]), bit for bit.
  void (*gemm_u8i8)(const uint32_t* uq4, size_t ldu, const float* su, const int32_t* corr, size_t m, const int8_t* q,
                    size_t d, size_t n, const float* scale, float* out, size_t ldo);
  //   int8 without VNNI (the AVX2 table, so AVX2 and AVX-512 without VNNI; vpmaddubsw +
  //   vpmaddwd): as dot_rows_u8i8 but with 7-bit user codes, uq in [-63, 63], so no vpmaddubsw
  //   pair (q + 128) uq saturates (|pair| <= 2 * 255 * 63 = 32130 < 32767); I_j exact in int32
  //   (d <= kVnniMaxDim); out[j] = float(I_j) * (su * scale[j]).
  void (*dot_rows_u7i8)(const uint32_t* uq4, float su, int32_t corr, const int8_t* q, size_t d, size_t n,
                        const float* scale, float* out);
  Isa isa;
};

// [sync, any thread] The kernel table of a level; a level this CPU does not run gives the highest
// one it does (callers validate the level first when they need to know).
const Kernels& kernels_for(Level level);

// Implementations, one per file (the AVX-512 table is the AVX2 one with its own GEMM).
extern const Kernels kScalarKernels;
extern const Kernels kAvx2Kernels;
// kernels_avx512_compact.cc: AVX-512 VNNI and AVX512_BF16 (kernels_for puts them in the AVX-512
// table when cpu_features() has them).
void dot_rows_u8i8_avx512vnni(const uint32_t* uq4, float su, int32_t corr, const int8_t* q, size_t d, size_t n,
                              const float* scale, float* out);
void dot_rows_bf16_pairs_avx512bf16(const uint32_t* pairs, const uint16_t* h, size_t d, size_t n, float* out);
void gemm_u8i8_avx512vnni(const uint32_t* uq4, size_t ldu, const float* su, const int32_t* corr, size_t m,
                          const int8_t* q, size_t d, size_t n, const float* scale, float* out, size_t ldo);

}  // namespace recscore
