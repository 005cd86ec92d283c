/**
 * Catalogue files as a buggy writer makes them (issue 19): files whose checksums were
 * recomputed after an edit of the header, the matrix or the compressed section. Every one is
 * refused with a typed error and an exact message.
 */
import { describe, expect, it } from 'vitest';

import { Catalogue, FormatError } from '../src/index.js';
import { type CatalogueFileView, editCatalogue, intIds } from './catalogue-edit.js';
import { edited, fresh, refused, rejection, saved } from './catalogue-validation-helpers.js';

// The bound terms exactly as native/core/compressed.cc computes them (float64, index order), so
// the expected messages below are an independent statement of the rule.
const up = (v: number): number => v * (1 + 1e-12) + 1e-300;
function upf(v: number): number {
  const f = new Float32Array([v]);
  const bits = new Uint32Array(f.buffer);
  if (f[0] === 0) bits[0] = 1;
  else if (f[0] > 0) bits[0] += 1;
  else bits[0] -= 1;
  return f[0];
}
function sums(row: Float32Array, xh: (i: number) => number): { xx: number; rr: number } {
  let xx = 0;
  let rr = 0;
  for (let i = 0; i < row.length; i++) {
    xx += row[i] * row[i];
    rr += (row[i] - xh(i)) * (row[i] - xh(i));
  }
  return { xx, rr };
}
const g = (d: number): number => (d + 32) * 2 ** -23;
function errTerm(xx: number, rr: number, d: number): number {
  const X = up(Math.sqrt(xx));
  const R = up(Math.sqrt(rr));
  return upf(up(R + g(d) * (2 * X + R)));
}
const bf16 = (h: number): number => new Float32Array(new Uint32Array([h << 16]).buffer)[0];

describe('files whose checksums were recomputed after an edit', () => {
  const strIds = Array.from({ length: 40 }, (_, i) => `sku-${i}`);
  const numIds = Array.from({ length: 40 }, (_, i) => 10 * i);

  it('duplicate ids (strings, integers)', async () => {
    let p = await edited('dup-str.rsc', { ids: strIds }, (f) => {
      f.header.ids.values[9] = 'sku-3';
    });
    await refused(p, 'ids: duplicate id "sku-3" at rows 3 and 9', false);
    p = await edited('dup-int.rsc', { ids: numIds }, (f) => {
      f.header.ids = intIds(numIds.map((v, i) => (i === 9 ? 30 : v)));
    });
    await refused(p, 'ids: duplicate id 30 at rows 3 and 9', false);
  });

  it('non-integer and non-id ids', async () => {
    let p = await edited('frac-int.rsc', { ids: numIds }, (f) => {
      f.header.ids = intIds(numIds.map((v, i) => (i === 4 ? 1.5 : v)));
    });
    await refused(p, 'ids[4] = 1.5 is not a safe integer', false);
    p = await edited('nan-int.rsc', { ids: numIds }, (f) => {
      f.header.ids = intIds(numIds.map((v, i) => (i === 4 ? Number.NaN : v)));
    });
    await refused(p, 'ids[4] = NaN is not a safe integer');
    p = await edited('frac-mixed.rsc', { ids: strIds }, (f) => {
      f.header.ids.values[2] = 1.5;
    });
    await refused(p, 'ids[2] must be a string or a safe integer, got 1.5');
    p = await edited('short-ids.rsc', { ids: strIds }, (f) => {
      f.header.ids.values.pop();
    });
    await refused(p, 'ids: kind "mixed" must hold count = 40 values, got Array(39)');
    p = await edited('kind-ids.rsc', { ids: strIds }, (f) => {
      f.header.ids.kind = 'uuid';
    });
    await refused(p, 'ids: must be nil or a map with kind "int" or "mixed", got kind "uuid"');
  });

  it('a NaN or out-of-range bias', async () => {
    let p = await edited('nan-bias.rsc', { bias: true }, (f) => {
      (f.bias as Float32Array)[12] = Number.NaN;
    });
    await refused(p, 'bias[12] is NaN', false);
    p = await edited('inf-bias.rsc', { bias: true }, (f) => {
      (f.bias as Float32Array)[3] = -Infinity;
    });
    await refused(p, 'bias[3] is -Infinity');
    p = await edited('big-bias.rsc', { bias: true }, (f) => {
      (f.bias as Float32Array)[3] = 3e38;
    });
    await refused(p, `bias[3] = ${Math.fround(3e38)} is outside ±1e+37 (scores could overflow float32)`);
  });

  it('an Infinity or NaN in the matrix (verify: true); structure-only opens accept it, save refuses it', async () => {
    const p = await edited('inf-matrix.rsc', {}, (f) => {
      f.matrix[5 * 6 + 2] = Infinity;
    });
    await refused(p, 'matrix row 5 column 2 is Infinity');
    const q = await edited('nan-matrix.rsc', {}, (f) => {
      f.matrix[39 * 6] = Number.NaN;
    });
    await refused(q, 'matrix row 39 column 0 is NaN');
    // verify: false checks the structure only (documented): the file opens...
    const c = await Catalogue.open(p, { verify: false });
    // ...but a catalogue that was never verified is checked before it is written elsewhere.
    const e = await rejection(c.save(fresh('copy.rsc')));
    expect(e).toBeInstanceOf(FormatError);
    expect(e.message).toBe(`${p}: matrix row 5 column 2 is Infinity`);
    await c.close();
  });

  it('a row norm above the recorded maxRowNorm', async () => {
    const p = await edited('norm.rsc', { d: 4 }, (f) => {
      f.header.maxRowNorm = 3;
      f.matrix.set([3.2, 0, 0, 0], 5 * 4);
    });
    await refused(p, `matrix row 5 has norm ${Math.fround(3.2)} > maxRowNorm 3 recorded in the header`);
    const q = await edited('norm-low.rsc', {}, (f) => {
      f.header.maxRowNorm = 0.5;
    });
    const e = await rejection(Catalogue.open(q));
    expect(e.message).toMatch(new RegExp(`^${q}: matrix row 0 has norm [0-9.]+ > maxRowNorm 0.5 recorded in the header$`));
  });

  it('an int8 section inconsistent with the float32 matrix', async () => {
    const d = 6;
    // The float32 row changed, its compact copy and bound did not.
    let want = '';
    const p = await edited('int8-matrix.rsc', { precision: 'int8', d }, (f) => {
      const row = f.matrix.subarray(17 * d, 18 * d);
      let big = 0;
      for (let i = 1; i < d; i++) if (Math.abs(row[i]) > Math.abs(row[big])) big = i;
      row[big] *= 0.75; // a quarter of the largest value away from its copy; the norm only drops
      const s = (f.scale as Float32Array)[17];
      const q = (f.compact as Int8Array).subarray(17 * d, 18 * d);
      const { xx, rr } = sums(row, (i) => s * q[i]);
      want = `compressed: row 17's int8 error exceeds its recorded bound (bound ${(f.err as Float32Array)[17]}, needs at least ${errTerm(xx, rr, d)})`;
    });
    await refused(p, want);
    // The compact copy changed.
    const q2 = await edited('int8-q.rsc', { precision: 'int8', d }, (f) => {
      const q = f.compact as Int8Array;
      q[17 * d + 3] = q[17 * d + 3] > 0 ? q[17 * d + 3] - 9 : q[17 * d + 3] + 9;
    });
    const e = await rejection(Catalogue.open(q2));
    expect(e).toBeInstanceOf(FormatError);
    expect(e.message).toMatch(/: compressed: row 17's int8 error exceeds its recorded bound \(bound [0-9.e-]+, needs at least [0-9.e-]+\)$/);
    // A scale that is not a scale, one that makes the copy farther than the row, a lowered bound.
    const s1 = await edited('int8-scale.rsc', { precision: 'int8', d }, (f) => {
      (f.scale as Float32Array)[17] = -0.5;
    });
    await refused(s1, "compressed: row 17's int8 scale is -0.5 (must be finite and >= 0)");
    let far = '';
    const s2 = await edited('int8-far.rsc', { precision: 'int8', d }, (f) => {
      const sc = f.scale as Float32Array;
      sc[17] *= 4;
      const row = f.matrix.subarray(17 * d, 18 * d);
      const q = (f.compact as Int8Array).subarray(17 * d, 18 * d);
      const { xx, rr } = sums(row, (i) => sc[17] * q[i]);
      far = `compressed: row 17's int8 copy is farther from the float32 row (${Math.sqrt(rr)}) than the row's norm (${Math.sqrt(xx)})`;
    });
    await refused(s2, far);
    const s3 = await edited('int8-err.rsc', { precision: 'int8', d }, (f) => {
      (f.err as Float32Array)[17] = Number.NaN;
    });
    const e3 = await rejection(Catalogue.open(s3));
    expect(e3.message).toMatch(/: compressed: row 17's int8 error exceeds its recorded bound \(bound NaN, needs at least [0-9.e-]+\)$/);
  });

  it('a bf16 section inconsistent with the float32 matrix', async () => {
    const d = 6;
    let want = '';
    const p = await edited('bf16.rsc', { precision: 'bf16', d }, (f) => {
      const h = f.compact as Uint16Array;
      h[17 * d + 2] ^= 0x0040; // a wrong mantissa bit
      const row = f.matrix.subarray(17 * d, 18 * d);
      const { xx, rr } = sums(row, (i) => bf16(h[17 * d + i]));
      want = `compressed: row 17's bf16 error exceeds its recorded bound (bound ${(f.err as Float32Array)[17]}, needs at least ${errTerm(xx, rr, d)})`;
    });
    await refused(p, want);
    const q = await edited('bf16-nan.rsc', { precision: 'bf16', d }, (f) => {
      (f.compact as Uint16Array)[17 * d + 3] = 0x7fc0;
    });
    await refused(q, 'compressed: row 17 column 3 of the bf16 copy is NaN');
  });

  it("a bias bound term below what the row's bias needs", async () => {
    let want = '';
    const p = await edited('errbias.rsc', { precision: 'int8', bias: true }, (f) => {
      (f.errBias as Float32Array)[17] = 0;
      const b = (f.bias as Float32Array)[17];
      want = `compressed: row 17's bias bound term is 0, needs at least ${upf(up(2 * g(6) * Math.abs(b)))}`;
    });
    await refused(p, want);
  });

  it('the header structure: each field and the section layout', async () => {
    const cases: Array<[string, (f: CatalogueFileView) => void, string, boolean?]> = [
      ['count', (f) => void (f.header.count = 0), 'header: count must be an integer in 1..2147483647, got 0'],
      ['dim', (f) => void (f.header.dim = 70000), 'header: dim must be an integer in 1..65536, got 70000'],
      ['dtype', (f) => void (f.header.dtype = 'float16'), 'header: dtype must be "float32", got "float16"'],
      ['format', (f) => void (f.header.format = 'npy'), 'header: format must be "recscore-catalogue", got "npy"'],
      ['dataBytes', (f) => void (f.header.dataBytes += 4), 'header: dataBytes must be ceil(count / 16) × 16 × dim × 4 = 1152, got 1156'],
      ['offset', (f) => void (f.header.dataOffset += 4), 'header: dataOffset must be a multiple of 64 at or past the end of the header (byte '],
      ['norm', (f) => void (f.header.maxRowNorm = -1), 'header: maxRowNorm must be a number in 0..1e+37, got -1'],
      ['normNaN', (f) => void (f.header.maxRowNorm = Number.NaN), 'header: maxRowNorm must be a number in 0..1e+37, got NaN'],
      ['createdBy', (f) => void (f.header.createdBy = 7), 'header: createdBy must be a string, got 7'],
      ['checksum', (f) => void (f.header.checksum = { algorithm: 'md5', value: 1 }), 'header: checksum must be { algorithm: "crc32", value: a u32 }', false],
      ['bias', (f) => void (f.header.bias = new Uint8Array(12)), 'bias: must be nil or count × 4 = 160 bytes, got Uint8Array(12)'],
      ['attributes', (f) => void (f.header.attributes = new Uint8Array(164)), 'attributes: must be nil or count × 4 = 160 bytes, got Uint8Array(164)'],
    ];
    for (const [name, edit, message, recompute] of cases) {
      const { path } = await saved(`${name}.rsc`);
      editCatalogue(path, edit, { recompute });
      const e = await rejection(Catalogue.open(path, { verify: false }));
      expect(e, name).toBeInstanceOf(FormatError);
      expect(e.message.startsWith(`${path}: ${message}`), `${name}: ${e.message}`).toBe(true);
    }
  });

  it('the compressed section layout', async () => {
    const cases: Array<[string, (c: Record<string, any>) => void, string]> = [
      ['precision', (c) => void (c.precision = 'int4'), 'compressed: precision must be "int8" or "bf16", got "int4"'],
      ['scale', (c) => void (c.scaleOffset = null), 'compressed: scaleOffset must be given for int8, got null'],
      ['errBias', (c) => void (c.errBiasOffset = c.errOffset + 256), 'compressed: errBiasOffset must be nil when the catalogue has no bias, got '],
      ['unaligned', (c) => void (c.errOffset += 8), 'compressed: errOffset must be a multiple of 64 at or past byte '],
      ['overlap', (c) => void (c.errOffset = c.scaleOffset), 'compressed: errOffset must be a multiple of 64 at or past byte '],
      ['end', (c) => void (c.end += 64), 'compressed: end must be byte '],
      ['before', (c) => void (c.dataOffset -= 64), 'compressed: dataOffset must be a multiple of 64 at or past byte '],
    ];
    for (const [name, edit, message] of cases) {
      const { path } = await saved(`c-${name}.rsc`, { precision: 'int8' });
      editCatalogue(path, (f) => edit(f.header.compressed));
      const e = await rejection(Catalogue.open(path, { verify: false }));
      expect(e, name).toBeInstanceOf(FormatError);
      expect(e.message.startsWith(`${path}: ${message}`), `${name}: ${e.message}`).toBe(true);
    }
    // Checksums left as they were: the compressed section's CRC catches a changed byte.
    const { path } = await saved('c-crc.rsc', { precision: 'bf16' });
    editCatalogue(path, (f) => void ((f.compact as Uint16Array)[0] ^= 1), { recompute: false });
    await refused(path, 'corrupt: compressed section checksum mismatch');
  });
});
