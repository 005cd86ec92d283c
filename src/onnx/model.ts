/**
 * Reading ONNX models (code generated from the ONNX schema for @bufbuild/protobuf, see
 * src/onnx/proto): the graph, its initializers as typed arrays (raw, typed fields or
 * external-data files), and attribute values. The wire format is checked strictly first
 * (wire.ts): corrupt bytes are a FormatError, never a different model.
 */
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { dirname } from 'node:path';

import { fromBinary } from '@bufbuild/protobuf';

import { FileError, FormatError, ModelError } from '../errors.js';
import {
  AttributeProto_AttributeType as AttrType,
  type GraphProto,
  type ModelProto,
  ModelProtoSchema,
  type NodeProto,
  TensorProto_DataLocation as DataLocation,
  TensorProto_DataType as DataType,
  type TensorProto,
  type TensorShapeProto_Dimension,
} from './proto/onnx_pb.js';
import { checkTensors, externalLocation, num, size } from './tensors.js';
import { checkWire } from './wire.js';

export { num, size } from './tensors.js';


export type DType = 'float32' | 'float64' | 'int64' | 'int32' | 'bool' | 'other';

/** A constant tensor: floats as Float32Array, everything else as plain numbers. */
export interface Tensor {
  dtype: DType;
  dims: number[];
  data: Float32Array | number[];
}


const ELEM: Record<number, DType> = {
  [DataType.FLOAT]: 'float32',
  [DataType.DOUBLE]: 'float64',
  [DataType.INT64]: 'int64',
  [DataType.INT32]: 'int32',
  [DataType.BOOL]: 'bool',
};

/** A named dimension (non-empty dim_param) as its name; a dim_value, or an unset dimension (0), as a number. */
export function dimOf(d: TensorShapeProto_Dimension): number | string {
  if (d.value.case === 'dimParam' && d.value.value) return d.value.value;
  return d.value.case === 'dimValue' ? num(d.value.value) : 0;
}

export function dtypeOf(elemType: number | null | undefined): DType {
  return ELEM[elemType ?? 0] ?? 'other';
}

export interface LoadedModel {
  graph: GraphProto;
  /** The default domain's opset, and the ONNX IR version. */
  opset: number;
  irVersion: number;
  /** The bytes of the model, for onnxruntime (external data resolved relative to `dir`). */
  bytes: Uint8Array;
  dir: string | null;
  path: string | null;
}

/**
 * Reads a whole file that must be a regular file: opened without blocking (a FIFO would block
 * the open), typed and sized by fstat of that descriptor, so a FIFO or a device never blocks
 * and a file swapped meanwhile is not read. FileError naming `what`, with Node's error as `cause`.
 */
export function readRegularFile(path: string, what: string): Uint8Array {
  const osError = (e: unknown): FileError => new FileError(path, `cannot read ${what}: ${(e as Error).message}`, { cause: e });
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    throw osError(e);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new FileError(path, `${what} is not a regular file`);
    const out = new Uint8Array(st.size);
    for (let off = 0; off < out.length; ) {
      const n = readSync(fd, out, off, out.length - off, off);
      if (n === 0) throw new FileError(path, `${what} shrank while it was read`);
      off += n;
    }
    return out;
  } catch (e) {
    throw e instanceof FileError ? e : osError(e);
  } finally {
    closeSync(fd);
  }
}

/**
 * Parses an ONNX file or buffer. FileError when the file cannot be read, FormatError for bytes
 * that are not valid protobuf of the ONNX schema (truncated, wrong wire types, invalid UTF-8),
 * ModelError for a valid message without a graph.
 */
export function loadModel(source: string | Uint8Array): LoadedModel {
  const path = typeof source === 'string' ? source : null;
  const bytes = typeof source === 'string' ? readRegularFile(source, 'the model') : source;
  const where = path ?? 'model bytes';
  let model: ModelProto;
  try {
    checkWire(bytes, ModelProtoSchema);
    // Unknown fields (newer ONNX versions, or fields the schema copy lacks) are skipped, not kept.
    model = fromBinary(ModelProtoSchema, bytes, { readUnknownFields: false });
  } catch (e) {
    throw new FormatError(where, `not a valid ONNX protobuf: ${(e as Error).message}`, { cause: e });
  }
  if (!model.graph || model.graph.node.length === 0) {
    throw new ModelError(`${where}: not an ONNX model (no graph)`);
  }
  checkTensors(model.graph, path ? dirname(path) : null, where);
  const opset = Math.max(0, ...model.opsetImport.filter((o) => !o.domain || o.domain === 'ai.onnx').map((o) => num(o.version)));
  return { graph: model.graph, opset, irVersion: num(model.irVersion), bytes, dir: path ? dirname(path) : null, path };
}

function externalBytes(t: TensorProto, dir: string | null, where: string): Uint8Array {
  const { file, offset, length } = externalLocation(t, dir, where);
  const data = readRegularFile(file, `the external data of tensor ${t.name} (${where})`);
  const n = length ?? data.length - offset;
  if (!(n >= 0 && offset + n <= data.length)) throw new ModelError(`${where}: tensor ${t.name}: external data ${file} is truncated`);
  return data.subarray(offset, offset + n);
}

/** An initializer or Constant value as a Tensor. */
export function tensorOf(t: TensorProto, dir: string | null, where: string): Tensor {
  const dims = t.dims.map(num);
  const dtype = dtypeOf(t.dataType);
  const n = size(dims);
  let raw: Uint8Array | null = null;
  if (t.dataLocation === DataLocation.EXTERNAL) raw = externalBytes(t, dir, where);
  else if (t.rawData.length > 0) raw = t.rawData;
  const bad = (): never => {
    throw new ModelError(`${where}: tensor ${t.name} holds the wrong amount of data for shape [${dims.join(', ')}]`);
  };
  if (dims.some((d) => !Number.isSafeInteger(d) || d < 0)) throw new ModelError(`${where}: tensor ${t.name} has shape [${dims.join(', ')}]`);
  if (dtype === 'float32') {
    let data: Float32Array;
    if (raw) {
      if (raw.byteLength !== n * 4) bad();
      data = new Float32Array(n);
      new Uint8Array(data.buffer).set(raw);
    } else {
      data = Float32Array.from(t.floatData);
      if (data.length !== n) bad();
    }
    return { dtype, dims, data };
  }
  if (dtype === 'int64' || dtype === 'int32' || dtype === 'bool' || dtype === 'float64') {
    let data: number[];
    if (raw) {
      const width = dtype === 'int64' || dtype === 'float64' ? 8 : dtype === 'int32' ? 4 : 1;
      if (raw.byteLength !== n * width) bad();
      const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
      data = new Array<number>(n);
      for (let i = 0; i < n; i++) {
        data[i] =
          dtype === 'int64'
            ? Number(view.getBigInt64(i * 8, true))
            : dtype === 'float64'
              ? view.getFloat64(i * 8, true)
              : dtype === 'int32'
                ? view.getInt32(i * 4, true)
                : view.getUint8(i);
      }
    } else if (dtype === 'int64') {
      data = t.int64Data.map(num);
    } else if (dtype === 'float64') {
      data = t.doubleData.slice();
    } else {
      data = t.int32Data.slice();
    }
    if (data.length !== n) bad();
    return { dtype, dims, data };
  }
  return { dtype: 'other', dims, data: [] };
}

export type AttrValue = number | string | number[] | Tensor | null;

export function attributes(node: NodeProto, dir: string | null, where: string): Map<string, AttrValue> {
  const m = new Map<string, AttrValue>();
  for (const a of node.attribute) {
    let v: AttrValue = null;
    switch (a.type) {
      case AttrType.FLOAT:
        v = a.f;
        break;
      case AttrType.INT:
        v = num(a.i);
        break;
      case AttrType.STRING:
        v = Buffer.from(a.s).toString('utf8');
        break;
      case AttrType.FLOATS:
        v = a.floats.slice();
        break;
      case AttrType.INTS:
        v = a.ints.map(num);
        break;
      case AttrType.STRINGS:
        v = a.strings.map((s) => Buffer.from(s).toString('utf8')) as unknown as number[];
        break;
      case AttrType.TENSOR:
        v = a.t ? tensorOf(a.t, dir, where) : null;
        break;
      default:
        v = null;
    }
    m.set(a.name, v);
  }
  return m;
}
