#!/bin/sh
# Builds and runs the int4 prototype (issue #13 item 5); needs g++ and an AVX-512 VNNI CPU.
set -e
here=$(dirname "$0")
out=${TMPDIR:-/tmp}/recscore-int4-proto
g++ -O2 -std=c++17 -march=native -pthread -o "$out" "$here/proto.cc"
exec "$out"
