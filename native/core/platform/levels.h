// CPU levels: the one place that names them. A level is a set of instructions every kernel of
// that level may use; kernels are chosen per call by level (the `isa` option), never by -m flags
// on whole files (see target.h).
#pragma once

namespace recscore {

// Ordered: a CPU that runs a level runs every lower one.
enum class Level : int {
  kScalar = 0,  // portable C++ (std::fma for the contract's chains)
  kAvx2 = 1,    // AVX2 + FMA
  kAvx512 = 2,  // AVX-512 F, BW, VL, DQ (+ FMA, AVX2)
};
constexpr int kLevelCount = 3;

// Features beyond a level that some kernels use when present (compressed scans).
struct CpuFeatures {
  bool avx2_fma = false;
  bool avx512 = false;       // F + BW + VL + DQ, with OS support for the zmm state
  bool avx512_vnni = false;  // vpdpbusd
  bool avx512_bf16 = false;  // vdpbf16ps
  bool avx_vnni = false;     // VEX-encoded vpdpbusd
};

// [sync, any thread] What this CPU and OS support (detected once).
const CpuFeatures& cpu_features();

// [sync, any thread] Whether this CPU runs kernels of `level`.
bool level_supported(Level level);

// [sync, any thread] The highest level this CPU runs.
Level max_supported_level();

// [sync, any thread] The default level: the highest supported one, capped by the environment
// variable RECSCORE_MAX_LEVEL (a level name) when set, as MKL_ENABLE_INSTRUCTIONS does.
// An unknown value is ignored (the binding reports it).
Level default_level();

// "scalar", "avx2", "avx512".
const char* level_name(Level level);

// [sync] Parses a level name; false when `name` is not one.
bool parse_level(const char* name, Level* out);

}  // namespace recscore
