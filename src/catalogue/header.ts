/**
 * The structural rules of a catalogue file's header (docs/catalogue-format.md, "Rules"), checked
 * on every open whatever `verify` says. They look only at the header (ids, bias and attributes
 * live in it) and the file's size from fstat, never at the matrix, so they cost O(N) at most.
 * The deep rules that read the matrix are in verify.ts. Each refusal is a FormatError
 * whose message names the section and the rule.
 */
import { SCORE_LIMIT } from './build.js';
import type { ItemId } from './types.js';
import { type FileVersion, PANEL, compactBytes, matrixBytes } from './layout.js';
import { FormatError } from '../errors.js';
import { LIMITS } from '../limits.js';
import { describe, nonFiniteName } from '../validate.js';

/** Every section starts at a multiple of this. */
export const ALIGN = 64;

export type StoredIds =
  | { kind: 'int'; data: Uint8Array } // float64 LE, one per row
  | { kind: 'mixed'; values: Array<string | number> };

/** Where a compressed catalogue's compact copy lies (byte offsets, each a multiple of 64). */
export interface CompressedSection {
  precision: 'int8' | 'bf16';
  dataOffset: number; // N·d int8, or N·d uint16 (bfloat16)
  scaleOffset: number | null; // int8: N float32 row scales
  errOffset: number; // N float32 bound terms
  errBiasOffset: number | null; // N float32 bias bound terms (when there is a bias)
  end: number; // the file ends here
  checksum: { algorithm: 'crc32'; value: number }; // over [dataOffset, end)
}

export interface CatalogueHeader {
  compressed?: CompressedSection | null;
  format: 'recscore-catalogue';
  /** Version 2: `"panels16"` (the matrix and the compact copy in panels of 16 rows). */
  layout?: 'panels16';
  dtype: 'float32';
  count: number;
  dim: number;
  dataOffset: number;
  dataBytes: number;
  checksum: { algorithm: 'crc32'; value: number };
  maxRowNorm: number;
  ids: StoredIds | null;
  bias: Uint8Array | null; // float32 LE
  attributes: Uint8Array | null; // uint32 LE
  createdBy: string;
}

/** The header's per-item data, decoded (and checked) once. */
export interface HeaderData {
  ids: ItemId[] | null;
  bias: Float32Array | null;
  attributes: Uint32Array | null;
}

type Fail = (msg: string) => never;

const isInt = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x);
const isMap = (x: unknown): x is Record<string, unknown> =>
  typeof x === 'object' && x !== null && !Array.isArray(x) && !ArrayBuffer.isView(x);
const absent = (x: unknown): boolean => x === null || x === undefined;
const isCrc = (c: unknown): boolean =>
  isMap(c) && c.algorithm === 'crc32' && isInt(c.value) && c.value >= 0 && c.value <= 0xffffffff;

/**
 * Checks the decoded header `h` of a file of `size` bytes whose header ends at byte `headerEnd`,
 * and returns its ids, bias and attributes decoded. Throws FormatError naming the rule.
 */
export function checkHeader(path: string, h: unknown, headerEnd: number, size: number, version: FileVersion): HeaderData {
  const fail: Fail = (msg) => {
    throw new FormatError(path, msg);
  };
  if (!isMap(h)) fail(`header: must be a MessagePack map, got ${describe(h)}`);
  if (h.format !== 'recscore-catalogue') fail(`header: format must be "recscore-catalogue", got ${describe(h.format)}`);
  if (h.dtype !== 'float32') fail(`header: dtype must be "float32", got ${describe(h.dtype)}`);
  const n = h.count;
  if (!isInt(n) || n < 1 || n > LIMITS.maxItems) fail(`header: count must be an integer in 1..${LIMITS.maxItems}, got ${describe(n)}`);
  const d = h.dim;
  if (!isInt(d) || d < 1 || d > LIMITS.maxDim) fail(`header: dim must be an integer in 1..${LIMITS.maxDim}, got ${describe(d)}`);
  const off = h.dataOffset;
  if (!isInt(off) || off % ALIGN !== 0 || off < headerEnd) {
    fail(`header: dataOffset must be a multiple of ${ALIGN} at or past the end of the header (byte ${headerEnd}), got ${describe(off)}`);
  }
  if (version === 2 && h.layout !== `panels${PANEL}`) fail(`header: layout must be "panels${PANEL}", got ${describe(h.layout)}`);
  const mb = matrixBytes(version, n, d);
  if (h.dataBytes !== mb) {
    const rule = version === 1 ? 'count × dim × 4' : `ceil(count / ${PANEL}) × ${PANEL} × dim × 4`;
    fail(`header: dataBytes must be ${rule} = ${mb}, got ${describe(h.dataBytes)}`);
  }
  if (!isCrc(h.checksum)) fail('header: checksum must be { algorithm: "crc32", value: a u32 }');
  const norm = h.maxRowNorm;
  if (typeof norm !== 'number' || !(norm >= 0 && norm <= SCORE_LIMIT)) {
    fail(`header: maxRowNorm must be a number in 0..${SCORE_LIMIT}, got ${describe(norm)}`);
  }
  if (typeof h.createdBy !== 'string') fail(`header: createdBy must be a string, got ${describe(h.createdBy)}`);
  if (!absent(h.bias) && !(h.bias instanceof Uint8Array && h.bias.byteLength === n * 4)) {
    fail(`bias: must be nil or count × 4 = ${n * 4} bytes, got ${describe(h.bias)}`);
  }
  if (!absent(h.attributes) && !(h.attributes instanceof Uint8Array && h.attributes.byteLength === n * 4)) {
    fail(`attributes: must be nil or count × 4 = ${n * 4} bytes, got ${describe(h.attributes)}`);
  }
  const end = checkCompressedLayout(fail, h.compressed, n, d, off + mb, !absent(h.bias), version);
  if (size < end) fail(`truncated: expected ${end} bytes, found ${size}`);
  if (size > end) fail(`corrupt: expected ${end} bytes, found ${size} (trailing data)`);
  return {
    ids: absent(h.ids) ? null : checkIds(fail, h.ids, n),
    bias: absent(h.bias) ? null : checkBias(fail, h.bias as Uint8Array),
    attributes: absent(h.attributes) ? null : copyUint32(h.attributes as Uint8Array),
  };
}

/** The compressed section's layout; returns where the file must end. */
function checkCompressedLayout(fail: Fail, c: unknown, n: number, d: number, matrixEnd: number, hasBias: boolean, version: FileVersion): number {
  if (absent(c)) return matrixEnd;
  if (!isMap(c)) fail(`compressed: must be nil or a map, got ${describe(c)}`);
  if (c.precision !== 'int8' && c.precision !== 'bf16') fail(`compressed: precision must be "int8" or "bf16", got ${describe(c.precision)}`);
  const int8 = c.precision === 'int8';
  if (int8 === absent(c.scaleOffset)) fail(`compressed: scaleOffset must be ${int8 ? 'given for int8' : 'nil for bf16'}, got ${describe(c.scaleOffset)}`);
  if (hasBias === absent(c.errBiasOffset)) {
    fail(`compressed: errBiasOffset must be ${hasBias ? 'given' : 'nil'} when the catalogue has ${hasBias ? 'a' : 'no'} bias, got ${describe(c.errBiasOffset)}`);
  }
  // The pieces in file order, each at a multiple of 64 at or past the end of the one before.
  const pieces: Array<[string, number]> = [['dataOffset', compactBytes(version, int8 ? 'int8' : 'bf16', n, d)]];
  if (int8) pieces.push(['scaleOffset', n * 4]);
  pieces.push(['errOffset', n * 4]);
  if (hasBias) pieces.push(['errBiasOffset', n * 4]);
  let at = matrixEnd;
  let after = 'the matrix';
  for (const [key, bytes] of pieces) {
    const o = c[key];
    if (!isInt(o) || o % ALIGN !== 0 || o < at) {
      fail(`compressed: ${key} must be a multiple of ${ALIGN} at or past byte ${at} (the end of ${after}), got ${describe(o)}`);
    }
    at = o + bytes;
    after = key;
  }
  if (c.end !== at) fail(`compressed: end must be byte ${at} (the end of ${after}), got ${describe(c.end)}`);
  if (!isCrc(c.checksum)) fail('compressed: checksum must be { algorithm: "crc32", value: a u32 }');
  return at;
}

function showId(v: ItemId): string {
  return typeof v === 'string' ? JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v) : String(v);
}

function checkIds(fail: Fail, ids: unknown, n: number): ItemId[] {
  if (!isMap(ids) || (ids.kind !== 'int' && ids.kind !== 'mixed')) {
    fail(`ids: must be nil or a map with kind "int" or "mixed", got ${isMap(ids) ? `kind ${describe(ids.kind)}` : describe(ids)}`);
  }
  let out: ItemId[];
  if (ids.kind === 'int') {
    const data = ids.data;
    if (!(data instanceof Uint8Array) || data.byteLength !== n * 8) {
      fail(`ids: kind "int" must hold count × 8 = ${n * 8} bytes, got ${describe(data)}`);
    }
    const f = new Float64Array(n);
    new Uint8Array(f.buffer).set(data);
    for (let i = 0; i < n; i++) if (!Number.isSafeInteger(f[i])) fail(`ids[${i}] = ${f[i]} is not a safe integer`);
    // Sorted copy: duplicates are neighbours (O(N log N) in a Float64Array, no hash of N entries).
    const sorted = f.slice().sort();
    for (let i = 1; i < n; i++) {
      if (sorted[i] === sorted[i - 1]) {
        const first = f.indexOf(sorted[i]);
        fail(`ids: duplicate id ${sorted[i]} at rows ${first} and ${f.indexOf(sorted[i], first + 1)}`);
      }
    }
    out = Array.from(f);
  } else {
    const values = ids.values;
    if (!Array.isArray(values) || values.length !== n) {
      fail(`ids: kind "mixed" must hold count = ${n} values, got ${describe(values)}`);
    }
    const seen = new Map<ItemId, number>();
    for (let i = 0; i < n; i++) {
      const v = values[i] as unknown;
      if (!(typeof v === 'string' || (typeof v === 'number' && Number.isSafeInteger(v)))) {
        fail(`ids[${i}] must be a string or a safe integer, got ${describe(v)}`);
      }
      const prev = seen.get(v);
      if (prev !== undefined) fail(`ids: duplicate id ${showId(v)} at rows ${prev} and ${i}`);
      seen.set(v, i);
    }
    out = values as ItemId[];
  }
  return out;
}

function checkBias(fail: Fail, b: Uint8Array): Float32Array {
  const bias = copyFloat32(b);
  for (let i = 0; i < bias.length; i++) {
    const v = bias[i];
    if (!Number.isFinite(v)) fail(`bias[${i}] is ${nonFiniteName(v)}`);
    if (Math.abs(v) > SCORE_LIMIT) fail(`bias[${i}] = ${v} is outside ±${SCORE_LIMIT} (scores could overflow float32)`);
  }
  return bias;
}

/** Copies msgpack binary into a fresh, aligned typed array in shared memory (worker threads use it without a copy). */
export function copyFloat32(b: Uint8Array): Float32Array {
  const out = new Float32Array(new SharedArrayBuffer(b.byteLength));
  new Uint8Array(out.buffer).set(b);
  return out;
}

export function copyUint32(b: Uint8Array): Uint32Array {
  const out = new Uint32Array(new SharedArrayBuffer(b.byteLength));
  new Uint8Array(out.buffer).set(b);
  return out;
}
