// Compressed-catalogue benchmark (issue: compressed scans on VNNI and BF16): the same exact top-k
// from int8 and bf16 scan copies beside the float32 scan and onnxruntime (Gemm + TopK, items as
// an initializer), N = 1M, d = 64 with bias, k = 20, 2 threads, same process and data, timed
// interleaved (one call of each engine per round). Every level at or above avx2 this CPU runs.
// Reported per case: ratio to float32 and to ORT, the mean candidate-set size (rows rescored in
// float32 per user), and at B = 1 the bytes a call reads (compact copy + scales, bounds and bias
// + the rescored float32 rows) over the call's time, as a fraction of the read-bandwidth ceiling.
import { join } from 'node:path';

import { createOrtSession } from './scoring.mjs';
import { ROOT, fmt, median, require, textTable, uniform } from './lib.mjs';

const D = 64;
const K = 20;
const CASES = [
  { B: 1, k: K },
  { B: 1, k: 1000 }, // the target: never slower than float32 at k = 1000
  { B: 256, k: K },
];

/**
 * Bytes one B = 1 call reads: the scan copy and its per-row arrays (int8 scales; err; on the
 * quantized-user paths, VNNI, madd and BF16, |x̂|), the bias, then the rescored candidates'
 * panels (16 rows each, read whole). The bias bound term 2g|b| is computed from the bias, not read.
 */
function bytesPerCall(precision, N, candidates, quantized) {
  const perRow = { f32: D * 4, int8: Math.ceil(D / 4) * 4 + 4, bf16: Math.ceil(D / 2) * 4 }[precision];
  const bounds = precision === 'f32' ? 0 : 4 + (quantized ? 4 : 0);
  return N * (perRow + bounds + 4) + (precision === 'f32' ? 0 : candidates * 16 * D * 4);
}

export async function runCompressed({ threads = 2, quick = false, readGBs = null } = {}) {
  const { Catalogue, nativeInfo } = await import(join(ROOT, 'dist', 'index.js'));
  const ort = require('onnxruntime-node');
  const N = quick ? 100_000 : 1_000_000;
  const items = uniform(N * D, 31);
  const bias = uniform(N, 32);
  const levels = nativeInfo().levels.filter((l) => l !== 'scalar').reverse(); // best first
  const cats = {
    f32: Catalogue.fromVectors(items, { dim: D, bias }),
    int8: Catalogue.fromVectors(items, { dim: D, bias, precision: 'int8' }),
    bf16: Catalogue.fromVectors(items, { dim: D, bias, precision: 'bf16' }),
  };
  for (const [p, c] of Object.entries(cats)) {
    if (c.precision !== p) console.log(`  note: the builder kept no ${p} copy (its bound would not pay on this data): the ${p} rows scan float32`);
  }
  const rows = [];
  for (const { B, k } of CASES) {
    const users = uniform(B * D, 40 + B);
    const { session, feeds } = await createOrtSession(ort, { B, N, d: D, k, items, bias, ortItems: 'initializer', threads, ortSpinning: false });
    feeds.users = new ort.Tensor('float32', users, [B, D]);
    const engines = { ort: () => session.run(feeds) };
    const ref = cats.f32.topK(users, { k, threads });
    const candidates = {};
    let identical = true;
    for (const level of levels) {
      for (const [p, cat] of Object.entries(cats)) {
        const name = `${p}@${level}`;
        const r = cat.topK(users, { k, threads, isa: level });
        identical &&= r.rows.every((v, i) => v === ref.rows[i]) && r.scores.every((v, i) => v === ref.scores[i]);
        if (r.candidates) candidates[name] = r.candidates.reduce((a, b) => a + b, 0) / r.candidates.length; // absent: the call read float32
        engines[name] = () => cat.topK(users, { k, threads, isa: level });
      }
    }
    const rounds = B === 1 ? (quick ? 20 : 40) : quick ? 2 : 3;
    const samples = Object.fromEntries(Object.keys(engines).map((e) => [e, []]));
    for (const f of Object.values(engines)) await f(); // warm-up
    for (let r = 0; r < rounds; r++) {
      for (const [name, f] of Object.entries(engines)) {
        const t0 = performance.now();
        await f();
        samples[name].push(performance.now() - t0);
      }
    }
    const ms = Object.fromEntries(Object.entries(samples).map(([e, s]) => [e, median(s)]));
    for (const level of levels) {
      for (const p of ['int8', 'bf16', 'f32']) {
        const name = `${p}@${level}`;
        const cand = candidates[name] ?? 0;
        const f = nativeInfo().features;
        // The quantized-user paths read |x̂| per row: int8 at every level from avx2 (VNNI or madd),
        // bf16 at avx512 with AVX512_BF16.
        const quantized = p === 'int8' || (p === 'bf16' && level === 'avx512' && f.bf16);
        const gbs = B === 1 ? bytesPerCall(p, N, cand, quantized) / (ms[name] * 1e6) : null;
        rows.push({
          case: `N=${N / 1e6}M d=${D} B=${B} k=${k}`,
          engine: name,
          ms: fmt(ms[name], 3),
          'vs f32': `${fmt(ms[`f32@${levels[0]}`] / ms[name])}x`,
          'vs ORT': `${fmt(ms.ort / ms[name])}x`,
          'mean candidates': name in candidates ? fmt(cand, 0) : p === 'f32' ? '' : 'f32 scan',
          'GB/s read': gbs == null ? '' : fmt(gbs, 1),
          'of read ceiling': gbs == null || !readGBs ? '' : `${Math.round((100 * gbs) / readGBs)}%`,
          'same as f32': identical ? 'yes' : 'NO',
          raw: { N, B, k, level, precision: p, ms: ms[name], ortMs: ms.ort, samples: samples[name], candidates: cand, gbs, identical },
        });
      }
    }
    await session.release();
  }
  for (const c of Object.values(cats)) await c.close();
  return rows;
}

export function compressedTable(rows) {
  return textTable(rows.map(({ raw, ...r }) => r));
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const rows = await runCompressed({ threads: 2, quick: process.argv.includes('--quick') });
  console.log(compressedTable(rows));
}
