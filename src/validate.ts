/**
 * Argument checks shared by the public API: the one validation layer. Messages name the
 * parameter and the value; sizes beyond LIMITS are OutOfRangeErrors that also name the limit.
 */
import { InvalidArgumentError, OutOfRangeError } from './errors.js';
import { LIMITS } from './limits.js';

/** A short, safe description of any value for a message (never throws, never recurses). */
export function describe(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (typeof v === 'bigint') return `${v}n`;
  if (v === null) return 'null';
  if (v === undefined) return 'undefined';
  if (ArrayBuffer.isView(v)) {
    const name = Object.prototype.toString.call(v).slice(8, -1);
    return v instanceof DataView ? `DataView(${v.byteLength} bytes)` : `${name}(${(v as unknown as ArrayLike<unknown>).length})`;
  }
  if (Array.isArray(v)) return `Array(${v.length})`;
  if (typeof v === 'function') return 'function';
  if (typeof v === 'symbol') return 'symbol';
  let name: unknown;
  try {
    name = (Object.getPrototypeOf(v) as { constructor?: { name?: unknown } } | null)?.constructor?.name;
  } catch {
    name = undefined; // a Proxy whose traps throw
  }
  return typeof name === 'string' && name !== '' ? name : 'object';
}

/** Refuses `v > limit`: `${name} must be at most ${limit}, got ${v}`. */
export function atMost(name: string, v: number, limit: number): number {
  if (v > limit) throw new OutOfRangeError(`${name} must be at most ${limit}, got ${v}`);
  return v;
}

export function positiveInt(name: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) {
    throw new InvalidArgumentError(`${name} must be a positive integer, got ${describe(v)}`);
  }
  return v;
}

export function optionalPositiveInt(name: string, v: unknown, fallback: number): number {
  return v === undefined ? fallback : positiveInt(name, v);
}

export function nonNegativeInt(name: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    throw new InvalidArgumentError(`${name} must be a non-negative integer, got ${describe(v)}`);
  }
  return v;
}

/** A `threads` option: a positive integer up to LIMITS.maxThreads (`fallback` when undefined). */
export function threadsOption(name: string, v: unknown, fallback: number): number {
  return v === undefined ? Math.min(fallback, LIMITS.maxThreads) : atMost(name, positiveInt(name, v), LIMITS.maxThreads);
}

/** A `k`: a positive integer up to LIMITS.maxK. */
export function kOption(name: string, v: unknown): number {
  return atMost(name, positiveInt(name, v), LIMITS.maxK);
}

/** Users in one call (`what` names the count, e.g. `histories.length`), up to LIMITS.maxBatch. */
export function batchSize(what: string, n: number): number {
  return atMost(what, n, LIMITS.maxBatch);
}

/**
 * An options argument: undefined gives `{}`; anything else must be a plain object (not null, an
 * array or a function).
 */
export function optionsObject<T extends object>(name: string, v: T | undefined): T {
  if (v === undefined) return {} as T;
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new InvalidArgumentError(`${name} must be an object, got ${describe(v)}`);
  }
  return v;
}

export function uint32(name: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0xffffffff) {
    throw new InvalidArgumentError(`${name} must be an integer in 0..2^32-1, got ${describe(v)}`);
  }
  return v;
}

export function float32Array(name: string, v: unknown): Float32Array {
  if (!(v instanceof Float32Array)) {
    throw new InvalidArgumentError(`${name} must be a Float32Array, got ${describe(v)}`);
  }
  return v;
}

/**
 * An array argument: a real Array or a typed array (not a DataView, not any object with a
 * `length`), of at most `limit` entries (LIMITS.maxArrayLength by default).
 */
export function arrayLike(name: string, v: unknown, what = 'an array of numbers', limit: number = LIMITS.maxArrayLength): ArrayLike<unknown> {
  const ok = Array.isArray(v) || (ArrayBuffer.isView(v) && !(v instanceof DataView));
  if (!ok) throw new InvalidArgumentError(`${name} must be ${what}, got ${describe(v)}`);
  const a = v as ArrayLike<unknown>;
  atMost(`${name}.length`, a.length, limit);
  return a;
}

/** Copies an array of row indices into `out` at `at`, checking each is an integer in [0, n). */
export function copyRows(name: string, v: unknown, n: number, out: Int32Array, at: number): number {
  const a = arrayLike(name, v);
  if (at + a.length > out.length) throw new OutOfRangeError(`${name} has more entries than were counted`);
  for (let i = 0; i < a.length; i++) {
    const r = a[i];
    if (typeof r !== 'number' || !Number.isInteger(r)) {
      throw new InvalidArgumentError(`${name}[${i}] must be an integer row index, got ${describe(r)}`);
    }
    if (r < 0 || r >= n) {
      throw new OutOfRangeError(`${name}[${i}] = ${r} is not a row of the catalogue (0..${n - 1})`);
    }
    out[at + i] = r;
  }
  return a.length;
}

export function nonFiniteName(x: number): string {
  return Number.isNaN(x) ? 'NaN' : x > 0 ? 'Infinity' : '-Infinity';
}
