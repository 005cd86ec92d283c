// bfloat16: the upper 16 bits of a float32 (compressed catalogues).
#pragma once
#include <cstdint>
#include <cstring>

namespace recscore {

// Round to nearest even (the input must be finite).
inline uint16_t to_bf16(float f) {
  uint32_t b;
  std::memcpy(&b, &f, sizeof b);
  b += 0x7fffu + ((b >> 16) & 1u);
  return static_cast<uint16_t>(b >> 16);
}

// Exact: every bfloat16 is a float32.
inline float from_bf16(uint16_t h) {
  uint32_t b = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &b, sizeof f);
  return f;
}

}  // namespace recscore
