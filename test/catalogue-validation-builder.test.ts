/**
 * Catalogue files the builder writes (issue 19): every one opens verified and answers exactly as
 * the in-memory catalogue does, compressed scans stay exact, verification runs once per file
 * version, and the builder refuses what a file may not hold.
 */
import { statSync, writeFileSync } from 'node:fs';

import { describe, expect, it } from 'vitest';

import { _verifyPasses } from '../src/catalogue/verify.js';
import { Catalogue, InvalidArgumentError, OutOfRangeError } from '../src/index.js';
import { editCatalogue } from './catalogue-edit.js';
import { fresh, refused, rejection, saved } from './catalogue-validation-helpers.js';
import { randomMatrix, rng } from './helpers.js';

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
