/**
 * Family d (gen_cli.mjs): `score` and `eval` cases on random JSONL input, read from a file, a
 * FIFO with a writer or a shell pipe on /dev/stdin, with valid or hostile --k, --batch,
 * --threads, --max-errors and --shard.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { wrong } from './common.mjs';
import { classifyRun, fifoWriter, runCli } from './gen_cli_exec.mjs';
import { checkScoreRun, evalLine, randomLine, splitLines } from './gen_cli_jsonl.mjs';

function inputOf(rng, pair, mode, n) {
  const parts = [];
  const kinds = [];
  for (let i = 0; i < n; i++) {
    const l = randomLine(rng, pair, mode);
    parts.push(l.bytes);
    kinds.push(l.kind);
  }
  const trailingNewline = rng.bool(0.85);
  const buf = Buffer.concat(parts.flatMap((p, i) => (i < parts.length - 1 || trailingNewline ? [p, Buffer.from('\n')] : [p])));
  const bad = kinds.map((k, i) => (k === 'valid' || k === 'blank' ? null : `${i + 1}:${k}`)).filter(Boolean);
  return { buf, what: `${n} lines${bad.length ? ` (${bad.slice(0, 6).join(', ')}${bad.length > 6 ? ', …' : ''})` : ', all valid'}` };
}

function flagsOf(rng, hostile) {
  const o = { k: rng.pick([1, 5, 20, 100]), excludeHistory: rng.bool(0.8), shard: { index: 1, count: 1 }, maxErrors: rng.pick([0, 0, 1, 3, 100]), batch: rng.pick([1, 2, 3, 256]), threads: rng.pick([1, 2]), flagsValid: true, flagsWhy: '' };
  const args = [];
  const raw = { k: String(o.k), 'max-errors': String(o.maxErrors), batch: String(o.batch), threads: String(o.threads) };
  if (rng.bool(0.2)) {
    o.shard = { index: 1, count: rng.int(1, 3) };
    o.shard.index = rng.int(1, o.shard.count);
    raw.shard = `${o.shard.index}/${o.shard.count}`;
  }
  if (hostile) {
    const f = rng.pick(['k', 'max-errors', 'batch', 'threads', 'shard']);
    const v = f === 'shard' ? rng.pick(['0/1', '2/1', 'a/b', '1/0', '1/2/3', '01/2', '', '1/99999999999999999999']) : rng.pick(['0', '-1', 'abc', '1.5', '1e309', '99999999999', '', '1e3', '0x10', ' 7', '100000', '2147483648', 'Infinity', '9007199254740993']);
    raw[f] = v;
    const n = Number(v);
    if (f === 'shard') {
      const m = /^(\d+)\/(\d+)$/.exec(v);
      if (m && Number(m[2]) >= 1 && Number(m[1]) >= 1 && Number(m[1]) <= Number(m[2])) o.shard = { index: Number(m[1]), count: Number(m[2]) };
      else {
        o.flagsValid = false;
        o.flagsWhy = `--shard ${v}`;
      }
    } else if (!Number.isSafeInteger(n) || n < (f === 'max-errors' ? 0 : 1) || v.trim() === '') {
      o.flagsValid = false;
      o.flagsWhy = `--${f} ${JSON.stringify(v)}`;
    } else if (f === 'k') o.k = n;
    else if (f === 'max-errors') o.maxErrors = n;
    else if (f === 'batch') o.batch = n;
    else o.threads = n;
  }
  for (const [key, v] of Object.entries(raw)) if (key !== 'threads' || rng.bool(0.7) || hostile) args.push(`--${key}`, v);
  if (!o.excludeHistory) args.push('--no-exclude-history');
  return { o, args };
}

export async function caseScore(ctx, rng, hostileFlags) {
  const s = ctx.shared;
  const pair = rng.bool(0.8) ? s.small : s.example;
  const input = inputOf(rng, pair, 'score', rng.int(1, 25));
  const { o, args } = flagsOf(rng, hostileFlags);
  const inPath = join(ctx.caseDir, 'users.jsonl');
  const out = join(ctx.caseDir, 'recs.jsonl');
  writeFileSync(inPath, input.buf);
  const how = rng.weighted([[8, 'file'], [1, 'fifo'], [1, 'stdin']]);
  let input2 = inPath;
  let stop = null;
  let stdin = null;
  if (how === 'fifo') {
    input2 = join(ctx.caseDir, 'in.fifo');
    execFileSync('mkfifo', [input2]);
    stop = fifoWriter(ctx, input2, input.buf);
  } else if (how === 'stdin') {
    input2 = '/dev/stdin';
    stdin = input.buf;
  }
  const argv = ['score', '--model', pair.model, '--catalogue', pair.catalogue, '--input', input2, '--out', out, ...args];
  ctx.kind = `recscore ${argv.slice(0, 1).join(' ')} (${pair === s.small ? 'small' : 'example'} model, input ${how}) ${args.join(' ')}; ${input.what}`;
  try {
    const r = await runCli(ctx, argv, { stdin });
    return checkScoreRun(ctx, r, pair, input.buf, o, out);
  } finally {
    stop?.();
  }
}

export async function caseEval(ctx, rng) {
  const s = ctx.shared;
  const pair = rng.bool(0.8) ? s.small : s.example;
  const input = inputOf(rng, pair, 'eval', rng.int(1, 20));
  const k = rng.pick([1, 5, 20]);
  const excludeHistory = rng.bool(0.7);
  const inPath = join(ctx.caseDir, 'sessions.jsonl');
  writeFileSync(inPath, input.buf);
  const argv = ['eval', '--model', pair.model, '--catalogue', pair.catalogue, '--input', inPath, '--k', String(k), '--threads', '1', '--json', ...(excludeHistory ? [] : ['--no-exclude-history'])];
  ctx.kind = `recscore eval k ${k}${excludeHistory ? '' : ' --no-exclude-history'}; ${input.what}`;
  const r = await runCli(ctx, argv);
  const c = classifyRun(r);
  if (c.outcome !== 'ok' && c.outcome !== 'typed') return c;
  const lines = splitLines(input.buf);
  const parsed = lines.map((t) => evalLine(pair, t));
  const firstBad = parsed.findIndex((p) => p && p.bad);
  const sessions = parsed.filter((p) => p && !p.bad);
  if (c.outcome === 'typed') {
    const lineNo = /line (\d+)/.exec(c.message)?.[1];
    if (firstBad < 0) wrong(`eval refused all-valid input: ${c.message}`);
    if (lineNo !== undefined && parsed[Number(lineNo) - 1] && !parsed[Number(lineNo) - 1].bad) wrong(`eval refused line ${lineNo}, a valid line: ${lines[Number(lineNo) - 1].slice(0, 80)}`);
    return c;
  }
  const over = parsed.findIndex((p) => p?.bad === 'history too long');
  if (over >= 0 && (firstBad === over || parsed.slice(0, over).every((p) => !p || !p.bad))) wrong(`eval accepted line ${over + 1}, a history of more than 2^20 events (LIMITS.maxHistory)`);
  let m;
  try {
    m = JSON.parse(r.stdout);
  } catch {
    wrong(`eval --json printed no JSON: ${r.stdout.slice(0, 100)}`);
  }
  const want = await ctx.lib.evaluate({ encoder: pair.encoder, catalogue: pair.cat, sessions, k, excludeHistory, threads: 1 });
  for (const key of ['sessions', 'recall', 'mrr', 'ndcg', 'coverage', 'novelty']) {
    if (!(Math.abs(m[key] - want[key]) <= 1e-9)) wrong(`eval ${key} = ${m[key]}, expected ${want[key]} over the ${sessions.length} valid sessions${firstBad >= 0 ? ` (line ${firstBad + 1} is bad and was not reported)` : ''}`);
  }
  return { outcome: 'correct', detail: `${sessions.length} sessions` };
}
