// Portable fallback. Mirrors the AVX2 kernel's arithmetic structure (8 lanes, same reduction
// tree) without fused multiply-add; built with -ffp-contract=off so the compiler keeps it so.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "bf16.h"
#include "kernels.h"

namespace recscore {
namespace {

float dot_scalar(const float* u, const float* x, size_t d) {
  float lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  size_t p = 0;
  for (; p + 8 <= d; p += 8) {
    for (int l = 0; l < 8; ++l) lane[l] += u[p + l] * x[p + l];
  }
  for (int l = 0; p + l < d; ++l) lane[l] += u[p + l] * x[p + l];
  return ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]));
}

void score_block_scalar(const float* users, size_t nu, size_t d, const float* items, size_t ni,
                        const float* bias, float* out, size_t ldo) {
  for (size_t r = 0; r < nu; ++r) {
    const float* u = users + r * d;
    for (size_t j = 0; j < ni; ++j) {
      float s = dot_scalar(u, items + j * d, d);
      out[r * ldo + j] = bias ? s + bias[j] : s;
    }
  }
}

size_t select_gt_scalar(const float* s, size_t n, float thr, uint32_t* idx) {
  size_t c = 0;
  for (size_t i = 0; i < n; ++i) {
    idx[c] = static_cast<uint32_t>(i);
    c += s[i] > thr ? 1 : 0;
  }
  return c;
}

void sigmoid_scalar(float* v, size_t n) {
  for (size_t i = 0; i < n; ++i) v[i] = 1.0f / (1.0f + std::exp(-v[i]));
}

void tanh_scalar(float* v, size_t n) {
  for (size_t i = 0; i < n; ++i) v[i] = std::tanh(v[i]);
}

void dot_rows_i8_scalar(const float* u, const int8_t* q, size_t d, size_t n, const float* scale, float* out) {
  for (size_t j = 0; j < n; ++j) {
    float s = 0;
    for (size_t p = 0; p < d; ++p) s += u[p] * static_cast<float>(q[j * d + p]);
    out[j] = scale[j] * s;
  }
}

void dot_rows_bf16_scalar(const float* u, const uint16_t* h, size_t d, size_t n, float* out) {
  for (size_t j = 0; j < n; ++j) {
    float s = 0;
    for (size_t p = 0; p < d; ++p) s += u[p] * from_bf16(h[j * d + p]);
    out[j] = s;
  }
}

}  // namespace

const Kernels kScalarKernels = {score_block_scalar, select_gt_scalar, sigmoid_scalar, tanh_scalar,
                                dot_rows_i8_scalar, dot_rows_bf16_scalar, Isa::kScalar};

}  // namespace recscore
