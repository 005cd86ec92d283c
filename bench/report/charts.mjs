// Vega-Lite specs for the report, one per chart, each with the table of every number behind it.
// A chart is { id, title, note, spec, mark, points, rules, table: { columns, rows } }: `mark` is the
// Vega mark type that carries the data ('symbol' or 'rect'), one per table row (`points`), and
// `rules` the number of rule marks (ceilings, references); test/report.test.ts counts both in the SVG.
import { fmtNum } from './load.mjs';

const SCHEMA = 'https://vega.github.io/schema/vega-lite/v6.json';
const W = 260;
const H = 200;
const logScale = { type: 'log', nice: false, padding: 8 };

const tooltip = (cols) => cols.map(([field, title]) => ({ field, title, ...(typeof title === 'string' && /ms|\/s|GB|GFLOP|µs|×/.test(title) ? { format: '.4~g' } : {}) }));

/** Lines through points, x and y on log axes (the points are the counted marks). */
function lineChart({ rows, x, y, color, facet, xTitle, yTitle, yLog = true, xLog = true, xType = 'quantitative', tip, width = W, scheme }) {
  const enc = {
    x: { field: x, type: xType, title: xTitle, ...(xLog ? { scale: logScale, axis: { values: [...new Set(rows.map((r) => r[x]))].sort((a, b) => a - b) } } : {}), ...(xType === 'temporal' ? { scale: { type: 'utc' }, axis: { format: '%b %d %H:%M', labelAngle: -30 } } : {}) },
    y: { field: y, type: 'quantitative', title: yTitle, scale: yLog ? logScale : { zero: false } },
    color: { field: color, type: 'nominal', title: null, legend: { orient: 'bottom', columns: 2, labelLimit: 320 }, ...(scheme ? { scale: { scheme } } : {}) },
  };
  const spec = {
    width,
    height: H,
    layer: [
      { mark: { type: 'line', strokeWidth: 1.5 }, encoding: enc },
      { mark: { type: 'point', filled: true, size: 45, opacity: 1 }, encoding: { ...enc, tooltip: tooltip(tip) } },
    ],
  };
  const data = { values: rows };
  if (!facet) return { $schema: SCHEMA, data, ...spec };
  return { $schema: SCHEMA, data, facet: { column: { field: facet, type: 'nominal', title: null, header: { labelFontSize: 12, labelFontWeight: 'bold' } } }, spec, resolve: { scale: { x: 'independent', y: 'independent' } } };
}

/** Grouped bars with rules drawn from rows of kind 'ceiling' (same data, so facets get their own rules). */
function barsWithRules({ bars, rules, x, group, y, yTitle, facetRow, facetCol, tip, yLog = false }) {
  const values = [...bars, ...rules];
  const layer = [
    {
      transform: [{ filter: "datum.kind === 'bar'" }],
      mark: { type: 'bar' },
      encoding: {
        x: { field: x, type: 'nominal', title: null, sort: null, axis: { labelAngle: -25, labelLimit: 160 } },
        xOffset: { field: group, type: 'nominal' },
        y: { field: y, type: 'quantitative', title: yTitle, ...(yLog ? { scale: logScale } : {}) },
        color: { field: group, type: 'nominal', title: null, legend: { orient: 'bottom', columns: 2, labelLimit: 320 } },
        tooltip: tooltip(tip),
      },
    },
  ];
  if (rules.length) {
    layer.push(
      { transform: [{ filter: "datum.kind === 'ceiling'" }], mark: { type: 'rule', color: '#333', strokeDash: [6, 3], strokeWidth: 1.5 }, encoding: { y: { field: 'value', type: 'quantitative' } } },
      { transform: [{ filter: "datum.kind === 'ceiling'" }], mark: { type: 'text', align: 'right', baseline: 'bottom', dy: -2, x: 'width', fontSize: 10, color: '#333' }, encoding: { y: { field: 'value', type: 'quantitative' }, text: { field: 'name' } } },
    );
  }
  const facet = {};
  if (facetRow) facet.row = { field: facetRow, type: 'nominal', title: null, header: { labelFontWeight: 'bold', labelFontSize: 12 } };
  if (facetCol) facet.column = { field: facetCol, type: 'nominal', title: null, header: { labelFontWeight: 'bold', labelFontSize: 12 } };
  // a width that gives every bar of the fullest panel ~18 px
  const perPanel = new Map();
  for (const b of bars) {
    const key = `${facetRow ? b[facetRow] : ''}|${facetCol ? b[facetCol] : ''}`;
    perPanel.set(key, (perPanel.get(key) ?? 0) + 1);
  }
  const width = Math.max(120, Math.min(560, 18 * Math.max(0, ...perPanel.values()) + 40));
  const spec = { width, height: H, layer };
  if (!facetRow && !facetCol) return { $schema: SCHEMA, data: { values }, ...spec };
  return { $schema: SCHEMA, data: { values }, facet, spec, resolve: { scale: { x: 'independent', y: 'independent', xOffset: 'independent' } } };
}

const table = (columns, rows) => ({ columns, rows: rows.map((r) => columns.map(([k]) => r[k])) });

export function scoringThroughputChart(rows, src) {
  const cols = [['shape', 'catalogue'], ['B', 'B'], ['engine', 'engine'], ['medianMs', 'median ms'], ['usersPerSec', 'users/s'], ['samples', 'samples'], ['value', 'throughput'], ['unit', 'unit'], ['ofCeiling', 'of ceiling']];
  return {
    id: 'scoring-throughput',
    title: 'Scoring: throughput vs batch size, recscore and its peers',
    note: `Users scored per second (median of each engine's timed calls, k = 20, ${src.threads} threads) against the batch size B, per catalogue shape; both axes logarithmic. Higher is better. usearch has no bias term.`,
    spec: lineChart({ rows, x: 'B', y: 'usersPerSec', color: 'engine', facet: 'shape', xTitle: 'batch size B (users per call)', yTitle: 'users/s', tip: cols }),
    mark: 'symbol',
    points: rows.length,
    rules: 0,
    table: table(cols, rows),
  };
}

export function ceilingChart({ bars, rules, read, sgemm }, src) {
  const cols = [['level', 'level'], ['case', 'case'], ['engine', 'engine'], ['value', 'measured'], ['panel', 'unit'], ['ceiling', 'ceiling'], ['ceilingValue', 'ceiling value'], ['ofCeiling', 'of ceiling'], ['ofFma', 'of FMA peak']];
  return {
    id: 'scoring-ceiling',
    title: 'Scoring: fraction of the machine ceiling, per case and CPU level',
    note: `Each engine's throughput against this machine's ceilings, measured in the same run with ${src.threads} threads (dashed rules): read bandwidth ${fmtNum(read)} GB/s for B = 1 (the scan reads the catalogue once per call), sgemm ${fmtNum(sgemm)} GFLOP/s (onnxruntime MLAS) and the register-only FMA peak of each level for B > 1. One panel per CPU level recscore was run at; the peers are the same in every panel.`,
    spec: barsWithRules({ bars, rules, x: 'case', group: 'engine', y: 'value', yTitle: 'measured', facetRow: 'panel', facetCol: 'level', tip: cols }),
    mark: 'rect',
    points: bars.length,
    rules: rules.length,
    table: table(cols, bars),
    rulesTable: table([['level', 'level'], ['panel', 'unit'], ['name', 'ceiling'], ['value', 'value']], rules),
  };
}

export function compressedChart(rows) {
  const levels = [...new Set(rows.map((r) => r.level))];
  const refs = levels.map((level) => ({ kind: 'ceiling', level, name: 'float32 scan = 1', value: 1 }));
  const cols = [['level', 'level'], ['case', 'case'], ['precision', 'precision'], ['ms', 'median ms'], ['usersPerSec', 'users/s'], ['vsF32', '× f32'], ['gbs', 'GB/s read'], ['candidates', 'rescored/user'], ['identical', 'same top-k']];
  return {
    id: 'compressed',
    title: 'Compressed catalogues vs float32, per CPU level',
    note: 'Speed of the exact top-k from a compact scan copy (int8, bf16, int4 where run) relative to the float32 scan at the same level and case (f32 median / median; above the rule is faster); onnxruntime\'s float32 Gemm+TopK on the same case beside them. Results are identical to float32 (column "same top-k").',
    spec: barsWithRules({ bars: rows, rules: refs, x: 'case', group: 'precision', y: 'vsF32', yTitle: '× float32 (higher is faster)', facetCol: levels.length > 1 ? 'level' : null, tip: cols }),
    mark: 'rect',
    points: rows.length,
    rules: refs.length,
    table: table(cols, rows),
  };
}

export function encoderCharts({ batch, step }) {
  const out = [];
  if (batch.length) {
    const cols = [['B', 'B'], ['series', 'encoder'], ['ms', 'median ms'], ['usersPerSec', 'users/s'], ['maxAbsDiff', 'max |diff| vs ORT']];
    out.push({
      id: 'encoder-batch',
      title: 'Encoder (2 × LSTM 128, T = 20): time vs batch',
      note: 'Time to encode B users\' histories of 20 events, native (async and sync calls) against onnxruntime on the same ONNX export; log axes, lower is faster.',
      spec: lineChart({ rows: batch, x: 'B', y: 'ms', color: 'series', xTitle: 'batch size B', yTitle: 'ms per call', tip: cols }),
      mark: 'symbol',
      points: batch.length,
      rules: 0,
      table: table(cols, batch),
    });
  }
  if (step.length) {
    const bars = step.map((r) => ({ kind: 'bar', ...r }));
    const cols = [['what', 'what'], ['us', 'µs']];
    out.push({
      id: 'encoder-step',
      title: 'Encoder: per-event step time',
      note: 'One new event for one user: the native encoder steps its saved state; onnxruntime has no state and re-encodes the whole history (B = 1, T = 20).',
      spec: barsWithRules({ bars, rules: [], x: 'what', group: 'what', y: 'us', yTitle: 'µs per event', tip: cols }),
      mark: 'rect',
      points: bars.length,
      rules: 0,
      table: table(cols, step),
    });
  }
  return out;
}

export function engineCharts(rows, { id = 'engine', title = 'Engine', note = ENGINE_NOTE } = {}) {
  const cols = [['catalogue', 'catalogue'], ['C', 'clients'], ['pipeline', 'pipeline'], ['reqPerSec', 'req/s'], ['p50', 'p50 ms'], ['p99', 'p99 ms'], ['requests', 'requests'], ['mismatches', 'top-k mismatches']];
  const base = { mark: 'symbol', points: rows.length, rules: 0, table: table(cols, rows) };
  return [
    {
      id: `${id}-throughput`,
      title: `${title}: throughput vs concurrent clients`,
      note,
      spec: lineChart({ rows, x: 'C', y: 'reqPerSec', color: 'pipeline', facet: 'catalogue', xTitle: 'concurrent clients', yTitle: 'requests/s', tip: cols }),
      ...base,
    },
    {
      id: `${id}-p99`,
      title: `${title}: p99 latency vs concurrent clients`,
      note: 'The 99th percentile of request latency in the same runs; log axes, lower is better.',
      spec: lineChart({ rows, x: 'C', y: 'p99', color: 'pipeline', facet: 'catalogue', xTitle: 'concurrent clients', yTitle: 'p99 ms', tip: cols }),
      ...base,
    },
  ];
}

const ENGINE_NOTE =
  'recommend() end to end (encode + top-k, requests batched across clients) against a naive pipeline (an ONNX encoder session and a Gemm/TopK session per request), closed loop; log axes, higher is better.';
export const SESSIONS_NOTE =
  'bench/engine-sessions.mjs: recommend(), sessions.recommend() and session pushes (events/s) at each number of concurrent clients, closed loop, against onnxruntime running the same encoder and a Gemm + TopK graph behind the same kind of micro-batcher (a push re-encodes the whole history there); log axes, higher is better.';

export function baselineChart(rows) {
  const bars = rows.map((r) => ({ kind: 'bar', ...r, label: `${r.which} ${r.commit}` }));
  const cols = [['catalogue', 'catalogue'], ['C', 'clients'], ['which', 'build'], ['commit', 'commit'], ['reqPerSec', 'req/s (median)'], ['rounds', 'rounds']];
  return {
    id: 'engine-baseline',
    title: 'Engine against a baseline commit',
    note: 'bench/engine-baseline.mjs: the same closed-loop load against an older build and the current one, alternating rounds; median req/s.',
    spec: barsWithRules({ bars, rules: [], x: 'catalogue', group: 'label', y: 'reqPerSec', yTitle: 'requests/s', tip: cols }),
    mark: 'rect',
    points: bars.length,
    rules: 0,
    table: table(cols, rows),
  };
}

export function cliChart(rows, src) {
  const bars = rows.map((r) => ({ kind: 'bar', ...r }));
  const cols = [['catalogue', 'catalogue'], ['path', 'path'], ['usersPerSec', 'users/s'], ['ofLibrary', 'of library']];
  return {
    id: 'cli',
    title: 'CLI: recscore score end to end vs the library',
    note: `bench/cli.mjs: ${src.users} users, k = ${src.k}, batch ${src.batch}, ${src.threads} threads, a fresh process per run (file in, file out) against the library's encode + topK on the same users in memory. Higher is better.`,
    spec: barsWithRules({ bars, rules: [], x: 'catalogue', group: 'path', y: 'usersPerSec', yTitle: 'users/s', tip: cols }),
    mark: 'rect',
    points: bars.length,
    rules: 0,
    table: table(cols, rows),
  };
}

export function historyCharts(points) {
  const suites = [...new Set(points.map((p) => p.suite))];
  return suites.map((suite) => {
    const rows = points.filter((p) => p.suite === suite);
    const cols = [['series', 'series'], ['date', 'date'], ['commit', 'commit'], ['file', 'file'], ['value', 'throughput'], ['unit', 'unit'], ['relative', 'vs first run']];
    return {
      id: `history-${suite}`,
      title: `History: ${suite}`,
      note: 'Throughput of each series (recscore at the machine\'s default level; onnxruntime in the scoring suite as a control for the machine\'s own drift) in every saved result file, by run date (commit in the tooltip and table), relative to the series\' first run: a regression shows as a drop below 1. Points on the same commit are repeated runs (their spread is the noise).',
      spec: lineChart({ rows, x: 'date', xType: 'temporal', xLog: false, yLog: false, y: 'relative', color: 'series', xTitle: 'run date (UTC)', yTitle: 'throughput vs first run', tip: cols, width: 560, scheme: 'tableau20' }),
      mark: 'symbol',
      points: rows.length,
      rules: 0,
      table: table(cols, rows),
    };
  });
}
