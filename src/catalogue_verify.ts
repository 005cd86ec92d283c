/**
 * The deep pass of `Catalogue.open(path, { verify: true })` (docs/catalogue-format.md, "Rules"):
 * one read of the matrix and the compressed section that checks both CRCs and, in the same
 * chunks, that the contents are what the scans rely on. A writer that recomputes checksums after
 * a bad edit gets past a CRC, not past these:
 *   - every matrix value is finite;
 *   - every row's norm, computed as the writer computes `maxRowNorm` (float64 sum of squares in
 *     index order, then sqrt), is at most the header's maxRowNorm — so the scorer's overflow
 *     guard, which trusts maxRowNorm, holds;
 *   - the compact copy agrees with the float32 rows: each row's recorded bound terms cover its
 *     actual quantisation error, recomputed natively with compress's own arithmetic
 *     (native/core/compressed.h, check_compressed), which is the bound the exact scan needs.
 * The result is remembered per file version for the life of this module instance.
 */
import type { Stats } from 'node:fs';
import { crc32 } from 'node:zlib';

import { FormatError } from './errors.js';
import { type CompressedFault, type CompressedParts, native } from './native.js';
import { nonFiniteName } from './validate.js';

/** What the pass reads: a mapped file's views, or a catalogue's in-memory parts. */
export interface VerifyTarget {
  vectors: Float32Array;
  count: number;
  dim: number;
  bias: Float32Array | null;
  maxRowNorm: number;
  compressed: CompressedParts | null;
}

/** The checksums the header records; omitted when only the contents are checked. */
export interface Checksums {
  matrix: number;
  compressed: number | null;
}

let passes = 0;

/** @internal How many deep passes this module instance has run (tests). */
export function _verifyPasses(): number {
  return passes;
}

/** Bytes of matrix per chunk: between chunks the event loop runs. */
const CHUNK_BYTES = 16 << 20;

const yieldToLoop = (): Promise<void> => new Promise((r) => setImmediate(r));

function compressedMessage(f: CompressedFault, row: number, precision: string): string {
  switch (f.rule) {
    case 'scale':
      return `compressed: row ${row}'s int8 scale is ${f.recorded} (must be finite and >= 0)`;
    case 'nonFinite':
      return `compressed: row ${row} column ${f.column} of the bf16 copy is ${nonFiniteName(f.recorded)}`;
    case 'farther':
      return `compressed: row ${row}'s ${precision} copy is farther from the float32 row (${f.recorded}) than the row's norm (${f.required})`;
    case 'err':
      return `compressed: row ${row}'s ${precision} error exceeds its recorded bound (bound ${f.recorded}, needs at least ${f.required})`;
    case 'errBias':
      return `compressed: row ${row}'s bias bound term is ${f.recorded}, needs at least ${f.required}`;
  }
}

/**
 * Reads `t` once, in chunks of rows. Throws FormatError(path, …) for the first rule broken: a
 * checksum mismatch first (the file is corrupt), else the first row that breaks a content rule.
 */
export async function verifyContent(path: string, t: VerifyTarget, sums?: Checksums): Promise<void> {
  passes++;
  const { count: n, dim: d, compressed: c } = t;
  const nat = native();
  const rowsPerChunk = Math.max(1, Math.floor(CHUNK_BYTES / (d * 4)));
  const bytes = (a: ArrayBufferView): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  let matrixCrc = 0;
  let compactCrc = 0;
  let fault: string | null = null;
  for (let r0 = 0; r0 < n; r0 += rowsPerChunk) {
    if (r0 > 0) await yieldToLoop();
    const r1 = Math.min(n, r0 + rowsPerChunk);
    const values = t.vectors.subarray(r0 * d, r1 * d);
    // Views into the mapping are re-taken per chunk: a close() meanwhile detaches the buffer.
    if (values.length !== (r1 - r0) * d) throw new FormatError(path, 'the catalogue was closed while it was being verified');
    if (sums) matrixCrc = crc32(bytes(values), matrixCrc);
    const data = c ? c.data.subarray(r0 * d, r1 * d) : null;
    if (c && data && sums) compactCrc = crc32(bytes(data), compactCrc);
    if (fault) continue;
    const st = nat.matrixStats({ values, rows: r1 - r0, d, normLimit: t.maxRowNorm });
    if (st.firstNonFinite >= 0) {
      const i = st.firstNonFinite;
      fault = `matrix row ${r0 + Math.floor(i / d)} column ${i % d} is ${nonFiniteName(values[i])}`;
    } else if (st.firstRowAbove >= 0) {
      fault = `matrix row ${r0 + st.firstRowAbove} has norm ${st.rowNormAbove} > maxRowNorm ${t.maxRowNorm} recorded in the header`;
    } else if (c && data) {
      const f = nat.checkCompressed({
        values,
        rows: r1 - r0,
        d,
        bias: t.bias ? t.bias.subarray(r0, r1) : undefined,
        precision: c.precision,
        data,
        scale: c.scale?.subarray(r0, r1),
        err: c.err.subarray(r0, r1),
        errBias: c.errBias?.subarray(r0, r1),
      });
      if (f) fault = compressedMessage(f, r0 + f.row, c.precision);
    }
  }
  if (sums && c) {
    // The rest of the compressed section, in file order after the compact rows.
    for (const p of [c.scale, c.err, c.errBias]) if (p) compactCrc = crc32(bytes(p), compactCrc);
  }
  if (sums && matrixCrc !== sums.matrix) throw new FormatError(path, 'corrupt: matrix checksum mismatch');
  if (sums && c && compactCrc !== sums.compressed) throw new FormatError(path, 'corrupt: compressed section checksum mismatch');
  if (fault) throw new FormatError(path, fault);
}

/**
 * Files verified by this module instance, by version: (device, inode, size, mtime, ctime, header
 * CRC). The header CRC covers the recorded checksums, so a file rewritten in place with new
 * contents, or replaced by another, gets a new key (and a size/time change one as well).
 *
 * Worker threads load their own instance of this module and start with an empty map: they open
 * with `verify: false` (Catalogue._fromShared) and check that they mapped the very file version
 * the main thread opened (FileIdentity), which the main thread verified — so a large file is read
 * once per process, not once per worker.
 */
const verified = new Map<string, true>();
const MAX_REMEMBERED = 1024;

export function versionKey(st: Stats, headerCrc: number): string {
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}:${headerCrc}`;
}

export function isVerified(key: string): boolean {
  return verified.has(key);
}

export function rememberVerified(key: string): void {
  if (verified.size >= MAX_REMEMBERED) verified.delete(verified.keys().next().value as string);
  verified.set(key, true);
}
