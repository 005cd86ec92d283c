/** Argument checks shared by the public API. Messages name the parameter and the value. */
import { InvalidArgumentError, OutOfRangeError } from './errors.js';

export function describe(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  if (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean') return String(v);
  if (v === null) return 'null';
  if (v === undefined) return 'undefined';
  if (ArrayBuffer.isView(v)) return `${v.constructor.name}(${(v as unknown as ArrayLike<unknown>).length})`;
  if (Array.isArray(v)) return `Array(${v.length})`;
  return typeof v === 'object' ? (v.constructor?.name ?? 'object') : typeof v;
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

export function arrayLike(name: string, v: unknown): ArrayLike<unknown> {
  const ok =
    Array.isArray(v) ||
    (ArrayBuffer.isView(v) && !(v instanceof DataView)) ||
    (typeof v === 'object' && v !== null && typeof (v as { length?: unknown }).length === 'number');
  if (!ok) throw new InvalidArgumentError(`${name} must be an array of numbers, got ${describe(v)}`);
  return v as ArrayLike<unknown>;
}

/** Copies an array of row indices into `out` at `at`, checking each is an integer in [0, n). */
export function copyRows(name: string, v: unknown, n: number, out: Int32Array, at: number): number {
  const a = arrayLike(name, v);
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
