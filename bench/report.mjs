// The benchmark report: one self-contained HTML page (charts rendered to SVG by Vega-Lite, its code
// inlined; every number behind a chart in a table under it) from the JSON the benchmarks write.
//
//   node bench/report.mjs                      every saved file in bench/results and bench/figures
//   node bench/report.mjs RESULTS.json...      only these files
//   npm run bench -- --report                  a benchmark run, then this page (bench/run.mjs)
//
// The newest file holding each suite (scoring, compressed, encoder, engine, engine baseline, CLI) is
// charted; all of them feed the history view. Suites in none of them are listed as "not in these
// results". Options:
//   --out=FILE          where the page goes (default bench/report/index.html)
//   --saved             with RESULTS: the saved files too (history for a new run)
//   --screenshot=PNG    also a PNG of the page's top, through headless Chromium
//   --screenshot-height=PX   how much of the page (default 2000; 0: all of it)
import { resolve } from 'node:path';

import { DEFAULT_OUT, buildReport, savedFiles } from './report/build.mjs';

const args = process.argv.slice(2);
const opt = (name) => {
  const a = args.find((x) => x === `--${name}` || x.startsWith(`--${name}=`));
  return a == null ? undefined : a.includes('=') ? a.slice(a.indexOf('=') + 1) : true;
};
const unknown = args.filter((a) => a.startsWith('--') && !/^--(out|saved|screenshot|screenshot-height)(=|$)/.test(a));
if (unknown.length) {
  console.error(`unknown option ${unknown[0]} (have --out=FILE, --saved, --screenshot=PNG, --screenshot-height=PX)`);
  process.exit(2);
}
const given = args.filter((a) => !a.startsWith('--')).map((p) => resolve(p));
const paths = [...new Set(given.length && !opt('saved') ? given : [...given, ...savedFiles()])];
if (!paths.length) {
  console.error('no result files: run the benchmark (npm run bench) or name JSON files');
  process.exit(2);
}
const out = resolve(String(opt('out') ?? DEFAULT_OUT));

let r;
try {
  r = buildReport({ paths, out });
} catch (err) {
  console.error(`bench/report.mjs: ${err.message}`);
  process.exit(1);
}
console.log(`Wrote ${r.out} (${(r.bytes / 1024).toFixed(0)} KiB, of which ${(r.libBytes / 1024).toFixed(0)} KiB vega + vega-lite + vega-embed)`);
for (const [suite, f] of Object.entries(r.current)) console.log(`  ${suite.padEnd(10)} ${f.name}`);
console.log(`  ${r.charts.length} charts from ${paths.length - r.skipped.length} files`);
if (r.skipped.length) console.log(`  skipped: ${r.skipped.join(', ')}`);
if (r.missing.length) console.log(`  not in these results: ${r.missing.join('; ')}`);

const shot = opt('screenshot');
if (shot) {
  const { screenshot } = await import('./report/browser.mjs');
  const png = resolve(shot === true ? out.replace(/\.html$/, '.png') : String(shot));
  await screenshot(out, png, { height: Number(opt('screenshot-height') ?? 2000) });
  console.log(`Wrote ${png}`);
}
