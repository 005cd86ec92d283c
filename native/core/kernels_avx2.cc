// AVX2 + FMA kernels. Functions carry target attributes instead of the whole file being built
// with -mavx2, so no inline function shared with other files is ever compiled for AVX2 (which
// could otherwise be picked by the linker and run on a CPU without it).
#include "kernels.h"

#include "bf16.h"

#include <cstring>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#define RS_AVX2 __attribute__((target("avx2,fma")))
#define RS_AVX2_INLINE __attribute__((target("avx2,fma"), always_inline)) inline

namespace recscore {
namespace {

RS_AVX2_INLINE __m256i tail_mask(size_t rem) {
  alignas(32) static const int32_t m[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(m + 8 - rem));
}

RS_AVX2 size_t select_gt_avx2(const float* s, size_t n, float thr, uint32_t* idx) {
  size_t c = 0;
  size_t i = 0;
  const __m256 t = _mm256_set1_ps(thr);
  for (; i + 8 <= n; i += 8) {
    unsigned m = static_cast<unsigned>(
        _mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(s + i), t, _CMP_GT_OQ)));
    while (m) {
      idx[c++] = static_cast<uint32_t>(i) + static_cast<uint32_t>(__builtin_ctz(m));
      m &= m - 1;
    }
  }
  for (; i < n; ++i) {
    if (s[i] > thr) idx[c++] = static_cast<uint32_t>(i);
  }
  return c;
}

// exp(x) for float32 lanes (Cephes' expf: range reduction by ln 2 and a degree-5 polynomial;
// about 1 ulp). Inputs are clamped to the range where the result is a finite float.
RS_AVX2_INLINE __m256 exp256(__m256 x) {
  x = _mm256_min_ps(x, _mm256_set1_ps(88.3762626647949f));
  x = _mm256_max_ps(x, _mm256_set1_ps(-87.3365447504f));
  __m256 fx = _mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504088896341f), _mm256_set1_ps(0.5f));
  fx = _mm256_floor_ps(fx);
  x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(0.693359375f), x);
  x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(-2.12194440e-4f), x);
  __m256 y = _mm256_set1_ps(1.9875691500E-4f);
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.3981999507E-3f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(8.3334519073E-3f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(4.1665795894E-2f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.6666665459E-1f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(5.0000001201E-1f));
  y = _mm256_fmadd_ps(y, _mm256_mul_ps(x, x), _mm256_add_ps(x, _mm256_set1_ps(1.0f)));
  __m256i n = _mm256_add_epi32(_mm256_cvttps_epi32(fx), _mm256_set1_epi32(127));
  return _mm256_mul_ps(y, _mm256_castsi256_ps(_mm256_slli_epi32(n, 23)));
}

RS_AVX2_INLINE __m256 sigmoid256(__m256 x) {
  const __m256 one = _mm256_set1_ps(1.0f);
  return _mm256_div_ps(one, _mm256_add_ps(one, exp256(_mm256_sub_ps(_mm256_setzero_ps(), x))));
}

// tanh(x) = sign(x) (1 - e) / (1 + e) with e = exp(-2|x|): no overflow, no cancellation near 0
// beyond float32's own rounding.
RS_AVX2_INLINE __m256 tanh256(__m256 x) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  const __m256 one = _mm256_set1_ps(1.0f);
  __m256 ax = _mm256_andnot_ps(sign, x);
  __m256 e = exp256(_mm256_mul_ps(ax, _mm256_set1_ps(-2.0f)));
  __m256 t = _mm256_div_ps(_mm256_sub_ps(one, e), _mm256_add_ps(one, e));
  return _mm256_or_ps(t, _mm256_and_ps(sign, x));
}

// Applies F to n floats in place, 8 lanes at a time, the tail through a masked load/store.
template <__m256 (*F)(__m256)>
RS_AVX2_INLINE void apply(float* v, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(v + i, F(_mm256_loadu_ps(v + i)));
  if (i < n) {
    __m256i m = tail_mask(n - i);
    _mm256_maskstore_ps(v + i, m, F(_mm256_maskload_ps(v + i, m)));
  }
}

RS_AVX2 void sigmoid_avx2(float* v, size_t n) { apply<sigmoid256>(v, n); }

RS_AVX2 void tanh_avx2(float* v, size_t n) { apply<tanh256>(v, n); }

RS_AVX2_INLINE float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

RS_AVX2_INLINE __m256 load_i8(const int8_t* p) {
  return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
}

RS_AVX2_INLINE __m256 load_bf16(const uint16_t* p) {
  __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
}

// Four rows at a time (independent accumulators); the tail of d in scalar code.
template <typename T, __m256 (*Load)(const T*), float (*One)(T)>
RS_AVX2_INLINE void dot_rows(const float* u, const T* rows, size_t d, size_t n, float* out) {
  const size_t d8 = d & ~static_cast<size_t>(7);
  size_t j = 0;
  for (; j + 4 <= n; j += 4) {
    const T* r = rows + j * d;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t p = 0; p < d8; p += 8) {
      __m256 uv = _mm256_loadu_ps(u + p);
      a0 = _mm256_fmadd_ps(uv, Load(r + p), a0);
      a1 = _mm256_fmadd_ps(uv, Load(r + d + p), a1);
      a2 = _mm256_fmadd_ps(uv, Load(r + 2 * d + p), a2);
      a3 = _mm256_fmadd_ps(uv, Load(r + 3 * d + p), a3);
    }
    float s[4] = {hsum(a0), hsum(a1), hsum(a2), hsum(a3)};
    for (size_t p = d8; p < d; ++p) {
      for (int c = 0; c < 4; ++c) s[c] += u[p] * One(r[c * d + p]);
    }
    for (int c = 0; c < 4; ++c) out[j + c] = s[c];
  }
  for (; j < n; ++j) {
    const T* r = rows + j * d;
    __m256 a = _mm256_setzero_ps();
    for (size_t p = 0; p < d8; p += 8) a = _mm256_fmadd_ps(_mm256_loadu_ps(u + p), Load(r + p), a);
    float s = hsum(a);
    for (size_t p = d8; p < d; ++p) s += u[p] * One(r[p]);
    out[j] = s;
  }
}

inline float one_i8(int8_t v) { return static_cast<float>(v); }
RS_AVX2 void dot_rows_i8_avx2(const float* u, const int8_t* q, size_t d, size_t n, const float* scale, float* out) {
  dot_rows<int8_t, load_i8, one_i8>(u, q, d, n, out);
  for (size_t j = 0; j < n; ++j) out[j] *= scale[j];
}

RS_AVX2 void dot_rows_bf16_avx2(const float* u, const uint16_t* h, size_t d, size_t n, float* out) {
  dot_rows<uint16_t, load_bf16, from_bf16>(u, h, d, n, out);
}

}  // namespace

const Kernels kAvx2Kernels = {gemm_f32_6x16_avx2, select_gt_avx2, sigmoid_avx2, tanh_avx2,
                              dot_rows_i8_avx2, dot_rows_bf16_avx2, Isa::kAvx2};

}  // namespace recscore

#else  // not x86: the table exists so that callers link; kernels_for() never returns it.
namespace recscore {
const Kernels kAvx2Kernels = {nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, Isa::kScalar};
}
#endif
