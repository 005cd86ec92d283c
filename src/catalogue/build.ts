/**
 * The builder's checks: what fromVectors/fromNpy accept is exactly what a catalogue file may hold
 * (header.ts, verify.ts), so no file `save` writes is refused by `open`.
 */
import type { ItemId, NpyOptions } from './types.js';
import { InvalidArgumentError, OutOfRangeError } from '../errors.js';
import { LIMITS } from '../limits.js';
import { type CompressedParts, native } from '../native/addon.js';
import { arrayLike, describe, nonFiniteName, uint32 } from '../validate.js';

/** Scores above this magnitude could overflow float32 inside the dot product. */
export const SCORE_LIMIT = 1e37;

export interface BuiltParts {
  size: number;
  ids: ItemId[] | null;
  bias: Float32Array | null;
  attributes: Uint32Array | null;
  maxRowNorm: number;
  compressed: CompressedParts | null;
}

/**
 * Checks an N×d matrix `data` (named `name` in messages) and the options that go with it, and
 * computes the rest of a catalogue: its maxRowNorm exactly as open re-checks it, and the compact
 * copy.
 */
export function buildParts(data: Float32Array, dim: number, opts: NpyOptions, name: string): BuiltParts {
  if (data.length === 0) throw new OutOfRangeError(`${name} is empty: a catalogue needs at least one item`);
  if (data.length % dim !== 0) {
    throw new InvalidArgumentError(`${name}.length (${data.length}) is not a multiple of dim (${dim})`);
  }
  const size = data.length / dim;
  if (size > LIMITS.maxItems) throw new OutOfRangeError(`${name} has ${size} rows; at most 2^31-1 are supported`);
  const st = native().matrixStats({ values: data, rows: size, d: dim });
  if (st.firstNonFinite >= 0) {
    const i = st.firstNonFinite;
    throw new InvalidArgumentError(`${name}[${i}] (row ${Math.floor(i / dim)}, component ${i % dim}) is ${nonFiniteName(data[i])}`);
  }
  if (st.maxRowNorm > SCORE_LIMIT) {
    throw new OutOfRangeError(`${name} has a row of norm ${st.maxRowNorm}; scores could overflow float32`);
  }
  const ids = opts.ids === undefined ? null : checkIds(opts.ids, size);
  const bias = opts.bias === undefined ? null : checkBias(opts.bias, size);
  const attributes = opts.attributes === undefined ? null : checkAttributes(opts.attributes, size);
  const precision = opts.precision ?? 'f32';
  if (precision !== 'f32' && precision !== 'int8' && precision !== 'bf16') {
    throw new InvalidArgumentError(`options.precision must be 'f32', 'int8' or 'bf16', got ${describe(precision)}`);
  }
  const compressed =
    precision === 'f32' ? null : shareCompressed(precision, native().compress({ values: data, rows: size, d: dim, bias: bias ?? undefined, precision }));
  return { size, ids, bias, attributes, maxRowNorm: st.maxRowNorm, compressed };
}

/** Copies a compact copy into shared memory, so worker threads can use it without a copy. */
export function shareCompressed(precision: 'int8' | 'bf16', c: Omit<CompressedParts, 'precision'>): CompressedParts {
  const share = <T extends Int8Array | Uint16Array | Float32Array>(a: T, make: (b: SharedArrayBuffer) => T): T => {
    const out = make(new SharedArrayBuffer(a.byteLength));
    out.set(a as never);
    return out;
  };
  return {
    precision,
    data: c.data instanceof Int8Array ? share(c.data, (b) => new Int8Array(b)) : share(c.data as Uint16Array, (b) => new Uint16Array(b)),
    scale: c.scale ? share(c.scale, (b) => new Float32Array(b)) : undefined,
    err: share(c.err, (b) => new Float32Array(b)),
    errBias: c.errBias ? share(c.errBias, (b) => new Float32Array(b)) : undefined,
  };
}

export function isRowNumber(id: ItemId, size: number): id is number {
  return typeof id === 'number' && Number.isInteger(id) && id >= 0 && id < size;
}

export function indexIds(ids: ReadonlyArray<ItemId>): Map<ItemId, number> {
  const m = new Map<ItemId, number>();
  for (let i = 0; i < ids.length; i++) {
    const prev = m.get(ids[i]);
    if (prev !== undefined) {
      throw new InvalidArgumentError(`options.ids are not unique: ${describe(ids[i])} is at rows ${prev} and ${i}`);
    }
    m.set(ids[i], i);
  }
  return m;
}

export function checkIds(ids: unknown, size: number): ItemId[] {
  if (!Array.isArray(ids)) throw new InvalidArgumentError(`options.ids must be an array, got ${describe(ids)}`);
  if (ids.length !== size) {
    throw new InvalidArgumentError(`options.ids has ${ids.length} entries for ${size} items`);
  }
  const out = new Array<ItemId>(size);
  for (let i = 0; i < ids.length; i++) {
    const v = ids[i] as unknown;
    if (!(typeof v === 'string' || (typeof v === 'number' && Number.isSafeInteger(v)))) {
      throw new InvalidArgumentError(`options.ids[${i}] must be a string or a safe integer, got ${describe(v)}`);
    }
    // A file stores strings as UTF-8: a lone surrogate would come back as U+FFFD (and could then
    // collide with another id).
    if (typeof v === 'string' && LONE_SURROGATE.test(v)) {
      throw new InvalidArgumentError(`options.ids[${i}] is not well-formed Unicode (it holds a lone surrogate)`);
    }
    out[i] = v === 0 ? 0 : v; // -0 is stored as 0
  }
  return out;
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

export function checkBias(bias: unknown, size: number): Float32Array {
  const a = arrayLike('options.bias', bias);
  if (a.length !== size) throw new InvalidArgumentError(`options.bias has ${a.length} entries for ${size} items`);
  const out = new Float32Array(new SharedArrayBuffer(size * 4));
  for (let i = 0; i < size; i++) {
    const v = a[i];
    if (typeof v !== 'number' || !Number.isFinite(v) || !Number.isFinite(Math.fround(v))) {
      throw new InvalidArgumentError(`options.bias[${i}] must be a finite float32, got ${describe(v)}`);
    }
    out[i] = v;
    // The stored float32 is what a file holds and what open checks.
    if (Math.abs(out[i]) > SCORE_LIMIT) throw new OutOfRangeError(`options.bias[${i}] = ${v} could overflow scores`);
  }
  return out;
}

export function checkAttributes(attrs: unknown, size: number): Uint32Array {
  const a = arrayLike('options.attributes', attrs);
  if (a.length !== size) {
    throw new InvalidArgumentError(`options.attributes has ${a.length} entries for ${size} items`);
  }
  const out = new Uint32Array(new SharedArrayBuffer(size * 4));
  for (let i = 0; i < size; i++) out[i] = uint32(`options.attributes[${i}]`, a[i]);
  return out;
}

/** Below this many items a compact copy is kept whatever the probe says (too few to judge). */
const PROBE_MIN_ITEMS = 4096;

/**
 * Whether a compact copy pays: 8 of the catalogue's own rows (evenly spaced) as users, one at a time,
 * k = 20, through the compressed scan; it pays unless the mean candidate set (rows rescored in
 * float32) exceeds a quarter of the catalogue.
 */
export function probeCompressed(
  n: number,
  d: number,
  rows: Float32Array,
  scan: (users: Float32Array, k: number) => Int32Array | undefined,
): { pays: boolean; mean: number } {
  if (n < PROBE_MIN_ITEMS) return { pays: true, mean: 0 };
  const b = 8;
  let total = 0;
  for (let u = 0; u < b; u++) {
    const r = Math.floor((u * n) / b);
    // One user per call: the scan a single user's request takes.
    total += scan(rows.slice(r * d, (r + 1) * d), Math.min(20, n))?.[0] ?? 0;
  }
  const mean = total / b;
  return { pays: mean <= n / 4, mean };
}
