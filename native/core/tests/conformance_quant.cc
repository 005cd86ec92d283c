// Conformance of the quantised-user kernels of compressed scans (kernels.h: dot_rows_u8i8,
// dot_rows_u7i8, dot_rows_bf16_pairs), where the AVX-512 (AVX2 for dot_rows_u7i8) table has them
// on this CPU:
//   - madd (vpmaddubsw, 7-bit user codes): bit-exact against int64 arithmetic like VNNI, and on
//     the near-saturation worst cases (user codes +-63, item codes +-127, read as q + 128: every
//     pair at up to 2 * 255 * 63) the kernel's I_j, read back exactly, equals the int64 sum: no
//     saturation;
//   - VNNI: the int8 GEMM bit-exact against the one-user kernel, which is bit-exact against the exact integer dot product in int64 and the two float32
//     products (the kernel's arithmetic has one value), at d up to kVnniMaxDim with the
//     accumulator's extreme values, junk in every padding byte;
//   - AVX512_BF16: within the bound compressed_approx.h charges vdpbf16ps (ceil(d/2) groups of at
//     most two roundings each, subnormal inputs read as zero, subnormal products and sums
//     flushed) of the exact float64 dot product, junk (NaN) in every padding slot; and, for
//     information, how often it matches two FMA-like steps per pair, high element first, with
//     flush-to-zero on the exact result (Zen 4's behaviour, measured).
// Rows past n are never written. Run by conformance_tests.cc's main.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>
#include <vector>

#include "../bf16.h"
#include "../compressed_approx.h"
#include "../gemm/compact.h"
#include "../gemm/contract.h"
#include "../kernels.h"
#include "conformance_common.h"

using namespace recscore;

namespace conformance {
namespace {

// A bf16 as vdpbf16ps reads it: subnormals are zero (of their sign).
float daz(uint16_t h) { return (h & 0x7f80u) == 0 ? from_bf16(static_cast<uint16_t>(h & 0x8000u)) : from_bf16(h); }

// The SDM's order (srcdest += hi * hi, then += lo * lo) as Zen 4 computes it: each step one
// rounding of acc + the exact product (an FMA), and a result whose exact value is below 2^-126
// flushed to a zero of its sign (tininess before rounding). Informational: the bound assumes less.
float step(float acc, float u, float x) {
  const float r = std::fma(u, x, acc);
  const double near = static_cast<double>(acc) + static_cast<double>(u) * x;  // sign and size near 2^-126
  const bool tiny = std::fabs(r) < 0x1p-126f || (std::fabs(r) == 0x1p-126f && std::fabs(near) < 0x1p-126);
  return tiny ? std::copysign(0.0f, r) : r;  // a signed zero
}
float sdm_step(float acc, float u0, float x0, float u1, float x1) { return step(step(acc, u1, x1), u0, x0); }

// extreme: 0 random codes; +-1 every user code +-range against item codes -127; 2 user codes
// +-range (random signs) against item codes +-127 (random signs); 3 user codes +range against
// item codes +127 (bytes 255 once biased): every vpmaddubsw pair at 2 * 255 * 63 = 32130 (madd).
// madd: dot_rows_u7i8 (range 63), else dot_rows_u8i8 (range 127); the user's bytes are its signed
// codes and corr = 128 sum uq (the kernels read the row bytes as q + 128).
void int8_case(const Kernels& k, bool madd, size_t d, size_t n, std::mt19937& g, int extreme) {
  const size_t groups = compact_groups(d, kI8Width);
  const int32_t range = madd ? 63 : 127;
  const char* name = madd ? "madd" : "vnni";
  std::vector<int32_t> uq(d);
  std::vector<uint32_t> ub4(groups, 0u);
  auto sign = [&g]() { return (g() & 1u) ? 1 : -1; };
  for (size_t i = 0; i < d; ++i) {
    switch (extreme) {
      case 0: uq[i] = static_cast<int32_t>(g() % static_cast<uint32_t>(2 * range + 1)) - range; break;
      case 2: uq[i] = range * sign(); break;
      case 3: uq[i] = range; break;
      default: uq[i] = range * extreme; break;
    }
    ub4[i / 4] |= static_cast<uint32_t>(static_cast<uint8_t>(static_cast<int8_t>(uq[i]))) << (8 * (i % 4));
  }
  std::vector<int8_t> q(n * d), pq(i8_compact_elems(n, d));
  for (auto& v : q) {
    switch (extreme) {
      case 0: v = static_cast<int8_t>(static_cast<int>(g() % 255) - 127); break;
      case 2: v = static_cast<int8_t>(127 * sign()); break;
      case 3: v = 127; break;
      default: v = -127; break;
    }
  }
  pack_compact(q.data(), n, d, kI8Width, pq.data());
  for (size_t j = 0; j < panel_count(n) * kPanel; ++j) {  // junk in every padding byte
    for (size_t i = 0; i < groups * kI8Width; ++i) {
      if (j >= n || i >= d) pq[i8_index(j, i, d)] = static_cast<int8_t>(j % 2 ? 127 : -128);
    }
  }
  int64_t usum = 0;
  for (size_t i = 0; i < d; ++i) usum += uq[i];
  const auto corr = static_cast<int32_t>(128 * usum);
  std::vector<int64_t> exact(n, 0);
  const auto scale = random_values(n, static_cast<uint32_t>(d + n), 0.01f);
  for (size_t j = 0; j < n; ++j) {
    for (size_t i = 0; i < d; ++i) exact[j] += static_cast<int64_t>(uq[i]) * q[j * d + i];
  }
  const float su = extreme ? 1.0f : 0.37f;
  std::vector<float> out(n + 16, -7.0f);
  (madd ? k.dot_rows_u7i8 : k.dot_rows_u8i8)(ub4.data(), su, corr, pq.data(), d, n, scale.data(), out.data());
  for (size_t j = 0; j < n + 16; ++j) {
    const float m = j < n ? su * scale[j] : 0.0f;
    const float want = j < n ? static_cast<float>(exact[j]) * m : -7.0f;
    EXPECT(bits(out[j]) == bits(want), "%s d=%zu n=%zu extreme=%d row %zu: %.9g vs %.9g (I = %lld)", name, d, n,
           extreme, j, static_cast<double>(out[j]), static_cast<double>(want),
           j < n ? static_cast<long long>(exact[j]) : 0LL);
  }
  // The integer itself: with su = 1 and scale 1, out = float(I_j), exact while |I_j| < 2^24.
  if (extreme && d * static_cast<size_t>(range) * 127 < (size_t{1} << 24)) {
    const std::vector<float> ones(n, 1.0f);
    (madd ? k.dot_rows_u7i8 : k.dot_rows_u8i8)(ub4.data(), 1.0f, corr, pq.data(), d, n, ones.data(), out.data());
    for (size_t j = 0; j < n; ++j) {
      EXPECT(static_cast<double>(out[j]) == static_cast<double>(exact[j]), "%s d=%zu extreme=%d row %zu: I = %.1f, int64 %lld",
             name, d, extreme, j, static_cast<double>(out[j]), static_cast<long long>(exact[j]));
    }
  }
}

// Returns how many rows matched the SDM's description bit for bit.
size_t bf16_case(const Kernels& k, size_t d, size_t n, std::mt19937& g) {
  const size_t groups = compact_groups(d, kBf16Width);
  auto value = [&g](size_t i) {  // normal, tiny (subnormal products), subnormal, zero, huge
    const float v = uniform(g, 4.0f);
    switch ((g() >> 3) % 16) {
      case 0: return v * 0x1p-70f;
      case 1: return v * 0x1p-130f;
      case 2: return 0.0f;
      case 3: return v * 0x1p100f * (i % 2 ? 1.0f : 0x1p-100f);
      default: return v;
    }
  };
  std::vector<uint16_t> uh(d), h(n * d), ph(bf16_compact_elems(n, d));
  std::vector<uint32_t> pairs(groups, 0u);
  for (size_t i = 0; i < d; ++i) {
    uh[i] = to_bf16(value(i));
    if ((uh[i] & 0x7f80u) == 0) uh[i] = 0;  // as prepare_user flushes the user
    pairs[i / 2] |= static_cast<uint32_t>(uh[i]) << (16 * (i % 2));
  }
  for (size_t j = 0; j < n; ++j) {
    for (size_t i = 0; i < d; ++i) h[j * d + i] = to_bf16(value(i + 1) * (j % 5 == 0 ? 0x1p-100f : 1.0f));
  }
  pack_compact(h.data(), n, d, kBf16Width, ph.data());
  for (size_t j = 0; j < panel_count(n) * kPanel; ++j) {  // NaN in every padding slot
    for (size_t i = 0; i < groups * kBf16Width; ++i) {
      if (j >= n || i >= d) ph[bf16_index(j, i, d)] = 0x7fc1;
    }
  }
  std::vector<float> out(n + 16, -7.0f);
  k.dot_rows_bf16_pairs(pairs.data(), ph.data(), d, n, out.data());
  const double dd = static_cast<double>(d), gamma = (dd + 1) * 0x1p-24 / (1 - (dd + 1) * 0x1p-24);
  size_t sdm = 0;
  for (size_t j = 0; j < n; ++j) {
    double exact = 0, mag = 0;
    float model = 0;
    for (size_t i = 0; i < d; i += 2) {
      const float u0 = from_bf16(uh[i]), x0 = daz(h[j * d + i]);
      const float u1 = i + 1 < d ? from_bf16(uh[i + 1]) : 0.0f, x1 = i + 1 < d ? daz(h[j * d + i + 1]) : 0.0f;
      exact += static_cast<double>(u0) * x0 + static_cast<double>(u1) * x1;
      mag += std::fabs(static_cast<double>(u0) * x0) + std::fabs(static_cast<double>(u1) * x1);
      model = sdm_step(model, u0, x0, u1, x1);
    }
    const double bound = gamma * mag + 2 * (dd + 1) * 0x1p-126;
    EXPECT(std::fabs(static_cast<double>(out[j]) - exact) <= bound, "bf16dot d=%zu n=%zu row %zu: %.9g vs %.17g (bound %.3g)",
           d, n, j, static_cast<double>(out[j]), exact, bound);
    sdm += bits(out[j]) == bits(model) ? 1 : 0;
  }
  for (size_t j = n; j < n + 16; ++j) EXPECT(out[j] == -7.0f, "bf16dot d=%zu n=%zu wrote past n at %zu", d, n, j);
  return sdm;
}

// gemm_u8i8 (m users at once) against dot_rows_u8i8 user by user: the same bits; junk padding;
// nothing written past row n - 1 of any user's output row.
void gemm_case(const Kernels& k, size_t d, size_t n, size_t m, std::mt19937& g) {
  const size_t groups = compact_groups(d, kI8Width), ldo = n + 9;
  std::vector<uint32_t> ub4(m * groups, 0u);
  std::vector<float> su(m);
  for (size_t u = 0; u < m; ++u) {
    su[u] = 0.001f * static_cast<float>(1 + g() % 1000);
    for (size_t i = 0; i < d; ++i) ub4[u * groups + i / 4] |= static_cast<uint32_t>(1 + g() % 255) << (8 * (i % 4));
  }
  std::vector<int8_t> pq(i8_compact_elems(n, d));
  for (auto& v : pq) v = static_cast<int8_t>(static_cast<int>(g() % 256) - 128);  // padding included: junk
  std::vector<int32_t> corr(m);
  for (auto& v : corr) v = static_cast<int32_t>(g() % 200001) - 100000;
  const auto scale = random_values(n, static_cast<uint32_t>(d * 3 + n), 0.01f);
  std::vector<float> out(m * ldo, -7.0f), one(n);
  k.gemm_u8i8(ub4.data(), groups, su.data(), corr.data(), m, pq.data(), d, n, scale.data(), out.data(), ldo);
  for (size_t u = 0; u < m; ++u) {
    k.dot_rows_u8i8(ub4.data() + u * groups, su[u], corr[u], pq.data(), d, n, scale.data(), one.data());
    for (size_t j = 0; j < ldo; ++j) {
      const float want = j < n ? one[j] : -7.0f;
      EXPECT(bits(out[u * ldo + j]) == bits(want), "gemm_u8i8 d=%zu n=%zu m=%zu user %zu row %zu: %.9g vs %.9g", d, n,
             m, u, j, static_cast<double>(out[u * ldo + j]), static_cast<double>(want));
    }
  }
}

}  // namespace

void quantised_kernel_conformance() {
  const Kernels& k = kernels_for(Level::kAvx512);
  const Kernels& k2 = kernels_for(Level::kAvx2);
  const bool madd = level_supported(Level::kAvx2) && k2.dot_rows_u7i8;
  if (!k.dot_rows_u8i8 && !k.dot_rows_bf16_pairs && !madd) {
    std::printf("       (this CPU has neither AVX2, AVX-512 VNNI nor AVX512_BF16: nothing to check)\n");
    return;
  }
  std::mt19937 g(4242);
  std::vector<size_t> ds = dims();
  for (size_t d : {2u, 3u, 4u, 5u}) ds.push_back(d);
  size_t sdm = 0, rows = 0;
  for (size_t d : ds) {
    for (size_t n : {size_t{1}, size_t{15}, size_t{16}, size_t{17}, size_t{70}, size_t{131}, size_t{300}}) {
      if (k.dot_rows_u8i8) int8_case(k, false, d, n, g, 0);
      if (madd) int8_case(k2, true, d, n, g, 0);
      if (k.dot_rows_bf16_pairs) {
        sdm += bf16_case(k, d, n, g);
        rows += n;
      }
    }
  }
  if (k.gemm_u8i8) {
    for (size_t d : {size_t{1}, size_t{5}, size_t{16}, size_t{67}, size_t{130}}) {
      for (size_t n : {size_t{1}, size_t{17}, size_t{64}, size_t{100}, size_t{512}}) {
        for (size_t m : {size_t{1}, size_t{5}, size_t{6}, size_t{7}, size_t{13}, size_t{48}}) gemm_case(k, d, n, m, g);
      }
    }
  }
  if (k.dot_rows_u8i8) {
    // The accumulator's extremes: |sum (q + 128) uq| = 65536 * 255 * 127 and |I| = 65536 * 127²,
    // both signs, at the largest d the scan gives this kernel.
    for (int extreme : {1, -1}) int8_case(k, false, kVnniMaxDim, 17, g, extreme);
  }
  if (madd) {
    // No saturation: every vpmaddubsw pair at up to 2 * 255 * 63 (user codes +-63, item codes
    // +-127), I_j read back exactly against int64; then the accumulator's extremes at d = 65536
    // (|I| = 65536 * 63 * 127), bit for bit.
    for (size_t d : {size_t{1}, size_t{2}, size_t{4}, size_t{5}, size_t{64}, size_t{130}, size_t{2048}}) {
      for (size_t n : {size_t{1}, size_t{16}, size_t{17}, size_t{70}}) {
        for (int extreme : {1, -1, 2, 3}) int8_case(k2, true, d, n, g, extreme);
      }
    }
    for (int extreme : {1, -1, 2, 3}) int8_case(k2, true, kVnniMaxDim, 17, g, extreme);
  }
  if (rows) std::printf("       bf16dot: %zu of %zu rows equal two FMA steps per pair (hi, lo) with FTZ, bit for bit\n", sdm, rows);
}

}  // namespace conformance
