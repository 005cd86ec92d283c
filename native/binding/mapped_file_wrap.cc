#include "mapped_file_wrap.h"

#include <string>

#include "errors.h"

namespace recscore_binding {

Napi::Function MappedFileWrap::Define(Napi::Env env) {
  return DefineClass(env, "MappedFile",
                     {InstanceAccessor<&MappedFileWrap::Buffer>("buffer"),
                      InstanceAccessor<&MappedFileWrap::Size>("size"),
                      InstanceMethod<&MappedFileWrap::Close>("close")});
}

MappedFileWrap::MappedFileWrap(const Napi::CallbackInfo& info)
    : Napi::ObjectWrap<MappedFileWrap>(info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) throw_type_error(env, "path must be a string");
  const std::string path = info[0].As<Napi::String>().Utf8Value();
  int fd = -1;
  if (info.Length() >= 2 && !info[1].IsUndefined()) {
    const double v = info[1].IsNumber() ? info[1].As<Napi::Number>().DoubleValue() : -1;
    if (!(v >= 0 && v <= 2147483647.0 && v == static_cast<double>(static_cast<int>(v)))) {
      throw_type_error(env, "fd must be a file descriptor");
    }
    fd = static_cast<int>(v);
  }
  try {
    file_ = fd >= 0 ? std::make_shared<recscore::MappedFile>(fd, path) : std::make_shared<recscore::MappedFile>(path);
  } catch (...) {
    throw make_js_error(env, capture_current_exception());
  }
  Napi::ArrayBuffer ab;
  if (file_->size() == 0) {
    ab = Napi::ArrayBuffer::New(env, 0);
  } else {
    auto* hold = new std::shared_ptr<recscore::MappedFile>(file_);
    ab = Napi::ArrayBuffer::New(
        env, file_->data(), file_->size(),
        [](Napi::Env, void*, std::shared_ptr<recscore::MappedFile>* h) { delete h; }, hold);
  }
  buffer_ = Napi::Weak(ab);
}

Napi::Value MappedFileWrap::Buffer(const Napi::CallbackInfo& info) {
  if (buffer_.IsEmpty() || buffer_.Value().IsEmpty()) {
    throw make_js_error(info.Env(), {ErrorKind::kSystem, "the mapped file is closed"});
  }
  return buffer_.Value();
}

Napi::Value MappedFileWrap::Size(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), file_ ? static_cast<double>(file_->size()) : 0);
}

Napi::Value MappedFileWrap::Close(const Napi::CallbackInfo& info) {
  // Detach first so no JS view can reach the memory, then drop our share of the mapping. The
  // buffer's finalizer drops the other share when V8 releases the backing store.
  if (!buffer_.IsEmpty()) {
    Napi::ArrayBuffer ab = buffer_.Value();
    if (!ab.IsEmpty() && !ab.IsDetached() && ab.ByteLength() > 0) ab.Detach();
    buffer_.Reset();
  }
  file_.reset();
  return info.Env().Undefined();
}

}  // namespace recscore_binding
