#include "catalogue_wrap.h"

#include <cstdint>
#include <string>

#include "../core/compressed_approx.h"
#include "../core/gemm/compact.h"
#include "../core/gemm/contract.h"
#include "args.h"
#include "errors.h"

namespace recscore_binding {
namespace {

// Marks the objects this class made, so that acquire() never unwraps another class's object.
const napi_type_tag kCatalogueTag = {0x5d0c8e1f4a3b2976ull, 0xa41f6e2d9c07b583ull};

// Reads obj[name] as a typed array of exactly `want` elements and pins it; null when an optional
// field is absent.
template <typename T>
const T* pin_field(CatalogueState& st, const Napi::Object& obj, const char* name, napi_typedarray_type type,
                   bool optional, size_t want, const std::string& what) {
  Napi::ObjectReference ref;
  View<T> v = typed_field<T>(obj, name, type, optional, &ref);
  if (!v.present) return nullptr;
  if (v.length != want) {
    throw_type_error(obj.Env(), what + " holds " + std::to_string(v.length) + " values; the catalogue needs " +
                                    std::to_string(want));
  }
  st.pins.push_back({std::move(ref), v.data, v.length});
  return v.data;
}

}  // namespace

recscore::CompressedView CatalogueState::compressed_for(recscore::Level level) const {
  recscore::CompressedView v = compressed;
  if (!has_compressed || !recscore::compact_terms_used(level, v.precision, d)) return v;
  std::call_once(terms_once_, [this] { terms_ = recscore::compact_row_terms(compressed, n, d); });
  v.cnorm = terms_.cnorm.empty() ? nullptr : terms_.cnorm.data();
  return v;
}

Napi::Function CatalogueWrap::Define(Napi::Env env) {
  return DefineClass(env, "Catalogue",
                     {InstanceAccessor<&CatalogueWrap::N>("n"), InstanceAccessor<&CatalogueWrap::D>("d"),
                      InstanceMethod<&CatalogueWrap::Close>("close")});
}

CatalogueWrap::CatalogueWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<CatalogueWrap>(info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) throw_type_error(env, "Catalogue expects an options object");
  Napi::Object o = info[0].As<Napi::Object>();
  auto st = std::make_shared<CatalogueState>();
  st->n = size_field(o, "n", 0, false);
  st->d = size_field(o, "d", 0, false);
  const size_t n = st->n, d = st->d;
  if (d == 0) throw_type_error(env, "d must be positive");
  if (n > static_cast<size_t>(INT32_MAX)) {
    throw make_js_error(env, {ErrorKind::kRange, "catalogue larger than 2^31-1 rows"});
  }
  st->panels = pin_field<float>(*st, o, "panels", napi_float32_array, false,
                                recscore::panel_count(n) * recscore::panel_floats(d), "panels");
  st->bias = pin_field<float>(*st, o, "bias", napi_float32_array, true, n, "bias");
  st->attributes = pin_field<uint32_t>(*st, o, "attributes", napi_uint32_array, true, n, "attributes");

  Napi::Value cv = o.Get("compressed");
  if (!cv.IsUndefined() && !cv.IsNull()) {
    if (!cv.IsObject()) throw_type_error(env, "compressed must be an object");
    Napi::Object c = cv.As<Napi::Object>();
    Napi::Value pv = c.Get("precision");
    const std::string prec = pv.IsString() ? pv.As<Napi::String>().Utf8Value() : "";
    recscore::CompressedView& v = st->compressed;
    if (prec == "int8") {
      v.precision = recscore::Precision::kInt8;
      v.data = pin_field<int8_t>(*st, c, "data", napi_int8_array, false, recscore::i8_compact_elems(n, d),
                                 "compressed.data (int8, packed)");
      v.scale = pin_field<float>(*st, c, "scale", napi_float32_array, false, n, "compressed.scale");
    } else if (prec == "bf16") {
      v.precision = recscore::Precision::kBf16;
      v.data = pin_field<uint16_t>(*st, c, "data", napi_uint16_array, false, recscore::bf16_compact_elems(n, d),
                                   "compressed.data (bf16, packed)");
    } else {
      throw_type_error(env, "compressed.precision must be int8 or bf16");
    }
    v.err = pin_field<float>(*st, c, "err", napi_float32_array, false, n, "compressed.err");
    const float* eb = pin_field<float>(*st, c, "errBias", napi_float32_array, true, n, "compressed.errBias");
    Napi::Value ebv = c.Get("errBias");
    if (st->bias != nullptr && (ebv.IsUndefined() || ebv.IsNull())) {
      throw_type_error(env, "compressed.errBias is required when the catalogue has a bias");
    }
    v.err_bias = st->bias ? eb : nullptr;
    st->has_compressed = true;
  }
  if (napi_type_tag_object(env, info.This(), &kCatalogueTag) != napi_ok) {
    throw make_js_error(env, {ErrorKind::kInternal, "Catalogue: cannot tag the object"});
  }
  n_ = n;
  d_ = d;
  state_ = std::move(st);
}

std::shared_ptr<const CatalogueState> CatalogueWrap::acquire(Napi::Env env, Napi::Value v) {
  bool ours = false;
  if (v.IsObject() && napi_check_object_type_tag(env, v, &kCatalogueTag, &ours) != napi_ok) ours = false;
  if (!ours) throw_type_error(env, "catalogue must be a Catalogue object");
  CatalogueWrap* w = Unwrap(v.As<Napi::Object>());
  if (!w || !w->state_) throw_type_error(env, "catalogue is closed");
  for (const CatalogueState::Pin& p : w->state_->pins) {
    napi_typedarray_type type;
    size_t length = 0;
    void* data = nullptr;
    napi_value buffer;
    size_t offset = 0;
    if (napi_get_typedarray_info(env, p.ref.Value(), &type, &length, &data, &buffer, &offset) != napi_ok ||
        length != p.length || (length > 0 && data != p.data)) {
      throw_type_error(env, "catalogue memory was released (a detached buffer); the catalogue is unusable");
    }
  }
  return w->state_;
}

Napi::Value CatalogueWrap::N(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(n_));
}

Napi::Value CatalogueWrap::D(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(d_));
}

Napi::Value CatalogueWrap::Close(const Napi::CallbackInfo& info) {
  state_.reset();  // calls in flight hold their own share: their pins go when the last completes
  return info.Env().Undefined();
}

}  // namespace recscore_binding
