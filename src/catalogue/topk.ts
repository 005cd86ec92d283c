/** Validating a topK request against a catalogue and building the native call's arguments. */
import { availableParallelism, totalmem } from 'node:os';

import { SCORE_LIMIT } from './build.js';
import { defaultThreads } from '../native/cpu_quota.js';
import type { TopKOptions } from './types.js';
import { InvalidArgumentError, OutOfRangeError } from '../errors.js';
import { panelFloats } from './layout.js';
import { type NativeCatalogue, type NativeTopKArgs, native, resolveLevel } from '../native/addon.js';
import { arrayLike, batchSize, copyRows, describe, float32Array, kOption, nonFiniteName, threadsOption, uint32 } from '../validate.js';

/** Batches of fewer users than this scan the compact copy of a compressed catalogue. */
const COMPRESSED_MAX_BATCH = 8;
/** Batches of at least this many users scan an int8 copy together where the CPU has AVX-512 VNNI. */
const COMPRESSED_GEMM_MIN_BATCH = 16;
/** ... and ask for at most this many results each (bench/README.md: k = 1000 was 0.57x float32). */
const COMPRESSED_GEMM_MAX_K = 100;

/** The rows packed in panels (native/core/gemm/contract.h), in shared memory for worker threads. */
export function packPanels(vectors: Float32Array, rows: number, d: number): Float32Array {
  const out = new Float32Array(new SharedArrayBuffer(panelFloats(rows, d) * 4));
  native().packPanels({ values: vectors, rows, d, out });
  return out;
}

/** What a scan needs of a catalogue. */
export interface ScanState {
  /** The native catalogue object (made on first use). */
  handle: () => NativeCatalogue;
  size: number;
  dim: number;
  maxBias: number;
  maxRowNorm: number;
  hasAttributes: boolean;
  /** The compact copy's precision, or null. */
  compressed: 'int8' | 'bf16' | null;
}

/** Validates everything and builds the native arguments; null for an empty batch. */
export function prepareTopK(c: ScanState, users: Float32Array, opts: TopKOptions): NativeTopKArgs | null {
  float32Array('users', users);
  if (typeof opts !== 'object' || opts === null) {
    throw new InvalidArgumentError(`options must be an object with k, got ${describe(opts)}`);
  }
  const d = c.dim;
  const n = c.size;
  const kWanted = kOption('options.k', opts.k);
  const k = Math.min(kWanted, n);
  if (users.length % d !== 0) {
    throw new InvalidArgumentError(`users.length (${users.length}) is not a multiple of the catalogue's dim (${d})`);
  }
  const b = batchSize('users.length / dim', users.length / d);
  if (b * k > 0x7fffffff) {
    throw new OutOfRangeError(`the result would hold ${b}×${k} entries; split the batch (at most 2^31-1)`);
  }
  const threads = threadsOption('options.threads', opts.threads, defaultThreads());
  // Each thread keeps up to 2k candidates per user: refuse what memory cannot hold.
  const arena = Math.min(threads, availableParallelism()) * b * (2 * k + 16) * 8;
  if (arena > Math.min(totalmem() / 2, 16 * 2 ** 30)) {
    throw new OutOfRangeError(`${b} users × k = ${k} needs ${(arena / 2 ** 30).toFixed(1)} GiB of selection buffers; split the batch`);
  }
  const isa = resolveLevel('options.isa', opts.isa);
  // Every value finite, and no score able to overflow float32 (|u·x + b| <= |u||x| + |b|).
  for (let u = 0; u < b; u++) {
    let sq = 0;
    for (let p = u * d, e = p + d; p < e; p++) {
      const x = users[p];
      if (!Number.isFinite(x)) {
        throw new InvalidArgumentError(`users[${p}] (user ${u}, component ${p - u * d}) is ${nonFiniteName(x)}`);
      }
      sq += x * x;
    }
    if (Math.sqrt(sq) * c.maxRowNorm + c.maxBias > SCORE_LIMIT) {
      throw new OutOfRangeError(`user ${u} has norm ${Math.sqrt(sq)}; its scores could overflow float32`);
    }
  }
  if (b === 0) return null;

  const args: NativeTopKArgs = { catalogue: c.handle(), users, k, threads, isa };
  // The compact copy pays off where the scan is bound by memory: a few users per call. Batches
  // are bound by arithmetic and read the float32 rows directly (the same exact result).
  if (c.compressed && b < COMPRESSED_MAX_BATCH) args.useCompressed = true;
  else if (c.compressed === 'int8' && b >= COMPRESSED_GEMM_MIN_BATCH && k <= COMPRESSED_GEMM_MAX_K && isa === 'avx512' && native().features.avx512vnni) {
    // Batches on VNNI: one int8 GEMM pass over the compact copy for every user, then each user's
    // candidates rescored in float32 (the same exact result). Only for small k: each user's
    // candidate set grows with k, and at k = 1000 rescoring them costs more than the float32 scan.
    args.useCompressed = true;
    args.compressedGemm = true;
  }


  if (opts.exclude !== undefined) {
    const ex = opts.exclude;
    if (!Array.isArray(ex)) {
      throw new InvalidArgumentError(`options.exclude must be an array with one entry per user, got ${describe(ex)}`);
    }
    if (ex.length !== b) {
      throw new InvalidArgumentError(`options.exclude has ${ex.length} entries for ${b} users`);
    }
    const offsets = new Int32Array(b + 1);
    let total = 0;
    for (let u = 0; u < b; u++) {
      const e = ex[u] as unknown;
      if (e !== null && e !== undefined) total += arrayLike(`options.exclude[${u}]`, e).length;
      offsets[u + 1] = total;
    }
    const rows = new Int32Array(total);
    for (let u = 0; u < b; u++) {
      const e = ex[u];
      if (e !== null && e !== undefined) copyRows(`options.exclude[${u}]`, e, n, rows, offsets[u]);
    }
    if (total > 0) {
      args.exclOffsets = offsets;
      args.exclRows = rows;
    }
  }
  if (opts.allow !== undefined) {
    const a = arrayLike('options.allow', opts.allow);
    const rows = new Int32Array(a.length);
    copyRows('options.allow', a, n, rows, 0);
    args.allow = rows;
  }
  if (opts.filter !== undefined) {
    const f = opts.filter;
    if (typeof f !== 'object' || f === null) {
      throw new InvalidArgumentError(`options.filter must be an object, got ${describe(f)}`);
    }
    if (!c.hasAttributes) {
      throw new InvalidArgumentError('options.filter needs a catalogue built with attributes');
    }
    args.filterAll = f.allOf === undefined ? 0 : uint32('options.filter.allOf', f.allOf);
    args.filterAny = f.anyOf === undefined ? 0 : uint32('options.filter.anyOf', f.anyOf);
    args.filterNone = f.noneOf === undefined ? 0 : uint32('options.filter.noneOf', f.noneOf);
  }
  return args;
}
