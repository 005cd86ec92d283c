// Reads the benchmark JSON files (every schema the bench scripts write) into flat rows, one kind of
// row per chart. Nothing here draws; bench/report/charts.mjs turns these rows into Vega-Lite specs.
//
// Schemas recognised:
//   run      bench/run.mjs: { suite: 'scoring', machine, ceilings, options, results[], encoder[],
//            engine[], compressed[] } (compressed rows old { f32, int8, bf16 } or new { level,
//            precision, ms, ortMs, gbs, ... })
//   cli      bench/cli.mjs: { machine, commit, users, k, threads, batch, rows[], samples }
//   baseline bench/engine-baseline.mjs: { baseline, current, N, clients, median: { baseline, current } }
//   sessions bench/engine-sessions.mjs: { suite: 'engine-sessions', date, threads, rows[{ kind, C, N, ours, ort }] }
import { execFileSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { basename } from 'node:path';

import { ROOT } from '../lib.mjs';

const commitDates = new Map();
/** The commit's date from git (null when this checkout does not have it). */
function commitDate(sha) {
  if (!sha) return null;
  if (!commitDates.has(sha)) {
    let d = null;
    try {
      const iso = execFileSync('git', ['show', '-s', '--format=%cI', sha], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
      d = iso ? new Date(iso).toISOString() : null;
    } catch {
      // not in this checkout
    }
    commitDates.set(sha, d);
  }
  return commitDates.get(sha);
}

export function schemaOf(j) {
  if (j && j.suite === 'scoring' && j.machine && j.ceilings) return 'run';
  if (j && Array.isArray(j.rows) && j.machine && 'batch' in j) return 'cli';
  if (j && j.baseline && j.current && j.median) return 'baseline';
  if (j && j.suite === 'engine-sessions' && Array.isArray(j.rows)) return 'sessions';
  return null;
}

/** Reads one file: { path, name, schema, date, commit, json } or throws with the file's name. */
export function readResult(path) {
  let json;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new Error(`${path}: not a JSON file (${err.message})`);
  }
  const schema = schemaOf(json);
  const mtime = statSync(path).mtime.toISOString();
  const commit = json.machine?.build?.commit ?? json.commit ?? json.current ?? null;
  return {
    path,
    name: basename(path),
    schema,
    date: json.started ?? json.date ?? mtime,
    commit,
    dirty: json.machine?.build?.dirty ?? null,
    json,
  };
}

const shortCommit = (c) => (c ? String(c).slice(0, 7) : '?');
const engineLabel = (e, level) =>
  e === 'ort' ? 'onnxruntime' : e === 'usearch' ? 'usearch (no bias)' : e.startsWith('recscore@') ? `recscore ${e.slice(9)}` : `recscore ${level}`;

/** Which suites a file holds (non-empty). */
export function suitesOf(f) {
  const j = f.json;
  if (f.schema === 'cli') return ['cli'];
  if (f.schema === 'baseline') return ['baseline'];
  if (f.schema === 'sessions') return f.json.rows.length ? ['sessions'] : [];
  if (f.schema !== 'run') return [];
  const s = [];
  if (j.results?.length) s.push('scoring');
  if (j.compressed?.length) s.push('compressed');
  if (j.encoder?.length) s.push('encoder');
  if (j.engine?.length) s.push('engine');
  return s;
}

// -- scoring -------------------------------------------------------------------------------------
export function scoringRows(f) {
  const j = f.json;
  const level = j.machine.native?.level ?? '?';
  const rows = [];
  for (const r of j.results ?? []) {
    for (const [e, m] of Object.entries(r.engines ?? {})) {
      if (!m) continue;
      rows.push({
        shape: `N=${fmtN(r.N)} d=${r.d}`,
        B: r.B,
        engine: engineLabel(e, level),
        level: e.startsWith('recscore@') ? e.slice(9) : e === 'recscore' ? level : 'peer',
        medianMs: m.medianMs,
        usersPerSec: m.usersPerSec ?? (r.B / m.medianMs) * 1e3,
        samples: m.samples,
        value: m.value,
        unit: m.unit,
        ofCeiling: m.ofCeiling,
      });
    }
  }
  return rows;
}

/** Bars (each engine's throughput) and rules (the ceilings) per CPU level and unit. */
export function ceilingRows(f) {
  const j = f.json;
  const t = j.options?.threads ?? 2;
  const c = j.ceilings ?? {};
  const read = c.bandwidth?.byThreads?.[t]?.gbs ?? null;
  const sgemm = c.gemm?.byThreads?.[t]?.gflops ?? null;
  const rows = scoringRows(f);
  const levels = [...new Set(rows.filter((r) => r.level !== 'peer').map((r) => r.level))];
  const bars = [];
  const rules = [];
  for (const L of levels) {
    const fma = c.fma?.byLevel?.[L]?.[t]?.gflops ?? null;
    for (const r of rows) {
      if (r.level !== L && r.level !== 'peer') continue;
      const unit = r.B === 1 ? 'GB/s read (B = 1)' : 'GFLOP/s (B > 1)';
      bars.push({
        kind: 'bar',
        level: L,
        panel: unit,
        case: `${r.shape} B=${r.B}`,
        engine: r.level === 'peer' ? r.engine : 'recscore',
        value: r.value,
        ceiling: r.B === 1 ? 'read GB/s' : 'sgemm GFLOP/s',
        ceilingValue: r.B === 1 ? read : sgemm,
        ofCeiling: r.ofCeiling ?? (r.B === 1 ? r.value / read : r.value / sgemm),
        ofFma: r.B === 1 || fma == null ? null : r.value / fma,
      });
    }
    const panels = new Set(bars.filter((b) => b.level === L).map((b) => b.panel));
    if (panels.has('GB/s read (B = 1)') && read != null) rules.push({ kind: 'ceiling', level: L, panel: 'GB/s read (B = 1)', name: `read ${fmtNum(read)} GB/s`, value: read });
    if (panels.has('GFLOP/s (B > 1)')) {
      if (sgemm != null) rules.push({ kind: 'ceiling', level: L, panel: 'GFLOP/s (B > 1)', name: `sgemm ${fmtNum(sgemm)}`, value: sgemm });
      if (fma != null) rules.push({ kind: 'ceiling', level: L, panel: 'GFLOP/s (B > 1)', name: `FMA peak ${L} ${fmtNum(fma)}`, value: fma });
    }
  }
  return { bars, rules, threads: t, read, sgemm };
}

// -- compressed ----------------------------------------------------------------------------------
export function compressedRows(f) {
  const j = f.json;
  const level = j.machine.native?.level ?? '?';
  const k0 = j.options?.k ?? 20;
  const raw = [];
  for (const r of j.compressed ?? []) {
    if (r.precision) raw.push({ N: r.N, B: r.B, k: r.k ?? k0, level: r.level ?? level, precision: r.precision, ms: r.ms, ortMs: r.ortMs ?? null, gbs: r.gbs ?? null, candidates: r.candidates ?? null, identical: r.identical ?? null });
    else
      for (const p of ['f32', 'bf16', 'int8', 'int4'])
        if (r[p] != null) raw.push({ N: r.N, B: r.B, k: k0, level, precision: p, ms: r[p], ortMs: null, gbs: null, candidates: p === 'int8' ? r.candidates ?? null : null, identical: r.same ?? null });
  }
  const rows = [];
  for (const r of raw) {
    const f32 = raw.find((x) => x.N === r.N && x.B === r.B && x.k === r.k && x.level === r.level && x.precision === 'f32');
    rows.push({ kind: 'bar', case: `N=${fmtN(r.N)} B=${r.B} k=${r.k}`, ...r, usersPerSec: (r.B / r.ms) * 1e3, vsF32: f32 ? f32.ms / r.ms : null });
  }
  // onnxruntime's float32 Gemm+TopK on the same case, as one more bar (once per level and case)
  const seen = new Set();
  for (const r of raw) {
    const key = `${r.level} ${r.N} ${r.B} ${r.k}`;
    const f32 = raw.find((x) => `${x.level} ${x.N} ${x.B} ${x.k}` === key && x.precision === 'f32');
    if (r.ortMs == null || !f32 || seen.has(key)) continue;
    seen.add(key);
    rows.push({ kind: 'bar', case: `N=${fmtN(r.N)} B=${r.B} k=${r.k}`, N: r.N, B: r.B, k: r.k, level: r.level, precision: 'onnxruntime f32', ms: r.ortMs, usersPerSec: (r.B / r.ortMs) * 1e3, vsF32: f32.ms / r.ortMs, gbs: null, candidates: null, identical: null });
  }
  return rows;
}

// -- encoder, engine, cli, baseline --------------------------------------------------------------
export function encoderRows(f) {
  const batch = [];
  const step = [];
  for (const r of f.json.encoder ?? []) {
    if (r.b != null) {
      for (const [series, ms] of [['native async', r.asyncMs], ['native sync', r.syncMs], ['onnxruntime', r.ortMs]])
        if (ms != null) batch.push({ B: r.b, series, ms, usersPerSec: (r.b / ms) * 1e3, maxAbsDiff: r.maxAbsDiff ?? null });
    } else if (r.stepSyncUs != null || r.stepAsyncUs != null) {
      if (r.stepAsyncUs != null) step.push({ what: 'native step, async', us: r.stepAsyncUs });
      if (r.stepSyncUs != null) step.push({ what: 'native step, sync', us: r.stepSyncUs });
      if (r.ortReencodeMs != null) step.push({ what: 'onnxruntime re-encode (B=1, T=20)', us: r.ortReencodeMs * 1e3 });
    }
  }
  return { batch, step };
}

export function engineRows(f) {
  const rows = [];
  for (const r of f.json.engine ?? []) {
    for (const [pipeline, m] of [['engine (recommend)', r.engine], ['naive onnxruntime', r.naive]])
      if (m) rows.push({ catalogue: `N=${fmtN(r.N)}`, C: r.C, pipeline, reqPerSec: m.reqPerSec, p50: m.p50, p99: m.p99, requests: m.requests, mismatches: r.mismatches ?? null });
  }
  return rows;
}

/** bench/engine-sessions.mjs: recscore's engine and the onnxruntime harness per kind of call (pushes count events/s). */
export function sessionsRows(f) {
  const rows = [];
  for (const r of f.json.rows ?? []) {
    for (const [who, m] of [['recscore', r.ours], ['onnxruntime', r.ort]])
      if (m) rows.push({ catalogue: `N=${fmtN(r.N)}`, C: r.C, pipeline: `${r.kind}, ${who}`, reqPerSec: m.reqPerSec ?? m.perSec, p50: m.p50, p99: m.p99, requests: m.requests ?? null, mismatches: r.mismatches ?? null });
  }
  return rows;
}

export function cliRows(f) {
  return (f.json.rows ?? []).map((r) => ({
    catalogue: r.catalogue,
    path: r.path,
    usersPerSec: Number(r['users/s']),
    ofLibrary: Number(r['ratio to library']),
  }));
}

export function baselineRows(f) {
  const j = f.json;
  return [
    { catalogue: `N=${fmtN(j.N)}`, C: j.clients, which: 'baseline', commit: shortCommit(j.baseline), reqPerSec: j.median.baseline, rounds: j.rounds ?? null },
    { catalogue: `N=${fmtN(j.N)}`, C: j.clients, which: 'current', commit: shortCommit(j.current), reqPerSec: j.median.current, rounds: j.rounds ?? null },
  ];
}

// -- history -------------------------------------------------------------------------------------
/** One point per (file, series): throughput (higher is better), relative to the series' first run. */
export function historyRows(files) {
  const pts = [];
  const add = (suite, series, f, value, unit, commit = f.commit, date = f.date) =>
    value > 0 && Number.isFinite(value) && pts.push({ suite, series, date, commit: shortCommit(commit), file: f.name, value, unit });
  for (const f of files) {
    const s = suitesOf(f);
    if (s.includes('scoring'))
      for (const r of scoringRows(f)) if (r.engine.startsWith('recscore') ? r.level === f.json.machine.native?.level : r.engine === 'onnxruntime') add('scoring', `${r.shape} B=${r.B} ${r.engine.startsWith('recscore') ? 'recscore' : r.engine}`, f, r.usersPerSec, 'users/s');
    if (s.includes('compressed')) for (const r of compressedRows(f)) if (r.precision !== 'onnxruntime f32' && r.level === f.json.machine.native?.level) add('compressed', `${r.case} ${r.level} ${r.precision}`, f, r.usersPerSec, 'users/s');
    if (s.includes('encoder')) for (const r of encoderRows(f).batch) if (r.series !== 'onnxruntime') add('encoder', `B=${r.B} ${r.series}`, f, r.usersPerSec, 'users/s');
    if (s.includes('engine')) for (const r of engineRows(f)) if (r.pipeline.startsWith('engine')) add('engine', `${r.catalogue} C=${r.C}`, f, r.reqPerSec, 'req/s');
    if (s.includes('sessions')) for (const r of sessionsRows(f)) if (r.pipeline.endsWith(', recscore')) add('sessions', `${r.catalogue} C=${r.C} ${r.pipeline}`, f, r.reqPerSec, 'per s');
    if (s.includes('cli')) for (const r of cliRows(f)) add('cli', `${r.catalogue} ${r.path}`, f, r.usersPerSec, 'users/s');
    if (s.includes('baseline'))
      for (const [which, sha] of [['baseline', f.json.baseline], ['current', f.json.current]]) {
        add('engine', `N=${fmtN(f.json.N)} C=${f.json.clients} (engine-baseline.mjs)`, f, f.json.median[which], 'req/s', sha, commitDate(sha) ?? f.date);
      }
  }
  // the same commit measured by several files on the same series: each is a point (run to run noise shows)
  pts.sort((a, b) => (a.date < b.date ? -1 : a.date > b.date ? 1 : 0));
  const first = new Map();
  for (const p of pts) {
    if (!first.has(p.series)) first.set(p.series, p.value);
    p.relative = p.value / first.get(p.series);
  }
  const count = new Map();
  for (const p of pts) count.set(`${p.suite}|${p.series}`, (count.get(`${p.suite}|${p.series}`) ?? 0) + 1);
  return pts.filter((p) => count.get(`${p.suite}|${p.series}`) >= 2);
}

// -- machine -------------------------------------------------------------------------------------
/** CPU family: recorded if the JSON has it, else inferred from the vendor, the features and a file name like zen4-*. */
export function cpuFamily(f) {
  const m = f.json.machine ?? {};
  if (m.cpuFamily) return m.cpuFamily;
  const hint = /^(zen\d|skylake|icelake|sapphire|graviton\d?|neoverse)/i.exec(f.name)?.[1];
  const feats = m.native?.features ?? {};
  const vendor = /amd/i.test(m.cpu ?? '') ? 'AMD' : /intel/i.test(m.cpu ?? '') ? 'Intel' : null;
  let guess = null;
  if (vendor === 'AMD') guess = feats.avx512 ? (feats.bf16 ? 'Zen 4 or later' : 'AVX-512 AMD') : feats.avx2 ? 'Zen 1-3' : null;
  if (vendor === 'Intel') guess = feats.avx512 ? (feats.bf16 ? 'Cooper Lake / Sapphire Rapids or later' : 'Skylake-SP / Ice Lake') : feats.avx2 ? 'Haswell or later' : null;
  return [hint ? `${hint} (from the file name)` : null, guess ? `${guess} (inferred from the CPU flags)` : null].filter(Boolean).join('; ') || 'not recorded';
}

export function fmtN(n) {
  return n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e3 ? `${Math.round(n / 1e3)}k` : String(n);
}

export function fmtNum(x) {
  if (x == null || Number.isNaN(x)) return '–';
  if (typeof x !== 'number') return String(x);
  if (Number.isInteger(x) && Math.abs(x) < 1e7) return String(x);
  const a = Math.abs(x);
  if (a >= 1000) return x.toFixed(0);
  if (a >= 100) return x.toFixed(1);
  if (a >= 1) return x.toFixed(2);
  if (a === 0) return '0';
  return x.toPrecision(3);
}
