/**
 * Family a (gen_catalogue.mjs): a catalogue file as bytes, read and written here independently
 * of the library: the prefix and the msgpack header, the data checksums a consistent buggy
 * writer recomputes, the header written back (moving the data when it grows), and raw edits of
 * the final bytes that leave every checksum stale.
 */
import { crc32 } from 'node:zlib';

import { pack, unpack } from 'msgpackr';

export const PREFIX = 24;
const ALIGN = 64;
const align = (x) => Math.ceil(x / ALIGN) * ALIGN;

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
function compressedPieces(h) {
  const c = h.compressed;
  if (!c || typeof c !== 'object') return null;
  const n = h.count;
  const elem = c.precision === 'int8' ? 1 : c.precision === 'bf16' ? 2 : 0;
  const out = [[c.dataOffset, n * h.dim * elem]];
  if (c.scaleOffset !== null && c.scaleOffset !== undefined) out.push([c.scaleOffset, n * 4]);
  out.push([c.errOffset, n * 4]);
  if (c.errBiasOffset !== null && c.errBiasOffset !== undefined) out.push([c.errBiasOffset, n * 4]);
  return out;
}

/** Recomputes the matrix and compressed checksums in `h` from `buf` (a consistent buggy writer). */
function fixDataChecksums(buf, h) {
  if (!h || typeof h !== 'object') return;
  if (isInt(h.dataOffset) && isInt(h.dataBytes) && h.checksum && typeof h.checksum === 'object') {
    const end = Math.min(buf.length, h.dataOffset + h.dataBytes);
    if (h.dataOffset <= end) h.checksum.value = crc32(buf.subarray(h.dataOffset, end));
  }
  const pieces = h.compressed && typeof h.compressed === 'object' ? compressedPieces(h) : null;
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
  for (let guard = 0; guard < 8; guard++) {
    if (fixData) fixDataChecksums(buf, h);
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
      const v = rng.pick([0, 2, 0xffffffff]);
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
