// Summarise several result files: per case, the ratios of each run and their median.
//
//   node bench/summarize.mjs bench/results/scoring-*.json
//
// On a small shared machine single runs move by 10-30%; the median ratio over a few full runs
// (quick runs and runs with disturbed cases are skipped) is the figure to quote.
import { readFileSync } from 'node:fs';

import { median, textTable } from './lib.mjs';

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error('usage: node bench/summarize.mjs bench/results/scoring-*.json');
  process.exit(2);
}

const byCase = new Map();
const used = [];
for (const f of files) {
  const j = JSON.parse(readFileSync(f, 'utf8'));
  if (j.suite !== 'scoring' || j.options?.quick || j.options?.only) continue;
  used.push({ file: f, method: j.options.method ?? 'benny', ceilings: j.ceilings });
  const method = j.options.method ?? 'benny';
  const tag = `${method}${j.options.gapMs ? `, gap ${j.options.gapMs} ms` : ''}`;
  for (const r of j.results) {
    if (r.load?.disturbed) continue;
    // runs timed differently are summarised apart
    const key = tag === 'benny' ? r.case : `${r.case} [${tag}]`;
    if (!byCase.has(key)) byCase.set(key, []);
    byCase.get(key).push(r);
  }
}

const x = (v) => (v == null ? '–' : `${v.toFixed(2)}x`);
const p = (v) => (v == null ? '–' : `${(v * 100).toFixed(0)}%`);
const med = (xs) => {
  const v = xs.filter((t) => t != null);
  return v.length ? median(v) : null;
};

const rows = [...byCase].sort(([a], [b]) => (a.includes('[') ? 1 : 0) - (b.includes('[') ? 1 : 0)).map(([name, runs]) => ({
  case: name,
  runs: runs.length,
  'vs ORT (each)': runs.map((r) => x(r.ratios.vsOrt)).join(' '),
  'vs ORT': x(med(runs.map((r) => r.ratios.vsOrt))),
  'vs usearch': x(med(runs.map((r) => r.ratios.vsUsearch))),
  'recscore/ceil': p(med(runs.map((r) => r.engines.recscore?.ofCeiling))),
  'ORT/ceil': p(med(runs.map((r) => r.engines.ort?.ofCeiling))),
  'mismatch users': runs.reduce((s, r) => s + (r.correctness.recscoreVsOrt?.setMismatchUsers ?? 0), 0),
}));

console.log(`${used.length} full run(s): ${used.map((u) => `${u.file.split('/').pop()} [${u.method}]`).join(', ')}`);
const g = used.map((u) => u.ceilings.gemm.byThreads);
const b = used.map((u) => u.ceilings.bandwidth.byThreads);
for (const t of Object.keys(g[0] ?? {})) {
  console.log(
    `ceilings, ${t} thread(s): sgemm ${med(g.map((c) => c[t]?.gflops))?.toFixed(0)} GFLOP/s,` +
      ` read ${med(b.map((c) => c[t]?.gbs))?.toFixed(1)} GB/s (medians over runs)`,
  );
}
console.log(textTable(rows));
