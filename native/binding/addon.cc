// Module entry. Per-environment state (the class constructors) lives in instance data, so the
// addon loads in any number of worker threads at once.
#include <napi.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>

#include "../core/bandwidth.h"
#include "../core/cpu.h"
#include "../core/platform/fma_peak.h"
#include "../core/thread_team.h"
#include "args.h"
#include "array_fns.h"
#include "catalogue_wrap.h"
#include "encoder_wrap.h"
#include "env_team.h"
#include "errors.h"
#include "mapped_file_wrap.h"
#include "score_wrap.h"

namespace recscore_binding {
namespace {

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

// setSpin(microseconds): the idle spin window of the process's helper teams (thread_team.h), an
// integer 0..100000 (0: idle helpers sleep at once, the default) [sync]
Napi::Value SetSpin(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Value v = info.Length() > 0 ? info[0] : env.Undefined();
  const double us = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
  if (!v.IsNumber() || !(us >= 0 && us <= recscore::ThreadTeam::kMaxSpinUs) || us != std::floor(us)) {
    std::string shown;
    switch (v.Type()) {
      case napi_number:
      case napi_boolean: shown = v.ToString().Utf8Value(); break;
      case napi_string: shown = "'" + v.As<Napi::String>().Utf8Value() + "'"; break;
      case napi_undefined: shown = "undefined"; break;
      case napi_null: shown = "null"; break;
      case napi_bigint: shown = "a bigint"; break;
      case napi_symbol: shown = "a symbol"; break;
      case napi_function: shown = "a function"; break;
      default: shown = "an object"; break;
    }
    throw_type_error(env, "setSpin: microseconds must be an integer in 0..100000, got " + shown);
  }
  recscore::ThreadTeam::set_spin_us(static_cast<uint32_t>(us));
  return env.Undefined();
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
    catalogue_ = Napi::Persistent(CatalogueWrap::Define(env));
    // Levels this CPU runs, lowest first (platform/levels.h is the one list of names).
    // allLevels: every level this build knows (TS derives its list from it, never spells it).
    Napi::Array levels = Napi::Array::New(env), all_levels = Napi::Array::New(env);
    for (int i = 0; i < recscore::kLevelCount; ++i) {
      const auto l = static_cast<recscore::Level>(i);
      all_levels.Set(all_levels.Length(), Napi::String::New(env, recscore::level_name(l)));
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
                 InstanceValue("Catalogue", catalogue_.Value(), napi_enumerable),
                 InstanceValue("levels", levels, napi_enumerable),
                 InstanceValue("allLevels", all_levels, napi_enumerable),
                 InstanceValue("level", Napi::String::New(env, recscore::level_name(recscore::default_level())),
                               napi_enumerable),
                 InstanceValue("features", features, napi_enumerable),
                 InstanceValue("badMaxLevel", bad_cap ? Napi::String::New(env, cap) : env.Null(), napi_enumerable),
                 InstanceMethod("fmaPeak", &Addon::FmaPeak),
                 InstanceMethod("packPanels", &Addon::PackPanelsM),
                 InstanceMethod("packCompact", &Addon::PackCompactM),
                 InstanceMethod("setSpin", &Addon::SetSpinM),
                 InstanceMethod("topK", &Addon::TopK), InstanceMethod("topKAsync", &Addon::TopKAsyncM),
                 InstanceMethod("matrixStats", &Addon::Stats),
                 InstanceMethod("readBandwidth", &Addon::Bandwidth),
                 InstanceMethod("compress", &Addon::CompressM),
                 InstanceMethod("checkCompressed", &Addon::CheckCompressedM)});
  }

 private:
  Napi::Value TopK(const Napi::CallbackInfo& info) { return TopKSync(info, team()); }

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
  Napi::Value PackPanelsM(const Napi::CallbackInfo& info) { return PackPanels(info); }
  Napi::Value PackCompactM(const Napi::CallbackInfo& info) { return PackCompact(info); }
  Napi::Value SetSpinM(const Napi::CallbackInfo& info) { return SetSpin(info); }

  Napi::FunctionReference mapped_file_;
  Napi::FunctionReference encoder_;
  Napi::FunctionReference catalogue_;
  std::shared_ptr<recscore::ThreadTeam> team_;
};

}  // namespace

std::shared_ptr<recscore::ThreadTeam> env_team(Napi::Env env) { return env.GetInstanceData<Addon>()->team(); }

}  // namespace recscore_binding

using RecscoreAddon = recscore_binding::Addon;
NODE_API_ADDON(RecscoreAddon)
