// Builds the report page from benchmark JSON files: the newest file holding each suite is the one
// charted; every file feeds the history. See bench/report.mjs for the command line.
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

import { BENCH_DIR } from '../lib.mjs';
import { SESSIONS_NOTE, baselineChart, ceilingChart, cliChart, compressedChart, encoderCharts, engineCharts, historyCharts, scoringThroughputChart } from './charts.mjs';
import { libraries, page } from './html.mjs';
import {
  baselineRows,
  ceilingRows,
  cliRows,
  compressedRows,
  cpuFamily,
  encoderRows,
  engineRows,
  historyRows,
  readResult,
  scoringRows,
  sessionsRows,
  suitesOf,
} from './load.mjs';

export const DEFAULT_OUT = join(BENCH_DIR, 'report', 'index.html');
export const SAVED_DIRS = [join(BENCH_DIR, 'results'), join(BENCH_DIR, 'figures')];

/** Every JSON file in bench/results and bench/figures (the saved runs). */
export function savedFiles() {
  const out = [];
  for (const d of SAVED_DIRS) {
    let names = [];
    try {
      names = readdirSync(d);
    } catch {
      continue;
    }
    for (const n of names.sort()) if (n.endsWith('.json')) out.push(join(d, n));
  }
  return out;
}

const SUITES = [
  ['scoring', 'scoring vs peers and ceilings (bench/run.mjs --suites=scoring)'],
  ['compressed', 'compressed catalogues (bench/run.mjs --suites=compressed)'],
  ['encoder', 'encoder (bench/run.mjs --suites=encoder)'],
  ['engine', 'engine vs concurrent clients (bench/run.mjs --suites=engine)'],
  ['baseline', 'engine against a baseline commit (bench/engine-baseline.mjs)'],
  ['sessions', 'engine sessions and pushes vs onnxruntime (bench/engine-sessions.mjs)'],
  ['cli', 'CLI end to end (bench/cli.mjs)'],
];

const when = (f) => `${f.date.replace('T', ' ').replace(/:\d\d(\.\d+)?Z$/, ' UTC')}`;
const describe = (f) => `${f.commit ? f.commit.slice(0, 7) : 'commit not recorded'}${f.dirty ? ' + uncommitted changes' : ''}, ${when(f)}, ${f.name}`;

function methodLine(f) {
  const o = f.json.options ?? {};
  const parts = [
    `${o.method ?? 'benny'} timing`,
    `${o.threads ?? '?'} threads`,
    `k = ${o.k ?? '?'}`,
    o.quick ? '--quick (N / 10)' : 'full run',
    `ORT items as ${o.ortItems ?? '?'}, ORT spinning ${o.ortSpinning ? 'on' : 'off'}`,
    `gap ${o.gapMs ?? 0} ms`,
  ];
  if (o.only) parts.push(`cases ${o.only.join(', ')}`);
  return parts.join('; ');
}

/**
 * Reads `paths`, charts the newest file of each suite, writes the page to `out`.
 * Returns { out, html, charts, missing, current, skipped, bytes }.
 */
export function buildReport({ paths, out = DEFAULT_OUT, now = new Date() }) {
  const skipped = [];
  const files = [];
  for (const p of paths) {
    const f = readResult(p);
    if (!f.schema) skipped.push(`${f.name} (not a benchmark result this report knows)`);
    else files.push(f);
  }
  files.sort((a, b) => (a.date < b.date ? -1 : a.date > b.date ? 1 : 0));
  const current = {};
  for (const f of files) for (const s of suitesOf(f)) current[s] = f; // the newest wins
  const missing = SUITES.filter(([s]) => !current[s]).map(([, label]) => label);

  const sections = [];
  const src = (f) => describe(f);
  const sc = current.scoring;
  if (sc) {
    const threads = sc.json.options?.threads ?? 2;
    const charts = [scoringThroughputChart(scoringRows(sc), { threads }), ceilingChart(ceilingRows(sc), { threads })];
    charts.forEach((c) => (c.source = src(sc)));
    sections.push({ title: 'Scoring: recscore vs onnxruntime and usearch', charts });
  }
  if (current.compressed) {
    const c = compressedChart(compressedRows(current.compressed));
    c.source = src(current.compressed);
    sections.push({ title: 'Compressed catalogues', charts: [c] });
  }
  if (current.encoder) {
    const charts = encoderCharts(encoderRows(current.encoder));
    charts.forEach((c) => (c.source = src(current.encoder)));
    sections.push({ title: 'Encoder', charts });
  }
  if (current.engine || current.baseline || current.sessions) {
    const charts = [];
    if (current.engine) charts.push(...engineCharts(engineRows(current.engine)).map((c) => ({ ...c, source: src(current.engine) })));
    if (current.baseline) {
      const rows = files.filter((f) => f.schema === 'baseline').flatMap(baselineRows);
      charts.push({ ...baselineChart(rows), source: files.filter((f) => f.schema === 'baseline').map((f) => f.name).join(', ') });
    }
    if (current.sessions) {
      const rows = sessionsRows(current.sessions);
      charts.push(...engineCharts(rows, { id: 'sessions', title: 'Engine sessions', note: SESSIONS_NOTE }).map((c) => ({ ...c, source: src(current.sessions) })));
    }
    sections.push({ title: 'Engine', charts });
  }
  if (current.cli) {
    const f = current.cli;
    sections.push({ title: 'CLI', charts: [{ ...cliChart(cliRows(f), f.json), source: src(f) }] });
  }
  const hist = historyRows(files);
  if (hist.length) {
    sections.push({
      title: 'History across the saved result files',
      intro: `${files.length} result files, ${new Set(hist.map((p) => p.series)).size} series measured in two or more of them.`,
      charts: historyCharts(hist),
    });
  } else {
    missing.push('history (needs two or more result files with the same suite)');
  }

  // header: the machine of the newest run-schema file (else the CLI file's)
  const m0 = [...files].reverse().find((f) => f.schema === 'run') ?? current.cli ?? files[files.length - 1];
  const header = [];
  if (m0) {
    const m = m0.json.machine ?? {};
    const feats = Object.entries(m.native?.features ?? {}).filter(([, v]) => v).map(([k]) => k);
    header.push(['machine', [m.cpu, `${m.nproc ?? m.cpus ?? m.cores ?? '?'} CPUs`, m.memoryGiB ? `${m.memoryGiB} GiB` : null, m.platform, m.node ? `node ${m.node}` : null].filter(Boolean).join(', ')]);
    header.push(['CPU family', cpuFamily(m0)]);
    if (feats.length) header.push(['CPU flags', feats.join(', ')]);
    header.push(['level', m.native ? `${m.native.level} (this CPU runs ${m.native.levels.join(', ')})` : m.level ?? '?']);
    const others = new Set(files.map((f) => f.json.machine?.cpu).filter(Boolean));
    if (others.size > 1) header.push(['note', `the files come from ${others.size} CPU models: ${[...others].join('; ')}`]);
  }
  for (const [s] of SUITES) if (current[s]) header.push([`commit (${s})`, describe(current[s])]);
  if (sc) {
    header.push(['method (scoring)', methodLine(sc)]);
    const c = sc.json.ceilings ?? {};
    header.push(['ceilings', [c.gemm?.method, c.fma?.method, c.bandwidth?.method].filter(Boolean).join('; ')]);
  }
  header.push(['inputs', `${files.length} result files${skipped.length ? `; skipped: ${skipped.join(', ')}` : ''}`]);

  const charts = sections.flatMap((s) => s.charts);
  const libs = libraries();
  const html = page({
    title: 'recscore benchmark report',
    header,
    missing,
    sections,
    libs,
    specs: Object.fromEntries(charts.map((c) => [c.id, c.spec])),
    generated: `${now.toISOString().replace(/\.\d+Z$/, 'Z')} by node bench/report.mjs`,
  });
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, html);
  return { out, html, charts, missing, current, skipped, bytes: Buffer.byteLength(html), libBytes: libs.reduce((s, l) => s + l.bytes, 0) };
}
