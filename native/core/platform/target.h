// Per-function target attributes for the levels of levels.h. A file that holds kernels of a level
// marks each function with its macro; nothing is built with -m flags, so an inline function
// shared with other files is never compiled for a level the running CPU may lack.
#pragma once

#if defined(__x86_64__) || defined(__i386__)
#define RS_X86 1
#define RS_TARGET_AVX2 __attribute__((target("avx2,fma")))
#define RS_INLINE_AVX2 __attribute__((target("avx2,fma"), always_inline)) inline
#define RS_TARGET_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")))
#define RS_INLINE_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma"), always_inline)) inline
// The AVX-512 level plus one feature (CpuFeatures): callers check the feature before calling.
#define RS_TARGET_AVX512_VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma")))
#define RS_INLINE_AVX512_VNNI \
  __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma"), always_inline)) inline
#define RS_TARGET_AVX512_BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,avx2,fma")))
#define RS_INLINE_AVX512_BF16 \
  __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,avx2,fma"), always_inline)) inline
#else
#define RS_X86 0
#endif
