// The compact copies of compressed catalogues (compressed.h), packed in panels of kPanel rows like
// the float32 items (contract.h), so that a scan streams them as they lie and vectorises across
// rows (one lane per row, the user's element broadcast):
//
//   int8: panel q holds rows [16q, 16q + 16) as G4 = ceil(d / 4) groups of 64 bytes; byte
//         r*4 + t of group g is the quantised value of row 16q + r, dimension 4g + t. One group is
//         one zmm (or two ymm): each 32-bit lane holds 4 consecutive dimensions of one row, the
//         operand layout of vpdpbusd. A panel is 64 * G4 bytes.
//   bf16: panel q holds G2 = ceil(d / 2) groups of 32 uint16; element r*2 + t of group g is the
//         bfloat16 of row 16q + r, dimension 2g + t. Each 32-bit lane holds 2 consecutive
//         dimensions of one row (vdpbf16ps's pairs). A panel is 32 * G2 uint16.
//
// Dimensions >= d and rows >= n are zero (kernels never use them). Generally, for a group width
// w (4 or 2): element (row j, dimension i) lies at
//   (j / 16) * 16 * w * ceil(d / w) + (i / w) * 16 * w + (j % 16) * w + i % w.
// The per-row arrays (int8 scale, err, err_bias) stay plain arrays of n floats.
#pragma once
#include <cstddef>
#include <cstring>

#include "contract.h"

namespace recscore {

constexpr size_t kI8Width = 4;    // int8 dimensions per 32-bit lane
constexpr size_t kBf16Width = 2;  // bfloat16 dimensions per 32-bit lane

inline size_t compact_groups(size_t d, size_t w) { return (d + w - 1) / w; }
// Elements of one panel, and of the whole packed copy of n rows.
inline size_t compact_panel_elems(size_t d, size_t w) { return kPanel * w * compact_groups(d, w); }
inline size_t compact_elems(size_t n, size_t d, size_t w) { return panel_count(n) * compact_panel_elems(d, w); }
inline size_t i8_compact_elems(size_t n, size_t d) { return compact_elems(n, d, kI8Width); }
inline size_t bf16_compact_elems(size_t n, size_t d) { return compact_elems(n, d, kBf16Width); }

// Where (row j, dimension i) lies in a packed copy of width w.
inline size_t compact_index(size_t j, size_t i, size_t d, size_t w) {
  return (j / kPanel) * compact_panel_elems(d, w) + (i / w) * (kPanel * w) + (j % kPanel) * w + i % w;
}
inline size_t i8_index(size_t j, size_t i, size_t d) { return compact_index(j, i, d, kI8Width); }
inline size_t bf16_index(size_t j, size_t i, size_t d) { return compact_index(j, i, d, kBf16Width); }

// [sync, any thread] Packs the row-major n x d matrix src into dst (compact_elems(n, d, w)
// elements), padding zero. A pure copy.
template <typename T>
void pack_compact(const T* src, size_t n, size_t d, size_t w, T* dst) {
  const size_t total = compact_elems(n, d, w);
  if (total) std::memset(dst, 0, total * sizeof(T));
  for (size_t j = 0; j < n; ++j) {
    T* panel = dst + (j / kPanel) * compact_panel_elems(d, w) + (j % kPanel) * w;
    for (size_t i = 0; i < d; ++i) panel[(i / w) * (kPanel * w) + i % w] = src[j * d + i];
  }
}

// [sync, any thread] The inverse: rows [0, n) of a packed copy into the row-major n x d dst.
template <typename T>
void unpack_compact(const T* src, size_t n, size_t d, size_t w, T* dst) {
  for (size_t j = 0; j < n; ++j) {
    for (size_t i = 0; i < d; ++i) dst[j * d + i] = src[compact_index(j, i, d, w)];
  }
}

}  // namespace recscore
