/**
 * The ONNX protobuf schema for the fuzzer, taken from the project's generated code
 * (src/onnx/proto/onnx_pb.ts) without compiling it: the embedded file descriptor and the message
 * indices are read from the source, so the fuzzer always encodes with the very schema recscore
 * decodes with.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { fileDesc, messageDesc } from '@bufbuild/protobuf/codegenv2';

const SRC = fileURLToPath(new URL('../../src/onnx/proto/onnx_pb.ts', import.meta.url));
const text = readFileSync(SRC, 'utf8');
const file = fileDesc(/fileDesc\("([^"]+)"\)/.exec(text)[1]);

function schema(name) {
  const m = new RegExp(`export const ${name}\\b[^=]*=\\s*/\\*@__PURE__\\*/\\s*messageDesc\\(file_onnx, ([\\d, ]+)\\)`).exec(text);
  if (!m) throw new Error(`${name} not found in ${SRC}`);
  const path = m[1].split(',').map((s) => Number(s.trim()));
  return messageDesc(file, ...path);
}

export const ModelProtoSchema = schema('ModelProtoSchema');
export const AttributeProtoSchema = schema('AttributeProtoSchema');
export const TensorProtoSchema = schema('TensorProtoSchema');
export const NodeProtoSchema = schema('NodeProtoSchema');
export const StringStringEntryProtoSchema = schema('StringStringEntryProtoSchema');

/** AttributeProto.AttributeType */
export const Attr = { FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, GRAPH: 5, FLOATS: 6, INTS: 7, STRINGS: 8 };
/** TensorProto.DataType */
export const DT = { FLOAT: 1, UINT8: 2, INT8: 3, INT32: 6, INT64: 7, STRING: 8, BOOL: 9, FLOAT16: 10, DOUBLE: 11 };

export const decodeModel = (bytes) => fromBinary(ModelProtoSchema, bytes, { readUnknownFields: false });
export const encodeModel = (m) => toBinary(ModelProtoSchema, m);
export { create };
