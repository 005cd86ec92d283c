// Benchmark entry: `npm run bench` (full) or `npm run bench -- --quick` (N / 10, fewer samples).
//
// Measures the machine ceilings, then runs the scoring suite (bench/scoring.mjs), the encoder
// suite (bench/encoder.mjs) and the engine suite (bench/engine.mjs) in the same process, prints
// the tables and writes bench/results/scoring-<date>.json (with "encoder" and "engine" rows).
//
// Options (argv, or the environment variable in brackets):
//   --quick                      smoke run: N / 10, fewer samples          [RECSCORE_BENCH_QUICK=1]
//   --threads=2                  threads for every engine                  [RECSCORE_BENCH_THREADS]
//   --engines=recscore,ort,usearch   which engines to run                  [RECSCORE_BENCH_ENGINES]
//   --ort-items=initializer|input    the ORT graph holds items/bias as initializers (pre-packed
//                                    at session creation; default) or takes them as inputs
//   --method=benny|interleaved   benny (default): each engine's samples in one block, as
//                                benchmark.js runs them; interleaved: round robin, one call of
//                                each engine per round, steadier under background load
//   --gap-ms=0                   idle time before every timed call (models requests that arrive
//                                apart; 0: back to back)                   [RECSCORE_BENCH_GAP_MS]
//   --ort-spinning=1|0           ORT pool threads spin after a run (ORT's default; 1 with benny,
//                                0 with interleaved, where spinning threads would slow the next
//                                engine's call)
//   --case=S[,S…]                only the cases whose label contains S, e.g. --case="N=1.00M d=64 B=256"
//   --suites=scoring,compressed,encoder,engine,sessions  which suites to run               [RECSCORE_BENCH_SUITES]
//   --retries=2                  re-time a case (up to this many times) when other processes
//                                used over 5% of the CPUs meanwhile        [RECSCORE_BENCH_RETRIES]
//   --out=FILE                   where to write the JSON
//   --report                     then write the HTML report, bench/report/index.html, from this
//                                run and the saved results (node bench/report.mjs)  [RECSCORE_BENCH_REPORT=1]
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';

import { measureCeilings } from './ceilings.mjs';
import { BENCH_DIR, ROOT, cpuSince, cpuSnapshot, fmt, packageVersion, textTable } from './lib.mjs';
import { compressedTable, runCompressed } from './compressed.mjs';
import { encoderTable, runEncoder } from './encoder.mjs';
import { engineTable, runEngine } from './engine.mjs';
import { engineSessionsTable, runEngineSessions, writeEngineSessions } from './engine-sessions.mjs';
import { ENGINES, runScoring } from './scoring.mjs';

function option(name, env) {
  const arg = process.argv.slice(2).find((a) => a === `--${name}` || a.startsWith(`--${name}=`));
  if (arg) return arg.includes('=') ? arg.slice(arg.indexOf('=') + 1) : true;
  return process.env[env] ?? undefined;
}

const quick = [true, '1', 'true'].includes(option('quick', 'RECSCORE_BENCH_QUICK'));
const threads = Number(option('threads', 'RECSCORE_BENCH_THREADS') ?? 2);
const engines = String(option('engines', 'RECSCORE_BENCH_ENGINES') ?? ENGINES.join(','))
  .split(',')
  .map((s) => s.trim())
  .filter(Boolean);
const ortItems = String(option('ort-items', 'RECSCORE_BENCH_ORT_ITEMS') ?? 'initializer');
for (const e of engines) if (!ENGINES.includes(e)) throw new Error(`unknown engine "${e}" (have: ${ENGINES.join(', ')})`);
if (!['initializer', 'input'].includes(ortItems)) throw new Error('--ort-items is initializer or input');
const method = String(option('method', 'RECSCORE_BENCH_METHOD') ?? 'benny');
if (!['benny', 'interleaved'].includes(method)) throw new Error('--method is benny or interleaved');
const gapMs = Number(option('gap-ms', 'RECSCORE_BENCH_GAP_MS') ?? 0);
if (!(gapMs >= 0)) throw new Error('--gap-ms must be >= 0');
const onlyArg = option('case', 'RECSCORE_BENCH_CASE');
const only = onlyArg ? String(onlyArg).split(',').map((x) => x.trim()).filter(Boolean) : null;
const retries = Number(option('retries', 'RECSCORE_BENCH_RETRIES') ?? 2);
const suites = String(option('suites', 'RECSCORE_BENCH_SUITES') ?? 'scoring,compressed,encoder,engine,sessions').split(',').map((x) => x.trim());
for (const s of suites) if (!['scoring', 'compressed', 'encoder', 'engine', 'sessions'].includes(s)) throw new Error(`unknown suite "${s}" (have: scoring, compressed, encoder, engine, sessions)`);
const report = [true, '1', 'true'].includes(option('report', 'RECSCORE_BENCH_REPORT'));
const ortSpinning = String(option('ort-spinning', 'RECSCORE_BENCH_ORT_SPINNING') ?? (method === 'interleaved' ? '0' : '1')) !== '0';
if (!(threads >= 1)) throw new Error('--threads must be >= 1');

let lib;
try {
  lib = await import('../dist/index.js');
} catch (err) {
  console.error('Cannot load dist/index.js; build it first (npm run build, or npx tsup).');
  throw err;
}
const { Catalogue, nativeInfo } = lib;

/** Which code was measured: the commit, whether the tree was dirty, and the addon binary. */
function buildInfo() {
  const info = {};
  try {
    info.commit = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
    info.dirty = execFileSync('git', ['status', '--porcelain', '--', 'src', 'native', 'CMakeLists.txt'], {
      cwd: ROOT,
      encoding: 'utf8',
    }).trim().length > 0;
  } catch {
    // not a git checkout
  }
  try {
    const addon = join(ROOT, 'build', 'Release', 'recscore.node');
    info.addonBuilt = statSync(addon).mtime.toISOString();
    info.addonSha256 = createHash('sha256').update(readFileSync(addon)).digest('hex').slice(0, 16);
  } catch {
    // no addon at the usual place
  }
  return info;
}

const started = new Date();
const machine = {
  cpu: os.cpus()[0]?.model ?? 'unknown',
  nproc: os.availableParallelism?.() ?? os.cpus().length,
  memoryGiB: +(os.totalmem() / 2 ** 30).toFixed(1),
  platform: `${os.platform()} ${os.release()} ${os.arch()}`,
  node: process.version,
  native: nativeInfo(),
  build: buildInfo(),
  loadavgAtStart: os.loadavg().map((x) => +x.toFixed(2)),
  versions: {
    recscore: lib.VERSION ?? null,
    'onnxruntime-node': packageVersion('onnxruntime-node'),
    usearch: packageVersion('usearch'),
    benny: packageVersion('benny'),
  },
};

console.log(`recscore scoring benchmark${quick ? ' (quick)' : ''}`);
console.log(
  `  code: ${machine.build.commit?.slice(0, 7) ?? '?'}${machine.build.dirty ? ' (+ uncommitted changes)' : ''}, ` +
    `addon built ${machine.build.addonBuilt ?? '?'} (sha256 ${machine.build.addonSha256 ?? '?'})`,
);
console.log(
  `  ${machine.cpu}, ${machine.nproc} CPUs, ${machine.memoryGiB} GiB, node ${machine.node}, ` +
    `level ${machine.native.level} (runs ${machine.native.levels.join(', ')})`,
);
console.log(`  engines: ${engines.join(', ')}; threads ${threads}; ORT items as ${ortItems}, spinning ${ortSpinning ? 'on' : 'off'}; timing: ${method}, gap ${gapMs} ms`);
if (machine.loadavgAtStart[0] > 0.5) {
  console.log(
    `  warning: load average ${machine.loadavgAtStart[0]} before starting: something else is running; ` +
      'with 2 threads per engine the timings (and ratios) will be noisy',
  );
}

console.log('\nCeilings');
let ceilings;
for (let attempt = 0; ; attempt++) {
  const cpu0 = cpuSnapshot();
  ceilings = await measureCeilings({ quick, threads });
  ceilings.load = cpuSince(cpu0);
  if (!(ceilings.load.otherCpuSeconds > 0.05 * ceilings.load.wallSeconds * threads)) break;
  console.log(
    `  warning: other processes used ${ceilings.load.otherCpuSeconds} CPU-s during these ` +
      `${ceilings.load.wallSeconds} s${attempt < retries ? '; measuring again' : ' (the ceilings are disturbed)'}`,
  );
  if (attempt >= retries) {
    ceilings.load.disturbed = true;
    break;
  }
  await new Promise((r) => setTimeout(r, 5000));
}

const results = !suites.includes('scoring') ? [] : await runScoring({
  quick,
  threads,
  engines,
  ortItems,
  method,
  gapMs,
  retries,
  only,
  ortSpinning,
  ceilings,
  Catalogue,
  // The default level is 'recscore'; every other vector level this CPU runs is timed beside it.
  levels: machine.native.levels.filter((l) => l !== 'scalar' && l !== machine.native.level),
});

// -- tables ------------------------------------------------------------------------------------
const pct = (x) => (x == null ? '–' : `${(x * 100).toFixed(0)}%`);
const times = (x) => (x == null ? '–' : `${x.toFixed(2)}x`);

const engineRows = [];
for (const r of results) {
  for (const e of Object.keys(r.engines)) {
    const m = r.engines[e];
    if (!m) continue;
    engineRows.push({
      case: r.case,
      engine: e === 'usearch' ? 'usearch (no bias)' : e,
      'median ms': fmt(m.medianMs),
      samples: m.samples,
      'users/s': fmt(m.usersPerSec, 1),
      throughput: `${fmt(m.value, 1)} ${m.unit}`,
      'of ceiling': pct(m.ofCeiling),
    });
  }
}

const summaryRows = results.map((r) => {
  const c = r.correctness.recscoreVsOrt;
  const ref = r.correctness.recscoreVsReferenceUser0;
  const us = r.correctness.usearchVsReferenceUser0NoBias;
  return {
    case: r.case,
    ceiling: r.B === 1 ? 'read GB/s' : 'sgemm GFLOP/s',
    'vs ORT': times(r.ratios.vsOrt),
    'vs usearch': times(r.ratios.vsUsearch),
    'recscore/ceil': pct(r.engines.recscore?.ofCeiling),
    ...Object.fromEntries(
      Object.keys(r.engines)
        .filter((e) => e.startsWith('recscore@'))
        .flatMap((e) => [[`${e.slice(9)} vs ORT`, times(r.ratios[`${e}VsOrt`])], [`${e.slice(9)}/ceil`, pct(r.engines[e].ofCeiling)]]),
    ),
    'ORT/ceil': pct(r.engines.ort?.ofCeiling),
    'mismatch vs ORT': c ? `${c.setMismatchUsers}/${c.users}` : '–',
    'other CPU-s': r.load?.otherCpuSeconds == null ? '–' : `${r.load.otherCpuSeconds}${r.load.disturbed ? ' (!)' : ''}`,
    'ref check u0': [ref ? `rs ${ref.missing}` : null, us ? `us ${us.missing}` : null].filter(Boolean).join(', ') || '–',
  };
});

let encoder = null;
if (suites.includes('encoder')) {
  console.log('\nEncoder (models/fixtures/bench_lstm2x128.onnx: 2 x LSTM 128, embedding 64, T = 20), native vs onnxruntime:');
  encoder = await runEncoder({
    threads,
    quick,
    gemmGflops: ceilings.gemm.byThreads[threads]?.gflops ?? null,
    fmaGflops: ceilings.fma.byLevel[machine.native.level]?.[threads]?.gflops ?? null,
  });
}

let compressedSuite = null;
if (suites.includes('compressed')) {
  console.log('\nCompressed catalogues (int8, bf16) vs the float32 scan, exact results:');
  compressedSuite = await runCompressed({ threads, quick, readGBs: ceilings.bandwidth.byThreads[threads]?.gbs ?? null });
}

let engineSuite = null;
if (suites.includes('engine')) {
  console.log('\nEngine (recommend end to end) vs a naive onnxruntime pipeline, closed loop at concurrency 1, 16, 256:');
  engineSuite = await runEngine({ threads, quick });
}

let sessionsSuite = null;
let sessionsOut = null;
if (suites.includes('sessions')) {
  console.log('\nEngine for services: recommend, sessions.recommend and session pushes (memory and Redis stores) vs onnxruntime batched by the same harness:');
  sessionsSuite = await runEngineSessions({ threads, quick });
  sessionsOut = writeEngineSessions(sessionsSuite, threads);
}

const g = ceilings.gemm.byThreads;
const b = ceilings.bandwidth.byThreads;
console.log('\nCeilings (median):');
for (const t of Object.keys(g)) {
  console.log(`  ${t} thread(s): sgemm ${fmt(g[t].gflops, 1)} GFLOP/s, read ${b[t].gbs == null ? '–' : fmt(b[t].gbs, 1)} GB/s`);
}
console.log('\nPer engine (median wall-clock per call; throughput: B=1 catalogue GB/s read, B>1 GFLOP/s):');
if (engineRows.length) console.log(textTable(engineRows));
console.log(
  '\nrecscore vs peers (vs X = X median / recscore median, >1 means recscore is faster; ' +
    'fraction of the 2-thread ceiling; mismatch = users whose top-k sets differ):',
);
if (summaryRows.length) console.log(textTable(summaryRows));
if (compressedSuite) {
  console.log('\nCompressed catalogues: the same exact top-k from a compact scan copy (vs f32 = the best level\'s f32 median / median; GB/s: compact copy, per-row arrays and rescored rows read per call):');
  console.log(compressedTable(compressedSuite));
}
if (engineSuite) {
  console.log('\nEngine: throughput and latency (vs C=1 = the gain from batching; vs naive = ONNX encoder + Gemm/TopK sessions per request):');
  console.log(engineTable(engineSuite));
}
if (sessionsSuite) {
  console.log(`\nSessions (vs recommend = sessions.recommend req/s over recommend's at the same clients; JSON ${sessionsOut}):`);
  console.log(engineSessionsTable(sessionsSuite));
}
if (encoder) {
  console.log('\nEncoder: native vs onnxruntime (vs ORT = ORT median / native median; GFLOP/s count the graph as exported):');
  console.log(encoderTable(encoder));
}

// -- JSON --------------------------------------------------------------------------------------
const stamp = started.toISOString().replace(/:/g, '-').replace(/\.\d+Z$/, '');
const out =
  option('out', 'RECSCORE_BENCH_OUT') ?? join(BENCH_DIR, 'results', `scoring-${stamp}${quick ? '-quick' : ''}${method === 'interleaved' ? '-interleaved' : ''}${gapMs ? `-gap${gapMs}` : ''}${only ? '-partial' : ''}.json`);
mkdirSync(join(out, '..'), { recursive: true });
writeFileSync(
  out,
  JSON.stringify(
    {
      suite: 'scoring',
      started: started.toISOString(),
      seconds: (Date.now() - started.getTime()) / 1e3,
      options: { quick, threads, k: 20, engines, ortItems, method, gapMs, ortSpinning, retries, only, suites },
      machine: { ...machine, loadavgAtEnd: os.loadavg().map((x) => +x.toFixed(2)) },
      ceilings,
      results,
      encoder: encoder?.map((r) => ({ case: r.case, ...r.raw })) ?? null,
      engine: engineSuite?.map((r) => r.raw) ?? null,
      compressed: compressedSuite?.map((r) => r.raw) ?? null,
    },
    null,
    2,
  ) + '\n',
);
console.log(`\nWrote ${out} (${((Date.now() - started.getTime()) / 1e3).toFixed(0)} s)`);

if (report) {
  // the page from this run (the newest file of each suite it ran) and the saved results (history)
  console.log('');
  execFileSync(process.execPath, [join(BENCH_DIR, 'report.mjs'), out, ...(sessionsOut ? [sessionsOut] : []), '--saved'], { stdio: 'inherit' });
}
