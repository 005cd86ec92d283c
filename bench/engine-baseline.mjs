// ScoringEngine throughput against a baseline build of recscore, in the same process and run:
//
//   git worktree add /tmp/rs-base 78a5b77 && (cd /tmp/rs-base && npm install --ignore-scripts &&
//     npx cmake-js compile && npx tsup)
//   node bench/engine-baseline.mjs --baseline=/tmp/rs-base [--items=1000000] [--clients=256]
//     [--rounds=5] [--threads=2] [--out=FILE]
//
// Both engines score the same histories against the same catalogue (the bench LSTM, d = 64,
// with bias) with the same worker count; rounds alternate baseline/current (closed loop of C
// clients, each sending its next request when the last is answered) and the medians are
// compared. Both engines must return the same top-20 ids first. Writes JSON beside the table.
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';

import { closedLoop } from './engine.mjs';
import { BENCH_DIR, ROOT, fmt, median, prng, textTable, uniform } from './lib.mjs';

const arg = (name, def) => {
  const a = process.argv.slice(2).find((x) => x.startsWith(`--${name}=`));
  return a ? a.slice(name.length + 3) : def;
};
const baseline = arg('baseline');
if (!baseline) {
  console.error('usage: node bench/engine-baseline.mjs --baseline=DIR (a built checkout of the commit to compare with)');
  process.exit(2);
}
const N = Number(arg('items', 1_000_000));
const C = Number(arg('clients', 256));
const rounds = Number(arg('rounds', 5));
const threads = Number(arg('threads', 2));
const D = 64;
const K = 20;
const MODEL = join(ROOT, 'models', 'fixtures', 'bench_lstm2x128.onnx');

const commit = (dir) => execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: dir, encoding: 'utf8' }).trim();
const libs = {
  baseline: { lib: await import(join(baseline, 'dist', 'index.js')), commit: commit(baseline) },
  current: { lib: await import(join(ROOT, 'dist', 'index.js')), commit: commit(ROOT) },
};
const next = prng(11);
const histories = Array.from({ length: 4096 }, () => Array.from({ length: 20 }, () => next() % 5000));
const items = uniform(N * D, 21);
const bias = uniform(N, 22);

const engines = {};
for (const [name, { lib }] of Object.entries(libs)) {
  const catalogue = lib.Catalogue.fromVectors(items, { dim: D, bias });
  engines[name] = { catalogue, engine: await lib.ScoringEngine.create({ model: MODEL, catalogue, threads }) };
}
const call = (name) => (h) => engines[name].engine.recommend({ history: h, k: K, exclude: 'none' });
for (const h of histories.slice(0, 8)) {
  const [a, b] = await Promise.all([call('baseline')(h), call('current')(h)]);
  if (a.items.map((x) => x.id).join() !== b.items.map((x) => x.id).join()) throw new Error('the two builds disagree on a top-20');
}

const per = Math.max(2, Math.round(8 * (200_000 / N) ** 0.5));
const samples = { baseline: [], current: [] };
for (const name of Object.keys(samples)) await closedLoop(call(name), C, 1, histories); // warm-up
for (let r = 0; r < rounds; r++) {
  for (const name of r % 2 ? ['current', 'baseline'] : ['baseline', 'current']) samples[name].push((await closedLoop(call(name), C, per, histories)).reqPerSec);
}
for (const { engine, catalogue } of Object.values(engines)) {
  await engine.close();
  await catalogue.close();
}
const m = { baseline: median(samples.baseline), current: median(samples.current) };
const row = {
  catalogue: `N=${N} d=${D}`,
  clients: C,
  threads,
  [`baseline ${libs.baseline.commit} req/s`]: fmt(m.baseline, 0),
  [`current ${libs.current.commit} req/s`]: fmt(m.current, 0),
  ratio: `${fmt(m.current / m.baseline)}x`,
};
console.log(textTable([row], Object.keys(row)));
const out = arg('out', join(BENCH_DIR, 'results', `engine-baseline-${new Date().toISOString().slice(0, 10)}.json`));
mkdirSync(join(out, '..'), { recursive: true });
writeFileSync(out, `${JSON.stringify({ machine: { cpu: cpus()[0]?.model, cores: cpus().length }, baseline: libs.baseline.commit, current: libs.current.commit, N, D, clients: C, threads, rounds, samples, median: m, ratio: m.current / m.baseline }, null, 2)}\n`);
console.log(`wrote ${out}`);
