/**
 * Family a (gen_catalogue.mjs): the edits of a decoded catalogue file that a writer which writes
 * wrong content consistently would make (both checksums are recomputed afterwards): data edits
 * of the matrix and the compressed section, which return the rows they touched, and header edits
 * (ids, bias, attributes, shape, offsets, maxRowNorm, checksum and format fields, the compressed
 * section's layout, keys added or dropped).
 */

const F32 = (buf, off) => new DataView(buf.buffer, buf.byteOffset).getFloat32(off, true);
const setF32 = (buf, off, x) => new DataView(buf.buffer, buf.byteOffset).setFloat32(off, x, true);

const SPECIAL = [NaN, Infinity, -Infinity, 1e30, -3e38, 3.4028234663852886e38, 1e-45, -0, 1e20];

/** Data edits, applied before the header edits; they return the rows they touched. */
export const DATA_EDITS = {
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
export function headerEdit(rng, h, rows) {
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
