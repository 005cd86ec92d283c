// Compressed-catalogue benchmark (issue: compressed catalogues): the same exact top-k from
// int8 and bf16 scan copies against the float32 scan, N = 1M, d = 64, k = 20, 2 threads,
// same process and data. B = 1 (memory-bound scan) and B = 256 (batches read float32).
import { join } from 'node:path';

import { ROOT, fmt, median, textTable, uniform } from './lib.mjs';

export async function runCompressed({ threads = 2, quick = false } = {}) {
  const { Catalogue } = await import(join(ROOT, 'dist', 'index.js'));
  const N = quick ? 100_000 : 1_000_000;
  const D = 64;
  const items = uniform(N * D, 31);
  const bias = uniform(N, 32);
  const cats = {
    f32: Catalogue.fromVectors(items, { dim: D, bias }),
    int8: Catalogue.fromVectors(items, { dim: D, bias, precision: 'int8' }),
    bf16: Catalogue.fromVectors(items, { dim: D, bias, precision: 'bf16' }),
  };
  const rows = [];
  for (const B of [1, 256]) {
    const users = uniform(B * D, 40 + B);
    const reps = B === 1 ? (quick ? 30 : 60) : 3;
    const times = {};
    let same = true;
    const ref = cats.f32.topK(users, { k: 20, threads });
    let candidates = null;
    for (const [name, cat] of Object.entries(cats)) {
      const r = cat.topK(users, { k: 20, threads });
      same &&= r.rows.every((v, i) => v === ref.rows[i]) && r.scores.every((v, i) => v === ref.scores[i]);
      if (r.candidates) candidates = Math.max(candidates ?? 0, ...r.candidates);
      await new Promise((res) => setTimeout(res, 20));
      const t = [];
      for (let i = 0; i < reps; i++) {
        const t0 = performance.now();
        cat.topK(users, { k: 20, threads });
        t.push(performance.now() - t0);
      }
      times[name] = median(t);
    }
    rows.push({
      case: `N=${N / 1e6}M d=${D} B=${B}`,
      'f32 ms': fmt(times.f32, 3),
      'int8 ms': fmt(times.int8, 3),
      'bf16 ms': fmt(times.bf16, 3),
      'int8 vs f32': `${fmt(times.f32 / times.int8)}x`,
      'bf16 vs f32': `${fmt(times.f32 / times.bf16)}x`,
      'identical to f32': same ? 'yes' : 'NO',
      raw: { N, B, ...times, same, candidates },
    });
  }
  return rows;
}

export function compressedTable(rows) {
  return textTable(rows.map(({ raw, ...r }) => r));
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const rows = await runCompressed({ threads: 2, quick: process.argv.includes('--quick') });
  console.log(compressedTable(rows));
}
