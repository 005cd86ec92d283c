// Module entry. Per-environment state (the class constructors) lives in instance data, so the
// addon loads in any number of worker threads at once.
#include <napi.h>

#include <algorithm>
#include <memory>
#include <thread>

#include "../core/bandwidth.h"
#include "../core/compressed.h"
#include "../core/cpu.h"
#include "../core/matrix_stats.h"
#include "args.h"
#include "encoder_wrap.h"
#include "env_team.h"
#include "errors.h"
#include "mapped_file_wrap.h"
#include "score_wrap.h"

namespace recscore_binding {
namespace {

// matrixStats(values: Float32Array, rows, d) -> { firstNonFinite, maxRowNorm, maxAbs } [sync]
Napi::Value MatrixStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) throw_type_error(env, "matrixStats expects an object");
  Napi::Object o = info[0].As<Napi::Object>();
  auto values = typed_field<float>(o, "values", napi_float32_array, false, nullptr);
  size_t rows = size_field(o, "rows", 0, false);
  size_t d = size_field(o, "d", 0, false);
  if (d == 0 || rows > values.length / d) throw_type_error(env, "values holds fewer than rows x d");
  recscore::MatrixStats st = recscore::matrix_stats(values.data, rows, d);
  Napi::Object out = Napi::Object::New(env);
  out.Set("firstNonFinite", Napi::Number::New(env, static_cast<double>(st.first_non_finite)));
  out.Set("maxRowNorm", Napi::Number::New(env, st.max_row_norm));
  out.Set("maxAbs", Napi::Number::New(env, st.max_abs));
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
    Napi::Array isas = Napi::Array::New(env);
    isas.Set(0u, Napi::String::New(env, "scalar"));
    if (recscore::cpu_has_avx2_fma()) isas.Set(1u, Napi::String::New(env, "avx2"));
    DefineAddon(exports,
                {InstanceValue("MappedFile", mapped_file_.Value(), napi_enumerable),
                 InstanceValue("NativeEncoder", encoder_.Value(), napi_enumerable),
                 InstanceValue("isas", isas, napi_enumerable),
                 InstanceValue("bestIsa", Napi::String::New(env, recscore::isa_name(recscore::best_isa())),
                               napi_enumerable),
                 InstanceMethod("topK", &Addon::TopK), InstanceMethod("topKAsync", &Addon::TopKAsyncM),
                 InstanceMethod("matrixStats", &Addon::Stats),
                 InstanceMethod("readBandwidth", &Addon::Bandwidth),
                 InstanceMethod("compress", &Addon::CompressM)});
  }

 private:
  Napi::Value TopK(const Napi::CallbackInfo& info) { return TopKSync(info, team()); }
  Napi::Value TopKAsyncM(const Napi::CallbackInfo& info) { return TopKAsync(info, team()); }
  Napi::Value Stats(const Napi::CallbackInfo& info) { return MatrixStats(info); }
  Napi::Value Bandwidth(const Napi::CallbackInfo& info) { return ReadBandwidth(info); }
  Napi::Value CompressM(const Napi::CallbackInfo& info) { return Compress(info); }

  Napi::FunctionReference mapped_file_;
  Napi::FunctionReference encoder_;
  std::shared_ptr<recscore::ThreadTeam> team_;
};

}  // namespace

std::shared_ptr<recscore::ThreadTeam> env_team(Napi::Env env) { return env.GetInstanceData<Addon>()->team(); }

}  // namespace recscore_binding

using RecscoreAddon = recscore_binding::Addon;
NODE_API_ADDON(RecscoreAddon)
