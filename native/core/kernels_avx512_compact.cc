// The quantised-user kernels of compressed scans (kernels.h, compressed_approx.h): AVX-512 VNNI
// (vpdpbusd) over int8 panels and AVX512_BF16 (vdpbf16ps) over bf16 panels (gemm/compact.h).
// A panel group is one zmm: 16 rows, one 32-bit lane each, holding 4 (int8) or 2 (bf16)
// consecutive dimensions of its row; the user's 4 bytes or 2 bfloat16 of that group are
// broadcast to every lane. Several panels go together (one accumulator each) so that the
// instructions' latency overlaps; the last, partial panel of a tile uses lane masks. The int8 GEMM
// (batched compressed scans) tiles 6 users x 4 panels and computes the same values, bit for bit,
// as the one-user kernel (the same exact int32 sums, the same two float32 products).
#include "kernels.h"

#include "gemm/compact.h"
#include "platform/target.h"

#if RS_X86
#include <immintrin.h>

namespace recscore {
namespace {

constexpr size_t kInFlight = 2;       // int8: panels per step (each with kSplit partial sums)
constexpr size_t kBf16InFlight = 2;  // bf16: panels per step (each with kSplit partial sums)

inline __mmask16 lanes(size_t valid) {
  return static_cast<__mmask16>(valid >= kPanel ? 0xffffu : ((1u << valid) - 1u));
}

// acc + the 4-byte dot products of u (unsigned) and v (signed), as _mm512_dpbusd_epi32. Written as
// inline asm for the GEMM tile: GCC 12 allocates the builtin's tied operand with a copy and a
// stack spill per instruction once 24 accumulators are live (measured 0.87 ns per instruction
// against 0.48 here, on Zen 4).
RS_INLINE_AVX512_VNNI __m512i dpbusd(__m512i acc, __m512i u, __m512i v) {
  __asm__("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(u), "v"(v));
  return acc;
}

// The row bytes as vpdpbusd's unsigned operand: q xor 0x80 = q + 128 (the user's codes are the
// signed operand; the kernels subtract corr = 128 sum uq at the end).
RS_INLINE_AVX512_VNNI __m512i biased(const char* at) {
  return _mm512_xor_si512(_mm512_loadu_si512(at), _mm512_set1_epi8(static_cast<char>(0x80)));
}

// acc[p] = sum over the groups of panel p of (q + 128) . uq, exact int32 (the caller bounds d). Integer
// sums are exact in any order: each panel's groups go round-robin into kSplit partial sums (so
// the instructions' latency overlaps while the panel is read front to back, one stream for the
// prefetcher), added at the end.
constexpr size_t kSplit = 4;
template <size_t P>
RS_INLINE_AVX512_VNNI void u8i8_panels(const uint32_t* uq4, const char* base, size_t stride, size_t groups,
                                       __m512i* acc) {
  for (size_t p = 0; p < P; ++p) {
    const char* panel = base + p * stride;
    __m512i part[kSplit];
    for (size_t s = 0; s < kSplit; ++s) part[s] = _mm512_setzero_si512();
    size_t g = 0;
    for (; g + kSplit <= groups; g += kSplit) {
      for (size_t s = 0; s < kSplit; ++s) {
        part[s] = dpbusd(part[s], biased(panel + (g + s) * 64), _mm512_set1_epi32(static_cast<int>(uq4[g + s])));
      }
    }
    for (; g < groups; ++g) part[0] = dpbusd(part[0], biased(panel + g * 64), _mm512_set1_epi32(static_cast<int>(uq4[g])));
    acc[p] = _mm512_add_epi32(_mm512_add_epi32(part[0], part[1]), _mm512_add_epi32(part[2], part[3]));
  }
}

// out = float(acc - corr) * (su * scale) for the rows of mask m.
RS_INLINE_AVX512_VNNI void u8i8_store(__m512i acc, __m512 su, __m512i corr, const float* scale, __mmask16 m,
                                      float* out) {
  // (The zero-masked forms: GCC 12's unmasked conversion reads an "undefined" vector.)
  const __m512i exact = _mm512_maskz_sub_epi32(m, acc, corr);
  const __m512 mult = _mm512_mul_ps(su, _mm512_maskz_loadu_ps(m, scale));
  _mm512_mask_storeu_ps(out, m, _mm512_mul_ps(_mm512_maskz_cvtepi32_ps(m, exact), mult));
}

// acc[p] = panel p's dot products: its groups go round-robin into kSplit vdpbf16ps chains (so the
// instructions' latency overlaps while the panel is read front to back), added at the end; an odd
// d's last group has the row's second half masked to zero (padding may hold anything, even NaN).
// Any grouping of the float32 sums is inside the bound (docs/arithmetic.md: at most d + 2
// roundings on any product's path, the same flushes per instruction).
template <size_t P>
RS_INLINE_AVX512_BF16 void bf16_panels(const uint32_t* pairs, const char* base, size_t stride, size_t d,
                                       __m512* acc) {
  const size_t full = d / 2;
  for (size_t p = 0; p < P; ++p) {
    const char* panel = base + p * stride;
    __m512 part[kSplit];
    for (size_t s = 0; s < kSplit; ++s) part[s] = _mm512_setzero_ps();
    size_t g = 0;
    for (; g + kSplit <= full; g += kSplit) {
      for (size_t s = 0; s < kSplit; ++s) {
        const __m512bh u = (__m512bh)_mm512_set1_epi32(static_cast<int>(pairs[g + s]));
        part[s] = _mm512_dpbf16_ps(part[s], u, (__m512bh)_mm512_loadu_si512(panel + (g + s) * 64));
      }
    }
    for (; g < full; ++g) {
      const __m512bh u = (__m512bh)_mm512_set1_epi32(static_cast<int>(pairs[g]));
      part[g % kSplit] = _mm512_dpbf16_ps(part[g % kSplit], u, (__m512bh)_mm512_loadu_si512(panel + g * 64));
    }
    if (d % 2) {
      const __m512bh u = (__m512bh)_mm512_set1_epi32(static_cast<int>(pairs[full]));
      const __m512i v = _mm512_and_si512(_mm512_set1_epi32(0xffff), _mm512_loadu_si512(panel + full * 64));
      part[full % kSplit] = _mm512_dpbf16_ps(part[full % kSplit], u, (__m512bh)v);
    }
    acc[p] = _mm512_add_ps(_mm512_add_ps(part[0], part[1]), _mm512_add_ps(part[2], part[3]));
  }
}

}  // namespace

RS_TARGET_AVX512_VNNI void dot_rows_u8i8_avx512vnni(const uint32_t* uq4, float su, int32_t corr, const int8_t* q,
                                                    size_t d, size_t n, const float* scale, float* out) {
  const char* base = reinterpret_cast<const char*>(q);
  const size_t groups = compact_groups(d, kI8Width), stride = 64 * groups;
  const __m512 suv = _mm512_set1_ps(su);
  const __m512i cv = _mm512_set1_epi32(corr);
  const size_t panels = panel_count(n);
  size_t p = 0;
  for (; p + kInFlight <= n / kPanel; p += kInFlight) {
    __m512i acc[kInFlight];
    u8i8_panels<kInFlight>(uq4, base + p * stride, stride, groups, acc);
    for (size_t i = 0; i < kInFlight; ++i) {
      const size_t j = (p + i) * kPanel;
      u8i8_store(acc[i], suv, cv, scale + j, 0xffff, out + j);
    }
  }
  for (; p < panels; ++p) {
    __m512i acc[1];
    u8i8_panels<1>(uq4, base + p * stride, stride, groups, acc);
    const size_t j = p * kPanel;
    u8i8_store(acc[0], suv, cv, scale + j, lanes(n - j), out + j);
  }
}

namespace {

// MR users x NP panels: MR * NP accumulators, the NP panel groups loaded (and biased) once per
// group for all MR users (each user's 4 bytes broadcast). Users are ldu words apart in uq4.
template <size_t MR, size_t NP>
RS_INLINE_AVX512_VNNI void u8i8_tile(const uint32_t* uq4, size_t ldu, const float* su, const int32_t* corr,
                                     const char* base, size_t stride, size_t groups, const float* scale,
                                     size_t first, size_t n, float* out, size_t ldo) {
  __m512i acc[MR][NP];
  for (size_t r = 0; r < MR; ++r) {
    for (size_t p = 0; p < NP; ++p) acc[r][p] = _mm512_setzero_si512();
  }
  for (size_t g = 0; g < groups; ++g) {
    __m512i v[NP];
    for (size_t p = 0; p < NP; ++p) v[p] = biased(base + p * stride + g * 64);
    for (size_t r = 0; r < MR; ++r) {
      const __m512i u = _mm512_set1_epi32(static_cast<int>(uq4[r * ldu + g]));
      for (size_t p = 0; p < NP; ++p) acc[r][p] = dpbusd(acc[r][p], v[p], u);
    }
  }
  for (size_t p = 0; p < NP; ++p) {
    const size_t j = first + p * kPanel;
    const __mmask16 m = lanes(n - j);
    for (size_t r = 0; r < MR; ++r) {
      u8i8_store(acc[r][p], _mm512_set1_ps(su[r]), _mm512_set1_epi32(corr[r]), scale + j, m, out + r * ldo + j);
    }
  }
}

constexpr size_t kGemmUsers = 6;  // MR: 6 x 4 = 24 accumulators, 4 panel loads, one broadcast

template <size_t MR>
RS_INLINE_AVX512_VNNI void u8i8_users(const uint32_t* uq4, size_t ldu, const float* su, const int32_t* corr,
                                      const char* base, size_t stride, size_t groups, const float* scale, size_t n,
                                      float* out, size_t ldo) {
  const size_t panels = panel_count(n);
  size_t p = 0;
  for (; p + 4 <= panels; p += 4) {
    u8i8_tile<MR, 4>(uq4, ldu, su, corr, base + p * stride, stride, groups, scale, p * kPanel, n, out, ldo);
  }
  for (; p < panels; ++p) {
    u8i8_tile<MR, 1>(uq4, ldu, su, corr, base + p * stride, stride, groups, scale, p * kPanel, n, out, ldo);
  }
}

}  // namespace

RS_TARGET_AVX512_VNNI void gemm_u8i8_avx512vnni(const uint32_t* uq4, size_t ldu, const float* su, const int32_t* corr,
                                                size_t m, const int8_t* q, size_t d, size_t n, const float* scale,
                                                float* out, size_t ldo) {
  const char* base = reinterpret_cast<const char*>(q);
  const size_t groups = compact_groups(d, kI8Width), stride = 64 * groups;
  for (size_t u = 0; u < m; u += kGemmUsers) {
    const uint32_t* ub = uq4 + u * ldu;
    float* o = out + u * ldo;
    switch (m - u < kGemmUsers ? m - u : kGemmUsers) {
      case 6: u8i8_users<6>(ub, ldu, su + u, corr + u, base, stride, groups, scale, n, o, ldo); break;
      case 5: u8i8_users<5>(ub, ldu, su + u, corr + u, base, stride, groups, scale, n, o, ldo); break;
      case 4: u8i8_users<4>(ub, ldu, su + u, corr + u, base, stride, groups, scale, n, o, ldo); break;
      case 3: u8i8_users<3>(ub, ldu, su + u, corr + u, base, stride, groups, scale, n, o, ldo); break;
      case 2: u8i8_users<2>(ub, ldu, su + u, corr + u, base, stride, groups, scale, n, o, ldo); break;
      default: u8i8_users<1>(ub, ldu, su + u, corr + u, base, stride, groups, scale, n, o, ldo); break;
    }
  }
}

RS_TARGET_AVX512_BF16 void dot_rows_bf16_pairs_avx512bf16(const uint32_t* pairs, const uint16_t* h, size_t d,
                                                          size_t n, float* out) {
  const char* base = reinterpret_cast<const char*>(h);
  const size_t stride = 64 * compact_groups(d, kBf16Width);
  const size_t panels = panel_count(n);
  size_t p = 0;
  for (; p + kBf16InFlight <= n / kPanel; p += kBf16InFlight) {
    __m512 acc[kBf16InFlight];
    bf16_panels<kBf16InFlight>(pairs, base + p * stride, stride, d, acc);
    for (size_t i = 0; i < kBf16InFlight; ++i) _mm512_storeu_ps(out + (p + i) * kPanel, acc[i]);
  }
  for (; p < panels; ++p) {
    __m512 acc[1];
    bf16_panels<1>(pairs, base + p * stride, stride, d, acc);
    _mm512_mask_storeu_ps(out + p * kPanel, lanes(n - p * kPanel), acc[0]);
  }
}

}  // namespace recscore

#else  // not x86: never in a table (kernels_for gives them only with the CPU features).
namespace recscore {
void dot_rows_u8i8_avx512vnni(const uint32_t*, float, int32_t, const int8_t*, size_t, size_t, const float*, float*) {}
void dot_rows_bf16_pairs_avx512bf16(const uint32_t*, const uint16_t*, size_t, size_t, float*) {}
void gemm_u8i8_avx512vnni(const uint32_t*, size_t, const float*, const int32_t*, size_t, const int8_t*, size_t, size_t,
                          const float*, float*, size_t) {}
}  // namespace recscore
#endif
