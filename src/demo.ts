/**
 * `npm run demo`: builds a 1M-item example catalogue (64-d vectors in 32 categories, a
 * popularity bias, category bits as attributes), saves it, memory-maps it back, and scores
 * users with the native fused top-k kernel, printing recommendations and timings.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';

import { Catalogue } from './catalogue.js';
import { native } from './native.js';

const N = Number(process.env.RECSCORE_DEMO_ITEMS ?? 1_000_000);
const D = 64;
const CATEGORIES = 32;

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296;
  };
}

// Normal deviates drawn from a precomputed table: 64M Box-Muller draws would dominate the demo.
const GAUSS = new Float32Array(1 << 16);
{
  const r = rng(7);
  for (let i = 0; i < GAUSS.length; i++) GAUSS[i] = Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
}
function gaussian(r: () => number): number {
  return GAUSS[(r() * GAUSS.length) | 0];
}

function ms(t0: number): string {
  return `${(performance.now() - t0).toFixed(1)} ms`;
}

async function main(): Promise<void> {
  const r = rng(42);
  const centroids = new Float32Array(CATEGORIES * D).map(() => gaussian(r));
  const vectors = new Float32Array(N * D);
  const ids: string[] = new Array<string>(N);
  const bias = new Float32Array(N);
  const attributes = new Uint32Array(N);
  let t0 = performance.now();
  for (let i = 0; i < N; i++) {
    const c = i % CATEGORIES;
    for (let p = 0; p < D; p++) vectors[i * D + p] = 0.6 * centroids[c * D + p] + 0.8 * gaussian(r);
    ids[i] = `sku-${String(i).padStart(7, '0')}`;
    bias[i] = 0.5 * Math.log1p(20 * r()); // popularity
    attributes[i] = 1 << c;
  }
  console.log(`recscore demo — ${N.toLocaleString()} items × ${D} dims, kernel ${native().bestIsa}, ${availableParallelism()} threads`);
  console.log(`  generated vectors                 ${ms(t0)}`);

  t0 = performance.now();
  const built = Catalogue.fromVectors(vectors, { dim: D, ids, bias, attributes });
  console.log(`  Catalogue.fromVectors             ${ms(t0)}`);

  const dir = mkdtempSync(join(tmpdir(), 'recscore-demo-'));
  const file = join(dir, 'items.rsc');
  try {
    t0 = performance.now();
    await built.save(file);
    console.log(`  save (${((N * D * 4) / 2 ** 20).toFixed(0)} MiB file)             ${ms(t0)}`);
    await built.close();

    t0 = performance.now();
    const cat = await Catalogue.open(file);
    console.log(`  open + verify checksum (mmap)     ${ms(t0)}`);
    t0 = performance.now();
    (await Catalogue.open(file, { verify: false })).close();
    console.log(`  open without verify (mmap)        ${ms(t0)}`);

    // Users: each leans towards one category; they have already seen a few items of it.
    const B = 32;
    const users = new Float32Array(B * D);
    const seen: number[][] = [];
    for (let u = 0; u < B; u++) {
      const c = (u * 7) % CATEGORIES;
      for (let p = 0; p < D; p++) users[u * D + p] = centroids[c * D + p] + 0.3 * gaussian(r);
      seen.push([c, c + CATEGORIES, c + 2 * CATEGORIES]);
    }

    const k = 5;
    const res = await cat.topKAsync(users, { k, exclude: seen });
    console.log(`\nTop ${k} for the first three users (favourite category, already-seen items excluded):`);
    for (let u = 0; u < 3; u++) {
      const items = [];
      for (let i = 0; i < res.k; i++) {
        const row = res.rows[u * res.k + i];
        items.push(`${cat.id(row)} (cat ${row % CATEGORIES}, ${res.scores[u * res.k + i].toFixed(2)})`);
      }
      console.log(`  user ${u} (likes cat ${(u * 7) % CATEGORIES}): ${items.join(', ')}`);
    }
    const filtered = cat.topK(users.subarray(0, D), { k: 3, filter: { noneOf: 1 << 0 } });
    console.log(`  user 0 with category 0 filtered out: ${Array.from(filtered.rows, (row) => `${cat.id(row)} (cat ${row % CATEGORIES})`).join(', ')}`);

    console.log('\nTimings (median of 5, k = 20):');
    for (const b of [1, 32, 256]) {
      const q = new Float32Array(b * D);
      for (let i = 0; i < q.length; i++) q[i] = users[i % users.length] + 0.01 * gaussian(r);
      cat.topK(q, { k: 20 });
      const times: number[] = [];
      for (let i = 0; i < 5; i++) {
        const t = performance.now();
        await cat.topKAsync(q, { k: 20 });
        times.push(performance.now() - t);
      }
      times.sort((a, x) => a - x);
      const med = times[2];
      const gflops = (2 * b * N * D) / (med * 1e6);
      const gbs = (N * D * 4) / (med * 1e6);
      console.log(
        `  B = ${String(b).padStart(3)}: ${med.toFixed(1).padStart(7)} ms  ` +
          `${((b * 1000) / med).toFixed(0).padStart(6)} users/s  ${gflops.toFixed(1)} GFLOP/s  ${gbs.toFixed(1)} GB/s scanned`,
      );
    }
    await cat.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
