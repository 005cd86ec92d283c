/**
 * Family a (gen_catalogue.mjs): a catalogue file as bytes, read and written here independently
 * of the library: the prefix and the msgpack header, the data checksums a consistent buggy
 * writer recomputes, the header written back (moving the data when it grows), raw edits of the
 * final bytes that leave every checksum stale, and a version-1 writer (row-major sections) that
 * turns a version-2 file into the same catalogue in version 1.
 *
 * Addresses (docs/catalogue-format.md, "Layout"; mirrors src/catalogue/layout.ts, which the
 * harness does not import: it runs on a build): version 2 packs the matrix in panels of 16 rows
 * (element p of row r at q·16·d + p·16 + r%16, q = floor(r/16); rows past N zero) and the compact
 * copy in panels of groups (int8: 4 dims × 16 rows, bf16: 2 dims × 16 rows; padding zero).
 */
import { crc32 } from 'node:zlib';

import { pack, unpack } from 'msgpackr';

export const PREFIX = 24;
const ALIGN = 64;
const align = (x) => Math.ceil(x / ALIGN) * ALIGN;

// ---------------------------------------------------------------- layout (versions 1 and 2)

export const PANEL = 16;
export const panelCount = (n) => Math.ceil(n / PANEL);
/** Bytes of the matrix section (the `dataBytes` rule). */
export const matrixBytes = (v, n, d) => (v === 1 ? n * d : panelCount(n) * PANEL * d) * 4;
/** Float index of (row, column) in the matrix section. */
export const matrixAt = (v, d, row, col) => (v === 1 ? row * d + col : Math.floor(row / PANEL) * PANEL * d + col * PANEL + (row % PANEL));
/** The row a float index of the matrix section belongs to (version 2: may be a padding row >= N). */
export const matrixRowOf = (v, d, i) => (v === 1 ? Math.floor(i / d) : Math.floor(i / (PANEL * d)) * PANEL + (i % PANEL));
/** Dimensions per group of the compact copy, and its element size. */
export const compactGroup = (prec) => (prec === 'int8' ? 4 : 2);
export const compactElem = (prec) => (prec === 'int8' ? 1 : prec === 'bf16' ? 2 : 0);
const compactPanelElements = (prec, d) => PANEL * compactGroup(prec) * Math.ceil(d / compactGroup(prec));
/** Bytes of the compact copy (0 for an unknown precision). */
export const compactBytes = (v, prec, n, d) => (v === 1 ? n * d : panelCount(n) * compactPanelElements(prec, d)) * compactElem(prec);
/** Element index of (row, column) in the compact copy (version 2: column may be a padding one < ceil(d/g)·g). */
export function compactAt(v, prec, d, row, col) {
  if (v === 1) return row * d + col;
  const g = compactGroup(prec);
  return Math.floor(row / PANEL) * compactPanelElements(prec, d) + Math.floor(col / g) * PANEL * g + (row % PANEL) * g + (col % g);
}
/** The version in a file's prefix (1 or 2 as the generator wrote it). */
export const fileVersion = (buf) => (buf.length >= 12 && new DataView(buf.buffer, buf.byteOffset, buf.byteLength).getUint32(8, true) === 1 ? 1 : 2);

// ---------------------------------------------------------------- the file, as bytes

/** Prefix fields and the header of a file (header null when it does not parse). */
export function parseFile(buf) {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (buf.length < PREFIX) return { header: null };
  const hlen = dv.getUint32(12, true);
  let header = null;
  if (PREFIX + hlen <= buf.length) {
    try {
      header = unpack(buf.subarray(PREFIX, PREFIX + hlen));
    } catch {
      header = null;
    }
  }
  return { version: dv.getUint32(8, true), hlen, hcrc: dv.getUint32(16, true), header };
}

export const isInt = (x) => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;

/** The compressed section's pieces [offset, bytes] as the reader takes them (null when not locatable). */
function compressedPieces(h, v) {
  const c = h.compressed;
  if (!c || typeof c !== 'object') return null;
  const n = h.count;
  const out = [[c.dataOffset, compactBytes(v, c.precision, n, h.dim)]];
  if (c.scaleOffset !== null && c.scaleOffset !== undefined) out.push([c.scaleOffset, n * 4]);
  out.push([c.errOffset, n * 4]);
  if (c.errBiasOffset !== null && c.errBiasOffset !== undefined) out.push([c.errBiasOffset, n * 4]);
  return out;
}

/** Recomputes the matrix and compressed checksums in `h` from `buf` (a consistent buggy writer). */
function fixDataChecksums(buf, h, v) {
  if (!h || typeof h !== 'object') return;
  if (isInt(h.dataOffset) && isInt(h.dataBytes) && h.checksum && typeof h.checksum === 'object') {
    const end = Math.min(buf.length, h.dataOffset + h.dataBytes);
    if (h.dataOffset <= end) h.checksum.value = crc32(buf.subarray(h.dataOffset, end));
  }
  const pieces = h.compressed && typeof h.compressed === 'object' ? compressedPieces(h, v) : null;
  if (pieces && h.compressed.checksum && typeof h.compressed.checksum === 'object') {
    let crc = 0;
    for (const [o, len] of pieces) {
      if (!isInt(o) || !isInt(len)) return;
      crc = crc32(buf.subarray(Math.min(o, buf.length), Math.min(buf.length, o + len)), crc);
    }
    h.compressed.checksum.value = crc;
  }
}

/**
 * Writes header `h` into the file. With `relayout`, the data moves (and the header's offsets with
 * it) when the header no longer fits before it; `fixData` recomputes the data checksums and
 * `fixHeader` the header CRC.
 */
export function writeHeader(buf, physOffset, h, { relayout = true, fixData = true, fixHeader = true, staleHeaderCrc = null } = {}) {
  const v = fileVersion(buf);
  for (let guard = 0; guard < 8; guard++) {
    if (fixData) fixDataChecksums(buf, h, v);
    const hb = pack(h);
    if (PREFIX + hb.length <= physOffset || !relayout) {
      const out = new Uint8Array(Math.max(buf.length, PREFIX + hb.length));
      out.set(buf);
      out.fill(0, PREFIX, Math.max(PREFIX, Math.min(physOffset, out.length)));
      out.set(hb, PREFIX);
      const dv = new DataView(out.buffer);
      dv.setUint32(12, hb.length, true);
      dv.setUint32(16, fixHeader ? crc32(hb) : (staleHeaderCrc ?? dv.getUint32(16, true)), true);
      return out;
    }
    // Move everything from the physical data offset by a multiple of 64.
    const newOffset = align(PREFIX + hb.length + 8);
    const delta = newOffset - physOffset;
    const out = new Uint8Array(buf.length + delta);
    out.set(buf.subarray(0, PREFIX));
    out.set(buf.subarray(physOffset), newOffset);
    buf = out;
    if (isInt(h.dataOffset)) h.dataOffset += delta;
    const c = h.compressed;
    if (c && typeof c === 'object') {
      for (const key of ['dataOffset', 'scaleOffset', 'errOffset', 'errBiasOffset', 'end']) if (isInt(c[key])) c[key] += delta;
    }
    physOffset = newOffset;
  }
  throw new Error('writeHeader: no layout found');
}

/** Raw edits of the final bytes (no checksum fixed). */
export function rawEdit(rng, buf) {
  const kinds = [[3, 'flip'], [2, 'flipHeader'], [2, 'truncate'], [2, 'extend'], [1, 'version'], [1, 'reserved'], [1, 'hlen'], [1, 'magic']];
  // A file already cut below its prefix only gets flips, cuts and growth.
  const kind = rng.weighted(buf.length > PREFIX + 1 ? kinds : kinds.filter(([, k]) => k === 'flip' || k === 'truncate' || k === 'extend'));
  if (buf.length === 0 && kind !== 'extend') return { buf: rng.bytes(rng.int(1, 40)), what: 'empty file replaced by random bytes' };
  const dv = () => new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  switch (kind) {
    case 'flip': {
      const m = rng.int(1, 4);
      const at = [];
      for (let i = 0; i < m; i++) {
        const o = rng.int(0, buf.length - 1);
        buf[o] ^= 1 << rng.int(0, 7);
        at.push(o);
      }
      return { buf, what: `bit flips at ${at.join(',')}` };
    }
    case 'flipHeader': {
      const hlen = dv().getUint32(12, true);
      const o = rng.int(PREFIX, Math.min(buf.length, PREFIX + hlen) - 1);
      buf[o] ^= 1 << rng.int(0, 7);
      return { buf, what: `header bit flip at ${o}` };
    }
    case 'truncate': {
      const len = rng.pick([0, 1, 23, 24, 100, buf.length - 1, buf.length - 4, buf.length - 64, rng.int(0, buf.length - 1)]);
      return { buf: buf.slice(0, Math.max(0, Math.min(len, buf.length - 1))), what: `truncated to ${Math.max(0, Math.min(len, buf.length - 1))} of ${buf.length}` };
    }
    case 'extend': {
      const extra = rng.pick([1, 4, 64, 4096, rng.int(1, 300)]);
      const out = new Uint8Array(buf.length + extra);
      out.set(buf);
      if (rng.bool()) out.set(rng.bytes(extra), buf.length);
      return { buf: out, what: `extended by ${extra} bytes` };
    }
    case 'version': {
      // Mostly the other readable version: the same bytes read with the other layout.
      const v = rng.pick([0, 3, 0xffffffff, 3 - fileVersion(buf), 3 - fileVersion(buf)]);
      dv().setUint32(8, v, true);
      return { buf, what: `version = ${v}` };
    }
    case 'reserved':
      dv().setUint32(20, rng.u32() | 1, true);
      return { buf, what: 'reserved != 0' };
    case 'hlen': {
      const old = dv().getUint32(12, true);
      const v = rng.pick([0, 1, old - 1, old + 1, buf.length, 0xffffffff, 1 << 30]);
      dv().setUint32(12, v >>> 0, true);
      return { buf, what: `header length ${old} -> ${v >>> 0}` };
    }
    case 'magic':
      buf[rng.int(0, 7)] ^= 0x20;
      return { buf, what: 'magic changed' };
  }
  return { buf, what: '?' };
}

// ---------------------------------------------------------------- version 1

/**
 * The same catalogue as the version-2 file `buf`, written as version 1 (the spec's last
 * paragraph): no `layout`, the matrix and the compact copy row-major, `dataBytes` N·d·4, every
 * section at the next multiple of 64, both checksums and the header CRC recomputed.
 */
export function toVersion1(buf) {
  const { header: h } = parseFile(buf);
  const { count: n, dim: d } = h;
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const m = new Float32Array(n * d);
  for (let j = 0; j < n; j++) for (let p = 0; p < d; p++) m[j * d + p] = dv.getFloat32(h.dataOffset + matrixAt(2, d, j, p) * 4, true);
  const matrix = new Uint8Array(m.buffer);
  const c = h.compressed;
  const parts = [];
  if (c) {
    const e = compactElem(c.precision);
    const rows = new Uint8Array(n * d * e);
    for (let j = 0; j < n; j++) {
      for (let p = 0; p < d; p++) {
        const o = c.dataOffset + compactAt(2, c.precision, d, j, p) * e;
        rows.set(buf.subarray(o, o + e), (j * d + p) * e);
      }
    }
    parts.push(rows);
    for (const key of ['scaleOffset', 'errOffset', 'errBiasOffset']) if (isInt(c[key])) parts.push(buf.slice(c[key], c[key] + n * 4));
  }
  const h1 = { ...h, dataOffset: 0, dataBytes: n * d * 4, checksum: { algorithm: 'crc32', value: crc32(matrix) } };
  delete h1.layout;
  let hb;
  let offs = [];
  for (;;) {
    if (c) {
      let at = align(h1.dataOffset + matrix.length);
      let crc = 0;
      offs = parts.map((part) => {
        const o = at;
        crc = crc32(part, crc);
        at = align(o + part.length);
        return o;
      });
      const [dataOffset, ...rest] = offs;
      const scaleOffset = isInt(c.scaleOffset) ? rest.shift() : null;
      const errOffset = rest.shift();
      const errBiasOffset = isInt(c.errBiasOffset) ? rest.shift() : null;
      const end = offs[offs.length - 1] + parts[parts.length - 1].length;
      h1.compressed = { ...c, dataOffset, scaleOffset, errOffset, errBiasOffset, end, checksum: { algorithm: 'crc32', value: crc } };
    }
    hb = pack(h1);
    if (PREFIX + hb.length <= h1.dataOffset) break;
    h1.dataOffset = align(PREFIX + hb.length);
  }
  const size = c ? h1.compressed.end : h1.dataOffset + matrix.length;
  const out = new Uint8Array(size);
  out.set(buf.subarray(0, 8));
  const odv = new DataView(out.buffer);
  odv.setUint32(8, 1, true);
  odv.setUint32(12, hb.length, true);
  odv.setUint32(16, crc32(hb), true);
  out.set(hb, PREFIX);
  out.set(matrix, h1.dataOffset);
  parts.forEach((part, i) => out.set(part, offs[i]));
  return out;
}
