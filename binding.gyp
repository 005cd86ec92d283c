{
  # CPU-only fallback build with node-gyp (`npm run build:native:gyp`); the primary build is
  # CMake through cmake-js. Same sources, same flags in spirit.
  "targets": [
    {
      "target_name": "recscore",
      "sources": [
        "native/core/platform/levels.cc",
        "native/core/platform/fma_peak.cc",
        "native/core/gemm/pack.cc",
        "native/core/gemm/gemm_scalar.cc",
        "native/core/gemm/gemm_avx2.cc",
        "native/core/gemm/gemm_avx512.cc",
        "native/core/kernels.cc",
        "native/core/kernels_scalar.cc",
        "native/core/kernels_avx2.cc",
        "native/core/kernels_avx512_compact.cc",
        "native/core/topk.cc",
        "native/core/scorer.cc",
        "native/core/matrix_stats.cc",
        "native/core/mapped_file.cc",
        "native/core/bandwidth.cc",
        "native/core/gemm.cc",
        "native/core/rnn_model.cc",
        "native/core/rnn_encoder.cc",
        "native/core/rnn_cell.cc",
        "native/core/thread_team.cc",
        "native/core/compressed.cc",
        "native/core/compressed_approx.cc",
        "native/core/compressed_scan.cc",
        "native/core/compressed_select.cc",
        "native/binding/addon.cc",
        "native/binding/args.cc",
        "native/binding/array_fns.cc",
        "native/binding/catalogue_wrap.cc",
        "native/binding/encoder_wrap.cc",
        "native/binding/errors.cc",
        "native/binding/mapped_file_wrap.cc",
        "native/binding/score_wrap.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_CPP_EXCEPTIONS", "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17", "-std=gnu++20"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-O3", "-fno-math-errno", "-Wall", "-Wextra"],
      "xcode_settings": {
        "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
        "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
        "OTHER_CPLUSPLUS_FLAGS": ["-O3"]
      }
    }
  ]
}
