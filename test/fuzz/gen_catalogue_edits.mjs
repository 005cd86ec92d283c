/**
 * Family a (gen_catalogue.mjs): the edits of a decoded catalogue file that a writer which writes
 * wrong content consistently would make (both checksums are recomputed afterwards): data edits
 * of the matrix and the compressed section, which return the rows they touched, and header edits
 * (ids, bias, attributes, shape, offsets, maxRowNorm, checksum, format and layout fields, the
 * compressed section's layout, keys added or dropped). Data edits address the matrix and the
 * compact copy as the file's version lays them out (version 2: panels of 16 rows), and some break
 * version 2's padding rule (padding must be +0).
 */
import { PANEL, compactAt, compactElem, compactGroup, matrixAt, matrixBytes, matrixRowOf, panelCount } from './gen_catalogue_bytes.mjs';

const F32 = (buf, off) => new DataView(buf.buffer, buf.byteOffset).getFloat32(off, true);
const setF32 = (buf, off, x) => new DataView(buf.buffer, buf.byteOffset).setFloat32(off, x, true);

const SPECIAL = [NaN, Infinity, -Infinity, 1e30, -3e38, 3.4028234663852886e38, 1e-45, -0, 1e20];

/**
 * Data edits, applied before the header edits, on a file of format version `v` (1: row-major,
 * 2: panels); they return the rows they touched (real rows only: a padding row is not one).
 */
export const DATA_EDITS = {
  matrixValue(rng, buf, h, v) {
    const j = rng.int(0, h.count - 1);
    const p = rng.int(0, h.dim - 1);
    const x = rng.pick(SPECIAL);
    setF32(buf, h.dataOffset + matrixAt(v, h.dim, j, p) * 4, x);
    return { rows: [j], what: `matrix[${j},${p}] = ${x}` };
  },
  matrixRowScale(rng, buf, h, v) {
    const j = rng.int(0, h.count - 1);
    const f = rng.pick([2, 10, 1000, 1e6, 1e18, -1e3]);
    for (let p = 0; p < h.dim; p++) {
      const o = h.dataOffset + matrixAt(v, h.dim, j, p) * 4;
      setF32(buf, o, F32(buf, o) * f);
    }
    return { rows: [j], what: `row ${j} scaled by ${f} (maxRowNorm kept)` };
  },
  matrixRowCopy(rng, buf, h, v) {
    const a = rng.int(0, h.count - 1);
    const b = rng.int(0, h.count - 1);
    for (let p = 0; p < h.dim; p++) {
      const from = h.dataOffset + matrixAt(v, h.dim, a, p) * 4;
      buf.copyWithin(h.dataOffset + matrixAt(v, h.dim, b, p) * 4, from, from + 4);
    }
    return { rows: [a, b], what: `row ${a} copied onto row ${b}` };
  },
  matrixBits(rng, buf, h, v) {
    const o = h.dataOffset + rng.int(0, h.dataBytes - 1);
    const bit = rng.int(0, 7);
    buf[o] ^= 1 << bit;
    const row = matrixRowOf(v, h.dim, Math.floor((o - h.dataOffset) / 4));
    return { rows: row < h.count ? [row] : [], what: `matrix byte ${o - h.dataOffset} (row ${row}${row < h.count ? '' : ', padding'}) bit ${bit} flipped` };
  },
  /** Version 2: a value of the last panel's padding rows (past N) made nonzero, or -0. */
  matrixPadding(rng, buf, h, v) {
    const padded = panelCount(h.count) * PANEL;
    if (v !== 2 || padded === h.count) return null;
    const r = rng.int(h.count, padded - 1);
    const p = rng.int(0, h.dim - 1);
    const x = rng.pick([-0, -0, 1, 1e-45, -1e-45, NaN, 3e38, 0.5]);
    setF32(buf, h.dataOffset + matrixAt(v, h.dim, r, p) * 4, x);
    return { rows: [], what: `matrix padding row ${r} column ${p} = ${Object.is(x, -0) ? '-0' : x}` };
  },
  compressedData(rng, buf, h, v) {
    const c = h.compressed;
    if (!c) return null;
    const j = rng.int(0, h.count - 1);
    const e = compactElem(c.precision);
    // Row j's elements, wherever the layout puts them.
    const at = Array.from({ length: h.dim }, (_, p) => c.dataOffset + compactAt(v, c.precision, h.dim, j, p) * e);
    const how = rng.pick(['zero', 'negate', 'random', 'one', 'special']);
    if (how === 'one') buf[rng.pick(at) + rng.int(0, e - 1)] ^= 0x40;
    for (const o of how === 'one' ? [] : at) {
      if (how === 'zero') buf.fill(0, o, o + e);
      else if (how === 'random') buf.set(rng.bytes(e), o);
      else if (e === 1) buf[o] = how === 'negate' ? (-((buf[o] << 24) >> 24)) & 0xff : 0x80;
      else if (how === 'negate') buf[o + 1] ^= 0x80;
      else buf.set(rng.pick([[0xc0, 0x7f], [0x80, 0x7f], [0x80, 0xff], [0x7f, 0x7f]]), o); // NaN, Inf, -Inf, 3.4e38 (bf16 LE)
    }
    return { rows: [j], what: `compressed row ${j} ${how}` };
  },
  /** Version 2: the compact copy's padding (dimensions past d, rows past N) made nonzero. */
  compressedPadding(rng, buf, h, v) {
    const c = h.compressed;
    if (!c || v !== 2) return null;
    const g = compactGroup(c.precision);
    const width = Math.ceil(h.dim / g) * g;
    const padded = panelCount(h.count) * PANEL;
    if (width === h.dim && padded === h.count) return null;
    const pastD = width > h.dim && (padded === h.count || rng.bool());
    const r = pastD ? rng.int(0, padded - 1) : rng.int(h.count, padded - 1);
    const p = pastD ? rng.int(h.dim, width - 1) : rng.int(0, width - 1);
    const e = compactElem(c.precision);
    const o = c.dataOffset + compactAt(v, c.precision, h.dim, r, p) * e;
    const x = e === 1 ? rng.pick([1, 0x80, 0xff, 0x7f]) : rng.pick([0x8000, 0x3f80, 0x7fc0, 0x0001, 0xff80]); // bf16: -0, 1, NaN, tiny, -Inf
    if (e === 1) buf[o] = x;
    else new DataView(buf.buffer, buf.byteOffset).setUint16(o, x, true);
    return { rows: r < h.count ? [r] : [], what: `compact padding row ${r} column ${p} = 0x${x.toString(16)}` };
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

/**
 * Header edits of a file of version `v` with `n0` rows: change the header object in place;
 * `layout` false keeps the data where it is. Sizes follow `count` unless an earlier edit made it
 * absurd (2^31 ids or bias entries would take the harness, not the library, minutes).
 */
export function headerEdit(rng, h, rows, v, n0) {
  const n = Number.isSafeInteger(h.count) && h.count >= 1 && h.count <= 1 << 20 ? h.count : n0;
  const field = rng.weighted([
    [4, 'ids'],
    [3, 'bias'],
    [2, 'attributes'],
    [2, 'count'],
    [2, 'dim'],
    [2, 'dataOffset'],
    [1, 'dataBytes'],
    [2, 'layout'],
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
      // count ± 1 within the last panel keeps version 2's dataBytes: the new last row is padding (zero).
      const x = rng.pick([0, -1, 1, 1.5, 2 ** 31, 2 ** 53, NaN, '8', h[field] + 1, h[field] - 1, h[field] * 2, h[field] + 1]);
      what = `${field} = ${x}${rng.bool(0.5) ? ' (dataBytes kept)' : ' (dataBytes recomputed)'}`;
      h[field] = x;
      if (what.endsWith('recomputed)') && typeof h.count === 'number' && typeof h.dim === 'number') h.dataBytes = matrixBytes(v, h.count, h.dim);
      break;
    }
    case 'dataOffset': {
      const x = rng.pick([0, 24, 64, h.dataOffset + 64, h.dataOffset - 64, h.dataOffset + 4, h.dataOffset + 1, 2 ** 40, -64]);
      what = `dataOffset = ${x}`;
      h.dataOffset = x;
      layout = false;
      break;
    }
    case 'dataBytes': {
      // Including the other version's rule (N·d·4 for version 2, panels for version 1).
      const other = matrixBytes(3 - v, h.count, h.dim);
      const x = rng.pick([h.dataBytes + 4, h.dataBytes - 4, 0, h.dataBytes * 2, -4, other, other]);
      what = `dataBytes = ${x}${x === other ? ` (the version-${3 - v} rule)` : ''}`;
      h.dataBytes = x;
      break;
    }
    case 'layout': {
      const e = rng.pick(['missing', 'missing', 'null', 'panels8', 'rowmajor', 'PANELS16', 'number', 'padded', 'bin']);
      what = `layout ${e}`;
      if (e === 'missing') delete h.layout;
      else {
        const values = { null: null, panels8: 'panels8', rowmajor: 'row-major', PANELS16: 'PANELS16', number: 16, padded: 'panels16 ', bin: new Uint8Array([0x70]) };
        h.layout = values[e];
      }
      break;
    }
    case 'maxRowNorm': {
      const x = rng.pick([0, 1e-30, h.maxRowNorm * 0.5, h.maxRowNorm * 0.999, NaN, -1, Infinity, 1e38, '1']);
      what = `maxRowNorm = ${x} (real ${h.maxRowNorm})`;
      h.maxRowNorm = x;
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
      // count and dim swapped: the same bytes, another shape (version 1: dataBytes stays right).
      [h.count, h.dim] = [h.dim, h.count];
      const fix = v === 2 && rng.bool();
      if (fix) h.dataBytes = matrixBytes(v, h.count, h.dim);
      what = `count and dim swapped (${h.count}×${h.dim})${fix ? ', dataBytes recomputed' : ''}`;
      break;
    }
    case 'extraKey':
      h[rng.pick(['version', 'x', 'hasOwnProperty', 'constructor', 'layout'])] = rng.pick([2, 'x', { a: 1 }, null, 'panels16']);
      what = 'extra header key';
      break;
    case 'dropKey': {
      const k = rng.pick(['format', 'dtype', 'count', 'dim', 'dataOffset', 'dataBytes', 'layout', 'checksum', 'maxRowNorm', 'ids', 'bias', 'attributes', 'createdBy', 'compressed']);
      delete h[k];
      what = `header key ${k} removed`;
      break;
    }
  }
  return { what, layout };
}
