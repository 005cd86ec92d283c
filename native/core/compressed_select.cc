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
RS_INLINE_AVX512 __m512 bound16(const SelectTerms& s, __m512 e, __m512 cn, __m512 absb) {
  __m512 v = _mm512_setzero_ps();
  if (kQuant) v = _mm512_fmadd_ps(_mm512_set1_ps(s.du), cn, _mm512_set1_ps(s.cu));
  if (kBias) v = _mm512_fmadd_ps(_mm512_set1_ps(s.gb), absb, v);
  v = _mm512_fmadd_ps(_mm512_set1_ps(s.nu), e, v);
  return _mm512_fmadd_ps(v, _mm512_set1_ps(kSelectMargin), _mm512_set1_ps(kSelectSlack));
}

// Appends the lanes of mask `hits` (rows i + lane) and their values to idx/val at n.
RS_INLINE_AVX512 void store_hits(__mmask16 hits, size_t i, __m512 v, uint32_t* idx, float* val, size_t& n) {
  if (!hits) return;
  const __m512i rows = _mm512_add_epi32(_mm512_set1_epi32(static_cast<int>(i)),
                                        _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
  _mm512_mask_compressstoreu_epi32(idx + n, hits, rows);
  _mm512_mask_compressstoreu_ps(val + n, hits, v);
  n += static_cast<size_t>(__builtin_popcount(hits));
}

template <bool kBias, bool kQuant, bool kLoose>
RS_INLINE_AVX512 void select16(const SelectTerms& s, size_t i, __mmask16 m, __m512 t, __m512 emax, SelectHits& h) {
  __m512 a = _mm512_maskz_loadu_ps(m, s.approx + i);
  if (kLoose) {
    // a + b + emax >= every row's a + b + e (NLT: NaN passes); a -inf score bounds nothing.
    const __m512 ab = kBias ? _mm512_add_ps(a, _mm512_maskz_loadu_ps(m, s.bias + i)) : a;
    const __mmask16 pass = _mm512_mask_cmp_ps_mask(m, _mm512_add_ps(ab, emax), t, _CMP_NLT_UQ) |
                           _mm512_mask_cmp_ps_mask(m, ab, _mm512_set1_ps(-INFINITY), _CMP_EQ_OQ);
    if (!pass) return;
  }
  __m512 absb = _mm512_setzero_ps(), cn = _mm512_setzero_ps();
  if (kQuant) cn = _mm512_maskz_loadu_ps(m, s.cnorm + i);
  if (kBias) {
    const __m512 b = _mm512_maskz_loadu_ps(m, s.bias + i);
    absb = _mm512_andnot_ps(_mm512_set1_ps(-0.0f), b);
    a = _mm512_add_ps(a, b);
  }
  const __m512 e = bound16<kBias, kQuant>(s, _mm512_maskz_loadu_ps(m, s.err + i), cn, absb);
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
  store_hits(mlo, i, lo, h.lo_idx, h.lo_val, h.nlo);
  store_hits(mhi, i, hi, h.hi_idx, h.hi_val, h.nhi);
}

template <bool kBias, bool kQuant, bool kLoose>
RS_TARGET_AVX512 void select_rows(const SelectTerms& s, size_t nt, float t, SelectHits& h) {
  const __m512 tv = _mm512_set1_ps(t);
  const __m512 emax = bound16<kBias, kQuant>(s, _mm512_set1_ps(s.err_max), _mm512_set1_ps(s.cnorm_max),
                                             _mm512_set1_ps(s.bias_max));
  size_t i = 0;
  for (; i + 16 <= nt; i += 16) select16<kBias, kQuant, kLoose>(s, i, 0xffff, tv, emax, h);
  if (i < nt) select16<kBias, kQuant, kLoose>(s, i, static_cast<__mmask16>((1u << (nt - i)) - 1u), tv, emax, h);
}

template <bool kBias, bool kQuant>
void select_loop(const SelectTerms& s, size_t nt, float t, SelectHits& h) {
  s.loose ? select_rows<kBias, kQuant, true>(s, nt, t, h) : select_rows<kBias, kQuant, false>(s, nt, t, h);
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

void tile_maxima(const float* err, const float* cnorm, const float* bias, size_t nt, SelectTerms& s) {
  float e = 0, c = 0, b = 0;
  for (size_t i = 0; i < nt; ++i) {
    // A NaN, once seen, stays (x > NaN is false): the loose test then passes every vector.
    auto up = [](float m, float v) { return v > m || v != v ? v : m; };
    e = up(e, err[i]);
    if (cnorm) c = up(c, cnorm[i]);
    if (bias) b = up(b, std::fabs(bias[i]));
  }
  s.err_max = e;
  s.cnorm_max = c;
  s.bias_max = b;
  s.loose = true;
}

}  // namespace recscore
