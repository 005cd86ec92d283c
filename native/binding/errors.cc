#include "errors.h"

#include <new>

#include "../core/errors.h"

namespace recscore_binding {

CapturedError capture_current_exception() {
  try {
    throw;
  } catch (const recscore::InvalidArgument& e) {
    return {ErrorKind::kType, e.what()};
  } catch (const recscore::OutOfRange& e) {
    return {ErrorKind::kRange, e.what()};
  } catch (const recscore::SystemError& e) {
    return {ErrorKind::kSystem, e.what()};
  } catch (const std::bad_alloc&) {
    return {ErrorKind::kRange, "out of memory"};
  } catch (const std::exception& e) {
    return {ErrorKind::kInternal, e.what()};
  } catch (...) {
    return {ErrorKind::kInternal, "unknown native error"};
  }
}

Napi::Error make_js_error(Napi::Env env, const CapturedError& e) {
  Napi::Error err;
  const char* code = "ERR_NATIVE";
  switch (e.kind) {
    case ErrorKind::kType:
      err = Napi::TypeError::New(env, e.message);
      code = "ERR_INVALID_ARG";
      break;
    case ErrorKind::kRange:
      err = Napi::RangeError::New(env, e.message);
      code = "ERR_OUT_OF_RANGE";
      break;
    case ErrorKind::kSystem:
      err = Napi::Error::New(env, e.message);
      code = "ERR_SYSTEM";
      break;
    default:
      err = Napi::Error::New(env, e.message);
      break;
  }
  err.Set("code", Napi::String::New(env, code));
  return err;
}

void throw_type_error(Napi::Env env, const std::string& message) {
  throw make_js_error(env, {ErrorKind::kType, message});
}

}  // namespace recscore_binding
