#include "compressed_select.h"

#include <cmath>

#include "platform/target.h"

#if RS_X86
#include <immintrin.h>
#endif

namespace recscore {

#if RS_X86
namespace {

// One 16-row vector: the approximate score with the bias, its bound (approx_bounds' terms, here
// with FMAs: fewer roundings of the same non-negative terms, inside the same margin), then lower
// and upper, a non-finite score or bound bounding nothing (-inf, +inf); the lanes whose lower
// bound beats t, and those whose upper bound reaches it, are compress-stored.
template <bool kBias, bool kQuant>
RS_INLINE_AVX512 void select16(const SelectTerms& s, size_t i, __mmask16 m, __m512 t, SelectHits& h) {
  __m512 a = _mm512_maskz_loadu_ps(m, s.approx + i);
  __m512 v = _mm512_setzero_ps();
  if (kQuant) v = _mm512_fmadd_ps(_mm512_set1_ps(s.du), _mm512_maskz_loadu_ps(m, s.cnorm + i), _mm512_set1_ps(s.cu));
  if (kBias) {
    const __m512 b = _mm512_maskz_loadu_ps(m, s.bias + i);
    v = _mm512_fmadd_ps(_mm512_set1_ps(s.gb), _mm512_andnot_ps(_mm512_set1_ps(-0.0f), b), v);
    a = _mm512_add_ps(a, b);
  }
  v = _mm512_fmadd_ps(_mm512_set1_ps(s.nu), _mm512_maskz_loadu_ps(m, s.err + i), v);
  const __m512 e = _mm512_fmadd_ps(v, _mm512_set1_ps(kSelectMargin), _mm512_set1_ps(kSelectSlack));
  const __m512 inf = _mm512_set1_ps(INFINITY);
  // The common case first: no lane's a + e reaches t (NLT: a NaN sum counts as reaching it) and no
  // a is -inf (a row that bounds nothing): then no lower bound beats t either.
  const __mmask16 any = _mm512_mask_cmp_ps_mask(m, _mm512_add_ps(a, e), t, _CMP_NLT_UQ) |
                        _mm512_mask_cmp_ps_mask(m, a, _mm512_sub_ps(_mm512_setzero_ps(), inf), _CMP_EQ_OQ);
  if (!any) return;
  // Finite: x * 0 is ordered (not NaN) exactly when x is finite.
  const __m512 zero = _mm512_setzero_ps();
  const __mmask16 known = _mm512_cmp_ps_mask(_mm512_mul_ps(a, zero), _mm512_mul_ps(e, zero), _CMP_ORD_Q);
  const __m512 lo = _mm512_mask_sub_ps(_mm512_sub_ps(zero, inf), known, a, e);
  const __m512 hi = _mm512_mask_add_ps(inf, known, a, e);
  const __mmask16 mlo = _mm512_mask_cmp_ps_mask(m, lo, t, _CMP_GT_OQ);
  const __mmask16 mhi = _mm512_mask_cmp_ps_mask(m, hi, t, _CMP_GE_OQ);
  if (mlo) {
    const __m512i idx = _mm512_add_epi32(_mm512_set1_epi32(static_cast<int>(i)),
                                         _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
    _mm512_mask_compressstoreu_epi32(h.lo_idx + h.nlo, mlo, idx);
    _mm512_mask_compressstoreu_ps(h.lo_val + h.nlo, mlo, lo);
    h.nlo += static_cast<size_t>(__builtin_popcount(mlo));
  }
  if (mhi) {
    const __m512i idx = _mm512_add_epi32(_mm512_set1_epi32(static_cast<int>(i)),
                                         _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
    _mm512_mask_compressstoreu_epi32(h.hi_idx + h.nhi, mhi, idx);
    _mm512_mask_compressstoreu_ps(h.hi_val + h.nhi, mhi, hi);
    h.nhi += static_cast<size_t>(__builtin_popcount(mhi));
  }
}

template <bool kBias, bool kQuant>
RS_TARGET_AVX512 void select_loop(const SelectTerms& s, size_t nt, float t, SelectHits& h) {
  const __m512 tv = _mm512_set1_ps(t);
  size_t i = 0;
  for (; i + 16 <= nt; i += 16) select16<kBias, kQuant>(s, i, 0xffff, tv, h);
  if (i < nt) select16<kBias, kQuant>(s, i, static_cast<__mmask16>((1u << (nt - i)) - 1u), tv, h);
}

}  // namespace

bool bound_select_avx512(const SelectTerms& s, size_t nt, float t, SelectHits& h) {
  h.nlo = h.nhi = 0;
  if (s.bias) {
    s.cnorm ? select_loop<true, true>(s, nt, t, h) : select_loop<true, false>(s, nt, t, h);
  } else {
    s.cnorm ? select_loop<false, true>(s, nt, t, h) : select_loop<false, false>(s, nt, t, h);
  }
  return true;
}
#else
bool bound_select_avx512(const SelectTerms&, size_t, float, SelectHits&) { return false; }
#endif

}  // namespace recscore
