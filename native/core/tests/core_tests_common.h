// Shared by the native/core test files (core_tests*.cc, one executable): the CHECK macro, the
// runner that counts passes and failures, random inputs, and the groups of tests main runs.
#pragma once

#include <cstdint>
#include <cstdio>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "../cpu.h"

namespace core_tests {

extern int g_passed, g_failed;
extern std::string g_current;

#define CHECK(cond)                                                                          \
  do {                                                                                       \
    if (!(cond)) {                                                                           \
      std::fprintf(stderr, "  %s: CHECK failed at %s:%d: %s\n", ::core_tests::g_current.c_str(), \
                   __FILE__, __LINE__, #cond);                                               \
      throw std::runtime_error("check failed");                                             \
    }                                                                                        \
  } while (0)

// Runs one test: prints "ok   name" or "FAIL name (what)" and counts it.
void run(const char* name, const std::function<void()>& fn);

template <typename E>
bool throws(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const E&) {
    return true;
  }
  return false;
}

// rows x d floats, uniform in [-1, 1), from the seed.
std::vector<float> random_matrix(size_t rows, size_t d, uint32_t seed);

// The levels to test: scalar, and AVX2 where the CPU has it.
std::vector<recscore::Isa> isas();

// The groups of tests, in the order main runs them.
void topk_tests();             // core_tests.cc: top-k, selection, eligibility, exclusions
void storage_tests();          // core_tests_storage.cc: matrix statistics, compressed checks, file mapping
void encoder_tests();          // core_tests_encoder.cc: gemm, activations, LSTM/GRU encoder
void compressed_topk_tests();  // core_tests_storage.cc: compressed scans against float32
void compact_tests();          // core_tests_compact.cc: packed compact copies, panels-only catalogues, spin
void quant_exact_tests();      // core_tests_quant.cc: every compressed route's top-k == float32, hard catalogues
void quant_bound_tests();      // core_tests_bounds.cc: |s - a| <= E' per row on every route, worst cases

}  // namespace core_tests
