// The scoring suite (issue #2, section 7): exact top-k maximum inner product, k = 20, 2 threads,
// recscore against onnxruntime-node (Gemm + TopK graph) and usearch exactSearch, on the same
// seeded data in the same process.
//
//   N = 1M,   d = 64:  B = 1, 32, 256
//   N = 100k, d = 128: B = 1, 64
//
// Each case: build the ORT session for its shape, run every engine once and check the answers
// (recscore's top-k rows against ORT's indices for every user, and both recscore and usearch
// against a float64 brute force in JS for user 0), warm up, then time every engine with benny
// (default) or round robin (method 'interleaved'), and report medians.
import { add, cycle, suite } from 'benny';

import { cpuSince, cpuSnapshot, fmt, fmtCount, median, require, uniform } from './lib.mjs';
import { scoringModel } from './onnx-graphs.mjs';

export const CONFIGS = [
  { N: 1_000_000, d: 64, batches: [1, 32, 256] },
  { N: 100_000, d: 128, batches: [1, 64] },
];

export const ENGINES = ['recscore', 'ort', 'usearch'];

/** How many timed samples: at least `minSamples`, more while under `maxTime` seconds. */
function sampling({ engine, B, N, d, quick }) {
  const work = B * N * d; // multiply-adds per call
  if (engine === 'usearch' && work >= 1e10) return { minSamples: 3, maxTime: 0 }; // ~10 s a call
  if (engine === 'usearch' && work >= 1e9) return { minSamples: quick ? 3 : 5, maxTime: 0 };
  if (work >= 1e10) return { minSamples: quick ? 3 : 5, maxTime: 0 };
  return { minSamples: quick ? 5 : 9, maxTime: quick ? 0.3 : 1 };
}

function label(N, d, B) {
  return `N=${fmtCount(N)} d=${d} B=${B}`;
}

/** float64 brute force: user u's top-k rows (best first) over items (+ bias when given). */
function referenceTopK(items, bias, N, d, users, u, k) {
  const q = users.subarray(u * d, (u + 1) * d);
  const bestS = new Float64Array(k).fill(-Infinity);
  const bestR = new Int32Array(k).fill(-1);
  for (let j = 0; j < N; j++) {
    let s = bias ? bias[j] : 0;
    const o = j * d;
    for (let t = 0; t < d; t++) s += q[t] * items[o + t];
    if (s <= bestS[k - 1]) continue;
    let p = k - 1;
    while (p > 0 && bestS[p - 1] < s) {
      bestS[p] = bestS[p - 1];
      bestR[p] = bestR[p - 1];
      p--;
    }
    bestS[p] = s;
    bestR[p] = j;
  }
  return { rows: Array.from(bestR), scores: Array.from(bestS) };
}

function missingFrom(got, want) {
  const w = new Set(want);
  let n = 0;
  for (const r of got) if (!w.has(r)) n++;
  return n;
}

/** recscore's rows against ORT's indices, user by user. */
function compareWithOrt(rec, ort, B, k) {
  const idx = ort.indices.data; // BigInt64Array
  const vals = ort.values.data;
  let setMismatchUsers = 0;
  let orderOnlyUsers = 0;
  let missingItems = 0;
  let maxScoreDiff = 0;
  for (let u = 0; u < B; u++) {
    const ours = Array.from(rec.rows.subarray(u * k, (u + 1) * k));
    const theirs = [];
    for (let i = 0; i < k; i++) theirs.push(Number(idx[u * k + i]));
    const miss = missingFrom(ours, theirs);
    if (miss) {
      setMismatchUsers++;
      missingItems += miss;
    } else if (ours.some((r, i) => r !== theirs[i])) orderOnlyUsers++;
    for (let i = 0; i < k; i++) {
      maxScoreDiff = Math.max(maxScoreDiff, Math.abs(rec.scores[u * k + i] - vals[u * k + i]));
    }
  }
  return { users: B, setMismatchUsers, orderOnlyUsers, missingItems, maxScoreDiff };
}

function rate({ B, N, d }, ms, ceilings, threads) {
  const s = ms / 1e3;
  if (B === 1) {
    const gbs = (N * d * 4) / s / 1e9;
    const ceiling = ceilings?.bandwidth.byThreads[threads]?.gbs ?? null;
    return { unit: 'GB/s', value: gbs, ceiling, ofCeiling: ceiling ? gbs / ceiling : null };
  }
  const gflops = (2 * B * N * d) / s / 1e9;
  const ceiling = ceilings?.gemm.byThreads[threads]?.gflops ?? null;
  return { unit: 'GFLOP/s', value: gflops, ceiling, ofCeiling: ceiling ? gflops / ceiling : null };
}

export async function createOrtSession(ort, { B, N, d, k, items, bias, ortItems, threads, ortSpinning }) {
  const model =
    ortItems === 'input' ? scoringModel({ B, N, d, k }) : scoringModel({ B, N, d, k, items, bias });
  const session = await ort.InferenceSession.create(model, {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    // ORT's pool threads spin-wait after each run (its default); 0 makes them sleep at once.
    extra: { session: { intra_op: { allow_spinning: ortSpinning ? '1' : '0' } } },
  });
  const feeds = { users: null };
  if (ortItems === 'input') {
    feeds.items = new ort.Tensor('float32', items, [N, d]);
    feeds.bias = new ort.Tensor('float32', bias, [N]);
  }
  return { session, feeds };
}

/**
 * benny (benchmark.js underneath): each engine's samples in one block, engine after engine.
 * benny calls each case once while preparing it (to see whether it returns a promise); the
 * functions do nothing until benchmark.js starts that case (onStart), so every timed call is a
 * real one. Every case is deferred (async), so sync and async engines are timed the same way:
 * wall-clock from the call to the settled promise. Returns per-engine sample times in ms.
 */
async function timeWithBenny({ engines, call, shape, quick, name, gapMs, log }) {
  const adds = engines.map((e) => {
    let armed = false;
    const fn = call[e];
    return add(
      e,
      () => async () => {
        if (armed) await fn();
      },
      {
        ...sampling({ engine: e, ...shape, quick }),
        minTime: 0.001,
        initCount: 1,
        delay: gapMs / 1e3, // benchmark.js waits this long between cycles (one call each)
        onStart: () => (armed = true),
      },
    );
  });
  const summary = await suite(
    name,
    ...adds,
    cycle((r) => {
      log(`  ${r.name.padEnd(9)} ${fmt(r.details.median * 1e3)} ms median of ${r.samples} (${fmt(r.ops)} ops/s mean)`);
      return undefined;
    }),
  );
  const out = {};
  for (const r of summary.results) out[r.name] = r.details.sampleResults.map((s) => s * 1e3);
  return out;
}

/**
 * Round robin: one call of each engine per round (the first engine rotating), so background load
 * on a small shared machine falls on every engine alike. Engines drop out once they have their
 * samples (at least minSamples; more, up to maxTime seconds' worth, for fast ones).
 */
async function timeInterleaved({ engines, call, firstMs, shape, quick, gapMs, log }) {
  const want = {};
  for (const e of engines) {
    const { minSamples, maxTime } = sampling({ engine: e, ...shape, quick });
    want[e] = Math.max(minSamples, Math.min(150, Math.floor((maxTime * 1e3) / Math.max(firstMs[e], 0.01))));
  }
  const out = Object.fromEntries(engines.map((e) => [e, []]));
  for (let round = 0; engines.some((e) => out[e].length < want[e]); round++) {
    for (let i = 0; i < engines.length; i++) {
      const e = engines[(round + i) % engines.length];
      if (out[e].length >= want[e]) continue;
      if (gapMs > 0) await new Promise((r) => setTimeout(r, gapMs));
      const t0 = performance.now();
      await call[e]();
      out[e].push(performance.now() - t0);
    }
  }
  for (const e of engines) log(`  ${e.padEnd(9)} ${fmt(median(out[e]))} ms median of ${out[e].length} (interleaved)`);
  return out;
}

/** Runs every case; returns one result object per case. */
export async function runScoring({
  quick = false,
  threads = 2,
  k = 20,
  engines = ENGINES,
  ortItems = 'initializer',
  method = 'benny',
  gapMs = 0,
  retries = 2,
  only = null,
  ortSpinning = method !== 'interleaved',
  ceilings = null,
  Catalogue,
  levels = [],
  log = console.log,
} = {}) {
  // recscore at each extra level (e.g. 'avx2' beside the default avx512), as engine 'recscore@avx2'.
  const levelEngines = engines.includes('recscore') ? levels.map((l) => `recscore@${l}`) : [];
  engines = [...engines, ...levelEngines];
  const ort = engines.includes('ort') ? require('onnxruntime-node') : null;
  const usearch = engines.includes('usearch') ? (await import('usearch')).default : null;
  const configs = quick
    ? CONFIGS.map((c) => ({ ...c, N: c.N / 10 }))
    : CONFIGS;
  const results = [];

  for (const { N, d, batches: all } of configs) {
    // --case: keep the cases whose label contains one of the given strings
    const batches = only ? all.filter((B) => only.some((s) => label(N, d, B).includes(s))) : all;
    if (batches.length === 0) continue;
    log(`\nData N=${fmtCount(N)} d=${d}: generating…`);
    const items = uniform(N * d, 1000 + d);
    const bias = uniform(N, 2000 + d);
    const catalogue = engines.includes('recscore') ? Catalogue.fromVectors(items, { dim: d, bias }) : null;

    for (const B of batches) {
      const name = label(N, d, B);
      const users = uniform(B * d, 3000 + 17 * B + d);
      const shape = { B, N, d };
      log(`\n${name}`);

      // -- set up, run each engine once (warm-up) and check the answers ----------------------
      const call = {};
      let ortSession = null;
      if (catalogue) call.recscore = () => catalogue.topK(users, { k, threads });
      for (const l of levels) if (catalogue) call[`recscore@${l}`] = () => catalogue.topK(users, { k, threads, isa: l });
      if (ort) {
        const t0 = performance.now();
        ortSession = await createOrtSession(ort, { B, N, d, k, items, bias, ortItems, threads, ortSpinning });
        ortSession.feeds.users = new ort.Tensor('float32', users, [B, d]);
        log(`  onnxruntime session (items as ${ortItems}): ${fmt(performance.now() - t0, 0)} ms to create`);
        call.ort = () => ortSession.session.run(ortSession.feeds);
      }
      if (usearch) call.usearch = () => usearch.exactSearch(items, users, d, k, usearch.MetricKind.IP, threads);

      const first = {};
      const firstMs = {};
      const faults = {};
      for (const e of engines) {
        const t0 = performance.now();
        first[e] = await call[e]();
        firstMs[e] = performance.now() - t0;
        // more warm-up calls where they are cheap; they also count the minor page faults a
        // call takes once warm (memory the engine maps and unmaps on every call)
        const warm = firstMs[e] < 100 ? 3 : firstMs[e] < 2000 ? 1 : 0;
        if (warm) {
          const f0 = process.resourceUsage().minorPageFault;
          for (let i = 0; i < warm; i++) await call[e]();
          faults[e] = Math.round((process.resourceUsage().minorPageFault - f0) / warm);
        }
      }
      log(`  page faults per warm call: ${engines.map((e) => `${e} ${faults[e] ?? '–'}`).join(', ')}`);

      const correctness = {};
      if (first.recscore && first.ort) {
        correctness.recscoreVsOrt = compareWithOrt(first.recscore, first.ort, B, k);
      }
      // Every level gives the same rows and score bits (the arithmetic contract).
      for (const l of levels) {
        const other = first[`recscore@${l}`];
        if (!other || !first.recscore) continue;
        const same = other.rows.every((r, i) => r === first.recscore.rows[i]) && other.scores.every((x, i) => Object.is(x, first.recscore.scores[i]));
        correctness[`levelsIdentical@${l}`] = same;
        log(`  check: recscore@${l} ${same ? 'gives the same rows and score bits as' : 'DIFFERS from'} the default level`);
      }
      const ref = referenceTopK(items, bias, N, d, users, 0, k);
      if (first.recscore) {
        const ours = Array.from(first.recscore.rows.subarray(0, k));
        correctness.recscoreVsReferenceUser0 = {
          missing: missingFrom(ours, ref.rows),
          maxScoreDiff: Math.max(...ours.map((_, i) => Math.abs(first.recscore.scores[i] - ref.scores[i]))),
        };
      }
      if (first.usearch) {
        const refNoBias = referenceTopK(items, null, N, d, users, 0, k);
        const keys = Array.from(first.usearch.keys.subarray(0, k), Number);
        correctness.usearchVsReferenceUser0NoBias = { missing: missingFrom(keys, refNoBias.rows) };
      }
      const c = correctness.recscoreVsOrt;
      if (c) {
        log(
          `  check: recscore vs ORT: ${c.setMismatchUsers}/${B} users with a different top-${k} set` +
            ` (${c.orderOnlyUsers} same set, other order); max |score diff| ${c.maxScoreDiff.toExponential(1)}`,
        );
      }
      if (correctness.recscoreVsReferenceUser0) {
        log(`  check: recscore vs float64 brute force (user 0): ${correctness.recscoreVsReferenceUser0.missing} missing`);
      }
      if (correctness.usearchVsReferenceUser0NoBias) {
        log(`  check: usearch vs float64 brute force, no bias (user 0): ${correctness.usearchVsReferenceUser0NoBias.missing} missing`);
      }

      // -- time ------------------------------------------------------------------------------
      // Timing is redone (up to `retries` times) when other processes took a noticeable share of
      // the CPUs meanwhile: on a 2-core machine one busy neighbour halves someone's throughput.
      let timed;
      let load;
      const attempts = [];
      for (let attempt = 0; ; attempt++) {
        const cpu0 = cpuSnapshot();
        timed =
          method === 'interleaved'
            ? await timeInterleaved({ engines, call, firstMs, shape, quick, gapMs, log })
            : await timeWithBenny({ engines, call, shape, quick, name, gapMs, log });
        load = cpuSince(cpu0);
        attempts.push(load);
        const disturbed = load.otherCpuSeconds != null && load.otherCpuSeconds > 0.05 * load.wallSeconds * threads;
        if (!disturbed) break;
        log(
          `  warning: other processes used ${load.otherCpuSeconds} CPU-s during these ${load.wallSeconds} s of timing` +
            (attempt < retries ? '; timing again' : ' (the timings are disturbed)'),
        );
        if (attempt >= retries) {
          load.disturbed = true;
          break;
        }
        await new Promise((r) => setTimeout(r, 5000));
      }
      load.attempts = attempts.length;
      const perEngine = {};
      for (const [e, samplesMs] of Object.entries(timed)) {
        const ms = median(samplesMs);
        perEngine[e] = {
          medianMs: ms,
          samples: samplesMs.length,
          samplesMs,
          samplesOrder: method === 'interleaved' ? 'chronological' : 'sorted (benny sorts them)',
          firstCallMs: firstMs[e],
          pageFaultsPerCall: faults[e] ?? null,
          usersPerSec: B / (ms / 1e3),
          ...rate(shape, ms, ceilings, threads),
          ...(e === 'usearch' ? { note: 'no bias (exactSearch has none); metric ip' } : {}),
          ...(e === 'ort' ? { note: `Gemm(transB=1)+TopK graph, items as ${ortItems}, spinning ${ortSpinning ? 'on' : 'off'}` } : {}),
        };
      }
      const ours = perEngine.recscore?.medianMs;
      results.push({
        case: name,
        N,
        d,
        B,
        k,
        threads,
        method,
        gapMs,
        engines: perEngine,
        ratios: {
          vsOrt: ours && perEngine.ort ? perEngine.ort.medianMs / ours : null,
          vsUsearch: ours && perEngine.usearch ? perEngine.usearch.medianMs / ours : null,
          ...Object.fromEntries(
            levelEngines.filter((e) => perEngine[e] && perEngine.ort).map((e) => [`${e}VsOrt`, perEngine.ort.medianMs / perEngine[e].medianMs]),
          ),
        },
        correctness,
        load,
      });

      if (ortSession) await ortSession.session.release();
    }
    if (catalogue) await catalogue.close();
  }
  return results;
}
