// Prebuilt addons only (RECSCORE_STATIC_RUNTIME): the static libstdc++ of the build host
// (glibc 2.36) refers to arc4random for std::random_device, which recscore never uses; that one
// reference would raise the prebuild's glibc floor from 2.34 to 2.36. This hidden definition
// satisfies it with getrandom(2) (glibc 2.25), so the prebuild loads on Ubuntu 22.04 and RHEL 9.
#include <sys/random.h>

#include <cstdint>

extern "C" __attribute__((visibility("hidden"))) std::uint32_t arc4random(void) {
  std::uint32_t v = 0;
  while (getrandom(&v, sizeof v, 0) != static_cast<ssize_t>(sizeof v)) {
  }
  return v;
}
