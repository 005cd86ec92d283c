import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { Catalogue, FormatError, nativeInfo } from '../src/index.js';
import { readNpyFloat32 } from '../src/catalogue/npy.js';
import { randomMatrix, rng } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'recscore-compressed-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function gauss(r: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
}

/** Matrices that stress the bound: random, clustered (near-ties), low-rank, duplicates. */
function matrix(kind: string, n: number, d: number, seed: number): Float32Array {
  const r = rng(seed);
  const m = new Float32Array(n * d);
  if (kind === 'random') return randomMatrix(n, d, seed);
  if (kind === 'clustered') {
    const c = Array.from({ length: d }, () => gauss(r));
    for (let j = 0; j < n; j++) for (let i = 0; i < d; i++) m[j * d + i] = c[i] + 1e-3 * gauss(r);
  } else if (kind === 'low-rank') {
    const a = Array.from({ length: 2 * d }, () => gauss(r));
    for (let j = 0; j < n; j++) {
      const c0 = gauss(r);
      const c1 = gauss(r);
      for (let i = 0; i < d; i++) m[j * d + i] = c0 * a[i] + c1 * a[d + i];
    }
  } else {
    // duplicates and rows one float32 step apart: quantisation maps them to the same code
    const base = Array.from({ length: d }, () => gauss(r));
    for (let j = 0; j < n; j++) {
      for (let i = 0; i < d; i++) m[j * d + i] = j % 4 === 0 ? base[i] : Math.fround(base[i] * (1 + 2 ** -23 * (j % 5)));
    }
  }
  return m;
}

describe('compressed catalogues (int8, bf16)', () => {
  for (const precision of ['int8', 'bf16'] as const) {
    for (const kind of ['random', 'clustered', 'low-rank', 'adversarial']) {
      it(`${precision}, ${kind}: identical rows and scores to float32 for k = 1, 20, 1000`, () => {
        const n = 30_011;
        const d = 29;
        const vectors = matrix(kind, n, d, 3);
        const bias = randomMatrix(n, 1, 4).map((x) => 0.01 * x);
        const attributes = Uint32Array.from({ length: n }, (_, j) => j % 4);
        const f32 = Catalogue.fromVectors(vectors, { dim: d, bias, attributes });
        // keepCompressed: clustered and near-duplicate rows are where the builder would drop the
        // copy (see the probe test below); the scan must still be exact on them.
        const cmp = Catalogue.fromVectors(vectors, { dim: d, bias, attributes, precision, keepCompressed: true });
        expect(cmp.precision).toBe(precision);
        const users = matrix(kind, 3, d, 9);
        const exclude = [[0, 5, 17], null, [n - 1]];
        for (const k of [1, 20, 1000]) {
          for (const threads of [1, 2]) {
            const a = f32.topK(users, { k, exclude, threads });
            const b = cmp.topK(users, { k, exclude, threads });
            expect(b.rows).toEqual(a.rows);
            expect(b.scores).toEqual(a.scores);
            expect(b.candidates?.length).toBe(3);
            const filter = { noneOf: 1 };
            expect(cmp.topK(users, { k, filter, threads }).rows).toEqual(f32.topK(users, { k, filter, threads }).rows);
          }
        }
      });
    }
  }

  it('real model item vectors (the example catalogue), async, and batches that read float32', async () => {
    const ex = new URL('../models/example/', import.meta.url).pathname;
    const items = (await readNpyFloat32(`${ex}items.npy`)).data;
    const bias = (await readNpyFloat32(`${ex}bias.npy`)).data;
    const f32 = Catalogue.fromVectors(items, { dim: 32, bias });
    for (const precision of ['int8', 'bf16'] as const) {
      const cmp = Catalogue.fromVectors(items, { dim: 32, bias, precision });
      const users = items.slice(0, 5 * 32);
      expect(await cmp.topKAsync(users, { k: 20 })).toMatchObject({ rows: f32.topK(users, { k: 20 }).rows });
      const many = randomMatrix(64, 32, 5);
      const batch = cmp.topK(many, { k: 20 });
      expect(batch.rows).toEqual(f32.topK(many, { k: 20 }).rows);
      // A batch scans the float32 rows directly, except an int8 copy where the CPU has AVX-512
      // VNNI (one GEMM pass over the compact copy for every user).
      const info = nativeInfo();
      const gemm = precision === 'int8' && info.level === 'avx512' && info.features.avx512vnni;
      if (gemm) expect(batch.candidates).toHaveLength(64);
      else expect(batch.candidates).toBeUndefined();
      expect(cmp.topK(many, { k: 20, isa: 'scalar' }).candidates).toBeUndefined();
    }
  });

  it('the candidate set is small on ordinary data', () => {
    const n = 100_000;
    const vectors = randomMatrix(n, 64, 11);
    const cmp = Catalogue.fromVectors(vectors, { dim: 64, precision: 'int8' });
    const res = cmp.topK(randomMatrix(1, 64, 12), { k: 20 });
    expect(res.candidates?.[0]).toBeGreaterThanOrEqual(20);
    expect(res.candidates?.[0]).toBeLessThan(n / 10);
  });

  it('round-trips through a file, and a corrupted compact copy is detected', async () => {
    const vectors = randomMatrix(5000, 24, 21);
    const bias = randomMatrix(5000, 1, 22);
    const cmp = Catalogue.fromVectors(vectors, { dim: 24, bias, precision: 'int8' });
    const path = join(dir, 'c.rsc');
    await cmp.save(path);
    const back = await Catalogue.open(path);
    expect(back.precision).toBe('int8');
    const users = randomMatrix(2, 24, 23);
    expect(back.topK(users, { k: 15 })).toEqual(cmp.topK(users, { k: 15 }));
    await back.close();
    const bytes = readFileSync(path);
    bytes[bytes.length - 3] ^= 0xff; // inside the compressed section (it ends the file)
    writeFileSync(path, bytes);
    await expect(Catalogue.open(path)).rejects.toThrow(FormatError);
    await expect(Catalogue.open(path)).rejects.toThrow(/compressed section checksum mismatch/);
  });

  it('rejects an unknown precision', () => {
    expect(() => Catalogue.fromVectors(randomMatrix(3, 2, 1), { dim: 2, precision: 'fp8' as 'int8' })).toThrow(
      "options.precision must be 'f32', 'int8' or 'bf16', got \"fp8\"",
    );
  });
});
