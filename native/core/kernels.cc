#include "kernels.h"

namespace recscore {

const Kernels& kernels_for(Isa isa) {
  if (isa != Isa::kScalar && cpu_has_avx2_fma()) return kAvx2Kernels;
  return kScalarKernels;
}

}  // namespace recscore
