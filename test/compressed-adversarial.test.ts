/**
 * Compressed scans on the data that stresses their error bound: the answer (rows and score bits)
 * must equal the float32 scan's at every CPU level present, and the float32 scan must be an
 * exact top-k of the float64 brute force. The builder's probe drops a copy that would not pay.
 */
import { describe, expect, it } from 'vitest';

import { Catalogue, nativeInfo } from '../src/index.js';
import { expectTopK, randomMatrix, rng } from './helpers.js';

type Maker = (n: number, d: number) => { items: Float32Array; bias: Float32Array; users: Float32Array };

const gauss = (r: () => number): number => Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());

const SETS: Record<string, Maker> = {
  // The bias decreases with the row: the best rows come first and raise the threshold early.
  'bias-sorted': (n, d) => ({
    items: randomMatrix(n, d, 11),
    bias: Float32Array.from({ length: n }, (_, j) => 2 * (1 - j / n)),
    users: randomMatrix(3, d, 12),
  }),
  // Rows one float32 step apart: the same int8 and bf16 codes, different float32 scores.
  'below the quantization step': (n, d) => {
    const base = randomMatrix(1, d, 13);
    const items = new Float32Array(n * d);
    for (let j = 0; j < n; j++) for (let p = 0; p < d; p++) items[j * d + p] = Math.fround(base[p] * (1 + 2 ** -23 * (j % 97)));
    return { items, bias: new Float32Array(n), users: randomMatrix(3, d, 14) };
  },
  // Row norms from 1e-30 to 1e15 and users of norm 1e-6 and 1e10 (scores stay in float32 range).
  'huge and tiny norms': (n, d) => {
    const r = rng(15);
    const items = new Float32Array(n * d);
    for (let j = 0; j < n; j++) {
      const s = 10 ** (-30 + (45 * j) / n);
      for (let p = 0; p < d; p++) items[j * d + p] = s * gauss(r);
    }
    const users = randomMatrix(3, d, 16);
    for (let p = 0; p < d; p++) {
      users[p] *= 1e-6;
      users[d + p] *= 1e10;
    }
    return { items, bias: new Float32Array(n), users };
  },
  // Every row the same: every score equal, ties by the lower row.
  'all-equal scores': (n, d) => {
    const row = randomMatrix(1, d, 17);
    const items = new Float32Array(n * d);
    for (let j = 0; j < n; j++) items.set(row, j * d);
    return { items, bias: new Float32Array(n), users: randomMatrix(3, d, 18) };
  },
  // Near-duplicates at the 1e-3 level (clustered), the case a compact copy cannot separate.
  'near-duplicates': (n, d) => {
    const r = rng(19);
    const c = Array.from({ length: d }, () => gauss(r));
    const items = new Float32Array(n * d);
    for (let j = 0; j < n; j++) for (let p = 0; p < d; p++) items[j * d + p] = c[p] + 1e-3 * gauss(r);
    return { items, bias: randomMatrix(n, 1, 20).map((x) => 1e-3 * x), users: randomMatrix(3, d, 21) };
  },
};

const levels = nativeInfo().levels;

describe('compressed scans on adversarial data equal the float32 scan (rows and bits) at every level', () => {
  for (const [name, make] of Object.entries(SETS)) {
    for (const precision of ['int8', 'bf16'] as const) {
      it(`${precision}, ${name}`, () => {
        const n = 5003;
        const d = 23;
        const { items, bias, users } = make(n, d);
        const f32 = Catalogue.fromVectors(items, { dim: d, bias });
        const cmp = Catalogue.fromVectors(items, { dim: d, bias, precision, keepCompressed: true });
        expect(cmp.precision).toBe(precision);
        for (const k of [1, 20, 1000, n]) {
          const exclude = [[0, 7], null, [n - 1]];
          const ref = f32.topK(users, { k, exclude, threads: 1 });
          if (k === 20) expectTopK(ref, { items, dim: d, bias, exclude }, users, k);
          for (const isa of levels) {
            for (const threads of [1, 2]) {
              for (let u = 0; u < 3; u++) {
                // One user per call: the compressed scan (batches of 8 and more read float32).
                const one = users.subarray(u * d, (u + 1) * d);
                const got = cmp.topK(one, { k, exclude: [exclude[u]], threads, isa });
                expect(got.candidates, 'the compact copy was scanned').toBeDefined();
                expect(got.rows).toEqual(ref.rows.subarray(u * ref.k, (u + 1) * ref.k));
                expect(got.scores).toEqual(ref.scores.subarray(u * ref.k, (u + 1) * ref.k));
              }
            }
          }
        }
      });
    }
  }
});

describe('batches of 16+ users on an int8 copy (one VNNI GEMM pass where the CPU has it) equal the float32 scan', () => {
  for (const name of ['bias-sorted', 'huge and tiny norms', 'near-duplicates']) {
    it(name, () => {
      const n = 5003;
      const d = 23;
      const { items, bias } = SETS[name](n, d);
      const users = randomMatrix(20, d, 41);
      if (name === 'huge and tiny norms') for (let p = 0; p < d; p++) users[p] *= 1e10;
      const f32 = Catalogue.fromVectors(items, { dim: d, bias });
      const cmp = Catalogue.fromVectors(items, { dim: d, bias, precision: 'int8', keepCompressed: true });
      const exclude = Array.from({ length: 20 }, (_, u) => (u % 3 === 0 ? [u, u + 100] : null));
      for (const k of [1, 20, 1000]) {
        for (const isa of levels) {
          const ref = f32.topK(users, { k, exclude, threads: 2 });
          const got = cmp.topK(users, { k, exclude, threads: 2, isa });
          expect(got.rows).toEqual(ref.rows);
          expect(got.scores).toEqual(ref.scores);
        }
      }
    });
  }
});

describe('the builder keeps a compact copy only where it pays', () => {
  it('near-duplicate rows: warns through the logger and builds without the copy; exact either way', () => {
    const n = 20_000;
    const d = 16;
    const { items, bias, users } = SETS['near-duplicates'](n, d);
    const warnings: Array<{ obj: object; msg?: string }> = [];
    const logger = { warn: (obj: object, msg?: string) => void warnings.push({ obj, msg }) };
    const c = Catalogue.fromVectors(items, { dim: d, bias, precision: 'int8', logger });
    expect(c.precision).toBe('f32');
    expect(warnings).toHaveLength(1);
    expect(warnings[0].msg).toMatch(/the int8 copy would not pay: its error bound leaves \d+ of 20000 rows to rescore per user on a probe/);
    const f32 = Catalogue.fromVectors(items, { dim: d, bias });
    const a = c.topK(users, { k: 20 });
    const b = f32.topK(users, { k: 20 });
    expect(a.rows).toEqual(b.rows);
    expect(a.scores).toEqual(b.scores);
  });

  it('ordinary data keeps the copy and logs nothing', () => {
    const warnings: string[] = [];
    const logger = { warn: (_o: object, msg?: string) => void warnings.push(msg ?? '') };
    const c = Catalogue.fromVectors(randomMatrix(20_000, 16, 31), { dim: 16, precision: 'bf16', logger });
    expect(c.precision).toBe('bf16');
    expect(warnings).toEqual([]);
  });
});
