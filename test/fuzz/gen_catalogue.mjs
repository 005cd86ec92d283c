/**
 * Family a: catalogue files. Each case builds a valid file with the library
 * (Catalogue.fromVectors(...).save), then mutates it the way a corrupted disk or a buggy writer
 * would: raw byte flips, truncation and extension (checksums left stale), and edits of the
 * header, the matrix or the compressed section with both checksums recomputed (a writer that
 * writes wrong content, consistently). Oracle: the open is refused with a typed error, or the
 * file opens and (1) its header obeys the format's rules (ids unique strings or safe integers,
 * count entries; bias finite; attributes N uint32; with verification: matrix finite and within
 * maxRowNorm), and (2) topK equals a float64 brute-force top-k computed here from the file's own
 * float32 matrix and bias, and a user alone (the compressed scan, when there is one) equals the
 * same user in a batch of 8 (the float32 scan) bit for bit.
 */
import { closeSync, ftruncateSync, openSync, readFileSync, statSync, utimesSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';

import { pack, unpack } from 'msgpackr';

import { Wrong, checkTopK, errText, isTyped, rejected, sameResult, wrong } from './common.mjs';


const PREFIX = 24;
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

const isInt = (x) => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;

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
function writeHeader(buf, physOffset, h, { relayout = true, fixData = true, fixHeader = true, staleHeaderCrc = null } = {}) {
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

// ---------------------------------------------------------------- base catalogues

function randomIds(rng, n) {
  const kind = rng.weighted([[3, 'none'], [3, 'int'], [3, 'string'], [1, 'mixed']]);
  if (kind === 'none') return { kind, ids: undefined };
  const seen = new Set();
  const ids = [];
  const str = () => {
    const alphabet = ['a', 'b', 'Z', '0', '-', ' ', 'é', '漢', '😀', '\u0000', '"', '\\'];
    let s = rng.bool(0.3) ? 'sku-' : '';
    const len = rng.int(0, 6);
    for (let i = 0; i < len; i++) s += rng.pick(alphabet);
    return s;
  };
  const int = () => rng.weighted([[4, rng.int(0, 10 * n)], [1, -rng.int(1, 1000)], [1, 2 ** 53 - 1 - rng.int(0, 5)], [1, rng.int(0, 2 ** 31)]]);
  while (ids.length < n) {
    const v = kind === 'int' ? int() : kind === 'string' ? str() : rng.bool() ? str() : int();
    if (seen.has(v)) {
      if (kind !== 'int') ids.push(`${v}#${ids.length}`), seen.add(`${v}#${ids.length - 1}`);
      continue;
    }
    seen.add(v);
    ids.push(v);
  }
  return { kind, ids };
}

function randomVectors(rng, n, d) {
  const v = new Float32Array(n * d);
  const kind = rng.weighted([[4, 'uniform'], [3, 'normal'], [2, 'clustered'], [1, 'duplicates'], [1, 'scaled'], [1, 'lowrank']]);
  if (kind === 'clustered' || kind === 'lowrank') {
    const c = rng.int(1, 4);
    const centers = Array.from({ length: c }, () => Float32Array.from({ length: d }, () => rng.normal()));
    for (let j = 0; j < n; j++) {
      const cc = centers[j % c];
      const a = kind === 'lowrank' ? rng.normal() : 1;
      for (let p = 0; p < d; p++) v[j * d + p] = a * cc[p] + (kind === 'clustered' ? 0.01 * rng.normal() : 0);
    }
  } else {
    const scale = kind === 'scaled' ? 10 ** rng.int(-12, 12) : 1;
    for (let i = 0; i < v.length; i++) v[i] = (kind === 'uniform' ? rng.float() * 2 - 1 : rng.normal()) * scale;
    if (kind === 'duplicates') for (let j = 1; j < n; j++) if (rng.bool(0.5)) v.copyWithin(j * d, (j - 1) * d, j * d);
  }
  if (rng.bool(0.1)) v.fill(0, 0, d * rng.int(0, Math.min(2, n))); // zero rows
  return { kind, v };
}

export function baseSpec(rng) {
  const n = rng.weighted([[2, rng.int(1, 8)], [6, rng.int(9, 120)], [2, rng.int(121, 500)]]);
  const d = rng.weighted([[2, rng.int(1, 4)], [6, rng.int(5, 24)], [1, rng.int(25, 70)]]);
  const { kind: vkind, v } = randomVectors(rng, n, d);
  const { kind: idKind, ids } = randomIds(rng, n);
  const bias = rng.bool(0.5) ? Float32Array.from({ length: n }, () => rng.normal() * (rng.bool(0.8) ? 0.5 : 100)) : undefined;
  const attributes = rng.bool(0.4) ? Uint32Array.from({ length: n }, () => rng.u32() & rng.pick([0xff, 0xffffffff, 0x3])) : undefined;
  const precision = rng.weighted([[5, 'f32'], [4, 'int8'], [2, 'bf16']]);
  const desc = `n=${n} d=${d} ${vkind} ids=${idKind}${bias ? ' bias' : ''}${attributes ? ' attrs' : ''} ${precision}`;
  return { n, d, v, ids, bias, attributes, precision, desc };
}

// ---------------------------------------------------------------- mutations

const F32 = (buf, off) => new DataView(buf.buffer, buf.byteOffset).getFloat32(off, true);
const setF32 = (buf, off, x) => new DataView(buf.buffer, buf.byteOffset).setFloat32(off, x, true);

const SPECIAL = [NaN, Infinity, -Infinity, 1e30, -3e38, 3.4028234663852886e38, 1e-45, -0, 1e20];

/** Data edits, applied before the header edits; they return the rows they touched. */
const DATA_EDITS = {
  matrixValue(rng, buf, h) {
    const j = rng.int(0, h.count - 1);
    const p = rng.int(0, h.dim - 1);
    const x = rng.pick(SPECIAL);
    setF32(buf, h.dataOffset + (j * h.dim + p) * 4, x);
    return { rows: [j], what: `matrix[${j},${p}] = ${x}` };
  },
  matrixRowScale(rng, buf, h) {
    const j = rng.int(0, h.count - 1);
    const f = rng.pick([2, 10, 1000, 1e6, 1e18, -1e3]);
    for (let p = 0; p < h.dim; p++) {
      const o = h.dataOffset + (j * h.dim + p) * 4;
      setF32(buf, o, F32(buf, o) * f);
    }
    return { rows: [j], what: `row ${j} scaled by ${f} (maxRowNorm kept)` };
  },
  matrixRowCopy(rng, buf, h) {
    const a = rng.int(0, h.count - 1);
    const b = rng.int(0, h.count - 1);
    buf.copyWithin(h.dataOffset + b * h.dim * 4, h.dataOffset + a * h.dim * 4, h.dataOffset + (a + 1) * h.dim * 4);
    return { rows: [a, b], what: `row ${a} copied onto row ${b}` };
  },
  matrixBits(rng, buf, h) {
    const o = h.dataOffset + rng.int(0, h.dataBytes - 1);
    const bit = rng.int(0, 7);
    buf[o] ^= 1 << bit;
    return { rows: [Math.floor((o - h.dataOffset) / 4 / h.dim)], what: `matrix byte ${o - h.dataOffset} bit ${bit} flipped` };
  },
  compressedData(rng, buf, h) {
    const c = h.compressed;
    if (!c) return null;
    const j = rng.int(0, h.count - 1);
    const elem = c.precision === 'int8' ? 1 : 2;
    const row = buf.subarray(c.dataOffset + j * h.dim * elem, c.dataOffset + (j + 1) * h.dim * elem);
    const how = rng.pick(['zero', 'negate', 'random', 'one', 'special']);
    if (how === 'zero') row.fill(0);
    else if (how === 'random') row.set(rng.bytes(row.length));
    else if (how === 'one') row[rng.int(0, row.length - 1)] ^= 0x40;
    else if (elem === 1) for (let i = 0; i < row.length; i++) row[i] = how === 'negate' ? (-((row[i] << 24) >> 24)) & 0xff : 0x80;
    else {
      for (let i = 0; i < row.length; i += 2) {
        if (how === 'negate') row[i + 1] ^= 0x80;
        else row.set(rng.pick([[0xc0, 0x7f], [0x80, 0x7f], [0x80, 0xff], [0x7f, 0x7f]]), i); // NaN, Inf, -Inf, 3.4e38 (bf16 LE)
      }
    }
    return { rows: [j], what: `compressed row ${j} ${how}` };
  },
  compressedScale(rng, buf, h) {
    const c = h.compressed;
    if (!c || c.scaleOffset === null) return null;
    const j = rng.int(0, h.count - 1);
    const o = c.scaleOffset + j * 4;
    const x = rng.pick([0, 0.5, 2, -1, NaN, Infinity, 1e-30, 1e30]);
    setF32(buf, o, x === 0.5 || x === 2 ? F32(buf, o) * x : x);
    return { rows: [j], what: `int8 scale of row ${j} ${x === 0.5 || x === 2 ? `×${x}` : `= ${x}`}` };
  },
  compressedErr(rng, buf, h) {
    const c = h.compressed;
    if (!c) return null;
    const bias = c.errBiasOffset !== null && rng.bool(0.4);
    const base = bias ? c.errBiasOffset : c.errOffset;
    const j = rng.int(0, h.count - 1);
    const x = rng.pick([0, -1, NaN, Infinity, 1e-30, 0.1, -Infinity]);
    const all = rng.bool(0.3);
    for (let r = all ? 0 : j; r < (all ? h.count : j + 1); r++) setF32(buf, base + r * 4, x);
    return { rows: [j], what: `${bias ? 'errBias' : 'err'}[${all ? 'all' : j}] = ${x}` };
  },
};

const ID_EDITS = [
  'duplicate',
  'nonInteger',
  'nan',
  'infinity',
  'unsafe',
  'negativeZero',
  'badType',
  'shortData',
  'oddBytes',
  'badKind',
  'notMap',
  'emptyMixed',
  'extraEntry',
];

/** Header edits: change the header object in place; `layout` false keeps the data where it is. */
function headerEdit(rng, h, rows) {
  const n = h.count;
  const field = rng.weighted([
    [4, 'ids'],
    [3, 'bias'],
    [2, 'attributes'],
    [2, 'count'],
    [2, 'dim'],
    [2, 'dataOffset'],
    [1, 'dataBytes'],
    [3, 'maxRowNorm'],
    [1, 'checksum'],
    [1, 'format'],
    [3, 'compressed'],
    [1, 'shape'],
    [1, 'extraKey'],
    [1, 'dropKey'],
  ]);
  let layout = true;
  let what;
  switch (field) {
    case 'ids': {
      const e = rng.pick(ID_EDITS);
      what = `ids ${e}`;
      if (!h.ids || rng.bool(0.2)) {
        // Give the file ids of its own first.
        h.ids = rng.bool() ? { kind: 'int', data: new Uint8Array(Float64Array.from({ length: n }, (_, i) => i * 3).buffer) } : { kind: 'mixed', values: Array.from({ length: n }, (_, i) => `id${i}`) };
        what = `ids (added ${h.ids.kind}) ${e}`;
      }
      const ids = h.ids;
      const i = rng.int(0, n - 1);
      const j = n > 1 ? (i + rng.int(1, n - 1)) % n : i;
      rows.push(i, j);
      const f64 = ids.kind === 'int' ? new Float64Array(Uint8Array.from(ids.data).buffer) : null;
      const put = (v) => {
        if (f64) {
          f64[i] = typeof v === 'number' ? v : NaN;
          ids.data = new Uint8Array(f64.buffer);
        } else ids.values[i] = v;
      };
      const get = (k) => (f64 ? f64[k] : ids.values[k]);
      if (e === 'duplicate') put(get(j));
      else if (e === 'nonInteger') put(f64 ? 1.5 + i : rng.pick([1.5, 0.1, -2.5]));
      else if (e === 'nan') put(NaN);
      else if (e === 'infinity') put(rng.pick([Infinity, -Infinity]));
      else if (e === 'unsafe') put(rng.pick([2 ** 53, 2 ** 60, -(2 ** 55), 1e300]));
      else if (e === 'negativeZero') put(-0);
      else if (e === 'badType') {
        if (f64) ids.kind = 'mixed', (ids.values = Array.from(f64)), delete ids.data;
        ids.values[i] = rng.pick([null, true, { a: 1 }, [1, 2], new Uint8Array(3), 2 ** 64, 1e-300]);
      } else if (e === 'shortData') {
        if (f64) ids.data = ids.data.subarray(0, Math.max(0, ids.data.length - 8));
        else ids.values.pop();
      } else if (e === 'oddBytes') {
        if (f64) ids.data = ids.data.subarray(0, ids.data.length - rng.int(1, 7));
        else ids.values = 'not an array';
      } else if (e === 'badKind') ids.kind = rng.pick(['float', 'string', '', 7, null]);
      else if (e === 'notMap') h.ids = rng.pick([[1, 2, 3], 'ids', 42, true]);
      else if (e === 'emptyMixed') h.ids = { kind: 'mixed', values: [] };
      else if (e === 'extraEntry') {
        if (f64) ids.data = new Uint8Array([...ids.data, ...new Uint8Array(8)]);
        else ids.values.push('extra');
      }
      break;
    }
    case 'bias': {
      const e = rng.pick(['nan', 'inf', 'huge', 'short', 'long', 'notBin', 'addWithoutCompressed', 'hugeFinite']);
      what = `bias ${e}`;
      if (!h.bias && e !== 'addWithoutCompressed' && e !== 'notBin') h.bias = new Uint8Array(n * 4);
      const b = h.bias ? new Float32Array(Uint8Array.from(h.bias).buffer) : null;
      const i = rng.int(0, n - 1);
      rows.push(i);
      if (e === 'nan' || e === 'inf' || e === 'huge' || e === 'hugeFinite') {
        b[i] = e === 'nan' ? NaN : e === 'inf' ? rng.pick([Infinity, -Infinity]) : e === 'huge' ? 3e38 : rng.pick([1e37, 2e37, -1e38]);
        h.bias = new Uint8Array(b.buffer);
      } else if (e === 'short') h.bias = h.bias.subarray(0, h.bias.length - 4 * rng.int(1, 2));
      else if (e === 'long') h.bias = new Uint8Array([...h.bias, 0, 0, 0, 0]);
      else if (e === 'notBin') h.bias = rng.pick([Array.from({ length: n }, () => 0.5), 'bias', 1, { a: 1 }]);
      else h.bias = new Uint8Array(n * 4).fill(0x3f); // a bias where the compressed section has no errBias
      break;
    }
    case 'attributes': {
      const e = rng.pick(['u16', 'u64', 'short', 'notBin', 'empty']);
      what = `attributes ${e}`;
      if (e === 'u16') h.attributes = new Uint8Array(n * 2);
      else if (e === 'u64') h.attributes = new Uint8Array(n * 8).fill(0xff);
      else if (e === 'short') h.attributes = new Uint8Array(Math.max(0, n * 4 - 1));
      else if (e === 'notBin') h.attributes = rng.pick([Array.from({ length: n }, () => 1), 'x', 7]);
      else h.attributes = new Uint8Array(0);
      break;
    }
    case 'count':
    case 'dim': {
      const v = rng.pick([0, -1, 1, 1.5, 2 ** 31, 2 ** 53, NaN, '8', h[field] + 1, h[field] - 1, h[field] * 2]);
      what = `${field} = ${v}${rng.bool(0.5) ? ' (dataBytes kept)' : ' (dataBytes recomputed)'}`;
      h[field] = v;
      if (what.endsWith('recomputed)') && typeof h.count === 'number' && typeof h.dim === 'number') h.dataBytes = h.count * h.dim * 4;
      break;
    }
    case 'dataOffset': {
      const v = rng.pick([0, 24, 64, h.dataOffset + 64, h.dataOffset - 64, h.dataOffset + 4, h.dataOffset + 1, 2 ** 40, -64]);
      what = `dataOffset = ${v}`;
      h.dataOffset = v;
      layout = false;
      break;
    }
    case 'dataBytes': {
      const v = rng.pick([h.dataBytes + 4, h.dataBytes - 4, 0, h.dataBytes * 2, -4]);
      what = `dataBytes = ${v}`;
      h.dataBytes = v;
      break;
    }
    case 'maxRowNorm': {
      const v = rng.pick([0, 1e-30, h.maxRowNorm * 0.5, h.maxRowNorm * 0.999, NaN, -1, Infinity, 1e38, '1']);
      what = `maxRowNorm = ${v} (real ${h.maxRowNorm})`;
      h.maxRowNorm = v;
      break;
    }
    case 'checksum': {
      const e = rng.pick(['algorithm', 'missing', 'negative', 'string']);
      what = `checksum ${e}`;
      if (e === 'algorithm') h.checksum.algorithm = 'md5';
      else if (e === 'missing') delete h.checksum;
      else if (e === 'negative') h.checksum = { algorithm: 'crc32', value: -1 };
      else h.checksum = 'crc32';
      break;
    }
    case 'format': {
      const e = rng.pick(['format', 'dtype-f64', 'dtype-bf16', 'createdBy']);
      what = `${e}`;
      if (e === 'format') h.format = 'recscore-catalog';
      else if (e === 'dtype-f64') h.dtype = 'float64';
      else if (e === 'dtype-bf16') h.dtype = 'bf16';
      else h.createdBy = { evil: true };
      break;
    }
    case 'compressed': {
      const c = h.compressed;
      const e = c
        ? rng.pick(['precision', 'swapOffsets', 'shift', 'end', 'scaleNull', 'errBiasNull', 'drop', 'checksum', 'overlap', 'notMap'])
        : rng.pick(['addBogus', 'notMap']);
      what = `compressed ${e}`;
      if (e === 'precision') c.precision = c.precision === 'int8' ? 'bf16' : rng.pick(['int8', 'int4', 'f16']);
      else if (e === 'swapOffsets') [c.dataOffset, c.errOffset] = [c.errOffset, c.dataOffset];
      else if (e === 'shift') c.dataOffset += rng.pick([64, -64]);
      else if (e === 'end') c.end += rng.pick([64, -64, -4, 1]);
      else if (e === 'scaleNull') c.scaleOffset = c.scaleOffset === null ? c.errOffset : null;
      else if (e === 'errBiasNull') c.errBiasOffset = c.errBiasOffset === null ? c.errOffset : null;
      else if (e === 'drop') {
        h.compressed = null;
        layout = false;
      } else if (e === 'checksum') c.checksum = { algorithm: 'crc32', value: -5 };
      else if (e === 'overlap') c.errOffset = c.dataOffset;
      else if (e === 'notMap') h.compressed = rng.pick(['int8', 1, [1]]);
      else if (e === 'addBogus') {
        const end = h.dataOffset + h.dataBytes;
        h.compressed = { precision: 'int8', dataOffset: end, scaleOffset: end, errOffset: end, errBiasOffset: null, end, checksum: { algorithm: 'crc32', value: 0 } };
      }
      if (e !== 'drop' && e !== 'notMap' && e !== 'addBogus') layout = rng.bool(0.5);
      break;
    }
    case 'shape': {
      // count and dim swapped: the same bytes, another shape (dataBytes stays right).
      [h.count, h.dim] = [h.dim, h.count];
      what = `count and dim swapped (${h.count}×${h.dim})`;
      break;
    }
    case 'extraKey':
      h[rng.pick(['version', 'x', 'hasOwnProperty', 'constructor'])] = rng.pick([2, 'x', { a: 1 }, null]);
      what = 'extra header key';
      break;
    case 'dropKey': {
      const k = rng.pick(['format', 'dtype', 'count', 'dim', 'dataOffset', 'dataBytes', 'checksum', 'maxRowNorm', 'ids', 'bias', 'attributes', 'createdBy', 'compressed']);
      delete h[k];
      what = `header key ${k} removed`;
      break;
    }
  }
  return { what, layout };
}

/** Raw edits of the final bytes (no checksum fixed). */
function rawEdit(rng, buf) {
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

// ---------------------------------------------------------------- a case

export async function setup() {
  return {};
}

export async function run(ctx, rng, index) {
  const { Catalogue } = ctx.lib;
  const spec = baseSpec(rng);
  const base = join(ctx.caseDir, 'base.rsc');
  const path = join(ctx.caseDir, 'fuzz.rsc');
  try {
    const cat = Catalogue.fromVectors(spec.v, { dim: spec.d, ids: spec.ids, bias: spec.bias, attributes: spec.attributes, precision: spec.precision });
    await cat.save(base);
    await cat.close();
  } catch (e) {
    // The builder refused a valid input (or failed): itself a finding.
    return { ...rejected(e, 'builder'), outcome: isTyped(e) ? 'wrong' : 'untyped', kind: `build ${spec.desc}`, detail: `the builder refused a valid catalogue: ${errText(e)}` };
  }
  let buf = new Uint8Array(readFileSync(base));
  const parsed = parseFile(buf);
  const h = parsed.header;
  const physOffset = h.dataOffset;
  const plan = rng.weighted([
    [1, 'none'],
    [4, 'data'],
    [6, 'header'],
    [2, 'data+header'],
    [4, 'raw'],
    [1, 'header+raw'],
  ]);
  const whats = [];
  const hot = new Set();
  let dataTouched = false;
  if (plan.includes('data')) {
    const keys = Object.keys(DATA_EDITS).filter((k) => (h.compressed ? true : !k.startsWith('compressed')));
    const m = rng.int(1, 2);
    for (let i = 0; i < m; i++) {
      const r = DATA_EDITS[rng.pick(keys)](rng, buf, h);
      if (!r) continue;
      whats.push(r.what);
      r.rows.forEach((x) => hot.add(x));
      dataTouched = true;
    }
  }
  let layoutOk = true;
  const staleCrc = rng.bool(0.08);
  if (plan.includes('header')) {
    const m = rng.weighted([[6, 1], [2, 2], [1, 3]]);
    const rows = [];
    for (let i = 0; i < m; i++) {
      try {
        const r = headerEdit(rng, h, rows);
        whats.push(r.what);
        layoutOk &&= r.layout;
      } catch (e) {
        whats.push(`(edit skipped: ${e.message})`);
      }
    }
    rows.forEach((x) => Number.isInteger(x) && hot.add(x));
    // Without verification only the header schema is checked: an edit that changes how the
    // data are read (shape, offsets, compressed section, maxRowNorm) may change answers.
    dataTouched = true;
  }
  if (plan !== 'none' && plan !== 'raw') {
    if (staleCrc) whats.push('header CRC left stale');
    buf = writeHeader(buf, physOffset, h, { relayout: layoutOk, fixData: true, fixHeader: !staleCrc, staleHeaderCrc: parsed.hcrc });
  }
  if (plan.includes('raw')) {
    const m = rng.weighted([[5, 1], [1, 2]]);
    for (let i = 0; i < m; i++) {
      const r = rawEdit(rng, buf);
      buf = r.buf;
      whats.push(r.what);
    }
    dataTouched = true;
  }
  // Sometimes the file is first opened (verified) and closed, then rewritten in place: the same
  // inode (and, half the time, the same mtime), as a cache of verified files must not trust.
  const inPlace = plan !== 'none' && rng.bool(0.08);
  const keepMtime = inPlace && rng.bool(0.5);
  if (inPlace) {
    writeFileSync(path, readFileSync(base));
    try {
      await (await Catalogue.open(path)).close();
    } catch (e) {
      return { ...rejected(e, 'open of the unmodified file'), outcome: 'wrong', kind: `${spec.desc}; unmodified`, detail: `a file the builder wrote was refused: ${errText(e)}` };
    }
    const st = statSync(path);
    const fd = openSync(path, 'r+');
    writeSync(fd, buf, 0, buf.length, 0);
    ftruncateSync(fd, buf.length);
    closeSync(fd);
    if (keepMtime) utimesSync(path, st.atime, st.mtime);
  } else writeFileSync(path, buf);
  const verify = rng.weighted([[8, undefined], [1, true], [2, false]]);
  const kind = `${spec.desc}; ${plan}: ${whats.join('; ') || 'unmodified'}${inPlace ? `; rewritten in place after a verified open${keepMtime ? ' (mtime kept)' : ''}` : ''}${verify === false ? '; verify:false' : ''}`;
  const queryPlan = { k: rng.weighted([[3, 1], [2, 2], [2, 3], [2, 10], [1, spec.n], [1, spec.n + 3]]), extraSeed: rng.u32() };

  ctx.kind = kind;
  let cat;
  try {
    cat = await Catalogue.open(path, verify === undefined ? undefined : { verify });
  } catch (e) {
    if (plan === 'none') return { outcome: 'wrong', kind, detail: `a file the builder wrote was refused: ${errText(e)}` };
    return { ...rejected(e, 'open'), kind };
  }
  try {
    const checked = await checkOpened(ctx, cat, buf, { verify: verify !== false, dataTouched, hot: [...hot], plan: queryPlan, rng });
    return { outcome: 'correct', kind, detail: checked };
  } catch (e) {
    if (e instanceof Wrong) return { outcome: 'wrong', kind, detail: e.message };
    return { ...rejected(e, 'after open'), kind };
  } finally {
    await cat.close().catch(() => {});
  }
}

/** What the accepted file says, read here (independently of the library). */
function readContent(buf) {
  const { header: h } = parseFile(buf);
  if (!h || typeof h !== 'object') wrong('accepted a file whose header does not parse');
  const { count: n, dim: d, dataOffset } = h;
  if (!isInt(n) || !isInt(d) || n < 1 || d < 1) wrong(`accepted count ${n} / dim ${d}`);
  if (!isInt(dataOffset) || dataOffset + n * d * 4 > buf.length || dataOffset < PREFIX) wrong(`accepted a matrix [${dataOffset}, +${n * d * 4}) outside a ${buf.length}-byte file`);
  const items = new Float32Array(n * d);
  new Uint8Array(items.buffer).set(buf.subarray(dataOffset, dataOffset + n * d * 4));
  const bin = (x) => (x instanceof Uint8Array ? x : null);
  let bias = null;
  if (h.bias !== null && h.bias !== undefined) {
    const b = bin(h.bias);
    if (!b || b.byteLength !== n * 4) wrong(`accepted a bias of ${b ? b.byteLength : typeof h.bias} bytes for ${n} items`);
    bias = new Float32Array(n);
    new Uint8Array(bias.buffer).set(b);
  }
  let attributes = null;
  if (h.attributes !== null && h.attributes !== undefined) {
    const a = bin(h.attributes);
    if (!a || a.byteLength !== n * 4) wrong(`accepted attributes of ${a ? a.byteLength : typeof h.attributes} bytes for ${n} items (uint32 each)`);
    attributes = new Uint32Array(n);
    new Uint8Array(attributes.buffer).set(a);
  }
  let ids = null;
  if (h.ids !== null && h.ids !== undefined) {
    if (typeof h.ids !== 'object') wrong(`accepted ids of type ${typeof h.ids}`);
    if (h.ids.kind === 'int') {
      const b = bin(h.ids.data);
      if (!b || b.byteLength !== n * 8) wrong(`accepted int ids of ${b ? b.byteLength : typeof h.ids.data} bytes for ${n} items`);
      const f = new Float64Array(n);
      new Uint8Array(f.buffer).set(b);
      ids = Array.from(f);
    } else if (h.ids.kind === 'mixed') {
      if (!Array.isArray(h.ids.values) || h.ids.values.length !== n) wrong(`accepted mixed ids with ${h.ids.values?.length} entries for ${n} items`);
      ids = h.ids.values;
    } else wrong(`accepted ids of kind ${String(h.ids.kind)}`);
  }
  return { h, n, d, items, bias, attributes, ids };
}

async function checkOpened(ctx, cat, buf, { verify, dataTouched, hot, plan, rng }) {
  const { h, n, d, items, bias, attributes, ids } = readContent(buf);
  if (cat.size !== n || cat.dim !== d) wrong(`opened as ${cat.size}×${cat.dim}, the header says ${n}×${d}`);
  // The header schema: checked on every open.
  if (ids) {
    const seen = new Map();
    for (let j = 0; j < n; j++) {
      const v = ids[j];
      if (!(typeof v === 'string' || (typeof v === 'number' && Number.isSafeInteger(v)))) wrong(`accepted id ${String(v)} (${typeof v}) at row ${j}: ids are strings or safe integers`);
      if (seen.has(v)) wrong(`accepted duplicate id ${JSON.stringify(v)} at rows ${seen.get(v)} and ${j}`);
      seen.set(v, j);
    }
  }
  if (bias) for (let j = 0; j < n; j++) if (!Number.isFinite(bias[j])) wrong(`accepted bias[${j}] = ${bias[j]}`);
  // With verification: the matrix is finite and within the recorded row-norm bound.
  let realMax = 0;
  let nonFinite = -1;
  for (let j = 0; j < n; j++) {
    let s = 0;
    for (let p = 0; p < d; p++) {
      const x = items[j * d + p];
      if (!Number.isFinite(x) && nonFinite < 0) nonFinite = j * d + p;
      s += x * x;
    }
    realMax = Math.max(realMax, Math.sqrt(s));
  }
  if (verify) {
    if (nonFinite >= 0) wrong(`accepted (verified) a matrix with ${items[nonFinite]} at row ${Math.floor(nonFinite / d)}`);
    if (typeof h.maxRowNorm === 'number' && realMax > h.maxRowNorm * (1 + 1e-5) + 1e-30) {
      wrong(`accepted (verified) maxRowNorm ${h.maxRowNorm} below the real largest row norm ${realMax}`);
    }
  }
  // Answers: without verification only a file whose data were not touched must answer exactly.
  const exact = verify || !dataTouched;
  const users = queryUsers(rng, items, n, d, hot);
  const b = users.length / d;
  const k = plan.k;
  const batch = cat.topK(users, { k });
  if (exact) {
    const diff = checkTopK({ items, n, d, bias, users, k, res: batch, eligible: () => true });
    if (diff) wrong(`topK (batch of ${b}, float32 scan) differs from float64 brute force: ${diff}`);
  }
  for (let u = 0; u < b; u++) {
    const one = cat.topK(users.subarray(u * d, (u + 1) * d), { k });
    if (exact) {
      const diff = sameResult(batch, one, u, 0);
      if (diff) wrong(`user ${u} alone (${cat.precision === 'f32' ? 'float32' : `${cat.precision} scan`}) differs from the same user in a batch of ${b}: ${diff}`);
    }
  }
  // Exclusions and an async call.
  const u0 = users.subarray(0, d);
  const excl = hot.length ? hot.filter((r) => r < n) : [0];
  const resEx = await cat.topKAsync(u0, { k, exclude: [excl] });
  if (exact) {
    const diff = checkTopK({ items, n, d, bias, users: u0, k, res: resEx, eligible: (_u, j) => !excl.includes(j) });
    if (diff) wrong(`topKAsync with exclude [${excl}] differs from brute force: ${diff}`);
  }
  if (attributes) {
    const mask = (attributes[rng.int(0, n - 1)] & rng.u32()) >>> 0;
    const res = cat.topK(u0, { k, filter: { allOf: mask } });
    if (exact) {
      const diff = checkTopK({ items, n, d, bias, users: u0, k, res, eligible: (_u, j) => (attributes[j] & mask) >>> 0 === mask >>> 0 });
      if (diff) wrong(`topK with filter allOf ${mask} differs from brute force: ${diff}`);
    }
  }
  // Ids round-trip for the rows returned.
  for (let i = 0; i < Math.min(batch.k, 8); i++) {
    const r = batch.rows[i];
    if (r < 0) continue;
    const id = cat.id(r);
    const want = ids ? ids[r] : r;
    if (!Object.is(id, want)) wrong(`id(${r}) = ${String(id)}, the file says ${String(want)}`);
    let back;
    try {
      back = cat.row(id);
    } catch (e) {
      wrong(`row(id(${r})) failed: ${errText(e)}`);
    }
    if (back !== r) wrong(`row(id(${r})) = ${back}`);
  }
  return `${n}×${d} ${cat.precision}, ${b} users, k ${k}${exact ? '' : ' (answers not checked: verify:false and data edited)'}`;
}

/** Users: the hot rows (their own vectors are their best items), their negatives, random ones, a zero. */
function queryUsers(rng, items, n, d, hot) {
  const out = [];
  const row = (j) => Array.from(items.subarray(j * d, (j + 1) * d), (x) => (Number.isFinite(x) ? Math.max(-1e3, Math.min(1e3, x)) : 1));
  for (const j of hot.slice(0, 3)) if (j < n) out.push(row(j), row(j).map((x) => -x));
  while (out.length < 7) out.push(rng.bool(0.5) ? row(rng.int(0, n - 1)) : Array.from({ length: d }, () => rng.normal()));
  out.push(new Array(d).fill(0));
  while (out.length < 8) out.push(Array.from({ length: d }, () => rng.normal()));
  return Float32Array.from(out.flat());
}
