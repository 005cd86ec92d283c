// AVX2 + FMA kernels. Functions carry target attributes instead of the whole file being built
// with -mavx2, so no inline function shared with other files is ever compiled for AVX2 (which
// could otherwise be picked by the linker and run on a CPU without it).
#include "kernels.h"

#include <cstring>

#include "gemm/compact.h"

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

// Compact rows packed in panels (gemm/compact.h): a group is 64 bytes, 16 rows of one 32-bit lane
// each (rows 0-7 in the first ymm, 8-15 in the second), the lane holding w consecutive dimensions
// of its row. Each lane runs its row's chain, the user's element broadcast: the scalar level's
// chains exactly.
struct I8Lanes {
  static constexpr size_t w = kI8Width;
  // Dimension T of each lane: its byte T, sign-extended.
  template <int T>
  static RS_AVX2_INLINE __m256 ext(__m256i v) {
    return _mm256_cvtepi32_ps(_mm256_srai_epi32(_mm256_slli_epi32(v, 24 - 8 * T), 24));
  }
};

struct Bf16Lanes {
  static constexpr size_t w = kBf16Width;
  // Dimension T of each lane: its low (T = 0) or high (T = 1) half as the upper half of a float.
  template <int T>
  static RS_AVX2_INLINE __m256 ext(__m256i v) {
    if (T == 0) return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
    return _mm256_castsi256_ps(_mm256_and_si256(v, _mm256_set1_epi32(static_cast<int>(0xffff0000u))));
  }
};

template <typename L, size_t P, int T>
RS_AVX2_INLINE void chain_step(const __m256i* v, float ut, __m256* acc) {
  const __m256 ub = _mm256_set1_ps(ut);
  for (size_t i = 0; i < 2 * P; ++i) acc[i] = _mm256_fmadd_ps(ub, L::template ext<T>(v[i]), acc[i]);
}

template <size_t P>
RS_AVX2_INLINE void load_groups(const char* base, size_t stride, size_t g, __m256i* v) {
  for (size_t p = 0; p < P; ++p) {
    const char* at = base + p * stride + g * 64;
    v[2 * p] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(at));
    v[2 * p + 1] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(at + 32));
  }
}

// The chains of P consecutive panels (16 P rows) at base, panels `stride` bytes apart, into acc
// (2 P vectors: rows 0-7 and 8-15 of each panel).
template <typename L, size_t P>
RS_AVX2_INLINE void panel_chains(const float* u, const char* base, size_t stride, size_t d, __m256* acc) {
  for (size_t i = 0; i < 2 * P; ++i) acc[i] = _mm256_setzero_ps();
  const size_t full = d / L::w, rem = d % L::w;
  __m256i v[2 * P];
  for (size_t g = 0; g < full; ++g) {
    load_groups<P>(base, stride, g, v);
    const float* ug = u + g * L::w;
    chain_step<L, P, 0>(v, ug[0], acc);
    chain_step<L, P, 1>(v, ug[1], acc);
    if constexpr (L::w == 4) {
      chain_step<L, P, 2>(v, ug[2], acc);
      chain_step<L, P, 3>(v, ug[3], acc);
    }
  }
  if (rem) {  // the last group's dimensions below d only
    load_groups<P>(base, stride, full, v);
    const float* ug = u + full * L::w;
    chain_step<L, P, 0>(v, ug[0], acc);
    if constexpr (L::w == 4) {
      if (rem > 1) chain_step<L, P, 1>(v, ug[1], acc);
      if (rem > 2) chain_step<L, P, 2>(v, ug[2], acc);
    }
  }
}

template <size_t V>
RS_AVX2_INLINE void store_rows(const __m256* acc, const float* scale, size_t first, float* out) {
  for (size_t i = 0; i < V; ++i) {
    __m256 s = acc[i];
    if (scale) s = _mm256_mul_ps(_mm256_loadu_ps(scale + first + 8 * i), s);
    _mm256_storeu_ps(out + first + 8 * i, s);
  }
}

// out[j] = chain_j (times scale[j] when scale is given), j < n: four panels at a time, then one,
// then the partial last panel through a buffer (nothing past out[n - 1] or scale[n - 1] is touched).
template <typename L>
RS_AVX2_INLINE void dot_rows_panels(const float* u, const void* data, size_t d, size_t n, const float* scale, float* out) {
  const char* base = static_cast<const char*>(data);
  const size_t stride = 64 * compact_groups(d, L::w);
  const size_t full = n / kPanel;
  size_t q = 0;
  for (; q + 4 <= full; q += 4) {
    __m256 acc[8];
    panel_chains<L, 4>(u, base + q * stride, stride, d, acc);
    store_rows<8>(acc, scale, q * kPanel, out);
  }
  for (; q < full; ++q) {
    __m256 acc[2];
    panel_chains<L, 1>(u, base + q * stride, stride, d, acc);
    store_rows<2>(acc, scale, q * kPanel, out);
  }
  const size_t tail = n - full * kPanel;
  if (tail) {
    __m256 acc[2];
    panel_chains<L, 1>(u, base + full * stride, stride, d, acc);
    alignas(32) float buf[kPanel];
    _mm256_store_ps(buf, acc[0]);
    _mm256_store_ps(buf + 8, acc[1]);
    for (size_t r = 0; r < tail; ++r) {
      const size_t j = full * kPanel + r;
      out[j] = scale ? scale[j] * buf[r] : buf[r];
    }
  }
}

RS_AVX2 void dot_rows_i8_avx2(const float* u, const int8_t* q, size_t d, size_t n, const float* scale, float* out) {
  dot_rows_panels<I8Lanes>(u, q, d, n, scale, out);
}

RS_AVX2 void dot_rows_bf16_avx2(const float* u, const uint16_t* h, size_t d, size_t n, float* out) {
  dot_rows_panels<Bf16Lanes>(u, h, d, n, nullptr, out);
}


// The int8 kernel without VNNI (compressed_approx.h, CompactPath::kMadd): the row bytes read as
// the unsigned q + 128 (xor 0x80, in [0, 255]) against the user's signed 7-bit codes uq in
// [-63, 63], so each vpmaddubsw pair |(q0 + 128) uq0 + (q1 + 128) uq1| <= 2 * 255 * 63 = 32130 <
// 32767 never saturates; vpmaddwd against ones then adds the two pairs of each 32-bit lane (one
// row's 4 dimensions) into int32, exact. acc[2p], acc[2p + 1] = rows 0-7, 8-15 of panel p, summed
// over the groups in order (P panels in flight: 2P independent integer chains).
template <size_t P>
RS_AVX2_INLINE void u7i8_panels(const uint32_t* uq4, const char* base, size_t stride, size_t groups, __m256i* acc) {
  const __m256i ones = _mm256_set1_epi16(1), flip = _mm256_set1_epi8(static_cast<char>(0x80));
  for (size_t p = 0; p < 2 * P; ++p) acc[p] = _mm256_setzero_si256();
  for (size_t g = 0; g < groups; ++g) {
    const __m256i u = _mm256_set1_epi32(static_cast<int>(uq4[g]));
    for (size_t p = 0; p < P; ++p) {
      const char* at = base + p * stride + g * 64;
      const __m256i v0 = _mm256_xor_si256(flip, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(at)));
      const __m256i v1 = _mm256_xor_si256(flip, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(at + 32)));
      acc[2 * p] = _mm256_add_epi32(acc[2 * p], _mm256_madd_epi16(_mm256_maddubs_epi16(v0, u), ones));
      acc[2 * p + 1] = _mm256_add_epi32(acc[2 * p + 1], _mm256_madd_epi16(_mm256_maddubs_epi16(v1, u), ones));
    }
  }
}

// out[0, 8) = float(acc - corr) * (su * scale), as the VNNI kernel's store.
RS_AVX2_INLINE void u7i8_store(__m256i acc, __m256 su, __m256i corr, const float* scale, float* out) {
  const __m256i exact = _mm256_sub_epi32(acc, corr);
  const __m256 mult = _mm256_mul_ps(su, _mm256_loadu_ps(scale));
  _mm256_storeu_ps(out, _mm256_mul_ps(_mm256_cvtepi32_ps(exact), mult));
}

constexpr size_t kU7InFlight = 4;  // panels per step: 8 accumulators, no spill

RS_AVX2 void dot_rows_u7i8_avx2(const uint32_t* uq4, float su, int32_t corr, const int8_t* q, size_t d, size_t n,
                                const float* scale, float* out) {
  const char* base = reinterpret_cast<const char*>(q);
  const size_t groups = compact_groups(d, kI8Width), stride = 64 * groups;
  const __m256 suv = _mm256_set1_ps(su);
  const __m256i cv = _mm256_set1_epi32(corr);
  const size_t full = n / kPanel;
  size_t p = 0;
  for (; p + kU7InFlight <= full; p += kU7InFlight) {
    __m256i acc[2 * kU7InFlight];
    u7i8_panels<kU7InFlight>(uq4, base + p * stride, stride, groups, acc);
    for (size_t i = 0; i < 2 * kU7InFlight; ++i) {
      const size_t j = p * kPanel + 8 * i;
      u7i8_store(acc[i], suv, cv, scale + j, out + j);
    }
  }
  for (; p < full; ++p) {
    __m256i acc[2];
    u7i8_panels<1>(uq4, base + p * stride, stride, groups, acc);
    for (size_t i = 0; i < 2; ++i) {
      const size_t j = p * kPanel + 8 * i;
      u7i8_store(acc[i], suv, cv, scale + j, out + j);
    }
  }
  const size_t tail = n - full * kPanel;
  if (tail) {  // the partial last panel: its rows past n are padding; nothing past n is read or written
    __m256i acc[2];
    u7i8_panels<1>(uq4, base + full * stride, stride, groups, acc);
    alignas(32) int32_t buf[kPanel];
    _mm256_store_si256(reinterpret_cast<__m256i*>(buf), acc[0]);
    _mm256_store_si256(reinterpret_cast<__m256i*>(buf + 8), acc[1]);
    for (size_t r = 0; r < tail; ++r) {
      const size_t j = full * kPanel + r;
      const int32_t exact = buf[r] - corr;
      out[j] = static_cast<float>(exact) * (su * scale[j]);
    }
  }
}
}  // namespace

const Kernels kAvx2Kernels = {gemm_f32_6x16_avx2, select_gt_avx2, sigmoid_avx2, tanh_avx2,
                              dot_rows_i8_avx2, dot_rows_bf16_avx2, nullptr, nullptr, nullptr, dot_rows_u7i8_avx2,
                              Isa::kAvx2};

}  // namespace recscore

#else  // not x86: the table exists so that callers link; kernels_for() never returns it.
namespace recscore {
const Kernels kAvx2Kernels = {nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr,
                              Isa::kScalar};
}
#endif
