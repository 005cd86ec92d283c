// Exception types thrown by native/core. The binding maps them onto JS error classes:
// InvalidArgument -> TypeError, OutOfRange -> RangeError, anything else -> Error.
#pragma once
#include <stdexcept>
#include <string>

namespace recscore {

// A value has the wrong type or shape.
struct InvalidArgument : std::invalid_argument {
  explicit InvalidArgument(const std::string& what) : std::invalid_argument(what) {}
};

// A value is of the right type but outside its allowed range (ids, sizes, k).
struct OutOfRange : std::out_of_range {
  explicit OutOfRange(const std::string& what) : std::out_of_range(what) {}
};

// The operating system refused something (open, mmap).
struct SystemError : std::runtime_error {
  explicit SystemError(const std::string& what) : std::runtime_error(what) {}
};

}  // namespace recscore
