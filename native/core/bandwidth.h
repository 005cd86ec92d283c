// Memory read bandwidth probe, for the benchmarks' "fraction of the machine's ceiling".
#pragma once
#include <cstddef>

namespace recscore {

// [sync; spawns threads - 1 helpers] Reads n floats `reps` times, split across `threads`, with
// the widest loads the CPU has, and returns the best pass in GB/s (1e9 bytes per second).
double read_bandwidth_gbs(const float* data, size_t n, int threads, int reps);

}  // namespace recscore
