/**
 * Every tensor stored in a model (initializers, Constant values, tensors in attributes and
 * subgraphs) holds exactly the data its type and shape say, checked when the model is read and
 * whatever backend runs it: onnxruntime crashes the process on some tensors that do not.
 */
import { closeSync, constants, fstatSync, openSync } from 'node:fs';
import { isAbsolute, join, normalize } from 'node:path';

import { FileError, ModelError } from '../errors.js';
import { type GraphProto, TensorProto_DataLocation as DataLocation, TensorProto_DataType as DT, type TensorProto } from './proto/onnx_pb.js';

/** An int64 field (bigint) or a plain number as a number; 0 when absent. */
export const num = (v: number | bigint | null | undefined): number => (v === null || v === undefined ? 0 : Number(v));

export function size(dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

/** Where a tensor's external data lives: the file (inside the model's folder) and the byte range. */
export function externalLocation(t: TensorProto, dir: string | null, where: string): { file: string; offset: number; length: number | null } {
  const kv = new Map(t.externalData.map((e) => [e.key, e.value]));
  const location = kv.get('location');
  if (!location) throw new ModelError(`${where}: tensor ${t.name}: external data without a location`);
  if (!dir) throw new ModelError(`${where}: tensor ${t.name} keeps its data in ${location}; load the model from a path, not bytes`);
  if (isAbsolute(location) || normalize(location).startsWith('..')) {
    throw new ModelError(`${where}: tensor ${t.name}: external data location ${location} is outside the model's folder`);
  }
  const int = (k: string): number | null => {
    const v = kv.get(k);
    if (v === undefined) return null;
    if (!/^\d+$/.test(v) || !Number.isSafeInteger(Number(v))) throw new ModelError(`${where}: tensor ${t.name}: external data ${k} ${JSON.stringify(v)} is not a byte count`);
    return Number(v);
  };
  return { file: join(dir, location), offset: int('offset') ?? 0, length: int('length') };
}

/** Bytes per element in raw_data, and the typed field that holds the values otherwise (per element). */
const LAYOUT: Record<number, { width: number; field: keyof TensorProto; perElement: number }> = {
  [DT.FLOAT]: { width: 4, field: 'floatData', perElement: 1 },
  [DT.UINT8]: { width: 1, field: 'int32Data', perElement: 1 },
  [DT.INT8]: { width: 1, field: 'int32Data', perElement: 1 },
  [DT.UINT16]: { width: 2, field: 'int32Data', perElement: 1 },
  [DT.INT16]: { width: 2, field: 'int32Data', perElement: 1 },
  [DT.INT32]: { width: 4, field: 'int32Data', perElement: 1 },
  [DT.INT64]: { width: 8, field: 'int64Data', perElement: 1 },
  [DT.BOOL]: { width: 1, field: 'int32Data', perElement: 1 },
  [DT.FLOAT16]: { width: 2, field: 'int32Data', perElement: 1 },
  [DT.DOUBLE]: { width: 8, field: 'doubleData', perElement: 1 },
  [DT.UINT32]: { width: 4, field: 'uint64Data', perElement: 1 },
  [DT.UINT64]: { width: 8, field: 'uint64Data', perElement: 1 },
  [DT.COMPLEX64]: { width: 8, field: 'floatData', perElement: 2 },
  [DT.COMPLEX128]: { width: 16, field: 'doubleData', perElement: 2 },
  [DT.BFLOAT16]: { width: 2, field: 'int32Data', perElement: 1 },
};

function externalSize(t: TensorProto, dir: string | null, where: string): number {
  const { file, offset, length } = externalLocation(t, dir, where);
  let fileSize: number;
  try {
    const fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK);
    try {
      const st = fstatSync(fd);
      if (!st.isFile()) throw new FileError(file, `the external data of tensor ${t.name} (${where}) is not a regular file`);
      fileSize = st.size;
    } finally {
      closeSync(fd);
    }
  } catch (e) {
    if (e instanceof FileError) throw e;
    throw new FileError(file, `cannot read the external data of tensor ${t.name} (${where}): ${(e as Error).message}`, { cause: e });
  }
  const n = length ?? fileSize - offset;
  if (!(n >= 0 && offset + n <= fileSize)) throw new ModelError(`${where}: tensor ${t.name}: external data ${file} is truncated`);
  return n;
}

function checkTensor(t: TensorProto, dir: string | null, where: string): void {
  const dims = t.dims.map(num);
  const bad = (why: string): never => {
    throw new ModelError(`${where}: tensor ${t.name} ${why}`);
  };
  if (dims.some((d) => !Number.isSafeInteger(d) || d < 0)) bad(`has shape [${dims.join(', ')}]`);
  const n = size(dims);
  if (t.dataType === DT.STRING) {
    if (t.stringData.length !== n) bad(`holds ${t.stringData.length} strings for shape [${dims.join(', ')}]`);
    return;
  }
  const layout = LAYOUT[t.dataType];
  if (!layout) return; // UNDEFINED, or a type newer than the schema copy (its value was dropped)
  const external = t.dataLocation === DataLocation.EXTERNAL;
  const rawBytes = external ? externalSize(t, dir, where) : t.rawData.length;
  const typed = (t[layout.field] as unknown[]).length;
  if (external || rawBytes > 0) {
    if (typed > 0) bad('holds both raw and typed data');
    if (rawBytes !== n * layout.width) bad(`holds ${rawBytes} bytes of data for shape [${dims.join(', ')}] (${n * layout.width} expected)`);
  } else if (typed !== n * layout.perElement) {
    bad(`holds ${typed} values for shape [${dims.join(', ')}] (${n * layout.perElement} expected)`);
  }
}

/** Checks every tensor of the graph and of its nodes' attributes, subgraphs included. */
export function checkTensors(g: GraphProto, dir: string | null, where: string, depth = 0): void {
  if (depth > 32) throw new ModelError(`${where}: subgraphs nested more than 32 deep`);
  for (const t of g.initializer) checkTensor(t, dir, where);
  for (const s of g.sparseInitializer) {
    if (s.values) checkTensor(s.values, dir, where);
    if (s.indices) checkTensor(s.indices, dir, where);
  }
  for (const node of g.node) {
    for (const a of node.attribute) {
      if (a.t) checkTensor(a.t, dir, where);
      for (const t of a.tensors) checkTensor(t, dir, where);
      if (a.g) checkTensors(a.g, dir, where, depth + 1);
      for (const sg of a.graphs) checkTensors(sg, dir, where, depth + 1);
    }
  }
}
