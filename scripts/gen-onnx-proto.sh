#!/bin/sh
# Regenerates src/onnx/proto/onnx_pb.ts from src/onnx/proto/onnx.proto.
# Run after `npm install`: npm run gen:onnx-proto (or sh scripts/gen-onnx-proto.sh, from anywhere).
# Needs protoc (3.x or newer) on PATH, or PROTOC=/path/to/protoc; protoc-gen-es comes from the
# devDependencies, or PROTOC_GEN_ES=/path/to/protoc-gen-es. The output is checked in: building
# and testing need neither.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
protoc=${PROTOC:-protoc}
plugin=${PROTOC_GEN_ES:-$root/node_modules/.bin/protoc-gen-es}
dir=$root/src/onnx/proto

command -v "$protoc" >/dev/null 2>&1 || { echo "gen-onnx-proto: $protoc not found (install protoc or set PROTOC)" >&2; exit 1; }
[ -x "$plugin" ] || { echo "gen-onnx-proto: $plugin not found (npm install, or set PROTOC_GEN_ES)" >&2; exit 1; }

"$protoc" \
  --plugin=protoc-gen-es="$plugin" \
  --es_out="$dir" \
  --es_opt=target=ts,import_extension=js \
  --proto_path="$dir" \
  onnx.proto

echo "gen-onnx-proto: wrote src/onnx/proto/onnx_pb.ts"
