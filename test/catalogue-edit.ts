/**
 * Rewrites a saved catalogue file as a buggy writer would: edit its header and/or its sections,
 * then recompute every checksum (header, matrix, compressed section), so that only the
 * validation behind the checksums can tell. Used by the catalogue validation tests; the fuzz
 * harness can use the same idea (it only needs msgpackr and node:zlib).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { crc32 } from 'node:zlib';

import { pack, unpack } from 'msgpackr';

import { type FileVersion, compactBytes, compactIndex, matrixBytes, panelIndex } from '../src/catalogue/layout.js';

/** The decoded file, for an edit callback to change in place. */
export interface CatalogueFileView {
  /** The decoded header (a plain object): change fields, replace ids, etc. */
  header: Record<string, any>;
  /** The float32 matrix, row-major (version 1: a view into the file; 2: unpacked, packed back after the edit). */
  matrix: Float32Array;
  /** The header's bias as floats (written back into the header after the edit), or null. */
  bias: Float32Array | null;
  /** The compressed section, views into the file, or null. */
  compact: Int8Array | Uint16Array | null;
  scale: Float32Array | null;
  err: Float32Array | null;
  errBias: Float32Array | null;
}

export interface EditOptions {
  /** Recompute the matrix and compressed checksums (default true: a "buggy writer"). */
  recompute?: boolean;
}

/** `{ kind: 'int', data }` for a header's ids: float64 LE values (any numbers, even invalid ones). */
export function intIds(values: number[]): { kind: 'int'; data: Uint8Array } {
  return { kind: 'int', data: new Uint8Array(Float64Array.from(values).buffer) };
}

/** The pieces of the compressed section as [offset, bytes], in file order. */
function compressedPieces(h: Record<string, any>, version: FileVersion): Array<[number, number]> {
  const c = h.compressed;
  const n = h.count;
  const out: Array<[number, number]> = [[c.dataOffset, compactBytes(version, c.precision, n, h.dim)]];
  if (typeof c.scaleOffset === 'number') out.push([c.scaleOffset, n * 4]);
  out.push([c.errOffset, n * 4]);
  if (typeof c.errBiasOffset === 'number') out.push([c.errBiasOffset, n * 4]);
  return out;
}

/**
 * Applies `edit` to the catalogue file at `path` and writes it back with consistent checksums
 * (unless `recompute: false`). If the edited header no longer fits before the matrix, the
 * sections move down by a multiple of 64 bytes and every offset in the header follows.
 */
export function editCatalogue(path: string, edit: (f: CatalogueFileView) => void, opts: EditOptions = {}): void {
  const file = new Uint8Array(readFileSync(path)); // a copy at offset 0: aligned views
  const buf = Buffer.from(file.buffer, file.byteOffset, file.byteLength);
  const hlen = buf.readUInt32LE(12);
  const version = buf.readUInt32LE(8) as FileVersion;
  const header = unpack(buf.subarray(24, 24 + hlen)) as Record<string, any>;
  const origin = header.dataOffset as number;
  const n = header.count as number;
  const d = header.dim as number;
  const pieces = header.compressed ? compressedPieces(header, version) : [];
  const f32 = (o: number | null | undefined, len: number): Float32Array | null =>
    typeof o === 'number' ? new Float32Array(file.buffer, o, len) : null;
  const c = header.compressed;
  const stored = new Float32Array(file.buffer, origin, matrixBytes(version, n, d) / 4);
  const compactStored = c
    ? c.precision === 'int8'
      ? new Int8Array(file.buffer, c.dataOffset, compactBytes(version, 'int8', n, d))
      : new Uint16Array(file.buffer, c.dataOffset, compactBytes(version, 'bf16', n, d) / 2)
    : null;
  // Version 2 edits see (and change) row-major copies, packed back into the panels afterwards.
  const at = (r: number, p: number): number => (version === 1 ? r * d + p : panelIndex(d, r, p));
  const cat = (r: number, p: number): number => (version === 1 ? r * d + p : compactIndex(c.precision, d, r, p));
  const unpacked = <T extends Float32Array | Int8Array | Uint16Array>(src: T, make: (len: number) => T, index: (r: number, p: number) => number): T => {
    if (version === 1) return src;
    const out = make(n * d);
    for (let r = 0; r < n; r++) for (let p = 0; p < d; p++) out[r * d + p] = src[index(r, p)];
    return out;
  };
  const view: CatalogueFileView = {
    header,
    matrix: unpacked(stored, (l) => new Float32Array(l), at),
    bias: header.bias ? new Float32Array(Uint8Array.from(header.bias).buffer) : null,
    compact: compactStored ? unpacked(compactStored, (l) => (c.precision === 'int8' ? new Int8Array(l) : new Uint16Array(l)) as never, cat) : null,
    scale: c ? f32(c.scaleOffset, n) : null,
    err: c ? f32(c.errOffset, n) : null,
    errBias: c ? f32(c.errBiasOffset, n) : null,
  };
  const biasBefore = header.bias;
  edit(view);
  if (version === 2) {
    for (let r = 0; r < n; r++) {
      for (let p = 0; p < d; p++) {
        stored[at(r, p)] = view.matrix[r * d + p];
        if (compactStored && view.compact) compactStored[cat(r, p)] = view.compact[r * d + p];
      }
    }
  }
  if (view.bias && header.bias === biasBefore) header.bias = new Uint8Array(view.bias.buffer);
  if (opts.recompute ?? true) {
    // Over the sections where they were (moving them below does not change their bytes).
    header.checksum = { algorithm: 'crc32', value: crc32(file.subarray(origin, origin + stored.byteLength)) };
    if (header.compressed && pieces.length > 0) {
      let crc = 0;
      for (const [o, len] of pieces) crc = crc32(file.subarray(o, o + len), crc);
      header.compressed.checksum = { algorithm: 'crc32', value: crc };
    }
  }
  // Fit the header before the sections, moving them down if it grew.
  let shift = 0;
  let hbytes = pack(header);
  while (24 + hbytes.length > origin + shift) {
    const more = Math.ceil((24 + hbytes.length - origin - shift) / 64) * 64;
    shift += more;
    header.dataOffset += more;
    if (header.compressed) {
      for (const k of ['dataOffset', 'scaleOffset', 'errOffset', 'errBiasOffset', 'end']) {
        if (typeof header.compressed[k] === 'number') header.compressed[k] += more;
      }
    }
    hbytes = pack(header);
  }
  const out = Buffer.alloc(origin + shift + (file.byteLength - origin));
  buf.copy(out, 0, 0, 24);
  out.writeUInt32LE(hbytes.length, 12);
  out.writeUInt32LE(crc32(hbytes), 16);
  hbytes.copy(out, 24);
  Buffer.from(file.buffer, origin, file.byteLength - origin).copy(out, origin + shift);
  writeFileSync(path, out);
}
