#include "kernels.h"

namespace recscore {

const Kernels& kernels_for(Level level) {
  static const Kernels avx512 = [] {
    Kernels k = kAvx2Kernels;
    k.gemm_panels = gemm_f32_12x32_avx512;
    k.isa = Level::kAvx512;
    k.dot_rows_u8i8 = cpu_features().avx512_vnni ? dot_rows_u8i8_avx512vnni : nullptr;
    k.dot_rows_bf16_pairs = cpu_features().avx512_bf16 ? dot_rows_bf16_pairs_avx512bf16 : nullptr;
    k.gemm_u8i8 = cpu_features().avx512_vnni ? gemm_u8i8_avx512vnni : nullptr;
    return k;
  }();
  if (level == Level::kAvx512 && level_supported(Level::kAvx512)) return avx512;
  if (level != Level::kScalar && level_supported(Level::kAvx2)) return kAvx2Kernels;
  return kScalarKernels;
}

}  // namespace recscore
