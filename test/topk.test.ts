import { describe, expect, it } from 'vitest';

import { Catalogue, nativeInfo } from '../src/index.js';
import { expectTopK, randomMatrix, rng } from './helpers.js';

const isas = nativeInfo().levels;

describe('Catalogue.topK against a float64 brute force', () => {
  for (const isa of isas) {
    describe(`isa ${isa}`, () => {
      it.each([
        [1237, 1, 3],
        [1237, 3, 5],
        [5003, 61, 4],
        [2000, 8, 1],
        [999, 1024, 3],
      ])('N=%i d=%i B=%i with and without bias', (n, d, b) => {
        const items = randomMatrix(n, d, n + d);
        const users = randomMatrix(b, d, n * d + 1);
        const bias = randomMatrix(n, 1, 77);
        const plain = Catalogue.fromVectors(items, { dim: d });
        expectTopK(plain.topK(users, { k: 10, isa }), { items, dim: d }, users, 10);
        const biased = Catalogue.fromVectors(items, { dim: d, bias });
        expectTopK(biased.topK(users, { k: 10, isa }), { items, dim: d, bias }, users, 10);
      });

      it('k = 1, k = N and k > N (clamped to N)', () => {
        const n = 301;
        const d = 7;
        const items = randomMatrix(n, d, 5);
        const users = randomMatrix(3, d, 6);
        const c = Catalogue.fromVectors(items, { dim: d });
        expectTopK(c.topK(users, { k: 1, isa }), { items, dim: d }, users, 1);
        expectTopK(c.topK(users, { k: n, isa }), { items, dim: d }, users, n);
        const over = c.topK(users, { k: n + 50, isa });
        expect(over.k).toBe(n);
        expectTopK(over, { items, dim: d }, users, n + 50);
      });

      it('exclusions per user, allow-list and attribute filter', () => {
        const n = 20011;
        const d = 17;
        const items = randomMatrix(n, d, 9);
        const users = randomMatrix(5, d, 10);
        const bias = randomMatrix(n, 1, 11);
        const attributes = Uint32Array.from({ length: n }, (_, j) => j % 16);
        const r = rng(3);
        const exclude = [
          Array.from({ length: 40 }, () => Math.floor(r() * n)),
          null,
          new Int32Array([0, 1, 2, 2, 2]),
          undefined,
          [n - 1],
        ];
        const c = Catalogue.fromVectors(items, { dim: d, bias, attributes });
        for (const threads of [1, 2, 3]) {
          expectTopK(c.topK(users, { k: 25, exclude, threads, isa }), { items, dim: d, bias, exclude }, users, 25);
          const allow = Array.from({ length: 500 }, (_, i) => (i * 37) % n);
          const allowed = new Set(allow);
          expectTopK(
            c.topK(users, { k: 25, exclude, allow, threads, isa }),
            { items, dim: d, bias, exclude, eligible: (j) => allowed.has(j) },
            users,
            25,
          );
          const filter = { allOf: 0b0001, anyOf: 0b0110, noneOf: 0b1000 };
          const pass = (j: number): boolean => {
            const a = attributes[j];
            return (a & 1) === 1 && (a & 0b0110) !== 0 && (a & 0b1000) === 0;
          };
          expectTopK(
            c.topK(users, { k: 25, exclude, filter, threads, isa }),
            { items, dim: d, bias, exclude, eligible: pass },
            users,
            25,
          );
        }
      });

      it('fills what it can and pads with -1 / -Infinity when too few items are eligible', () => {
        const items = randomMatrix(10, 4, 1);
        const users = randomMatrix(2, 4, 2);
        const c = Catalogue.fromVectors(items, { dim: 4 });
        const res = c.topK(users, { k: 5, allow: [3, 7, 9], exclude: [[7], []], isa });
        expectTopK(res, { items, dim: 4, eligible: (j) => [3, 7, 9].includes(j), exclude: [[7], []] }, users, 5);
        expect(Array.from(res.rows.slice(2, 5))).toEqual([-1, -1, -1]);
        expect(Array.from(res.rows.slice(5, 8)).sort()).toEqual([3, 7, 9]);
      });

      it('breaks exact ties by the lower row, whatever the thread count', () => {
        const n = 3000;
        const d = 13;
        const items = randomMatrix(n, d, 21);
        for (let j = 5; j < n; j += 5) items.copyWithin(j * d, 0, d);
        const users = items.slice(0, d);
        const c = Catalogue.fromVectors(items, { dim: d });
        for (const threads of [1, 2, 4]) {
          const res = c.topK(users, { k: 40, threads, isa });
          expect(Array.from(res.rows)).toEqual(Array.from({ length: 40 }, (_, i) => i * 5));
          expect(new Set(res.scores).size).toBe(1);
        }
      });
    });
  }

  it('threads 1 and 2 give identical rows and bit-identical scores; a batch equals single calls', () => {
    const n = 100_003;
    const d = 64;
    const items = randomMatrix(n, d, 31);
    const users = randomMatrix(7, d, 32);
    const c = Catalogue.fromVectors(items, { dim: d, bias: randomMatrix(n, 1, 33) });
    const one = c.topK(users, { k: 50, threads: 1 });
    const two = c.topK(users, { k: 50, threads: 2 });
    expect(two.rows).toEqual(one.rows);
    expect(two.scores).toEqual(one.scores);
    for (let u = 0; u < 7; u++) {
      const alone = c.topK(users.subarray(u * d, (u + 1) * d), { k: 50 });
      expect(alone.rows).toEqual(one.rows.subarray(u * 50, (u + 1) * 50));
      expect(alone.scores).toEqual(one.scores.subarray(u * 50, (u + 1) * 50));
    }
  });

  it('matches the NumPy float64 reference fixture, ties included', async () => {
    const { readFile } = await import('node:fs/promises');
    const expected = JSON.parse(await readFile(new URL('./fixtures/items_expected.json', import.meta.url), 'utf8')) as {
      users: number[][];
      top10: number[][];
      scores: number[][];
    };
    const { readNpyFloat32 } = await import('../src/catalogue/npy.js');
    const bias = (await readNpyFloat32(new URL('./fixtures/bias.npy', import.meta.url).pathname)).data;
    const c = await Catalogue.fromNpy(new URL('./fixtures/items.npy', import.meta.url).pathname, { bias });
    const users = Float32Array.from(expected.users.flat());
    const res = c.topK(users, { k: 10 });
    expect(Array.from(res.rows.subarray(0, 10))).toEqual(expected.top10[0]);
    expect(Array.from(res.rows.subarray(10, 20))).toEqual(expected.top10[1]);
    for (let i = 0; i < 20; i++) {
      const u = Math.floor(i / 10);
      expect(res.scores[i]).toBeCloseTo(expected.scores[u][res.rows[i]], 5);
    }
  });

  it('topKAsync resolves to the same result as topK', async () => {
    const items = randomMatrix(50_000, 32, 41);
    const users = randomMatrix(9, 32, 42);
    const c = Catalogue.fromVectors(items, { dim: 32 });
    const sync = c.topK(users, { k: 20, exclude: Array.from({ length: 9 }, (_, u) => [u]) });
    const async = await c.topKAsync(users, { k: 20, exclude: Array.from({ length: 9 }, (_, u) => [u]) });
    expect(async).toEqual(sync);
  });

  it('an empty batch returns an empty result', async () => {
    const c = Catalogue.fromVectors(randomMatrix(10, 4, 1), { dim: 4 });
    for (const res of [c.topK(new Float32Array(0), { k: 3 }), await c.topKAsync(new Float32Array(0), { k: 3 })]) {
      expect(res.k).toBe(3);
      expect(res.rows.length).toBe(0);
      expect(res.scores.length).toBe(0);
    }
  });

  it('an empty allow-list allows nothing', async () => {
    const c = Catalogue.fromVectors(randomMatrix(10, 4, 1), { dim: 4 });
    const u = randomMatrix(2, 4, 2);
    for (const res of [c.topK(u, { k: 3, allow: [] }), await c.topKAsync(u, { k: 3, allow: new Int32Array(0) })]) {
      expect(Array.from(res.rows)).toEqual([-1, -1, -1, -1, -1, -1]);
      expect(Array.from(res.scores)).toEqual(new Array(6).fill(-Infinity));
    }
  });

  it('topKAsync is unaffected by the caller transferring its users buffer while it runs', async () => {
    const items = randomMatrix(200_000, 32, 3);
    const c = Catalogue.fromVectors(items, { dim: 32 });
    const users = randomMatrix(8, 32, 4);
    const expected = c.topK(users, { k: 10 });
    const running = c.topKAsync(users, { k: 10 });
    structuredClone(users.buffer, { transfer: [users.buffer] }); // detaches the caller's array
    expect(users.length).toBe(0);
    expect(await running).toEqual(expected);
  });

  it('refuses selections that would need more memory than the machine has', () => {
    const c = Catalogue.fromVectors(randomMatrix(3_000_000, 1, 5), { dim: 1 });
    expect(() => c.topK(new Float32Array(2000), { k: 1_000_000 })).toThrow(/needs \d+\.\d GiB of selection buffers; split the batch/);
  });

  it('honours users given as a subarray with a byte offset', () => {
    const items = randomMatrix(1000, 6, 51);
    const big = randomMatrix(10, 6, 52);
    const view = big.subarray(12, 30); // users 2..4
    const c = Catalogue.fromVectors(items, { dim: 6 });
    expectTopK(c.topK(view, { k: 5 }), { items, dim: 6 }, view, 5);
  });
});
