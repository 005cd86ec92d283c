// Module entry. Per-environment state (the class constructors) lives in instance data, so the
// addon loads in any number of worker threads at once.
#include <napi.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <memory>
#include <thread>

#include "../core/bandwidth.h"
#include "../core/compressed.h"
#include "../core/cpu.h"
#include "../core/matrix_stats.h"
#include "../core/gemm/contract.h"
#include "../core/gemm/pack.h"
#include "../core/platform/fma_peak.h"
#include "args.h"
#include "encoder_wrap.h"
#include "env_team.h"
#include "errors.h"
#include "mapped_file_wrap.h"
#include "score_wrap.h"

namespace recscore_binding {
namespace {

// matrixStats(values: Float32Array, rows, d, normLimit?) -> { firstNonFinite, maxRowNorm, maxAbs,
// firstRowAbove, rowNormAbove } [sync]
Napi::Value MatrixStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) throw_type_error(env, "matrixStats expects an object");
  Napi::Object o = info[0].As<Napi::Object>();
  auto values = typed_field<float>(o, "values", napi_float32_array, false, nullptr);
  size_t rows = size_field(o, "rows", 0, false);
  size_t d = size_field(o, "d", 0, false);
  if (d == 0 || rows > values.length / d) throw_type_error(env, "values holds fewer than rows x d");
  Napi::Value lim = o.Get("normLimit");
  const double limit = lim.IsNumber() ? lim.As<Napi::Number>().DoubleValue() : HUGE_VAL;
  recscore::MatrixStats st = recscore::matrix_stats(values.data, rows, d, limit);
  Napi::Object out = Napi::Object::New(env);
  out.Set("firstNonFinite", Napi::Number::New(env, static_cast<double>(st.first_non_finite)));
  out.Set("maxRowNorm", Napi::Number::New(env, st.max_row_norm));
  out.Set("maxAbs", Napi::Number::New(env, st.max_abs));
  out.Set("firstRowAbove", Napi::Number::New(env, static_cast<double>(st.first_row_above)));
  out.Set("rowNormAbove", Napi::Number::New(env, st.row_norm_above));
  return out;
}

// checkCompressed({ values, rows, d, bias?, precision, data, scale?, err, errBias? }) -> null when
// every row passes, else { row, rule, column, recorded, required } (compressed.h) [sync]
Napi::Value CheckCompressed(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) throw_type_error(env, "checkCompressed expects an object");
  Napi::Object o = info[0].As<Napi::Object>();
  auto values = typed_field<float>(o, "values", napi_float32_array, false, nullptr);
  auto bias = typed_field<float>(o, "bias", napi_float32_array, true, nullptr);
  auto err = typed_field<float>(o, "err", napi_float32_array, false, nullptr);
  auto eb = typed_field<float>(o, "errBias", napi_float32_array, true, nullptr);
  size_t rows = size_field(o, "rows", 0, false);
  size_t d = size_field(o, "d", 0, false);
  Napi::Value pv = o.Get("precision");
  const std::string prec = pv.IsString() ? pv.As<Napi::String>().Utf8Value() : "";
  recscore::CompressedView v;
  size_t data_len = 0;
  bool scale_ok = true;
  if (prec == "int8") {
    auto q = typed_field<int8_t>(o, "data", napi_int8_array, false, nullptr);
    auto sc = typed_field<float>(o, "scale", napi_float32_array, false, nullptr);
    v.precision = recscore::Precision::kInt8;
    v.data = q.data;
    v.scale = sc.data;
    data_len = q.length;
    scale_ok = sc.length >= rows;
  } else if (prec == "bf16") {
    auto h = typed_field<uint16_t>(o, "data", napi_uint16_array, false, nullptr);
    v.precision = recscore::Precision::kBf16;
    v.data = h.data;
    data_len = h.length;
  } else {
    throw_type_error(env, "precision must be int8 or bf16");
  }
  if (d == 0 || rows > values.length / d || rows > data_len / d || !scale_ok || err.length < rows ||
      (bias.present && (bias.length < rows || !eb.present)) || (eb.present && eb.length < rows)) {
    throw_type_error(env, "checkCompressed: sizes do not match");
  }
  v.err = err.data;
  v.err_bias = bias.present ? eb.data : nullptr;
  recscore::CompressedFault f;
  try {
    f = recscore::check_compressed(values.data, rows, d, bias.present ? bias.data : nullptr, v);
  } catch (...) {
    throw make_js_error(env, capture_current_exception());
  }
  if (f.row < 0) return env.Null();
  static const char* const kRules[] = {"ok", "scale", "nonFinite", "farther", "err", "errBias"};
  Napi::Object out = Napi::Object::New(env);
  out.Set("row", Napi::Number::New(env, static_cast<double>(f.row)));
  out.Set("rule", Napi::String::New(env, kRules[static_cast<int>(f.rule)]));
  out.Set("column", Napi::Number::New(env, static_cast<double>(f.column)));
  out.Set("recorded", Napi::Number::New(env, f.recorded));
  out.Set("required", Napi::Number::New(env, f.required));
  return out;
}

// readBandwidth({ values: Float32Array, threads, reps }) -> GB/s [sync; benchmarks only]
Napi::Value ReadBandwidth(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) throw_type_error(env, "readBandwidth expects an object");
  Napi::Object o = info[0].As<Napi::Object>();
  auto values = typed_field<float>(o, "values", napi_float32_array, false, nullptr);
  size_t threads = size_field(o, "threads", 1, true);
  size_t reps = size_field(o, "reps", 5, true);
  double gbs = recscore::read_bandwidth_gbs(values.data, values.length,
                                            static_cast<int>(std::min<size_t>(threads, 256)),
                                            static_cast<int>(std::min<size_t>(reps, 1000)));
  return Napi::Number::New(env, gbs);
}

// compress({ values, rows, d, bias?, precision: 'int8' | 'bf16' }) -> { data, scale?, err, errBias? } [sync]
Napi::Value Compress(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) throw_type_error(env, "compress expects an object");
  Napi::Object o = info[0].As<Napi::Object>();
  auto values = typed_field<float>(o, "values", napi_float32_array, false, nullptr);
  auto bias = typed_field<float>(o, "bias", napi_float32_array, true, nullptr);
  size_t rows = size_field(o, "rows", 0, false);
  size_t d = size_field(o, "d", 0, false);
  if (d == 0 || rows > values.length / d || (bias.present && bias.length < rows)) throw_type_error(env, "compress: sizes do not match");
  Napi::Value pv = o.Get("precision");
  const std::string prec = pv.IsString() ? pv.As<Napi::String>().Utf8Value() : "";
  if (prec != "int8" && prec != "bf16") throw_type_error(env, "precision must be int8 or bf16");
  recscore::Compressed c = recscore::compress(values.data, rows, d, bias.present ? bias.data : nullptr,
                                              prec == "int8" ? recscore::Precision::kInt8 : recscore::Precision::kBf16);
  Napi::Object out = Napi::Object::New(env);
  if (prec == "int8") {
    auto q = Napi::Int8Array::New(env, c.q.size());
    std::copy(c.q.begin(), c.q.end(), q.Data());
    out.Set("data", q);
    auto s = Napi::Float32Array::New(env, c.scale.size());
    std::copy(c.scale.begin(), c.scale.end(), s.Data());
    out.Set("scale", s);
  } else {
    auto h = Napi::Uint16Array::New(env, c.h.size());
    std::copy(c.h.begin(), c.h.end(), h.Data());
    out.Set("data", h);
  }
  auto e = Napi::Float32Array::New(env, c.err.size());
  std::copy(c.err.begin(), c.err.end(), e.Data());
  out.Set("err", e);
  if (!c.err_bias.empty()) {
    auto eb = Napi::Float32Array::New(env, c.err_bias.size());
    std::copy(c.err_bias.begin(), c.err_bias.end(), eb.Data());
    out.Set("errBias", eb);
  }
  return out;
}

class Addon : public Napi::Addon<Addon> {
 public:
  std::shared_ptr<recscore::ThreadTeam> team() {
    if (!team_) {
      const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
      team_ = std::make_shared<recscore::ThreadTeam>(cores - 1);
    }
    return team_;
  }

  Addon(Napi::Env env, Napi::Object exports) {
    mapped_file_ = Napi::Persistent(MappedFileWrap::Define(env));
    encoder_ = Napi::Persistent(EncoderWrap::Define(env));
    // Levels this CPU runs, lowest first (platform/levels.h is the one list of names).
    Napi::Array levels = Napi::Array::New(env);
    for (int i = 0; i < recscore::kLevelCount; ++i) {
      const auto l = static_cast<recscore::Level>(i);
      if (recscore::level_supported(l)) levels.Set(levels.Length(), Napi::String::New(env, recscore::level_name(l)));
    }
    const recscore::CpuFeatures& f = recscore::cpu_features();
    Napi::Object features = Napi::Object::New(env);
    features.Set("avx2", Napi::Boolean::New(env, f.avx2_fma));
    features.Set("avx512", Napi::Boolean::New(env, f.avx512));
    features.Set("vnni", Napi::Boolean::New(env, f.avx512_vnni || f.avx_vnni));
    features.Set("avx512vnni", Napi::Boolean::New(env, f.avx512_vnni));
    features.Set("avxvnni", Napi::Boolean::New(env, f.avx_vnni));
    features.Set("bf16", Napi::Boolean::New(env, f.avx512_bf16));
    const char* cap = std::getenv("RECSCORE_MAX_LEVEL");
    recscore::Level capped;
    const bool bad_cap = cap && *cap && !recscore::parse_level(cap, &capped);
    DefineAddon(exports,
                {InstanceValue("MappedFile", mapped_file_.Value(), napi_enumerable),
                 InstanceValue("NativeEncoder", encoder_.Value(), napi_enumerable),
                 InstanceValue("levels", levels, napi_enumerable),
                 InstanceValue("level", Napi::String::New(env, recscore::level_name(recscore::default_level())),
                               napi_enumerable),
                 InstanceValue("features", features, napi_enumerable),
                 InstanceValue("badMaxLevel", bad_cap ? Napi::String::New(env, cap) : env.Null(), napi_enumerable),
                 InstanceMethod("fmaPeak", &Addon::FmaPeak),
                 InstanceMethod("packPanels", &Addon::PackPanels),
                 InstanceMethod("topK", &Addon::TopK), InstanceMethod("topKAsync", &Addon::TopKAsyncM),
                 InstanceMethod("matrixStats", &Addon::Stats),
                 InstanceMethod("readBandwidth", &Addon::Bandwidth),
                 InstanceMethod("compress", &Addon::CompressM),
                 InstanceMethod("checkCompressed", &Addon::CheckCompressedM)});
  }

 private:
  Napi::Value TopK(const Napi::CallbackInfo& info) { return TopKSync(info, team()); }

  // packPanels({ values, rows, d, out }) [sync]: writes the rows packed in panels (gemm/contract.h)
  // into out, which must hold panel_count(rows) * panel_floats(d) floats.
  Napi::Value PackPanels(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsObject()) throw_type_error(env, "packPanels expects an object");
    Napi::Object o = info[0].As<Napi::Object>();
    auto values = typed_field<float>(o, "values", napi_float32_array, false, nullptr);
    const size_t rows = size_field(o, "rows", 0, false);
    const size_t d = size_field(o, "d", 0, false);
    if (d == 0 || rows > values.length / d) throw_type_error(env, "packPanels: sizes do not match");
    Napi::Value ov = o.Get("out");
    if (!ov.IsTypedArray() || ov.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) throw_type_error(env, "out must be a Float32Array");
    Napi::Float32Array out = ov.As<Napi::Float32Array>();
    if (out.ElementLength() != recscore::panel_count(rows) * recscore::panel_floats(d)) throw_type_error(env, "out has the wrong length");
    recscore::pack_panels(recscore::default_level(), values.data, rows, d, d, out.Data());
    return env.Undefined();
  }

  // fmaPeak({ level, threads, reps }) -> GFLOP/s [sync; benchmarks only]
  Napi::Value FmaPeak(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsObject()) throw_type_error(env, "fmaPeak expects an object");
    Napi::Object o = info[0].As<Napi::Object>();
    Napi::Object lo = Napi::Object::New(env);
    lo.Set("isa", o.Get("level"));
    const recscore::Level level = level_field(lo);
    const size_t threads = std::min<size_t>(size_field(o, "threads", 1, true), 256);
    const size_t reps = std::min<size_t>(size_field(o, "reps", 3, true), 100);
    return Napi::Number::New(env, recscore::fma_peak_gflops(level, static_cast<int>(threads), static_cast<int>(reps)));
  }
  Napi::Value TopKAsyncM(const Napi::CallbackInfo& info) { return TopKAsync(info, team()); }
  Napi::Value Stats(const Napi::CallbackInfo& info) { return MatrixStats(info); }
  Napi::Value Bandwidth(const Napi::CallbackInfo& info) { return ReadBandwidth(info); }
  Napi::Value CompressM(const Napi::CallbackInfo& info) { return Compress(info); }
  Napi::Value CheckCompressedM(const Napi::CallbackInfo& info) { return CheckCompressed(info); }

  Napi::FunctionReference mapped_file_;
  Napi::FunctionReference encoder_;
  std::shared_ptr<recscore::ThreadTeam> team_;
};

}  // namespace

std::shared_ptr<recscore::ThreadTeam> env_team(Napi::Env env) { return env.GetInstanceData<Addon>()->team(); }

}  // namespace recscore_binding

using RecscoreAddon = recscore_binding::Addon;
NODE_API_ADDON(RecscoreAddon)
