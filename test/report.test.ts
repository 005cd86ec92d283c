/**
 * bench/report.mjs: the benchmark report page, built from real result files committed in
 * test/fixtures/bench/ (a full bench/run.mjs run with every suite and the older compressed schema,
 * a compressed run with two CPU levels and the new schema, an encoder-only run, a bench/cli.mjs
 * run). The page is checked as text, then opened in headless Chromium (Debian's chromium through
 * puppeteer-core): no console errors or warnings, no request beyond file://, every chart drew one
 * SVG mark per row of the table under it and one rule per ceiling, and a screenshot is saved in
 * build-report/ (git-ignored). Without a Chromium that starts, the browser tests are skipped with
 * the reason printed (scripts/install-chromium.sh installs it).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

import type { Browser } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = new URL('..', import.meta.url).pathname;
const fixtures = join(root, 'test', 'fixtures', 'bench');
const outDir = join(root, 'build-report');
const fixtureFiles = readdirSync(fixtures).filter((f) => f.endsWith('.json')).sort().map((f) => join(fixtures, f));
const fixture = (name: string) => JSON.parse(readFileSync(join(fixtures, name), 'utf8'));
const full = fixture('zen4-avx512-20261129-v2-interleaved.json');
const compressed = fixture('zen4-avx512-20261129-compressed-final4.json');
const cliRun = fixture('cli-2026-11-29.json');

function report(files: string[], out: string): string {
  return execFileSync(process.execPath, [join(root, 'bench', 'report.mjs'), `--out=${out}`, ...files], { cwd: root, encoding: 'utf8' });
}

/** The numbers (data-value) of one table's rows, by the chart's id. */
function tableOf(html: string, id: string): string[] {
  const at = html.indexOf(`id="chart-${id}"`);
  expect(at, `no chart ${id}`).toBeGreaterThan(0);
  const table = html.slice(at, html.indexOf('</table>', at));
  return table.split('<tr>').slice(2);
}

const EXPECTED_CHARTS = ['scoring-throughput', 'scoring-ceiling', 'compressed', 'encoder-batch', 'encoder-step', 'engine-throughput', 'engine-p99', 'cli', 'history-compressed', 'history-encoder'];
const page = join(outDir, 'fixtures', 'index.html');
mkdirSync(outDir, { recursive: true });
const stdout = report(fixtureFiles, page);
const html = readFileSync(page, 'utf8');

describe('bench/report.mjs (the page as text)', () => {
  it('charts every suite in the fixtures, the newest file of each', () => {
    expect(stdout).toMatch(/Wrote .*index\.html/);
    const ids = [...html.matchAll(/data-chart="([^"]+)"/g)].map((m) => m[1]);
    expect(ids).toEqual(EXPECTED_CHARTS);
    expect(html).toContain('d7a05c2, 2026-11-29 20:27 UTC, zen4-avx512-20261129-v2-interleaved.json');
    expect(html).toContain('ef53451 + uncommitted changes, 2026-11-29 22:49 UTC, zen4-avx512-20261129-compressed-final4.json');
  });

  it('has the machine, level, flags and method in the header', () => {
    expect(html).toContain('AMD EPYC, 2 CPUs, 23.5 GiB');
    expect(html).toContain('avx2, avx512, vnni, avx512vnni, bf16');
    expect(html).toContain('avx512 (this CPU runs scalar, avx2, avx512)');
    expect(html).toContain('interleaved timing; 2 threads; k = 20; full run');
    expect(html).toMatch(/zen4 \(from the file name\); Zen 4 or later/);
  });

  it('lists the suites that are not in the inputs instead of failing', () => {
    expect(html).toMatch(/Not in these results: .*engine against a baseline commit/);
    expect(html).not.toMatch(/Not in these results: [^<]*scoring vs peers/);
    const only = join(outDir, 'cli-only', 'index.html');
    const out = report([join(fixtures, 'cli-2026-11-29.json')], only);
    expect(out).toContain('not in these results: scoring vs peers');
    const page2 = readFileSync(only, 'utf8');
    expect([...page2.matchAll(/data-chart="([^"]+)"/g)].map((m) => m[1])).toEqual(['cli']);
    for (const s of ['scoring vs peers', 'compressed catalogues', 'encoder (', 'engine vs concurrent clients', 'history (needs two'])
      expect(page2).toMatch(new RegExp(`class="missing-suite">${s.replace('(', '\\(')}`));
  });

  it('puts every number behind a chart in the table under it', () => {
    // scoring: one row per case and engine, users/s as measured
    const rows = tableOf(html, 'scoring-throughput');
    expect(rows.length).toBe(full.results.reduce((s: number, r: { engines: object }) => s + Object.keys(r.engines).length, 0));
    const r256 = full.results.find((r: { case: string }) => r.case === 'N=1.00M d=64 B=256');
    const row = rows.find((r) => r.includes('>recscore avx512<') && r.includes('<td class="num" data-value="256">'));
    expect(row).toContain(`data-value="${r256.engines.recscore.usersPerSec}"`);
    expect(row).toContain(`data-value="${r256.engines.recscore.ofCeiling}"`);
    // ceilings: the read bandwidth, sgemm and FMA peaks of the run, at 2 threads
    const rules = html.slice(html.indexOf('<table class="rules">'));
    expect(rules).toContain(`data-value="${full.ceilings.bandwidth.byThreads['2'].gbs}"`);
    expect(rules).toContain(`data-value="${full.ceilings.gemm.byThreads['2'].gflops}"`);
    expect(rules).toContain(`data-value="${full.ceilings.fma.byLevel.avx2['2'].gflops}"`);
    // compressed: 18 rows of the new schema and one onnxruntime row per level and case
    const crows = tableOf(html, 'compressed');
    expect(crows.length).toBe(compressed.compressed.length + 6);
    const int8 = compressed.compressed.find((r: { B: number; k: number; level: string; precision: string }) => r.B === 1 && r.k === 20 && r.level === 'avx512' && r.precision === 'int8');
    const f32 = compressed.compressed.find((r: { B: number; k: number; level: string; precision: string }) => r.B === 1 && r.k === 20 && r.level === 'avx512' && r.precision === 'f32');
    expect(crows.find((r) => r.includes(`data-value="${int8.ms}"`))).toContain(`data-value="${f32.ms / int8.ms}"`);
    // engine: both pipelines at each catalogue and client count
    expect(tableOf(html, 'engine-throughput').length).toBe(full.engine.length * 2);
    expect(tableOf(html, 'engine-p99').join('')).toContain(`data-value="${full.engine[2].engine.p99}"`);
    // cli: users/s per path, as bench/cli.mjs printed them
    const cli = tableOf(html, 'cli');
    expect(cli.length).toBe(cliRun.rows.length);
    expect(cli[1]).toContain(`data-value="${Number(cliRun.rows[1]['users/s'])}"`);
    // history: the compressed cases at the default level in both files (old and new schema), and the encoder in two files
    expect(tableOf(html, 'history-compressed').length).toBe(12);
    expect(tableOf(html, 'history-encoder').length).toBe(12);
  });

  it('loads nothing from the network: the chart library is inlined', () => {
    expect(html).not.toMatch(/<script[^>]+src=/);
    expect(html).not.toMatch(/<link[^>]+href=/);
    for (const lib of ['vega', 'vega-lite', 'vega-embed']) expect(html).toContain(`/* ${lib} `);
    expect(statSync(page).size).toBeGreaterThan(800_000);
  });
});

// -- in a browser ---------------------------------------------------------------------------------
function chromiumPath(): string | null {
  for (const name of ['chromium', 'chromium-browser']) {
    try {
      const p = execFileSync('which', [name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
      if (p) return p;
    } catch {
      // not on PATH
    }
  }
  return null;
}

let browser: Browser | null = null;
let skipReason = '';

describe('bench/report.mjs (the page in headless Chromium)', () => {
  beforeAll(async () => {
    const exe = process.env.CHROMIUM ?? chromiumPath();
    if (!exe) {
      skipReason = 'chromium is not on PATH (scripts/install-chromium.sh installs Debian\'s)';
    } else {
      try {
        const { default: puppeteer } = await import('puppeteer-core');
        browser = await puppeteer.launch({ executablePath: exe, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
      } catch (err) {
        skipReason = `chromium (${exe}) did not start: ${String((err as Error).message).split('\n')[0]}`;
      }
    }
    if (skipReason) console.log(`test/report.test.ts: browser tests skipped: ${skipReason}`);
  });
  afterAll(async () => {
    await browser?.close();
  });

  it('renders every chart as SVG, one mark per table row, with no error and no network', async (ctx) => {
    if (!browser) return ctx.skip(skipReason);
    const tab = await browser.newPage();
    const problems: string[] = [];
    const requests: string[] = [];
    tab.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warn') problems.push(`${m.type()}: ${m.text()}`);
    });
    tab.on('pageerror', (e) => problems.push(`pageerror: ${(e as Error).message}`));
    await tab.setRequestInterception(true);
    tab.on('request', (req) => {
      if (req.url().startsWith('file://')) return void req.continue();
      requests.push(req.url());
      void req.abort();
    });
    await tab.setViewport({ width: 1280, height: 1000 });
    await tab.goto(`file://${page}`, { waitUntil: 'load' });
    await tab.waitForFunction(() => document.body.dataset.rendered !== 'pending', { timeout: 30_000 });
    expect(await tab.evaluate(() => document.body.dataset.rendered)).toBe('ok');

    const charts = await tab.evaluate(() =>
      [...document.querySelectorAll<HTMLElement>('.chart')].map((c) => {
        const table = c.nextElementSibling as HTMLTableElement;
        return {
          id: c.dataset.chart,
          svgs: c.querySelectorAll('svg').length,
          marks: c.querySelectorAll(`g.role-mark.mark-${c.dataset.mark} > *`).length,
          rules: c.querySelectorAll('g.role-mark.mark-rule > *').length,
          points: Number(c.dataset.points),
          ruleRows: Number(c.dataset.rules),
          tableRows: table.querySelectorAll('tbody tr').length,
        };
      }),
    );
    expect(charts.map((c) => c.id)).toEqual(EXPECTED_CHARTS);
    for (const c of charts) {
      expect(c.svgs, c.id).toBe(1);
      expect(c.tableRows, c.id).toBe(c.points);
      expect(c.marks, `${c.id}: marks drawn vs rows in its table`).toBe(c.tableRows);
      expect(c.rules, `${c.id}: ceiling rules`).toBe(c.ruleRows);
    }
    // the ceiling chart: a read, sgemm and FMA rule in each level's panels (avx2, avx512)
    expect(charts.find((c) => c.id === 'scoring-ceiling')?.rules).toBe(6);
    expect(problems).toEqual([]);
    expect(requests).toEqual([]);

    const png = join(outDir, 'report-fixtures.png');
    await tab.screenshot({ path: png, fullPage: true });
    const head = readFileSync(png).subarray(0, 8);
    expect(head.toString('hex')).toBe('89504e470d0a1a0a');
    console.log(`test/report.test.ts: screenshot ${png}`);
    await tab.close();
  });
});
