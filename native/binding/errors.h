// Maps native/core exceptions onto JS errors with a stable `code`, for sync throws and for
// AsyncWorker rejections alike.
#pragma once
#include <napi.h>

#include <exception>
#include <string>

namespace recscore_binding {

enum class ErrorKind { kNone, kType, kRange, kSystem, kInternal };

struct CapturedError {
  ErrorKind kind = ErrorKind::kNone;
  std::string message;
  explicit operator bool() const { return kind != ErrorKind::kNone; }
};

// [sync] Classifies the exception currently being handled (call inside a catch block).
CapturedError capture_current_exception();

// [sync, JS thread] Builds the JS error for a captured one.
Napi::Error make_js_error(Napi::Env env, const CapturedError& e);

// [sync, JS thread] Throws a TypeError with code ERR_INVALID_ARG.
[[noreturn]] void throw_type_error(Napi::Env env, const std::string& message);

}  // namespace recscore_binding
