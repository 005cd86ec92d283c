// Portable level: the contract's reference (gemm/gemm_scalar.cc) and the activations written
// operation for operation as the vector levels compute them. Built with -ffp-contract=off.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "bf16.h"
#include "gemm/compact.h"
#include "kernels.h"

namespace recscore {
namespace {

size_t select_gt_scalar(const float* s, size_t n, float thr, uint32_t* idx) {
  size_t c = 0;
  for (size_t i = 0; i < n; ++i) {
    idx[c] = static_cast<uint32_t>(i);
    c += s[i] > thr ? 1 : 0;
  }
  return c;
}

// exp, sigmoid and tanh as the AVX2 kernels compute them (kernels_avx2.cc), operation for
// operation: the same clamps, std::fma where they use FMA, the same rounded products, sums and
// quotients. Each step is one IEEE operation, so the bits match the vector lanes exactly: the
// activations are one formula at every level (docs/arithmetic.md).
float exp_contract(float x) {
  x = x < 88.3762626647949f ? x : 88.3762626647949f;  // _mm256_min_ps(x, hi)
  x = x > -87.3365447504f ? x : -87.3365447504f;      // _mm256_max_ps(x, lo)
  float fx = std::floor(std::fma(x, 1.44269504088896341f, 0.5f));
  x = std::fma(-fx, 0.693359375f, x);
  x = std::fma(-fx, -2.12194440e-4f, x);
  float y = 1.9875691500E-4f;
  y = std::fma(y, x, 1.3981999507E-3f);
  y = std::fma(y, x, 8.3334519073E-3f);
  y = std::fma(y, x, 4.1665795894E-2f);
  y = std::fma(y, x, 1.6666665459E-1f);
  y = std::fma(y, x, 5.0000001201E-1f);
  y = std::fma(y, x * x, x + 1.0f);
  const uint32_t bits = static_cast<uint32_t>(static_cast<int32_t>(fx) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return y * scale;
}

void sigmoid_scalar(float* v, size_t n) {
  for (size_t i = 0; i < n; ++i) v[i] = 1.0f / (1.0f + exp_contract(0.0f - v[i]));
}

void tanh_scalar(float* v, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    uint32_t xb;
    std::memcpy(&xb, &v[i], sizeof xb);
    const float e = exp_contract(std::fabs(v[i]) * -2.0f);
    const float t = (1.0f - e) / (1.0f + e);
    uint32_t tb;
    std::memcpy(&tb, &t, sizeof tb);
    tb |= xb & 0x80000000u;
    std::memcpy(&v[i], &tb, sizeof tb);
  }
}

// One chain per row over the packed compact copy (gemm/compact.h), in index order: element i of
// row j of the tile at (j / 16) * panel + (i / w) * 16 * w + (j % 16) * w + i % w.
void dot_rows_i8_scalar(const float* u, const int8_t* q, size_t d, size_t n, const float* scale, float* out) {
  const size_t panel = compact_panel_elems(d, kI8Width);
  for (size_t j = 0; j < n; ++j) {
    const int8_t* r = q + (j / kPanel) * panel + (j % kPanel) * kI8Width;
    float s = 0;
    for (size_t p = 0; p < d; ++p) s = std::fma(u[p], static_cast<float>(r[(p / kI8Width) * kPanel * kI8Width + p % kI8Width]), s);
    out[j] = scale[j] * s;
  }
}

void dot_rows_bf16_scalar(const float* u, const uint16_t* h, size_t d, size_t n, float* out) {
  const size_t panel = compact_panel_elems(d, kBf16Width);
  for (size_t j = 0; j < n; ++j) {
    const uint16_t* r = h + (j / kPanel) * panel + (j % kPanel) * kBf16Width;
    float s = 0;
    for (size_t p = 0; p < d; ++p) s = std::fma(u[p], from_bf16(r[(p / kBf16Width) * kPanel * kBf16Width + p % kBf16Width]), s);
    out[j] = s;
  }
}

}  // namespace

const Kernels kScalarKernels = {gemm_f32_1x1_scalar, select_gt_scalar, sigmoid_scalar, tanh_scalar,
                                dot_rows_i8_scalar, dot_rows_bf16_scalar, nullptr, nullptr, nullptr, nullptr,
                                Isa::kScalar};

}  // namespace recscore
