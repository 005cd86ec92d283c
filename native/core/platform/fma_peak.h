// The register-only FMA peak of a level: the encoder's and batched scoring's compute ceiling.
#pragma once

#include "levels.h"

namespace recscore {

// [sync; spawns threads - 1 helpers] Runs independent FMA chains that never touch memory, with
// the level's widest registers (scalar: std::fma on floats), and returns the best of `reps`
// passes in GFLOP/s (2 flops per FMA lane).
double fma_peak_gflops(Level level, int threads, int reps);

}  // namespace recscore
