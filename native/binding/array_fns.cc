#include "array_fns.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "../core/compressed.h"
#include "../core/cpu.h"
#include "../core/gemm/compact.h"
#include "../core/gemm/contract.h"
#include "../core/gemm/pack.h"
#include "../core/matrix_stats.h"
#include "args.h"
#include "errors.h"

namespace recscore_binding {
namespace {

Napi::Object options(const Napi::CallbackInfo& info, const char* fn) {
  if (info.Length() < 1 || !info[0].IsObject()) throw_type_error(info.Env(), std::string(fn) + " expects an object");
  return info[0].As<Napi::Object>();
}

std::string precision_field(const Napi::Object& o) {
  Napi::Value pv = o.Get("precision");
  const std::string prec = pv.IsString() ? pv.As<Napi::String>().Utf8Value() : "";
  if (prec != "int8" && prec != "bf16") throw_type_error(o.Env(), "precision must be int8 or bf16");
  return prec;
}

bool bool_field(const Napi::Object& o, const char* name) {
  Napi::Value v = o.Get(name);
  if (v.IsUndefined() || v.IsNull()) return false;
  if (!v.IsBoolean()) throw_type_error(o.Env(), std::string(name) + " must be a boolean");
  return v.As<Napi::Boolean>().Value();
}

Napi::Float32Array out_field(const Napi::Object& o) {
  Napi::Value ov = o.Get("out");
  if (!ov.IsTypedArray() || ov.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
    throw_type_error(o.Env(), "out must be a Float32Array");
  }
  return ov.As<Napi::Float32Array>();
}

template <typename A, typename T>
A copy_out(Napi::Env env, const std::vector<T>& v) {
  A a = A::New(env, v.size());
  if (!v.empty()) std::copy(v.begin(), v.end(), a.Data());
  return a;
}

}  // namespace

Napi::Value MatrixStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = options(info, "matrixStats");
  auto values = typed_field<float>(o, "values", napi_float32_array, false, nullptr);
  const size_t rows = size_field(o, "rows", 0, false);
  const size_t d = size_field(o, "d", 0, false);
  const bool panels = bool_field(o, "panels");
  if (d == 0) throw_type_error(env, "d must be positive");
  if (panels ? values.length / recscore::panel_floats(d) < recscore::panel_count(rows) : rows > values.length / d) {
    throw_type_error(env, panels ? "values holds fewer than the panels of rows x d" : "values holds fewer than rows x d");
  }
  Napi::Value lim = o.Get("normLimit");
  const double limit = lim.IsNumber() ? lim.As<Napi::Number>().DoubleValue() : HUGE_VAL;
  const recscore::MatrixStats st = panels ? recscore::matrix_stats_panels(values.data, rows, d, limit)
                                          : recscore::matrix_stats(values.data, rows, d, limit);
  Napi::Object out = Napi::Object::New(env);
  out.Set("firstNonFinite", Napi::Number::New(env, static_cast<double>(st.first_non_finite)));
  out.Set("maxRowNorm", Napi::Number::New(env, st.max_row_norm));
  out.Set("maxAbs", Napi::Number::New(env, st.max_abs));
  out.Set("firstRowAbove", Napi::Number::New(env, static_cast<double>(st.first_row_above)));
  out.Set("rowNormAbove", Napi::Number::New(env, st.row_norm_above));
  return out;
}

Napi::Value CheckCompressed(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = options(info, "checkCompressed");
  auto panels = typed_field<float>(o, "panels", napi_float32_array, false, nullptr);
  auto bias = typed_field<float>(o, "bias", napi_float32_array, true, nullptr);
  auto err = typed_field<float>(o, "err", napi_float32_array, false, nullptr);
  auto eb = typed_field<float>(o, "errBias", napi_float32_array, true, nullptr);
  const size_t rows = size_field(o, "rows", 0, false);
  const size_t d = size_field(o, "d", 0, false);
  const std::string prec = precision_field(o);
  if (d == 0) throw_type_error(env, "d must be positive");
  recscore::CompressedView v;
  size_t data_len = 0, need = 0;
  bool scale_ok = true;
  if (prec == "int8") {
    auto q = typed_field<int8_t>(o, "data", napi_int8_array, false, nullptr);
    auto sc = typed_field<float>(o, "scale", napi_float32_array, false, nullptr);
    v.precision = recscore::Precision::kInt8;
    v.data = q.data;
    v.scale = sc.data;
    data_len = q.length;
    need = recscore::i8_compact_elems(rows, d);
    scale_ok = sc.length >= rows;
  } else {
    auto h = typed_field<uint16_t>(o, "data", napi_uint16_array, false, nullptr);
    v.precision = recscore::Precision::kBf16;
    v.data = h.data;
    data_len = h.length;
    need = recscore::bf16_compact_elems(rows, d);
  }
  if (panels.length / recscore::panel_floats(d) < recscore::panel_count(rows) || data_len < need || !scale_ok ||
      err.length < rows || (bias.present && (bias.length < rows || !eb.present)) || (eb.present && eb.length < rows)) {
    throw_type_error(env, "checkCompressed: sizes do not match");
  }
  if (rows == 0) return env.Null();
  v.err = err.data;
  v.err_bias = bias.present ? eb.data : nullptr;
  recscore::CompressedFault f;
  try {
    f = recscore::check_compressed(panels.data, rows, d, bias.present ? bias.data : nullptr, v);
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

Napi::Value Compress(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = options(info, "compress");
  auto values = typed_field<float>(o, "values", napi_float32_array, false, nullptr);
  auto bias = typed_field<float>(o, "bias", napi_float32_array, true, nullptr);
  const size_t rows = size_field(o, "rows", 0, false);
  const size_t d = size_field(o, "d", 0, false);
  if (d == 0 || rows > values.length / d || (bias.present && bias.length < rows)) {
    throw_type_error(env, "compress: sizes do not match");
  }
  const std::string prec = precision_field(o);
  recscore::Compressed c;
  try {
    c = recscore::compress(values.data, rows, d, bias.present ? bias.data : nullptr,
                           prec == "int8" ? recscore::Precision::kInt8 : recscore::Precision::kBf16);
  } catch (...) {
    throw make_js_error(env, capture_current_exception());
  }
  Napi::Object out = Napi::Object::New(env);
  if (prec == "int8") {
    out.Set("data", copy_out<Napi::Int8Array>(env, c.q));
    out.Set("scale", copy_out<Napi::Float32Array>(env, c.scale));
  } else {
    out.Set("data", copy_out<Napi::Uint16Array>(env, c.h));
  }
  out.Set("err", copy_out<Napi::Float32Array>(env, c.err));
  if (!c.err_bias.empty()) out.Set("errBias", copy_out<Napi::Float32Array>(env, c.err_bias));
  return out;
}

Napi::Value PackCompact(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = options(info, "packCompact");
  const std::string prec = precision_field(o);
  const size_t rows = size_field(o, "rows", 0, false);
  const size_t d = size_field(o, "d", 0, false);
  if (d == 0) throw_type_error(env, "d must be positive");
  if (prec == "int8") {
    auto q = typed_field<int8_t>(o, "data", napi_int8_array, false, nullptr);
    if (q.length / d != rows || q.length % d != 0) throw_type_error(env, "packCompact: data must hold rows x d values");
    auto out = Napi::Int8Array::New(env, recscore::i8_compact_elems(rows, d));
    if (rows) recscore::pack_compact(q.data, rows, d, recscore::kI8Width, out.Data());
    return out;
  }
  auto h = typed_field<uint16_t>(o, "data", napi_uint16_array, false, nullptr);
  if (h.length / d != rows || h.length % d != 0) throw_type_error(env, "packCompact: data must hold rows x d values");
  auto out = Napi::Uint16Array::New(env, recscore::bf16_compact_elems(rows, d));
  if (rows) recscore::pack_compact(h.data, rows, d, recscore::kBf16Width, out.Data());
  return out;
}

Napi::Value PackPanels(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = options(info, "packPanels");
  auto values = typed_field<float>(o, "values", napi_float32_array, false, nullptr);
  const size_t rows = size_field(o, "rows", 0, false);
  const size_t d = size_field(o, "d", 0, false);
  if (d == 0 || rows > values.length / d) throw_type_error(env, "packPanels: sizes do not match");
  Napi::Float32Array out = out_field(o);
  if (out.ElementLength() != recscore::panel_count(rows) * recscore::panel_floats(d)) throw_type_error(env, "out has the wrong length");
  if (rows) recscore::pack_panels(recscore::default_level(), values.data, rows, d, d, out.Data());
  return env.Undefined();
}

}  // namespace recscore_binding
