// `recscore score` end to end against the library's encode + topK on the same users (issue #14,
// item 8): how much of the library's throughput the command line keeps once it reads, parses,
// maps ids, writes and checkpoints. Both sides use the same model, catalogue, k, batch size and
// threads; the library side gets the histories already parsed, in memory (its best case).
//
//   node bench/cli.mjs [--users=100000] [--k=20] [--threads=N] [--runs=3] [--items=200000] [--out=FILE]
//
// Needs dist/ (npx tsup) and the addon. Prints a table; writes bench/results/cli-<date>.json with
// the machine, the CPU level, the commit and every sample. Do not run it beside the tests.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';

import { BENCH_DIR, ROOT, cpuSince, cpuSnapshot, fmt, median, textTable, uniform } from './lib.mjs';

const arg = (name, def) => {
  const a = process.argv.find((x) => x.startsWith(`--${name}=`));
  return a ? a.slice(name.length + 3) : def;
};
const USERS = Number(arg('users', 100_000));
const K = Number(arg('k', 20));
const RUNS = Number(arg('runs', 3));
const ITEMS = Number(arg('items', 200_000));
const BATCH = 256;

const lib = await import(join(ROOT, 'dist', 'index.js'));
const { Catalogue, Encoder, nativeInfo } = lib;
const THREADS = Number(arg('threads', String(Math.min(cpus().length, 4))));
const cli = join(ROOT, 'dist', 'cli.js');
const ex = join(ROOT, 'models', 'example');
const model = join(ex, 'session_lstm.onnx');
const dir = mkdtempSync(join(tmpdir(), 'recscore-bench-cli-'));

// Users: the example's 500 histories, repeated under new names.
const base = readFileSync(join(ex, 'users.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
const users = Array.from({ length: USERS }, (_, i) => ({ user: `u${i}`, history: base[i % base.length].history }));
const jsonl = join(dir, 'users.jsonl');
writeFileSync(jsonl, users.map((u) => JSON.stringify(u)).join('\n') + '\n');
const parquet = join(dir, 'users.parquet');
{
  const { parquetWriteFile } = await import('hyparquet-writer');
  parquetWriteFile({
    filename: parquet,
    columnData: [
      { name: 'user', data: users.map((u) => u.user) },
      { name: 'history', data: users.map((u) => u.history.map((x) => BigInt(x))) },
    ],
    schema: [
      { name: 'root', num_children: 2 },
      { name: 'user', type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'REQUIRED' },
      { name: 'history', repetition_type: 'REQUIRED', converted_type: 'LIST', num_children: 1 },
      { name: 'list', repetition_type: 'REPEATED', num_children: 1 },
      { name: 'element', type: 'INT64', repetition_type: 'REQUIRED' },
    ],
  });
}

// Catalogues: the example's 2,000 items (scoring is cheap: the CLI's own costs show most) and
// ITEMS random items of the same dimension (the histories' ids are rows of both).
const catalogues = [{ name: 'example 2k', path: join(dir, 'items-2k.rsc') }];
execFileSync(process.execPath, [cli, 'catalogue', 'build', '--vectors', join(ex, 'items.npy'), '--bias', join(ex, 'bias.npy'), '--out', catalogues[0].path]);
if (ITEMS > 0) {
  const big = Catalogue.fromVectors(uniform(ITEMS * 32, 7), { dim: 32 });
  const path = join(dir, `items-${ITEMS}.rsc`);
  await big.save(path);
  await big.close();
  catalogues.push({ name: `random ${ITEMS >= 1000 ? `${ITEMS / 1000}k` : ITEMS}`, path });
}

/** The library: encode + topK (history excluded) per batch of BATCH users, histories in memory. */
async function library(catPath) {
  const cat = await Catalogue.open(catPath);
  const enc = await Encoder.load(model, { threads: THREADS });
  const histories = users.map((u) => u.history);
  const t0 = performance.now();
  for (let i = 0; i < histories.length; i += BATCH) {
    const hs = histories.slice(i, i + BATCH);
    const v = await enc.encode(hs);
    await cat.topKAsync(v, { k: K, exclude: hs, threads: THREADS });
  }
  const ms = performance.now() - t0;
  await enc.close();
  await cat.close();
  return ms;
}

/** The CLI, a fresh process per run (start, model and catalogue loading included). */
function command(catPath, input, out, extra = []) {
  rmSync(out, { force: true });
  rmSync(`${out}.progress`, { force: true });
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [cli, 'score', '--model', model, '--catalogue', catPath, '--input', input, '--out', out, '--k', String(K), '--threads', String(THREADS), '--batch', String(BATCH), '--quiet', ...extra], { stdio: ['ignore', 'ignore', 'pipe'] });
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`recscore score failed: ${r.stderr}`);
  return ms;
}

const cases = [
  ['JSONL -> JSONL', jsonl, join(dir, 'recs.jsonl')],
  ['JSONL -> JSONL.gz', jsonl, join(dir, 'recs.jsonl.gz')],
  ['Parquet -> Parquet', parquet, join(dir, 'recs.parquet')],
];
const rows = [];
const samples = {};
for (const c of catalogues) {
  const before = cpuSnapshot();
  const libMs = [];
  for (let i = 0; i < RUNS + 1; i++) libMs.push(await library(c.path));
  libMs.shift(); // the first run warms the page cache and the kernels
  const libRate = USERS / (median(libMs) / 1000);
  samples[`${c.name} library`] = libMs;
  rows.push({ catalogue: c.name, path: 'library encode + topK', 'users/s': fmt(libRate, 0), 'ratio to library': '1.00' });
  for (const [label, input, out] of cases) {
    const ms = [];
    for (let i = 0; i < RUNS; i++) ms.push(command(c.path, input, out));
    const rate = USERS / (median(ms) / 1000);
    samples[`${c.name} ${label}`] = ms;
    rows.push({ catalogue: c.name, path: `recscore score ${label}`, 'users/s': fmt(rate, 0), 'ratio to library': fmt(rate / libRate) });
  }
  samples[`${c.name} cpu`] = cpuSince(before);
}

const info = nativeInfo();
let commit = null;
try {
  commit = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
} catch {
  // not a clone
}
console.log(`recscore score vs library: ${USERS} users, k = ${K}, ${THREADS} threads, batch ${BATCH}, level ${info.level}, ${cpus()[0]?.model ?? 'unknown CPU'}`);
console.log(textTable(rows));
const outFile = arg('out', join(BENCH_DIR, 'results', `cli-${new Date().toISOString().slice(0, 10)}.json`));
mkdirSync(join(outFile, '..'), { recursive: true });
writeFileSync(outFile, JSON.stringify({ machine: { cpu: cpus()[0]?.model ?? null, cpus: cpus().length, level: info.level }, commit, users: USERS, k: K, threads: THREADS, batch: BATCH, rows, samples }, null, 2));
console.log(`wrote ${outFile}`);
rmSync(dir, { recursive: true, force: true });
