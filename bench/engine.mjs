// End-to-end benchmark (issue: ScoringEngine): recommend() on the example encoder and a random
// catalogue, at concurrency 1, 16 and 256 (closed loop: C clients, each sending its next request
// when the last is answered), against the naive pipeline a user would write: an onnxruntime
// session for the encoder and one for a Gemm + TopK graph, one request at a time per client.
// Same process, same histories; throughput and p50/p99 latency per case.
import { join } from 'node:path';

import { scoringModel } from './onnx-graphs.mjs';
import { ROOT, fmt, prng, require, textTable, uniform } from './lib.mjs';

const MODEL = join(ROOT, 'models', 'fixtures', 'bench_lstm2x128.onnx');
const D = 64;
const T = 20;
const K = 20;

function quantile(sorted, q) {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] : NaN;
}

/** C clients in a closed loop, each sending its next request when the last is answered. */
export async function closedLoop(call, clients, perClient, histories) {
  const lat = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: clients }, async () => {
      for (let i = 0; i < perClient; i++) {
        const h = histories[next++ % histories.length];
        const s = performance.now();
        await call(h);
        lat.push(performance.now() - s);
      }
    }),
  );
  const wall = performance.now() - t0;
  lat.sort((a, b) => a - b);
  return { reqPerSec: (clients * perClient * 1000) / wall, p50: quantile(lat, 0.5), p99: quantile(lat, 0.99), requests: clients * perClient };
}

export async function runEngine({ threads = 2, quick = false } = {}) {
  const { Catalogue, ScoringEngine } = await import(join(ROOT, 'dist', 'index.js'));
  const ort = require('onnxruntime-node');
  const next = prng(11);
  const histories = Array.from({ length: 4096 }, () => Array.from({ length: T }, () => next() % 5000));
  const rows = [];
  for (const N of quick ? [20_000, 100_000] : [200_000, 1_000_000]) {
    const items = uniform(N * D, 21);
    const bias = uniform(N, 22);
    const catalogue = Catalogue.fromVectors(items, { dim: D, bias });
    const engine = await ScoringEngine.create({ model: MODEL, catalogue, threads });
    const so = { intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all' };
    const encSession = await ort.InferenceSession.create(MODEL, so);
    const scoreSession = await ort.InferenceSession.create(scoringModel({ B: 1, N, d: D, k: K, items, bias }), so);
    const naive = async (h) => {
      const ids = new ort.Tensor('int64', BigInt64Array.from(h, (v) => BigInt(v)), [1, h.length]);
      const user = (await encSession.run({ items: ids })).user;
      const out = await scoreSession.run({ users: new ort.Tensor('float32', user.data, [1, D]) });
      return out.indices.data;
    };
    const ours = (h) => engine.recommend({ history: h, k: K, exclude: 'none' });
    // Same answers (top-20 ids) before timing.
    let mismatches = 0;
    for (const h of histories.slice(0, 8)) {
      const a = (await ours(h)).items.map((x) => x.id);
      const b = Array.from(await naive(h), Number);
      if (a.join() !== b.join()) mismatches++;
    }
    const cost = N / 200_000; // requests per client shrink with the catalogue
    for (const C of [1, 16, 256]) {
      const per = Math.max(2, Math.round((quick ? 40 : 120) / Math.sqrt(C) / cost));
      await closedLoop(ours, C, 1, histories); // warm-up
      const before = engine.stats();
      const e = await closedLoop(ours, C, per, histories);
      const after = engine.stats();
      const meanBatch = (after.completed - before.completed) / Math.max(1, after.batches - before.batches);
      const n = await closedLoop(naive, C, Math.max(1, Math.round(per / (C >= 16 ? 4 : 1))), histories);
      rows.push({
        catalogue: `N=${N >= 1e6 ? `${N / 1e6}M` : `${N / 1e3}k`} d=${D}`,
        concurrency: C,
        'engine req/s': fmt(e.reqPerSec, 0),
        'engine p50 ms': fmt(e.p50),
        'engine p99 ms': fmt(e.p99),
        'naive req/s': fmt(n.reqPerSec, 0),
        'naive p50 ms': fmt(n.p50),
        'naive p99 ms': fmt(n.p99),
        'vs naive': `${fmt(e.reqPerSec / n.reqPerSec)}x`,
        'mean batch': fmt(meanBatch, 1),
        raw: { N, C, engine: e, naive: n, mismatches },
      });
    }
    await engine.close();
    await encSession.release();
    await scoreSession.release();
  }
  // The gain from batching: concurrent throughput over one-at-a-time, per catalogue.
  for (const r of rows) {
    const one = rows.find((x) => x.catalogue === r.catalogue && x.concurrency === 1);
    r['vs C=1'] = `${fmt(r.raw.engine.reqPerSec / one.raw.engine.reqPerSec)}x`;
  }
  return rows;
}

export function engineTable(rows) {
  return textTable(
    rows.map(({ raw, ...r }) => r),
    ['catalogue', 'concurrency', 'engine req/s', 'engine p50 ms', 'engine p99 ms', 'vs C=1', 'naive req/s', 'naive p50 ms', 'naive p99 ms', 'vs naive', 'mean batch'],
  );
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const rows = await runEngine({ threads: 2, quick: process.argv.includes('--quick') });
  console.log(engineTable(rows));
  const bad = rows.filter((r) => r.raw.mismatches > 0);
  if (bad.length) console.log(`top-k mismatches against the naive pipeline: ${bad.map((r) => `${r.catalogue}: ${r.raw.mismatches}/8`).join(', ')}`);
}
