#include "args.h"

#include <cmath>
#include <cstdint>

#include "errors.h"

namespace recscore_binding {

template <typename T>
View<T> typed_field(const Napi::Object& obj, const char* name, napi_typedarray_type type,
                    bool optional, Napi::ObjectReference* pin) {
  Napi::Value v = obj.Get(name);
  if (v.IsUndefined() || v.IsNull()) {
    if (optional) return {};
    throw_type_error(obj.Env(), std::string(name) + " is required");
  }
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != type) {
    throw_type_error(obj.Env(), std::string(name) + " has the wrong typed array type");
  }
  auto arr = v.As<Napi::TypedArrayOf<T>>();
  if (pin) *pin = Napi::Persistent(arr.template As<Napi::Object>());
  return {arr.Data(), arr.ElementLength(), true};
}

template View<float> typed_field<float>(const Napi::Object&, const char*, napi_typedarray_type,
                                        bool, Napi::ObjectReference*);
template View<int32_t> typed_field<int32_t>(const Napi::Object&, const char*, napi_typedarray_type,
                                            bool, Napi::ObjectReference*);
template View<int8_t> typed_field<int8_t>(const Napi::Object&, const char*, napi_typedarray_type, bool,
                                          Napi::ObjectReference*);
template View<uint16_t> typed_field<uint16_t>(const Napi::Object&, const char*, napi_typedarray_type,
                                              bool, Napi::ObjectReference*);
template View<uint32_t> typed_field<uint32_t>(const Napi::Object&, const char*,
                                              napi_typedarray_type, bool, Napi::ObjectReference*);

recscore::Level level_field(const Napi::Object& obj) {
  Napi::Value v = obj.Get("isa");
  if (v.IsUndefined() || v.IsNull()) return recscore::default_level();
  if (!v.IsString()) throw_type_error(obj.Env(), "isa must be a level name");
  const std::string name = v.As<Napi::String>().Utf8Value();
  if (name == "auto") return recscore::default_level();
  recscore::Level level;
  if (!recscore::parse_level(name.c_str(), &level)) throw_type_error(obj.Env(), "isa: unknown level " + name);
  if (!recscore::level_supported(level)) throw_type_error(obj.Env(), "isa: this CPU does not run level " + name);
  return level;
}

size_t size_field(const Napi::Object& obj, const char* name, size_t fallback, bool optional) {
  Napi::Value v = obj.Get(name);
  if (v.IsUndefined() || v.IsNull()) {
    if (optional) return fallback;
    throw_type_error(obj.Env(), std::string(name) + " is required");
  }
  if (!v.IsNumber()) throw_type_error(obj.Env(), std::string(name) + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0) || d != std::floor(d) || d > 9007199254740991.0) {
    throw_type_error(obj.Env(), std::string(name) + " must be a non-negative integer");
  }
  return static_cast<size_t>(d);
}

}  // namespace recscore_binding
