/**
 * Family d (gen_cli.mjs): `score` and `eval` cases on random JSONL input, plain or gzip, read
 * from a file, a FIFO with a writer or a shell pipe on /dev/stdin or `-`, with valid or hostile
 * --k, --batch, --threads, --max-errors, --unknown and --shard (0-based I/N, or auto/N with
 * JOB_COMPLETION_INDEX); sometimes every shard is run and their outputs concatenated.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

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

// The flags' documented ranges (src/limits.ts: maxK, maxBatch 2^20, maxThreads 1024).
const MAX = { k: 1 << 20, batch: 1 << 20, threads: 1024, 'max-errors': Number.MAX_SAFE_INTEGER };

/**
 * --shard as documented (#14): `I/N` with 0 <= I < N, or `auto/N` with I from
 * JOB_COMPLETION_INDEX; anything else is a usage mistake. Returns the shard or null.
 */
function parseShardSpec(v, env) {
  const m = /^(\d+|auto)\/(\d+)$/.exec(v);
  if (!m) return null;
  const count = Number(m[2]);
  const raw = m[1] === 'auto' ? env.JOB_COMPLETION_INDEX : m[1];
  if (raw === undefined || !/^\d+$/.test(raw)) return null;
  const index = Number(raw);
  if (!Number.isSafeInteger(count) || count < 1 || !Number.isSafeInteger(index) || index >= count) return null;
  return { index, count };
}

function flagsOf(rng, hostile) {
  const o = { k: rng.pick([1, 5, 20, 100]), excludeHistory: rng.bool(0.8), shard: { index: 0, count: 1 }, maxErrors: rng.pick([0, 0, 1, 3, 100]), batch: rng.pick([1, 2, 3, 256]), threads: rng.pick([1, 2]), unknown: 'error', flagsValid: true, ambiguous: false, flagsWhy: '' };
  const args = [];
  const env = {};
  const raw = { k: String(o.k), 'max-errors': String(o.maxErrors), batch: String(o.batch), threads: String(o.threads) };
  if (rng.bool(0.25)) {
    const count = rng.int(1, 4);
    o.shard = { index: rng.int(0, count - 1), count };
    if (rng.bool(0.3)) {
      // A Kubernetes Indexed Job's pod: I from JOB_COMPLETION_INDEX.
      raw.shard = `auto/${count}`;
      env.JOB_COMPLETION_INDEX = String(o.shard.index);
    } else raw.shard = `${o.shard.index}/${count}`;
  }
  if (rng.bool(0.2)) {
    o.unknown = rng.pick(['error', 'skip']);
    raw.unknown = o.unknown;
  }
  if (hostile) {
    const f = rng.pick(['k', 'max-errors', 'batch', 'threads', 'shard', 'shard']);
    const v =
      f === 'shard'
        ? rng.pick(['0/1', '2/1', '1/1', '3/3', '-1/2', 'a/b', '1/0', '0/0', '1/2/3', '01/2', '', '1/99999999999999999999', 'auto/2', 'auto/3', 'auto/0', '1', '0/2 ', 'auto'])
        : rng.pick(['0', '-1', 'abc', '1.5', '1e309', '99999999999', '', '1e3', '0x10', ' 7', '100000', '2147483648', 'Infinity', '9007199254740993']);
    raw[f] = v;
    if (f === 'shard') {
      // auto/N: JOB_COMPLETION_INDEX set (in or out of range, or not a number) or not.
      if (v.startsWith('auto')) {
        const e = rng.pick([undefined, '0', '1', '2', '7', '-1', 'x', '', '1.0']);
        if (e === undefined) delete env.JOB_COMPLETION_INDEX;
        else env.JOB_COMPLETION_INDEX = e;
      }
      const sh = parseShardSpec(v, env);
      if (sh) o.shard = sh;
      else {
        o.flagsValid = false;
        o.flagsWhy = `--shard ${JSON.stringify(v)}${v.startsWith('auto') ? ` with JOB_COMPLETION_INDEX ${JSON.stringify(env.JOB_COMPLETION_INDEX)}` : ''}`;
      }
    } else {
      const n = Number(v);
      if (!Number.isSafeInteger(n) || n < (f === 'max-errors' ? 0 : 1) || n > MAX[f]) {
        o.flagsValid = false;
        o.flagsWhy = `--${f} ${JSON.stringify(v)}`;
      } else {
        // '', ' 7', '1e3', '0x10': numbers to Number(), odd spellings to a reader; refusing
        // them is right too.
        if (!/^\d+$/.test(v)) o.ambiguous = true;
        if (f === 'k') o.k = n;
        else if (f === 'max-errors') o.maxErrors = n;
        else if (f === 'batch') o.batch = n;
        else o.threads = n;
      }
    }
  }
  for (const [key, v] of Object.entries(raw)) if (key !== 'threads' || rng.bool(0.7) || hostile) args.push(`--${key}`, v);
  if (!o.excludeHistory) args.push('--no-exclude-history');
  return { o, args, env };
}

export async function caseScore(ctx, rng, hostileFlags) {
  const s = ctx.shared;
  const pair = rng.bool(0.8) ? s.small : s.example;
  const input = inputOf(rng, pair, 'score', rng.int(1, 25));
  const { o, args, env } = flagsOf(rng, hostileFlags);
  const inPath = join(ctx.caseDir, 'users.jsonl');
  const out = join(ctx.caseDir, 'recs.jsonl');
  const how = rng.weighted([[7, 'file'], [1, 'fifo'], [1, 'stdin'], [1, 'gzip file'], [0.5, 'gzip stdin']]);
  // gzip is recognised by its first bytes, whatever the name; a gzip file is split by lines.
  const bytes = how.startsWith('gzip') ? gzipSync(input.buf) : input.buf;
  o.gzip = how === 'gzip file';
  writeFileSync(inPath, bytes);
  let input2 = inPath;
  let stop = null;
  let stdin = null;
  if (how === 'fifo') {
    input2 = join(ctx.caseDir, 'in.fifo');
    execFileSync('mkfifo', [input2]);
    stop = fifoWriter(ctx, input2, bytes);
  } else if (how === 'stdin' || how === 'gzip stdin') {
    input2 = rng.bool(0.5) ? '/dev/stdin' : '-';
    stdin = bytes;
  }
  // A stream cannot be split among shards by one reader: refused (exit 2), as a usage mistake.
  if (o.flagsValid && o.shard.count > 1 && (how === 'fifo' || how.endsWith('stdin'))) {
    o.flagsValid = false;
    o.flagsWhy = `--shard ${o.shard.index}/${o.shard.count} on a stream (${input2})`;
  }
  const argv = ['score', '--model', pair.model, '--catalogue', pair.catalogue, '--input', input2, '--out', out, ...args];
  const envText = Object.entries(env).map(([k, v]) => `${k}=${v} `).join('');
  ctx.kind = `${envText}recscore ${argv.slice(0, 1).join(' ')} (${pair === s.small ? 'small' : 'example'} model, input ${how}) ${args.join(' ')}; ${input.what}`;
  let result;
  try {
    const r = await runCli(ctx, argv, { stdin, env });
    result = checkScoreRun(ctx, r, pair, input.buf, o, out);
  } finally {
    stop?.();
  }
  // Sometimes every shard and the whole job: the shards' outputs (and errors files) concatenated
  // in index order must be the whole job's, byte for byte, when every run exits 0.
  if (result.outcome === 'correct' && o.shard.count > 1 && rng.bool(0.5)) return await allShards(ctx, pair, input.buf, inPath, o, args, result);
  return result;
}

async function allShards(ctx, pair, buf, inPath, o, args, result) {
  const { count } = o.shard;
  const rest = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--shard') i++;
    else rest.push(args[i]);
  }
  const outs = [];
  for (let i = 0; i <= count; i++) {
    const whole = i === count;
    const out = join(ctx.caseDir, whole ? 'all.jsonl' : `part-${i}.jsonl`);
    const argv = ['score', '--model', pair.model, '--catalogue', pair.catalogue, '--input', inPath, '--out', out, ...rest, ...(whole ? [] : ['--shard', `${i}/${count}`])];
    const oi = { ...o, shard: whole ? { index: 0, count: 1 } : { index: i, count } };
    const r = await runCli(ctx, argv);
    const c = checkScoreRun(ctx, r, pair, buf, oi, out, whole ? 'score (whole job)' : `score --shard ${i}/${count}`);
    if (c.outcome !== 'correct') return c.outcome === 'typed' ? result : c;
    outs.push(out);
  }
  const cat = (files) => Buffer.concat(files.filter((f) => existsSync(f)).map((f) => readFileSync(f)));
  const whole = outs.pop();
  if (!cat(outs).equals(readFileSync(whole))) wrong(`the ${count} shards' outputs concatenated are not the whole job's output`);
  if (!cat(outs.map((f) => `${f}.errors.jsonl`)).equals(cat([`${whole}.errors.jsonl`]))) wrong(`the ${count} shards' errors files concatenated are not the whole job's`);
  return { outcome: 'correct', detail: `${result.detail}; ${count} shards concatenated = the whole job` };
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
  // eval has no --max-errors: a bad line or an input without sessions is exit 2, never 1.
  if (r.code === 1) return { outcome: 'untyped', detail: `eval exited 1: ${c.detail}` };
  const lines = splitLines(input.buf);
  const parsed = lines.map((t) => evalLine(pair, t));
  const firstBad = parsed.findIndex((p) => p && p.bad);
  const sessions = parsed.filter((p) => p && !p.bad);
  if (c.outcome === 'typed') {
    const lineNo = /line (\d+)/.exec(c.message)?.[1];
    // An input with no sessions (#14): exit 2, "no sessions in INPUT".
    if (firstBad < 0 && sessions.length === 0 && r.code === 2 && /no sessions in /.test(c.message)) return c;
    if (firstBad < 0) wrong(`eval refused all-valid input: ${c.message}`);
    if (lineNo !== undefined && parsed[Number(lineNo) - 1] && !parsed[Number(lineNo) - 1].bad) wrong(`eval refused line ${lineNo}, a valid line: ${lines[Number(lineNo) - 1].slice(0, 80)}`);
    return c;
  }
  if (sessions.length === 0) wrong(`eval exited 0 on an input with no sessions (it must exit 2, "no sessions in INPUT")`);
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
