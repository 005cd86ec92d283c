#!/usr/bin/env node
/**
 * recscore's fuzzing harness (see test/fuzz/README.md).
 *
 *   node test/fuzz/run.mjs --cases 500 --seed 1 [--family a,b,c,d] [--build build-fuzz/dist]
 *                          [--json out.json] [--findings out.md] [--jobs N] [--timeout MS]
 *   node test/fuzz/run.mjs --seed 1 --family a --case 17 [--keep DIR] [--verbose]   (one case)
 *
 * Cases are split evenly over the families; case i of family f is generated from (seed, f, i)
 * alone. Every case runs in a child process (several per process, each reported as it ends); a
 * batch whose process crashes or stops answering is re-run one case per process to pin the
 * outcome on a case. Prints a table per family and exits 1 when any case crashed, hung, threw
 * an untyped error, gave a wrong answer or was accepted where onnxruntime refuses it.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { BAD, LABEL, OUTCOMES } from './common.mjs';
import { FAMILIES } from './prng.mjs';

const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const CHILD = fileURLToPath(new URL('./child.mjs', import.meta.url));

/** Batch sizes and per-case watchdogs (ms) per family; d runs the CLI, with its own timeouts. */
const FAMILY_CONF = {
  a: { batch: 40, timeout: 10_000 },
  b: { batch: 15, timeout: 20_000 },
  c: { batch: 30, timeout: 10_000 },
  d: { batch: 8, timeout: 45_000 },
};
const SETUP_TIMEOUT = 90_000;

function parseArgs(argv) {
  const o = { cases: 500, seed: '1', families: ['a', 'b', 'c', 'd'], build: 'dist', json: null, findings: null, fromJson: null, jobs: availableParallelism(), timeout: null, case: null, keep: null, verbose: false, quiet: false };
  for (let i = 2; i < argv.length; i++) {
    const a = argv[i];
    const v = () => {
      if (i + 1 >= argv.length) usage(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--cases') o.cases = Number(v());
    else if (a === '--seed') o.seed = v();
    else if (a === '--family') o.families = v().split(',').map((s) => s.trim()).filter(Boolean);
    else if (a === '--build') o.build = v();
    else if (a === '--json') o.json = v();
    else if (a === '--findings') o.findings = v();
    else if (a === '--from-json') o.fromJson = v();
    else if (a === '--jobs') o.jobs = Number(v());
    else if (a === '--timeout') o.timeout = Number(v());
    else if (a === '--case') o.case = v().split(',').map(Number);
    else if (a === '--keep') o.keep = v();
    else if (a === '--verbose' || a === '-v') o.verbose = true;
    else if (a === '--quiet' || a === '-q') o.quiet = true;
    else if (a === '--help' || a === '-h') usage();
    else usage(`unknown argument ${a}`);
  }
  if (!Number.isSafeInteger(o.cases) || o.cases < 1) usage('--cases must be a positive integer');
  if (!Number.isSafeInteger(o.jobs) || o.jobs < 1) usage('--jobs must be a positive integer');
  for (const f of o.families) if (!FAMILIES[f]) usage(`unknown family ${f} (a, b, c or d)`);
  if (o.case && (o.families.length !== 1 || o.case.some((c) => !Number.isSafeInteger(c) || c < 0))) usage('--case needs exactly one --family and case numbers >= 0');
  o.buildDir = isAbsolute(o.build) ? o.build : resolve(ROOT, o.build);
  if (o.fromJson) return o;
  if (!existsSync(join(o.buildDir, 'index.js')) || !existsSync(join(o.buildDir, 'cli.js'))) {
    usage(`${o.buildDir} holds no build (index.js, cli.js): run npx tsup --out-dir ${relative(ROOT, o.buildDir) || o.build}`);
  }
  return o;
}

function usage(msg) {
  if (msg) process.stderr.write(`run.mjs: ${msg}\n`);
  process.stderr.write(
    'usage: node test/fuzz/run.mjs [--cases N] [--seed S] [--family a,b,c,d] [--build DIR] [--json FILE] [--findings FILE] [--jobs N] [--timeout MS]\n' +
      '       node test/fuzz/run.mjs --family F --case I[,J…] [--seed S] [--keep DIR] [--verbose]\n' +
      '       node test/fuzz/run.mjs --from-json FILE --findings FILE   (the report of an earlier --json run)\n',
  );
  process.exit(msg ? 2 : 0);
}

/** Runs some cases of one family in one child process. */
function runChild(o, family, indexes, tmp) {
  const conf = FAMILY_CONF[family];
  const limit = o.timeout ?? conf.timeout;
  return new Promise((done) => {
    const args = ['--max-old-space-size=4096', CHILD, '--family', family, '--seed', o.seed, '--build', o.buildDir, '--cases', indexes.join(','), '--tmp', tmp];
    if (o.keep) args.push('--keep', resolve(o.keep));
    if (o.verbose) args.push('--verbose');
    const child = spawn(process.execPath, args, { cwd: tmp, stdio: ['ignore', o.verbose ? 'inherit' : 'pipe', o.verbose ? 'inherit' : 'pipe', 'pipe'], env: { ...process.env, RECSCORE_FUZZ_CHILD: '1' } });
    const results = new Map();
    const kinds = new Map();
    let started = null;
    let ready = false;
    let killed = false;
    let stderr = '';
    let buf = '';
    let timer = null;
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        killed = true;
        child.kill('SIGKILL');
      }, ready ? limit : SETUP_TIMEOUT);
    };
    arm();
    child.stderr?.on('data', (d) => {
      stderr = (stderr + d).slice(-4000);
    });
    child.stdout?.on('data', () => {});
    child.stdio[3].on('data', (d) => {
      buf += d;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        let m;
        try {
          m = JSON.parse(line);
        } catch {
          continue;
        }
        if (m.t === 'ready') ready = true;
        else if (m.t === 'start') started = m.i;
        else if (m.t === 'kind') kinds.set(m.i, m.kind);
        else if (m.t === 'result' && m.i !== null && m.i !== undefined) {
          results.set(m.i, m);
          started = null;
        }
        arm();
      }
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      done({ results, kinds, started, ready, killed, code, signal, stderr });
    });
  });
}

function abnormal(r) {
  return r.killed || r.signal || (r.code !== 0 && r.code !== null);
}

function deathText(r, limit) {
  if (r.killed) return `no answer within ${limit / 1000} s: killed`;
  const tail = r.stderr.trim().split('\n').slice(-3).join(' | ').slice(0, 400);
  return `${r.signal ? `signal ${r.signal}` : `exit code ${r.code}`}${tail ? `: ${tail}` : ''}`;
}

/** Runs a batch; on a crash or hang, re-runs the unfinished cases (and the one before) alone. */
async function runBatch(o, family, indexes, tmp) {
  const limit = o.timeout ?? FAMILY_CONF[family].timeout;
  const r = await runChild(o, family, indexes, tmp);
  if (!r.ready && indexes.length > 0 && r.results.size === 0) {
    if (indexes.length > 1) {
      // The process did not even set up: try each case alone before blaming the harness.
      const out = [];
      for (const i of indexes) out.push(...(await runBatch(o, family, [i], tmp)));
      return out;
    }
    const why = deathText(r, SETUP_TIMEOUT);
    return [{ i: indexes[0], outcome: r.killed ? 'hang' : 'crash', detail: `before the case (setup): ${why}`, setupFailure: true }];
  }
  if (indexes.length === 1) {
    const i = indexes[0];
    const res = r.results.get(i);
    if (!res) return [{ i, outcome: r.killed ? 'hang' : 'crash', kind: r.kinds.get(i), detail: deathText(r, limit) }];
    if (abnormal(r) && !r.killed) return [{ ...res, outcome: 'crash', detail: `after the case ended: ${deathText(r, limit)}; case: ${res.detail ?? ''}` }];
    return [res];
  }
  // Keep what was reported; re-run the case in progress alone (and, after a crash, the case
  // before it, whose aftermath may have been the cause), then the rest as a new batch.
  const final = new Map();
  for (const i of indexes) if (r.results.has(i)) final.set(i, r.results.get(i));
  if (final.size === indexes.length && !abnormal(r)) return [...final.values()];
  const pos = indexes.findIndex((i) => !r.results.has(i));
  const suspects = [];
  if (pos < 0) suspects.push(indexes[indexes.length - 1]);
  else {
    if (pos > 0 && !r.killed) suspects.push(indexes[pos - 1]);
    suspects.push(indexes[pos]);
  }
  for (const i of suspects) {
    const [x] = await runBatch(o, family, [i], tmp);
    if (!final.has(i) || BAD.has(x.outcome)) final.set(i, x);
  }
  if (pos >= 0 && pos + 1 < indexes.length) for (const x of await runBatch(o, family, indexes.slice(pos + 1), tmp)) final.set(x.i, x);
  return [...final.values()];
}

async function pool(tasks, jobs) {
  let next = 0;
  const workers = Array.from({ length: Math.min(jobs, tasks.length) }, async () => {
    while (next < tasks.length) await tasks[next++]();
  });
  await Promise.all(workers);
}

function repro(o, family, i) {
  const build = relative(ROOT, o.buildDir) || '.';
  return `node test/fuzz/run.mjs --build ${build} --seed ${o.seed} --family ${family} --case ${i}`;
}

function table(stats, seconds) {
  const cols = ['family', 'cases', ...OUTCOMES.map((k) => LABEL[k]), 'cases/s'];
  const rows = Object.entries(stats).map(([f, s]) => [`${f} ${FAMILIES[f]}`, String(s.cases), ...OUTCOMES.map((k) => (k === 'ortRefused' && f !== 'b' ? '-' : String(s[k]))), (s.cases / Math.max(1e-9, s.cpuSeconds)).toFixed(1)]);
  const total = ['total', String(rows.reduce((a, r) => a + Number(r[1]), 0)), ...OUTCOMES.map((k) => String(Object.values(stats).reduce((a, s) => a + s[k], 0))), ''];
  const all = [cols, ...rows, total];
  const w = cols.map((_, c) => Math.max(...all.map((r) => r[c].length)));
  const line = (r) => `| ${r.map((x, c) => (c === 0 ? x.padEnd(w[c]) : x.padStart(w[c]))).join(' | ')} |`;
  return [line(cols), `|${w.map((x, c) => (c === 0 ? `${'-'.repeat(x + 1)}-` : `${'-'.repeat(x + 1)}:`)).join('|')}|`, ...rows.map(line), line(total), `${seconds.toFixed(1)} s wall clock`].join('\n');
}

/** Groups failures by what went wrong, numbers and paths blurred. */
export function signature(family, r) {
  const blur = (s) =>
    String(s ?? '')
      .replace(/\/[^\s:'"`),]+/g, 'PATH')
      .replace(/-?\d+(\.\d+)?(e[-+]?\d+)?/gi, '#')
      .replace(/"[^"]*"/g, 'S')
      .slice(0, 140);
  return `${family} ${r.outcome} ${blur(r.detail)}`;
}

/** Paths of temporary case folders and of the build shortened, for reports. */
function clean(s) {
  return String(s ?? '')
    .replace(/\/tmp\/recscore-fuzz-[^\s/]+\/(?:[^\s/]+\/)*?case-\d+\//g, 'CASE/')
    .replace(/\/tmp\/recscore-fuzz-[^\s/]+\/(?:[^\s/]+\/)*?env\//g, 'ENV/')
    .replace(/file:\/\/\//g, '/')
    .replaceAll(`${ROOT}/`, '');
}

function findingsMarkdown(o, all, stats, seconds) {
  const bad = all.filter((r) => BAD.has(r.outcome));
  const esc = (s) => clean(s).replace(/\|/g, '\\|').replace(/\n/g, ' ');
  const lines = [
    '# Fuzz findings',
    '',
    `Run: \`node test/fuzz/run.mjs --cases ${o.cases} --seed ${o.seed} --family ${o.families.join(',')} --build ${relative(ROOT, o.buildDir) || '.'}\` (${new Date().toISOString().slice(0, 10)}).`,
    '',
    '```',
    table(stats, seconds),
    '```',
    '',
    `${bad.length} failing cases. Reproduce one with the command in its row (add \`--keep DIR\` to keep its input files, \`--verbose\` for stacks).`,
    '',
  ];
  const groups = new Map();
  for (const r of bad) {
    const s = signature(r.family, r);
    if (!groups.has(s)) groups.set(s, []);
    groups.get(s).push(r);
  }
  lines.push('## Distinct failures (grouped by message)', '', '| family | outcome | cases | first case | input | detail |', '| --- | --- | ---: | --- | --- | --- |');
  for (const [, rs] of [...groups].sort((a, b) => b[1].length - a[1].length)) {
    const r = rs[0];
    lines.push(`| ${r.family} | ${LABEL[r.outcome]} | ${rs.length} | \`${repro(o, r.family, r.i)}\` | ${esc(r.kind).slice(0, 160)} | ${esc(r.detail).slice(0, 300)} |`);
  }
  lines.push('', '## Every failing case', '', '| family | case | outcome | input | what happened | reproduction |', '| --- | ---: | --- | --- | --- | --- |');
  for (const r of bad) lines.push(`| ${r.family} | ${r.i} | ${LABEL[r.outcome]} | ${esc(r.kind).slice(0, 200)} | ${esc(r.detail).slice(0, 300)} | \`${repro(o, r.family, r.i)}\` |`);
  return `${lines.join('\n')}\n`;
}

async function main() {
  const o = parseArgs(process.argv);
  if (o.fromJson) {
    const j = JSON.parse(readFileSync(o.fromJson, 'utf8'));
    Object.assign(o, { seed: j.seed, cases: j.cases, families: j.families, buildDir: j.build });
    console.log(table(j.stats, j.seconds));
    if (o.findings) writeFileSync(o.findings, findingsMarkdown(o, j.results, j.stats, j.seconds));
    process.exitCode = j.results.some((r) => BAD.has(r.outcome)) ? 1 : 0;
    return;
  }
  const runTmp = mkdtempSync(join(tmpdir(), 'recscore-fuzz-'));
  const t0 = performance.now();
  const all = [];
  const stats = {};
  for (const f of o.families) stats[f] = { cases: 0, cpuSeconds: 0, ...Object.fromEntries(OUTCOMES.map((k) => [k, 0])) };
  const tasks = [];
  if (o.case) {
    const f = o.families[0];
    for (const i of o.case) tasks.push({ f, idx: [i] });
  } else {
    const per = Math.floor(o.cases / o.families.length);
    o.families.forEach((f, fi) => {
      const n = per + (fi < o.cases % o.families.length ? 1 : 0);
      const size = FAMILY_CONF[f].batch;
      for (let s = 0; s < n; s += size) tasks.push({ f, idx: Array.from({ length: Math.min(size, n - s) }, (_, k) => s + k) });
    });
    // The slow family first, so the others fill in around it.
    tasks.sort((x, y) => (x.f === 'd' ? 0 : 1) - (y.f === 'd' ? 0 : 1));
  }
  let doneCases = 0;
  const total = tasks.reduce((a, t) => a + t.idx.length, 0);
  let setupFailures = 0;
  await pool(
    tasks.map((t) => async () => {
      const ts = performance.now();
      const dir = join(runTmp, `${t.f}-${t.idx[0]}`);
      mkdirSync(dir, { recursive: true });
      const rs = await runBatch(o, t.f, t.idx, dir);
      rmSync(dir, { recursive: true, force: true });
      stats[t.f].cpuSeconds += (performance.now() - ts) / 1000;
      for (const r of rs) {
        if (r.setupFailure) setupFailures++;
        all.push({ family: t.f, ...r });
        stats[t.f].cases++;
        stats[t.f][r.outcome] = (stats[t.f][r.outcome] ?? 0) + 1;
        if (o.case || o.verbose) {
          process.stdout.write(`${t.f} case ${r.i}: ${LABEL[r.outcome] ?? r.outcome}\n  input: ${r.kind ?? '?'}\n  ${r.detail ?? ''}\n`);
        } else if (BAD.has(r.outcome) && !o.quiet) {
          process.stdout.write(`${t.f} #${r.i} ${r.outcome}: ${(r.detail ?? '').slice(0, 200)}\n`);
        }
      }
      doneCases += rs.length;
      if (!o.case && !o.quiet && process.stderr.isTTY) process.stderr.write(`\r${doneCases}/${total} cases`);
    }),
    o.jobs,
  );
  if (process.stderr.isTTY && !o.case && !o.quiet) process.stderr.write('\n');
  rmSync(runTmp, { recursive: true, force: true });
  const seconds = (performance.now() - t0) / 1000;
  all.sort((x, y) => (x.family < y.family ? -1 : x.family > y.family ? 1 : x.i - y.i));
  console.log(table(stats, seconds));
  if (o.json) {
    writeFileSync(o.json, JSON.stringify({ seed: o.seed, cases: o.cases, families: o.families, build: o.buildDir, seconds, stats, results: all.map((r) => ({ ...r, repro: repro(o, r.family, r.i) })) }, null, 1));
  }
  if (o.findings) writeFileSync(o.findings, findingsMarkdown(o, all, stats, seconds));
  if (setupFailures > 0) console.log(`${setupFailures} cases could not even start a worker (see the details above)`);
  const bad = all.filter((r) => BAD.has(r.outcome)).length;
  if (bad > 0) console.log(`${bad} bad outcomes (crash, hang, untyped error, wrong answer, accepted what onnxruntime refuses)`);
  process.exitCode = bad > 0 ? 1 : 0;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((e) => {
    console.error(e);
    process.exit(3);
  });
}
