/** Test helpers: seeded data and a float64 brute-force top-k reference. */
import { expect } from 'vitest';

import type { TopKResult } from '../src/index.js';

export function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296;
  };
}

export function randomMatrix(rows: number, d: number, seed: number): Float32Array {
  const r = rng(seed);
  const m = new Float32Array(rows * d);
  for (let i = 0; i < m.length; i++) m[i] = r() * 2 - 1;
  return m;
}

export interface Reference {
  items: Float32Array;
  dim: number;
  bias?: Float32Array;
  eligible?: (row: number) => boolean;
  exclude?: ReadonlyArray<ArrayLike<number> | null | undefined>;
}

/** float64 scores of one user against every item, with a bound on rounding error per item. */
function scores64(ref: Reference, users: Float32Array, u: number): { s: Float64Array; mag: number } {
  const n = ref.items.length / ref.dim;
  const s = new Float64Array(n);
  let mag = 0;
  for (let j = 0; j < n; j++) {
    let t = ref.bias ? ref.bias[j] : 0;
    let m = Math.abs(t);
    for (let p = 0; p < ref.dim; p++) {
      const prod = users[u * ref.dim + p] * ref.items[j * ref.dim + p];
      t += prod;
      m += Math.abs(prod);
    }
    s[j] = t;
    mag = Math.max(mag, m);
  }
  return { s, mag };
}

/**
 * Asserts `res` is an exact top-k of the float64 reference: every returned row is eligible, its
 * score matches float64 within float32 rounding, the list is ordered (ties by row), it holds
 * min(k, eligible) rows, and no eligible row left out beats the last one returned.
 */
export function expectTopK(res: TopKResult, ref: Reference, users: Float32Array, k: number): void {
  const n = ref.items.length / ref.dim;
  const b = users.length / ref.dim;
  const kk = Math.min(k, n);
  expect(res.k).toBe(kk);
  expect(res.rows.length).toBe(b * kk);
  expect(res.scores.length).toBe(b * kk);
  for (let u = 0; u < b; u++) {
    const { s, mag } = scores64(ref, users, u);
    const ok = new Uint8Array(n).fill(1);
    if (ref.eligible) for (let j = 0; j < n; j++) ok[j] = ref.eligible(j) ? 1 : 0;
    const ex = ref.exclude?.[u];
    if (ex) for (let i = 0; i < ex.length; i++) ok[ex[i]] = 0;
    let eligible = 0;
    for (let j = 0; j < n; j++) eligible += ok[j];
    const tol = 1e-6 * mag * ref.dim + 1e-6;
    const seen = new Set<number>();
    const filled = Math.min(kk, eligible);
    for (let i = 0; i < kk; i++) {
      const row = res.rows[u * kk + i];
      const sc = res.scores[u * kk + i];
      if (i >= filled) {
        expect(row).toBe(-1);
        expect(sc).toBe(-Infinity);
        continue;
      }
      expect(row).toBeGreaterThanOrEqual(0);
      expect(ok[row]).toBe(1);
      expect(seen.has(row)).toBe(false);
      seen.add(row);
      expect(Math.abs(sc - s[row])).toBeLessThanOrEqual(tol);
      if (i > 0) {
        const prev = res.scores[u * kk + i - 1];
        expect(prev > sc || (prev === sc && res.rows[u * kk + i - 1] < row)).toBe(true);
      }
    }
    if (filled > 0) {
      const last = s[res.rows[u * kk + filled - 1]];
      for (let j = 0; j < n; j++) {
        if (ok[j] && !seen.has(j) && s[j] > last + 2 * tol) {
          throw new Error(`user ${u}: row ${j} (score ${s[j]}) beats the last returned (${last}) but is missing`);
        }
      }
    }
  }
}
