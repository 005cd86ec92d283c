// Reading typed arrays and numbers out of JS option objects, with the checks the binding keeps
// even though TypeScript validates first.
#pragma once
#include <napi.h>

#include <cstddef>
#include <string>

#include "../core/platform/levels.h"

namespace recscore_binding {

template <typename T>
struct View {
  const T* data = nullptr;  // may be null for an empty array: test `present`
  size_t length = 0;
  bool present = false;      // the field was given (possibly empty)
};

// [sync, JS thread] obj[name] as a typed array of type `type`, pinned in `pin` so its memory
// stays valid until the reference is released. Missing/undefined/null gives an empty view when
// optional, a TypeError otherwise.
template <typename T>
View<T> typed_field(const Napi::Object& obj, const char* name, napi_typedarray_type type,
                    bool optional, Napi::ObjectReference* pin);

// [sync, JS thread] obj.isa as a CPU level: absent or 'auto' gives the default level; a level
// this CPU does not run, or an unknown name, is a TypeError (ERR_INVALID_ARG).
recscore::Level level_field(const Napi::Object& obj);

// [sync, JS thread] obj[name] as a non-negative integer (default when absent).
size_t size_field(const Napi::Object& obj, const char* name, size_t fallback, bool optional);

}  // namespace recscore_binding
