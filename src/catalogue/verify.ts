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

import { type FileVersion, PANEL, compactIndex, compactPanelElements, panelCount, panelIndex } from './layout.js';
import { crc32Chunked } from './file.js';
import { FormatError } from '../errors.js';
import { type CompressedFault, type CompressedParts, native } from '../native/addon.js';
import { nonFiniteName } from '../validate.js';

/** What the pass reads: a mapped file's views, or a catalogue's in-memory parts. */
export interface VerifyTarget {
  /** 1: `matrix` and the compact copy are row-major; 2: packed in panels (layout.ts). */
  version: FileVersion;
  matrix: Float32Array;
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
  const { count: n, dim: d, compressed: c, version } = t;
  const nat = native();
  const panels = version === 2;
  // Chunks of whole panels (version 2) or rows (version 1); `unit` rows each.
  const unit = panels ? PANEL : 1;
  const units = panels ? panelCount(n) : n;
  const perChunk = Math.max(1, Math.floor(CHUNK_BYTES / (d * 4 * unit)));
  const compactPer = c ? (panels ? compactPanelElements(c.precision, d) : d) : 0;
  const bytes = (a: ArrayBufferView): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  let matrixCrc = 0;
  let compactCrc = 0;
  let fault: string | null = null;
  for (let u0 = 0; u0 < units; u0 += perChunk) {
    if (u0 > 0) await yieldToLoop();
    const u1 = Math.min(units, u0 + perChunk);
    const [r0, r1] = [u0 * unit, Math.min(n, u1 * unit)];
    const values = t.matrix.subarray(u0 * unit * d, u1 * unit * d);
    // Views into the mapping are re-taken per chunk: a close() meanwhile detaches the buffer.
    if (values.length !== (u1 - u0) * unit * d) throw new FormatError(path, 'the catalogue was closed while it was being verified');
    if (sums) matrixCrc = crc32(bytes(values), matrixCrc);
    const data = c ? c.data.subarray(u0 * compactPer, u1 * compactPer) : null;
    if (c && data && sums) compactCrc = crc32(bytes(data), compactCrc);
    if (fault) continue;
    const st = nat.matrixStats({ values, rows: r1 - r0, d, normLimit: t.maxRowNorm, panels });
    if (st.firstNonFinite >= 0) {
      const i = st.firstNonFinite;
      const v = panels ? values[panelIndex(d, Math.floor(i / d), i % d)] : values[i];
      fault = `matrix row ${r0 + Math.floor(i / d)} column ${i % d} is ${nonFiniteName(v)}`;
    } else if (st.firstRowAbove >= 0) {
      fault = `matrix row ${r0 + st.firstRowAbove} has norm ${st.rowNormAbove} > maxRowNorm ${t.maxRowNorm} recorded in the header`;
    } else if (panels && (fault = paddingFault(values, c ? data : null, c?.precision, r0, r1 - r0, u1 === units, d))) {
      // (set above)
    } else if (c && data) {
      if (!panels) throw new Error('internal: version-1 contents are verified after repacking');
      const f = nat.checkCompressed({
        panels: values,
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

/** Version 1: the checksums of the row-major sections as stored (their contents are checked after repacking). */
export async function verifyChecksums(path: string, matrix: Float32Array, c: CompressedParts | null, sums: Checksums): Promise<void> {
  const bytes = (a: ArrayBufferView): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  if ((await crc32Chunked(bytes(matrix))) !== sums.matrix) throw new FormatError(path, 'corrupt: matrix checksum mismatch');
  if (c) {
    let crc = await crc32Chunked(bytes(c.data));
    for (const p of [c.scale, c.err, c.errBias]) if (p) crc = crc32(bytes(p), crc);
    if (crc !== sums.compressed) throw new FormatError(path, 'corrupt: compressed section checksum mismatch');
  }
}

/**
 * Version 2: the padding of the last panel (rows past N) and of the compact copy's groups
 * (dimensions past d) must be zero, as the writer leaves it (the kernels read it). `values` and
 * `data` are the chunk of `rows` real rows starting at row r0.
 */
function paddingFault(
  values: Float32Array,
  data: Int8Array | Uint16Array | null,
  precision: 'int8' | 'bf16' | undefined,
  r0: number,
  rows: number,
  last: boolean,
  d: number,
): string | null {
  const padded = panelCount(rows) * PANEL;
  for (let r = last ? rows : padded; r < padded; r++) {
    for (let p = 0; p < d; p++) {
      const v = values[panelIndex(d, r, p)];
      if (v !== 0 || Object.is(v, -0)) return `matrix: padding row ${r0 + r} (past the last item) is not zero`;
    }
  }
  if (!data || !precision) return null;
  const g = precision === 'int8' ? 4 : 2;
  const width = Math.ceil(d / g) * g;
  for (let r = 0; r < padded; r++) {
    for (let p = r < rows ? d : 0; p < width; p++) {
      if (data[compactIndex(precision, d, r, p)] !== 0) return `compressed: the compact copy's padding is not zero at row ${r0 + r}, column ${p}`;
    }
  }
  return null;
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
