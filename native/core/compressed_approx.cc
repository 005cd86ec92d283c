#include "compressed_approx.h"

#include <algorithm>
#include <cmath>

#include "bf16.h"
#include "compressed_select.h"
#include "errors.h"
#include "gemm/compact.h"
#include "gemm/contract.h"

namespace recscore {
namespace {

// The float32 arithmetic of the bound's own evaluation (a few roundings of non-negative terms)
// and of underflow, as the float path has always absorbed them (compressed.h).
const float kMargin = kSelectMargin;
const float kSlack = kSelectSlack;

// int8 user: uq_i = round(u_i / su) in [-range, range], su = max|u_i| / range (zero for a zero
// user, or one whose largest element is below range * 2^-150); byte i of the operand holds uq_i
// as a signed byte, and corr = 128 sum uq_i (the kernels read the row bytes as q + 128). kVnni:
// range 127; kMadd: range 63 (no vpmaddubsw pair saturates). û = su uq exactly (a float times an
// integer below 2^7 is exact in float64). Returns sum (u_i - û_i)², each term exact up to one
// float64 rounding of the difference.
double quantise_i8(const float* u, size_t d, long range, ApproxUser& au) {
  float mx = 0;
  for (size_t i = 0; i < d; ++i) mx = std::max(mx, std::fabs(u[i]));
  const float su = mx / static_cast<float>(range);
  au.su = su;
  au.op.assign(compact_groups(d, kI8Width), 0u);  // bytes past d stay zero: padding adds nothing
  double r2 = 0;
  int64_t sum = 0;
  for (size_t i = 0; i < d; ++i) {
    long q = su > 0 ? std::lround(static_cast<double>(u[i]) / static_cast<double>(su)) : 0;
    q = std::min(range, std::max(-range, q));
    sum += q;
    au.op[i / kI8Width] |= static_cast<uint32_t>(static_cast<uint8_t>(static_cast<int8_t>(q))) << (8 * (i % kI8Width));
    const double diff = static_cast<double>(u[i]) - static_cast<double>(su) * static_cast<double>(q);
    r2 += diff * diff;
  }
  au.corr = static_cast<int32_t>(128 * sum);  // |128 sum| <= 128 * 127 * kVnniMaxDim < 2^31
  return r2;
}

// bf16 user: round to nearest even; a value that rounds past the largest finite bfloat16 takes
// that (0x7f7f), and a subnormal result is zero (vdpbf16ps would read it as zero: DAZ), so û is
// exactly what the instruction multiplies. Returns sum (u_i - û_i)²; l1 = sum |û_i|.
double quantise_bf16(const float* u, size_t d, ApproxUser& au, double& l1) {
  au.op.assign(compact_groups(d, kBf16Width), 0u);  // the half past an odd d stays zero
  double r2 = 0;
  l1 = 0;
  for (size_t i = 0; i < d; ++i) {
    uint16_t h = to_bf16(u[i]);
    if ((h & 0x7f80u) == 0x7f80u) h = static_cast<uint16_t>((h & 0x8000u) | 0x7f7fu);
    if ((h & 0x7f80u) == 0) h = 0;
    au.op[i / kBf16Width] |= static_cast<uint32_t>(h) << (16 * (i % kBf16Width));
    const double v = from_bf16(h), diff = static_cast<double>(u[i]) - v;
    r2 += diff * diff;
    l1 += std::fabs(v);
  }
  return r2;
}

}  // namespace

const char* compact_path_name(CompactPath p) {
  switch (p) {
    case CompactPath::kVnni:
      return "vnni";
    case CompactPath::kBf16Dot:
      return "bf16dot";
    case CompactPath::kMadd:
      return "madd";
    case CompactPath::kFloat:
      break;
  }
  return "float";
}

bool compact_terms_used(Level level, Precision p, size_t d) {
  const Kernels& k = kernels_for(level);
  if (p == Precision::kInt8) return (k.dot_rows_u8i8 != nullptr || k.dot_rows_u7i8 != nullptr) && d <= kVnniMaxDim;
  if (p == Precision::kBf16) return k.dot_rows_bf16_pairs != nullptr;
  return false;
}

CompactPath compact_path(Level level, const CompressedView& c, size_t d) {
  if (!compact_terms_used(level, c.precision, d) || !c.cnorm) return CompactPath::kFloat;
  if (c.precision == Precision::kInt8) return kernels_for(level).dot_rows_u8i8 ? CompactPath::kVnni : CompactPath::kMadd;
  return CompactPath::kBf16Dot;
}

CompactRowTerms compact_row_terms(const CompressedView& c, size_t n, size_t d) {
  if (c.precision == Precision::kF32 || !c.data || (c.precision == Precision::kInt8 && !c.scale)) {
    throw InvalidArgument("compressed view is incomplete");
  }
  CompactRowTerms t;
  t.cnorm.resize(n);
  const bool i8 = c.precision == Precision::kInt8;
  const size_t w = i8 ? kI8Width : kBf16Width, groups = compact_groups(d, w);
  for (size_t p = 0; p < panel_count(n); ++p) {
    // One panel at a time, in its memory order; sums per row of the panel (index order per row).
    int64_t qq[kPanel] = {};
    double hh[kPanel] = {};
    const size_t base = p * compact_panel_elems(d, w);
    for (size_t g = 0; g < groups; ++g) {
      const size_t dims = std::min(w, d - g * w);
      for (size_t r = 0; r < kPanel; ++r) {
        const size_t at = base + g * kPanel * w + r * w;
        for (size_t s = 0; s < dims; ++s) {
          if (i8) {
            const int64_t q = static_cast<const int8_t*>(c.data)[at + s];
            qq[r] += q * q;
          } else {
            const double v = from_bf16(static_cast<const uint16_t*>(c.data)[at + s]);
            hh[r] += v * v;  // exact products (8-bit significands), d roundings of the sum
          }
        }
      }
    }
    for (size_t r = 0; r < kPanel && p * kPanel + r < n; ++r) {
      const size_t j = p * kPanel + r;
      if (i8) {
        t.cnorm[j] = bound_upf(bound_up(static_cast<double>(c.scale[j]) * std::sqrt(static_cast<double>(qq[r]))));
      } else {
        t.cnorm[j] = bound_upf(bound_up(std::sqrt(bound_up_sum(hh[r], d))));
      }
    }
  }
  return t;
}

void prepare_user(const Kernels& k, const CompressedView& c, size_t d, const float* u, ApproxUser& au) {
  au.user = u;
  double nu2 = 0;
  for (size_t i = 0; i < d; ++i) nu2 += static_cast<double>(u[i]) * u[i];
  au.nu = bound_upf(bound_up(std::sqrt(bound_up_sum(nu2, d))));
  // fl(gb |b_j|) >= 2 g |b_j| (1 + 2^-20)(1 - 2^-24) >= f_j = 2 g |b_j| wherever it does not
  // underflow; underflow loses less than 2^-149, inside kSlack.
  au.gb = bound_upf(bound_up(2 * bound_g(d) * (1 + 0x1p-20)));
  au.corr = 0;
  au.path = std::isfinite(nu2) ? compact_path(k.isa, c, d) : CompactPath::kFloat;
  au.su = au.du = au.cu = 0;
  if (au.path == CompactPath::kFloat) return;
  const double g = bound_g(d), dd = static_cast<double>(d);
  double r2 = 0, cu = 0;
  if (au.path == CompactPath::kVnni || au.path == CompactPath::kMadd) {
    const bool vnni = au.path == CompactPath::kVnni;
    r2 = quantise_i8(u, d, vnni ? 127 : 63, au);
    // fl(su scale_j) and fl(F m_j) may each underflow by up to 2^-150 absolute, the first times
    // |F| <= 127² d (1 + u) (kMadd: |F| <= 63 * 127 d, less): at most (16129 d + 2) 2^-150 <=
    // (d + 1) 2^-136.
    cu = (dd + 1) * 0x1p-136;
  } else {
    double l1 = 0;
    r2 = quantise_bf16(u, d, au, l1);
    // DAZ on the rows: |û . (x̂ - x̃)| <= |û|_1 2^-126; FTZ: each vdpbf16ps may flush two
    // products and two sums, each by less than 2^-126, over ceil(d/2) <= (d+1)/2 groups, then
    // carried through at most d + 2 roundings (factor 1 + g).
    cu = (bound_up_sum(l1, d) + 2 * (dd + 1)) * (1 + g) * 0x1p-126;
  }
  au.du = bound_upf(bound_up((1 + g) * std::sqrt(bound_up_sum(r2, d))));
  au.cu = bound_upf(bound_up(cu));
}

void approx_tile(const Kernels& k, const ApproxUser& au, const CompressedView& c, const float* bias, size_t d,
                 size_t t0, size_t nt, float* approx, float* err) {
  approx_scores(k, au, c, d, t0, nt, approx);
  approx_bounds(au, c, bias, t0, nt, approx, err);
}

void approx_scores(const Kernels& k, const ApproxUser& au, const CompressedView& c, size_t d, size_t t0, size_t nt,
                   float* approx) {
  const size_t pan = t0 / kPanel;
  switch (au.path) {
    case CompactPath::kVnni:
      k.dot_rows_u8i8(au.op.data(), au.su, au.corr,
                      static_cast<const int8_t*>(c.data) + pan * compact_panel_elems(d, kI8Width), d, nt,
                      c.scale + t0, approx);
      break;
    case CompactPath::kMadd:
      k.dot_rows_u7i8(au.op.data(), au.su, au.corr,
                      static_cast<const int8_t*>(c.data) + pan * compact_panel_elems(d, kI8Width), d, nt,
                      c.scale + t0, approx);
      break;
    case CompactPath::kBf16Dot:
      k.dot_rows_bf16_pairs(au.op.data(), static_cast<const uint16_t*>(c.data) + pan * compact_panel_elems(d, kBf16Width),
                            d, nt, approx);
      break;
    case CompactPath::kFloat:
      if (c.precision == Precision::kInt8) {
        k.dot_rows_i8(au.user, static_cast<const int8_t*>(c.data) + pan * compact_panel_elems(d, kI8Width), d, nt,
                      c.scale + t0, approx);
      } else {
        k.dot_rows_bf16(au.user, static_cast<const uint16_t*>(c.data) + pan * compact_panel_elems(d, kBf16Width), d,
                        nt, approx);
      }
      break;
  }
}

namespace {

// approx_bounds' loop, specialised on what the catalogue and the path have (so that it vectorises).
// f_j = 2 g |b_j| is computed here from the bias (au.gb) rather than read from c.err_bias: the
// same bound term, rounded up, for 4 bytes per row fewer read.
template <bool kBias, bool kQuant>
void bounds_loop(const ApproxUser& au, const float* b, const float* e, const float* cn, size_t nt, float* approx,
                 float* err) {
  const float nu = au.nu, du = au.du, cu = au.cu, gb = au.gb;
  for (size_t i = 0; i < nt; ++i) {
    float v = nu * e[i];
    if (kBias) {
      v += gb * std::fabs(b[i]);
      approx[i] += b[i];
    }
    if (kQuant) v += du * cn[i] + cu;
    err[i] = v * kMargin + kSlack;
  }
}

}  // namespace

void approx_bounds(const ApproxUser& au, const CompressedView& c, const float* bias, size_t t0, size_t nt,
                   float* approx, float* err) {
  // Every term is non-negative, so the loop's few float32 roundings stay far inside kMargin.
  const float* e = c.err + t0;
  const float* b = bias ? bias + t0 : nullptr;
  const float* cn = au.path != CompactPath::kFloat ? c.cnorm + t0 : nullptr;
  if (b) return cn ? bounds_loop<true, true>(au, b, e, cn, nt, approx, err) : bounds_loop<true, false>(au, b, e, cn, nt, approx, err);
  return cn ? bounds_loop<false, true>(au, b, e, cn, nt, approx, err) : bounds_loop<false, false>(au, b, e, cn, nt, approx, err);
}

CompactPath compressed_approx(const ScoreRequest& r, const CompressedView& c, size_t user, float* approx, float* err) {
  if (r.d == 0 || user >= r.b || !c.data || !c.err) throw InvalidArgument("compressed_approx: bad request");
  const Kernels& k = kernels_for(r.isa);
  ApproxUser au;
  prepare_user(k, c, r.d, r.users + user * r.d, au);
  const size_t tile = 512;
  for (size_t t0 = 0; t0 < r.n; t0 += tile) {
    approx_tile(k, au, c, r.bias, r.d, t0, std::min(tile, r.n - t0), approx + t0, err + t0);
  }
  return au.path;
}

}  // namespace recscore
