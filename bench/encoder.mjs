// Encoder benchmark (issue: LSTM encoder): native vs onnxruntime-node on the same ONNX export
// (models/fixtures/bench_lstm2x128.onnx: 2 LSTM layers, hidden 128, embedding 64, 5000 items,
// T = 20), in one process on the same histories. B = 1 latency, B = 64 and B = 1024
// throughput, and `step` per event for one live user. Each engine is timed in its own block
// (warm-up, then medians), with a pause between blocks: both engines keep helper threads
// polling for a while after a call, and interleaving calls would make each pay for the other's.
import { join } from 'node:path';

import { ROOT, fmt, median, prng, textTable } from './lib.mjs';

const MODEL = join(ROOT, 'models', 'fixtures', 'bench_lstm2x128.onnx');
const T = 20;
const VOCAB = 5000;
// FLOPs of one event as the exported graph defines them (embedding projection, two layers'
// input and recurrent products); the native path folds the first into a lookup.
const FLOPS_PER_EVENT = 2 * (64 * 512 + 128 * 512 + 128 * 512 + 128 * 512);

function histories(b, seed) {
  const next = prng(seed);
  return Array.from({ length: b }, () => Array.from({ length: T }, () => next() % VOCAB));
}

const pause = (ms) => new Promise((r) => setTimeout(r, ms));

async function rounds(fns, n) {
  const out = [];
  for (const f of fns) {
    await pause(50);
    for (let i = 0; i < Math.min(5, n); i++) await f(); // warm-up
    const times = [];
    for (let r = 0; r < n; r++) {
      const t0 = performance.now();
      await f();
      times.push(performance.now() - t0);
    }
    out.push(median(times));
  }
  return out;
}

/**
 * Runs the suite; returns rows for the table and JSON. `gemmGflops` (the machine's measured
 * float32 GEMM ceiling at `threads` threads) turns throughput into a fraction of the ceiling.
 */
export async function runEncoder({ threads = 2, quick = false, gemmGflops = null, fmaGflops = null } = {}) {
  const { Encoder } = await import(join(ROOT, 'dist', 'index.js'));
  const native = await Encoder.load(MODEL, { threads });
  const ort = await Encoder.load(MODEL, { backend: 'onnxruntime', threads });
  if (native.backend !== 'native') throw new Error(`expected the native backend: ${native.fallbackReason}`);
  const rows = [];
  for (const [b, n] of quick ? [[1, 50], [64, 5], [1024, 2]] : [[1, 400], [64, 40], [1024, 9]]) {
    const h = histories(b, 100 + b);
    // Same answers first (max abs difference), then time.
    const a = await native.encode(h);
    const o = await ort.encode(h);
    let diff = 0;
    for (let i = 0; i < a.length; i++) diff = Math.max(diff, Math.abs(a[i] - o[i]));
    const [tAsync, tSync, tOrt] = await rounds([() => native.encode(h), () => native.encodeSync(h), () => ort.encode(h)], n);
    const flops = b * T * FLOPS_PER_EVENT;
    rows.push({
      case: `B=${b} T=${T}`,
      'native ms': fmt(tAsync, 3),
      'native sync ms': fmt(tSync, 3),
      'onnxruntime ms': fmt(tOrt, 3),
      'vs ORT (async)': fmt(tOrt / tAsync),
      'vs ORT (sync)': fmt(tOrt / tSync),
      'users/s': fmt((b * 1000) / tAsync, 0),
      'GFLOP/s': fmt(flops / tAsync / 1e6, 1),
      'of GEMM ceiling': gemmGflops ? `${fmt((100 * flops) / tAsync / 1e6 / gemmGflops, 0)}%` : '–',
      'of FMA peak': fmaGflops ? `${fmt((100 * flops) / tSync / 1e6 / fmaGflops, 0)}%` : '–',
      'max |native-ORT|': diff.toExponential(1),
      raw: { b, asyncMs: tAsync, syncMs: tSync, ortMs: tOrt, maxAbsDiff: diff },
    });
  }
  // One live user, one event at a time. onnxruntime has no incremental state: a new event means
  // re-running the history (its B = 1, T = 20 time above).
  const st = native.initialState(1);
  const next = prng(7);
  const n = quick ? 500 : 5000;
  const [sAsync, sSync] = await rounds([() => native.step(st, [next() % VOCAB]), () => native.stepSync(st, [next() % VOCAB])], n);
  const sOrt = rows[0].raw.ortMs;
  rows.push({
    case: 'step, 1 user',
    'native ms': fmt(sAsync, 4),
    'native sync ms': fmt(sSync, 4),
    'onnxruntime ms': fmt(sOrt, 3),
    'vs ORT (async)': fmt(sOrt / sAsync),
    'vs ORT (sync)': fmt(sOrt / sSync),
    'users/s': fmt(1000 / sAsync, 0),
    'GFLOP/s': '',
    'of GEMM ceiling': '',
    'of FMA peak': '',
    'max |native-ORT|': '',
    raw: { stepAsyncUs: sAsync * 1000, stepSyncUs: sSync * 1000, ortReencodeMs: sOrt },
  });
  await native.close();
  await ort.close();
  return rows;
}

export function encoderTable(rows) {
  return textTable(
    rows.map(({ raw, ...r }) => r),
    ['case', 'native ms', 'native sync ms', 'onnxruntime ms', 'vs ORT (async)', 'vs ORT (sync)', 'users/s', 'GFLOP/s', 'of GEMM ceiling', 'of FMA peak', 'max |native-ORT|'],
  );
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const quick = process.argv.includes('--quick');
  const rows = await runEncoder({ threads: 2, quick });
  console.log(encoderTable(rows));
}
