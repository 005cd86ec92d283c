/**
 * Catalogue files as a hostile or buggy writer makes them (issue 19): paths that are not regular
 * files, bad options, and files whose checksums were recomputed after an edit. Every one is
 * refused with a typed error and an exact message; every file the builder writes opens verified
 * and answers exactly as the in-memory catalogue does.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, closeSync, constants, mkdirSync, mkdtempSync, openSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { _verifyPasses } from '../src/catalogue_verify.js';
import { Catalogue, FileError, FormatError, InvalidArgumentError, OutOfRangeError } from '../src/index.js';
import { type CatalogueFileView, editCatalogue, intIds } from './catalogue-edit.js';
import { randomMatrix, rng } from './helpers.js';

const root = new URL('..', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'recscore-validation-'));
const fifo = join(dir, 'pipe.rsc');
afterAll(() => {
  // Should an open ever block on the FIFO, a writer releases it so the worker can exit.
  try {
    closeSync(openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK));
  } catch {
    // no reader waiting: nothing to release
  }
  rmSync(dir, { recursive: true, force: true });
});

let seq = 0;
const fresh = (name: string): string => join(dir, `${seq++}-${name}`);

async function rejection(p: Promise<unknown>): Promise<Error> {
  const r = await p.then(
    () => new Error('expected a rejection, but it resolved'),
    (e: unknown) => e as Error,
  );
  return r;
}

/** Expects a FormatError with exactly `${path}: ${message}`. */
async function refused(path: string, message: string, verify = true): Promise<void> {
  const e = await rejection(Catalogue.open(path, { verify }));
  expect(e).toBeInstanceOf(FormatError);
  expect((e as FormatError).code).toBe('ERR_RECSCORE_FORMAT');
  expect(e.message).toBe(`${path}: ${message}`);
}

interface Made {
  path: string;
  vectors: Float32Array;
  bias?: Float32Array;
}

/** Saves a catalogue (n × d random, row 17 and others well inside maxRowNorm) and returns its path. */
async function saved(
  name: string,
  o: { n?: number; d?: number; ids?: Array<string | number>; bias?: boolean; precision?: 'f32' | 'int8' | 'bf16' } = {},
): Promise<Made> {
  const n = o.n ?? 40;
  const d = o.d ?? 6;
  const vectors = randomMatrix(n, d, 11);
  const bias = o.bias ? randomMatrix(n, 1, 12).map((x) => x + 0.25) : undefined;
  const c = Catalogue.fromVectors(vectors, { dim: d, ids: o.ids, bias, precision: o.precision });
  const path = fresh(name);
  await c.save(path);
  await c.close();
  return { path, vectors, bias };
}

async function edited(name: string, o: Parameters<typeof saved>[1], edit: (f: CatalogueFileView) => void): Promise<string> {
  const { path } = await saved(name, o);
  editCatalogue(path, edit);
  return path;
}

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

describe('paths that are not regular files', () => {
  it('a FIFO is refused at once (FileError), not waited on', async () => {
    execFileSync('mkfifo', [fifo]);
    const timeout = new Promise<Error>((r) => setTimeout(() => r(new Error('still waiting after 1 s')), 1000));
    const e = await Promise.race([rejection(Catalogue.open(fifo)), timeout]);
    expect(e).toBeInstanceOf(FileError);
    expect(e.message).toBe(`${fifo}: is a FIFO, not a regular file`);
    expect((e as FileError).code).toBe('ERR_RECSCORE_FILE');
    const n = await Promise.race([rejection(Catalogue.fromNpy(fifo)), timeout]);
    expect(n.message).toBe(`${fifo}: is a FIFO, not a regular file`);
  });

  it('a missing path, a directory and a device are FileErrors with the OS error as cause', async () => {
    const missing = join(dir, 'nope.rsc');
    const e = await rejection(Catalogue.open(missing));
    expect(e).toBeInstanceOf(FileError);
    expect(e.message).toBe(`${missing}: no such file (ENOENT)`);
    expect((e as FileError).syscallCode).toBe('ENOENT');
    expect((e.cause as NodeJS.ErrnoException).code).toBe('ENOENT');
    const sub = join(dir, 'a-directory');
    mkdirSync(sub);
    expect((await rejection(Catalogue.open(sub))).message).toBe(`${sub}: is a directory, not a regular file`);
    expect((await rejection(Catalogue.open('/dev/null'))).message).toBe('/dev/null: is a character device, not a regular file');
    expect((await rejection(Catalogue.fromNpy(sub))).message).toBe(`${sub}: is a directory, not a regular file`);
  });

  it('an unreadable file is a FileError (EACCES)', async () => {
    const { path } = await saved('locked.rsc');
    chmodSync(path, 0);
    if (process.getuid?.() !== 0) {
      const e = await rejection(Catalogue.open(path));
      expect(e).toBeInstanceOf(FileError);
      expect(e.message).toBe(`${path}: permission denied (EACCES)`);
      return;
    }
    // root reads anything: open it from a child running as nobody.
    chmodSync(dir, 0o755);
    const r = spawnSync(
      process.execPath,
      ['-e', `require(${JSON.stringify(`${root}dist/index.cjs`)}).Catalogue.open(${JSON.stringify(path)}).catch((e) => console.log(JSON.stringify([e.name, e.message])))`],
      { uid: 65534, gid: 65534, encoding: 'utf8', cwd: '/' },
    );
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toEqual(['FileError', `${path}: permission denied (EACCES)`]);
  });
});

describe('save', () => {
  it("the OS's refusals are FileErrors naming the target, and leave no temporary file", async () => {
    const c = Catalogue.fromVectors(randomMatrix(3, 2, 1), { dim: 2 });
    const missing = join(dir, 'no-such-dir', 'x.rsc');
    const e = await rejection(c.save(missing));
    expect(e).toBeInstanceOf(FileError);
    expect(e.message).toBe(`${missing}: no such file (ENOENT)`);
    const target = join(dir, 'a-dir-target');
    mkdirSync(target);
    const f = await rejection(c.save(target));
    expect(f).toBeInstanceOf(FileError);
    expect(f.message).toBe(`${target}: is a directory (EISDIR)`);
    expect(readdirSync(dir).filter((n) => n.endsWith('.tmp'))).toEqual([]);
    await c.close();
  });
});

describe('open options', () => {
  it('null, non-object and non-boolean verify are InvalidArgumentErrors (rejections, never sync throws)', async () => {
    const { path } = await saved('opts.rsc');
    const cases: Array<[unknown, string]> = [
      [null, 'options must be an object, got null'],
      [5, 'options must be an object, got 5'],
      ['fast', 'options must be an object, got "fast"'],
      [{ verify: 'yes' }, 'options.verify must be a boolean, got "yes"'],
      [{ verify: 1 }, 'options.verify must be a boolean, got 1'],
    ];
    for (const [opts, message] of cases) {
      const p = Catalogue.open(path, opts as never);
      const e = await rejection(p);
      expect(e).toBeInstanceOf(InvalidArgumentError);
      expect(e.message).toBe(message);
    }
    const e = await rejection(Catalogue.fromNpy(path, null as never));
    expect(e.message).toBe('options must be an object, got null');
    for (const p of [Catalogue.open('a\0b'), Catalogue.fromNpy('a\0b'), Catalogue.fromVectors(new Float32Array(2), { dim: 2 }).save('a\0b')]) {
      const n = await rejection(p);
      expect(n).toBeInstanceOf(InvalidArgumentError);
      expect(n.message).toBe('path must not contain NUL bytes, got "a\\u0000b"');
    }
    expect((await rejection(Catalogue.open(7 as never))).message).toBe('path must be a string, got 7');
  });
});

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
      ['dataBytes', (f) => void (f.header.dataBytes += 4), 'header: dataBytes must be count × dim × 4 = 960, got 964'],
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

describe('every file the builder writes opens verified and answers exactly', () => {
  function matrix(kind: string, n: number, d: number, seed: number): Float32Array {
    const r = rng(seed);
    const m = randomMatrix(n, d, seed);
    for (let i = 0; i < m.length; i++) {
      if (kind === 'outliers' && r() < 0.01) m[i] *= 1e4;
      if (kind === 'tiny') m[i] *= 1e-40; // float32 denormals
      if (kind === 'halves') m[i] = (Math.round(m[i] * 254) + 0.5) / 254; // int8 rounding ties
      if (kind === 'zeros' && i % (3 * d) < d) m[i] = 0; // every third row all zero
    }
    return m;
  }

  for (const precision of ['f32', 'int8', 'bf16'] as const) {
    for (const kind of ['random', 'outliers', 'tiny', 'halves', 'zeros']) {
      it(`${precision}, ${kind}`, async () => {
        const r = rng(kind.length * 7 + precision.length);
        for (const [n, d] of [[1, 1], [97, 13], [1200, 32]]) {
          const vectors = matrix(kind, n, d, n + d);
          const withExtras = r() < 0.7 || n === 1;
          const ids = withExtras ? Array.from({ length: n }, (_, i) => (i % 3 === 0 ? i * 7 : `it€m-${i}`)) : undefined;
          const bias = withExtras ? Float32Array.from({ length: n }, () => r() - 0.5) : undefined;
          const attributes = withExtras ? Uint32Array.from({ length: n }, (_, i) => i % 5) : undefined;
          const mem = Catalogue.fromVectors(vectors, { dim: d, ids, bias, attributes, precision });
          const path = fresh(`built-${precision}-${kind}-${n}.rsc`);
          await mem.save(path);
          const file = await Catalogue.open(path);
          const users = randomMatrix(3, d, 5);
          for (const k of [1, 10, n]) {
            const opts = { k, exclude: [[0], null, []], threads: 2 };
            expect(file.topK(users, opts)).toEqual(mem.topK(users, opts));
            expect(file.topK(users.subarray(0, d), { k })).toEqual(mem.topK(users.subarray(0, d), { k }));
          }
          await file.close();
          await mem.close();
        }
      });
    }
  }

  it('integer ids, -0 and the largest safe integers round-trip and open verified', async () => {
    const ids = [0, -1, 2 ** 53 - 1, -(2 ** 53 - 1), 5];
    const path = fresh('int-ids.rsc');
    await Catalogue.fromVectors(randomMatrix(5, 3, 1), { dim: 3, ids }).save(path);
    const c = await Catalogue.open(path);
    expect([0, 1, 2, 3, 4].map((i) => c.id(i))).toEqual(ids);
    await c.close();
  });
});

describe('compressed scans stay exact when approximate scores overflow', () => {
  it('tiny rows, a user near the float32 limit: the same rows and scores as float32', () => {
    const n = 1000;
    const d = 16;
    const v = Float32Array.from({ length: n * d }, (_, i) => Math.sin(i * 12.9898) * 1e-30);
    const u = Float32Array.from({ length: d }, (_, i) => (i % 2 ? -3e38 : 3e38) * (1 - i / 100));
    const f32 = Catalogue.fromVectors(v, { dim: d });
    for (const precision of ['int8', 'bf16'] as const) {
      const c = Catalogue.fromVectors(v, { dim: d, precision });
      const { candidates, ...got } = c.topK(u, { k: 5 });
      expect(got).toEqual(f32.topK(u, { k: 5 }));
      expect(candidates?.[0]).toBeGreaterThanOrEqual(5);
    }
  });
});

describe('verification runs once per file version', () => {
  it('a re-open reuses the result; a rewrite in place is verified again', async () => {
    const { path } = await saved('once.rsc', { precision: 'int8' });
    const before = _verifyPasses();
    await (await Catalogue.open(path)).close();
    expect(_verifyPasses()).toBe(before + 1);
    await (await Catalogue.open(path)).close();
    await (await Catalogue.open(path, { verify: true })).close();
    expect(_verifyPasses()).toBe(before + 1);
    // Same inode, new contents (with consistent checksums): a new version, verified again.
    const ino = statSync(path).ino;
    editCatalogue(path, (f) => void (f.matrix[0] = Infinity));
    expect(statSync(path).ino).toBe(ino);
    await refused(path, 'matrix row 0 column 0 is Infinity');
    expect(_verifyPasses()).toBe(before + 2);
  });
});

describe('the builder refuses what a file may not hold', () => {
  it('ids that would not survive a file, a bias beyond the limit, a dim beyond LIMITS.maxDim', async () => {
    const v = randomMatrix(2, 2, 1);
    expect(() => Catalogue.fromVectors(v, { dim: 2, ids: ['a', '\uD800'] })).toThrow(
      new InvalidArgumentError('options.ids[1] is not well-formed Unicode (it holds a lone surrogate)'),
    );
    expect(() => Catalogue.fromVectors(v, { dim: 2, ids: [1, 1.5] })).toThrow('options.ids[1] must be a string or a safe integer, got 1.5');
    expect(() => Catalogue.fromVectors(v, { dim: 2, ids: ['a', 'a'] })).toThrow('options.ids are not unique: "a" is at rows 0 and 1');
    expect(() => Catalogue.fromVectors(v, { dim: 2, bias: [0, Number.NaN] })).toThrow('options.bias[1] must be a finite float32, got NaN');
    expect(() => Catalogue.fromVectors(v, { dim: 2, bias: [0, 2e37] })).toThrow(OutOfRangeError);
    expect(() => Catalogue.fromVectors(new Float32Array(70000), { dim: 70000 })).toThrow(
      new OutOfRangeError('options.dim must be at most 65536, got 70000'),
    );
    const npy = fresh('wide.npy');
    const header = "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 70000), }";
    const pre = Buffer.alloc(10);
    Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]).copy(pre);
    const padded = header.padEnd(118, ' ') + '\n';
    pre.writeUInt16LE(padded.length, 8);
    writeFileSync(npy, Buffer.concat([pre, Buffer.from(padded, 'latin1'), Buffer.alloc(70000 * 4)]));
    const e = await rejection(Catalogue.fromNpy(npy));
    expect(e).toBeInstanceOf(OutOfRangeError);
    expect(e.message).toBe(`${npy}: shape (1, 70000) has 70000 columns; a catalogue's dim must be in 1..65536`);
  });
});
