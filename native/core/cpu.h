// Run-time CPU feature detection and kernel selection.
#pragma once

namespace recscore {

enum class Isa { kScalar = 0, kAvx2 = 1 };

// [sync, any thread] True when the CPU and OS support AVX2 and FMA (cached after the first call).
bool cpu_has_avx2_fma();

// [sync, any thread] The best ISA this process can run.
Isa best_isa();

// Name used in the JS API: "scalar" or "avx2".
const char* isa_name(Isa isa);

}  // namespace recscore
