#!/bin/sh
# Builds native/core and its C++ tests for linux-arm64 with Debian's cross compiler and runs them
# under qemu-user (scalar level: the kernels' x86 levels are compiled out), then checks that arm64
# and this machine compute the same bits (a digest of the conformance results). Needs the Debian
# packages g++-aarch64-linux-gnu and qemu-user; .ci/run runs it when they are installed.
#   sh scripts/cross-arm64.sh            quick conformance grid
#   RECSCORE_CONFORMANCE=full sh scripts/cross-arm64.sh
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
build=$root/build-arm64
command -v aarch64-linux-gnu-g++ >/dev/null || { echo "cross-arm64: aarch64-linux-gnu-g++ not found (apt-get install g++-aarch64-linux-gnu)" >&2; exit 1; }
command -v qemu-aarch64 >/dev/null || { echo "cross-arm64: qemu-aarch64 not found (apt-get install qemu-user)" >&2; exit 1; }
mkdir -p "$build"
cmake -S "$root" -B "$build" -DRECSCORE_TESTS=ON -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_SYSTEM_NAME=Linux -DCMAKE_SYSTEM_PROCESSOR=aarch64 \
  -DCMAKE_CXX_COMPILER=aarch64-linux-gnu-g++ >/dev/null
cmake --build "$build" --parallel 2 --target recscore_core_tests recscore_conformance_tests
qemu-aarch64 -L /usr/aarch64-linux-gnu "$build/recscore_core_tests"
out=$(qemu-aarch64 -L /usr/aarch64-linux-gnu "$build/recscore_conformance_tests")
echo "$out"
arm=$(echo "$out" | sed -n 's/^digest of the scalar results: //p')
# The same grid natively: a mixed fleet must compute the same bits.
native=$root/build-conformance
cmake -S "$root" -B "$native" -DRECSCORE_TESTS=ON -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$native" --parallel 2 --target recscore_conformance_tests >/dev/null
here=$("$native/recscore_conformance_tests" | sed -n 's/^digest of the scalar results: //p')
if [ "$arm" != "$here" ]; then
  echo "cross-arm64: arm64 and $(uname -m) scalar results differ (digest $arm vs $here)" >&2
  exit 1
fi
echo "cross-arm64: arm64 and $(uname -m) compute the same bits (digest $here)"
