/**
 * Family d: the `recscore` command line. Each case runs the CLI (a child process of this worker,
 * killed after CLI_TIMEOUT_MS) on random JSONL input for `score` or `eval` (valid lines mixed
 * with null lines, wrong types, huge numbers, nesting a million levels deep, invalid UTF-8, BOMs,
 * CRLF), on hostile flags, on directories, FIFOs (with and without a writer), missing and
 * special files as paths, or resumes a stopped job from a corrupted `.progress` checkpoint.
 * Oracle: exit 0 with the right output (checked line by line against the library in this
 * process: encoder + catalogue, or `evaluate`), or exit 2 with a message (`recscore: …`, no
 * stack, no "internal error"; a bad line named by its number must be a bad line). Exit 1, a
 * stack or "internal error" is an untyped error; a signal or another exit code a crash; the
 * timeout a hang.
 */
import { execFileSync, spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { Wrong, errText, wrong } from './common.mjs';
import { Rng } from './prng.mjs';

const CLI_TIMEOUT_MS = 10_000;
const MAX_HISTORY = 1 << 20;

export async function setup(ctx) {
  const { Catalogue, Encoder } = ctx.lib;
  const dir = join(ctx.tmp, 'env');
  mkdirSync(dir, { recursive: true });
  const rng = new Rng('cli-setup');
  const small = { model: join(ctx.root, 'models', 'fixtures', 'lstm1_bf_ylast_tanh.onnx'), catalogue: join(dir, 'small.rsc') };
  const example = { model: join(ctx.root, 'models', 'example', 'session_lstm.onnx'), catalogue: join(dir, 'example.rsc') };
  const c1 = Catalogue.fromVectors(Float32Array.from({ length: 40 * 6 }, () => rng.normal()), { dim: 6, bias: Float32Array.from({ length: 40 }, () => rng.normal() * 0.1) });
  await c1.save(small.catalogue);
  await c1.close();
  const c2 = await Catalogue.fromNpy(join(ctx.root, 'models', 'example', 'items.npy'), { precision: 'int8' });
  await c2.save(example.catalogue);
  await c2.close();
  for (const pair of [small, example]) {
    pair.encoder = await Encoder.load(pair.model, { threads: 1 });
    pair.cat = await Catalogue.open(pair.catalogue);
    pair.vocab = pair.encoder.vocab;
  }
  const files = { dir: join(dir, 'a-directory'), fifo: join(dir, 'fifo'), garbage: join(dir, 'garbage.bin'), empty: join(dir, 'empty.bin') };
  mkdirSync(files.dir);
  execFileSync('mkfifo', [files.fifo]);
  writeFileSync(files.garbage, rng.bytes(5000));
  writeFileSync(files.empty, '');
  return { small, example, files };
}

export async function teardown(ctx) {
  for (const p of [ctx.shared.small, ctx.shared.example]) {
    await p.encoder.close().catch(() => {});
    await p.cat.close().catch(() => {});
  }
}

// ------------------------------------------------------------------ running the CLI

function runCli(ctx, args, { stdin = null, timeout = CLI_TIMEOUT_MS } = {}) {
  return new Promise((resolve) => {
    // stdin, when given, comes through a shell pipe (a FIFO, as in `cat users.jsonl | recscore …`).
    let cmd = process.execPath;
    let argv = [ctx.cli, ...args];
    if (stdin !== null) {
      const src = join(ctx.caseDir, 'stdin-content');
      writeFileSync(src, stdin);
      cmd = 'sh';
      argv = ['-c', 'f=$1; shift; cat "$f" | "$@"', 'sh', src, process.execPath, ctx.cli, ...args];
    }
    const child = spawn(cmd, argv, { cwd: ctx.caseDir, stdio: ['ignore', 'pipe', 'pipe'], detached: true, env: { ...process.env, NODE_OPTIONS: '' } });
    let out = '';
    let err = '';
    let timedOut = false;
    const cap = (s, d) => (s.length > 200_000 ? s : s + d);
    child.stdout.on('data', (d) => (out = cap(out, d)));
    child.stderr.on('data', (d) => (err = cap(err, d)));
    const t = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    }, timeout);
    child.on('exit', (code, signal) => {
      clearTimeout(t);
      resolve({ code, signal, timedOut, stdout: out, stderr: err, args });
    });
  });
}

/** Writes `content` into a FIFO from a helper process (killed when the case ends). */
function fifoWriter(ctx, fifo, content) {
  const src = join(ctx.caseDir, 'fifo-content.jsonl');
  writeFileSync(src, content);
  const w = spawn('sh', ['-c', 'cat "$1" > "$2"', 'sh', src, fifo], { stdio: 'ignore', detached: true });
  return () => {
    try {
      process.kill(-w.pid, 'SIGKILL');
    } catch {
      // gone
    }
  };
}

const STACK = /^\s+at\s.+(\(.*:\d+:\d+\)|:\d+:\d+)$/m;

/** The outcome class of one CLI run, before its output is checked. */
function classifyRun(r) {
  // The message line and the first stack frame, else the last lines.
  const lines = r.stderr.trim().split('\n');
  const at = lines.findIndex((l) => /internal error|Error:|^recscore: /.test(l));
  const frame = lines.find((l) => /^\s+at\s/.test(l) && !/node:internal/.test(l))?.trim();
  const tail = (at >= 0 ? `${lines[at]}${frame ? ` (${frame})` : ''}` : lines.slice(-4).join(' | ')).slice(0, 400);
  if (r.timedOut) return { outcome: 'hang', detail: `no exit within ${CLI_TIMEOUT_MS / 1000} s (killed)` };
  if (r.signal) return { outcome: 'crash', detail: `killed by ${r.signal}: ${tail}` };
  if (r.code === 0) return { outcome: 'ok' };
  if (r.code === 2) {
    const msg = r.stderr.split('\n').find((l) => l.startsWith('recscore: ') || l.startsWith('error: ') || l.startsWith('Usage: '));
    if (!msg) return { outcome: 'untyped', detail: `exit 2 without a "recscore: …" message: ${tail}` };
    if (STACK.test(r.stderr) || /internal error/.test(r.stderr)) return { outcome: 'untyped', detail: `exit 2 with a stack trace: ${tail}` };
    return { outcome: 'typed', detail: msg.slice(0, 300), message: msg };
  }
  if (r.code === 1) return { outcome: 'untyped', detail: `exit 1: ${tail}` };
  return { outcome: 'crash', detail: `exit ${r.code}: ${tail}` };
}

// ------------------------------------------------------------------ JSONL lines

function validHistory(rng, pair, maxLen = 8) {
  return Array.from({ length: rng.int(0, maxLen) }, () => rng.int(0, pair.vocab - 1));
}

/** A hostile or valid JSONL line as bytes (Buffer); `kind` says what it is. */
function randomLine(rng, pair, mode) {
  const deep = (n, inner = '1') => `${'['.repeat(n)}${inner}${']'.repeat(n)}`;
  const user = () => rng.pick([rng.int(0, 1e6), `u${rng.int(0, 99)}`, -5, 1e300, '', 'ü😀', 0.5]);
  const valid = () => (mode === 'score' ? JSON.stringify({ user: user(), history: validHistory(rng, pair) }) : JSON.stringify({ history: validHistory(rng, pair), next: rng.int(0, pair.vocab - 1) }));
  const key = mode === 'score' ? 'user' : 'next';
  const kind = rng.weighted([
    [14, 'valid'],
    [1, 'blank'],
    [2, 'null'],
    [2, 'scalar'],
    [1, 'array'],
    [2, 'missing'],
    [3, 'historyType'],
    [3, 'historyItem'],
    [2, 'keyType'],
    [2, 'deep'],
    [1, 'deepKey'],
    [1, 'hugeNumber'],
    [2, 'notJson'],
    [1, 'utf8'],
    [1, 'utf8String'],
    [1, 'bom'],
    [1, 'crlf'],
    [1, 'longHistory'],
    [0.3, 'tooLongHistory'],
    [1, 'dupKey'],
    [1, 'proto'],
  ]);
  const b = (s) => Buffer.from(s, 'utf8');
  switch (kind) {
    case 'valid':
      return { kind, bytes: b(valid()) };
    case 'blank':
      return { kind, bytes: b(rng.pick(['', '   ', '\t', '\r'])) };
    case 'null':
      return { kind, bytes: b('null') };
    case 'scalar':
      return { kind, bytes: b(rng.pick(['1', '"x"', 'true', '0', '-1e400'])) };
    case 'array':
      return { kind, bytes: b(rng.pick(['[]', '[1,2]', '[{"history":[1]}]'])) };
    case 'missing':
      return { kind, bytes: b(rng.pick(['{}', JSON.stringify({ [key]: 1 }), JSON.stringify({ history: [1] })])) };
    case 'historyType':
      return { kind, bytes: b(`{"${key}":1,"history":${rng.pick(['"1,2"', '{"0":1}', '1', 'null', 'true', '{"length":3}'])}}`) };
    case 'historyItem':
      return { kind, bytes: b(`{"${key}":1,"history":[1,${rng.pick(['1.5', '-1', '1e400', '99999999999999999999', 'null', '[1]', '"1"', 'true', '{}', String(pair.vocab), '-0', '2147483648', '1e-400'])}]}`) };
    case 'keyType':
      return { kind, bytes: b(`{"${key}":${rng.pick(['null', '{}', '[1]', 'true', '1e400', '-1e400'])},"history":[1]}`) };
    case 'deep': {
      const n = rng.pick([100, 10_000, 100_000, 1_000_000]);
      return { kind: `deep history ${n}`, bytes: b(`{"${key}":1,"history":${deep(n)}}`) };
    }
    case 'deepKey': {
      const n = rng.pick([10_000, 1_000_000]);
      return { kind: `deep ${key} ${n}`, bytes: b(`{"${key}":${deep(n)},"history":[1]}`) };
    }
    case 'hugeNumber':
      return { kind, bytes: b(`{"${key}":${rng.pick(['1e309', '123456789012345678901234567890', '-0', '1e-400'])},"history":[1]}`) };
    case 'notJson':
      return { kind, bytes: b(rng.pick(['{', '{"user":1,"history":[1,]}', "{'user':1}", 'NaN', '{"user":1,"history":[1]} x', '\u0000', '{"a":"\\ud800"}'])) };
    case 'utf8':
      return { kind, bytes: Buffer.concat([b('{"history":[1]'), Buffer.from([0xff, 0xfe, 0x80]), b('}')]) };
    case 'utf8String': {
      const inner = Buffer.from([0xc3, 0x28, 0xed, 0xa0, 0x80, 0xff]);
      return { kind, bytes: mode === 'score' ? Buffer.concat([b('{"user":"'), inner, b('","history":[1,2]}')]) : Buffer.concat([b('{"history":[1],"next":1,"x":"'), inner, b('"}')]) };
    }
    case 'bom':
      return { kind, bytes: Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), b(valid())]) };
    case 'crlf':
      return { kind, bytes: b(`${valid()}\r`) };
    case 'longHistory': {
      const h = Array.from({ length: rng.int(500, 5000) }, () => rng.int(0, pair.vocab - 1));
      return { kind, bytes: b(mode === 'score' ? JSON.stringify({ user: 1, history: h }) : JSON.stringify({ history: h, next: 1 })) };
    }
    case 'tooLongHistory': {
      const h = new Array(MAX_HISTORY + 1).fill(1);
      return { kind, bytes: b(mode === 'score' ? JSON.stringify({ user: 1, history: h }) : JSON.stringify({ history: h, next: 1 })) };
    }
    case 'dupKey':
      return { kind, bytes: b(mode === 'score' ? '{"user":1,"history":[1],"history":"x"}' : '{"history":[1],"next":1,"next":null}') };
    case 'proto':
      return { kind, bytes: b(mode === 'score' ? '{"user":1,"history":[1,2],"__proto__":{"history":5}}' : '{"history":[3],"next":2,"__proto__":{"next":"x"},"constructor":1}') };
  }
  return { kind, bytes: b(valid()) };
}

/** The input's lines as the CLI reads them: split at \n, a final \r dropped, UTF-8 decoded. */
function splitLines(buf) {
  const out = [];
  let start = 0;
  for (;;) {
    const nl = buf.indexOf(10, start);
    if (nl < 0) break;
    out.push(buf.toString('utf8', start, nl).replace(/\r$/, ''));
    start = nl + 1;
  }
  if (start < buf.length) out.push(buf.toString('utf8', start).replace(/\r$/, ''));
  return out;
}

const inCatalogue = (pair, id) => (typeof id === 'number' ? Number.isInteger(id) && id >= 0 && id < pair.cat.size : false);
const isModelIndex = (pair, id) => typeof id === 'number' && Number.isInteger(id) && id >= 0 && id < pair.vocab;

/** What a line means to `score`: a user or why not (null: blank). */
function scoreLine(pair, text) {
  if (text.trim() === '') return null;
  let v;
  try {
    v = JSON.parse(text);
  } catch {
    return { bad: 'not JSON' };
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return { bad: 'not an object' };
  if (!(typeof v.user === 'string' || (typeof v.user === 'number' && Number.isFinite(v.user)))) return { bad: 'user' };
  if (!Array.isArray(v.history)) return { bad: 'history not an array' };
  if (v.history.length > MAX_HISTORY) return { bad: 'history too long' };
  for (const id of v.history) if (!inCatalogue(pair, id) || !isModelIndex(pair, id)) return { bad: `history item ${typeof id === 'object' ? typeof id : String(id)}` };
  return { user: v.user, history: v.history };
}

function evalLine(pair, text) {
  if (text.trim() === '') return null;
  let v;
  try {
    v = JSON.parse(text);
  } catch {
    return { bad: 'not JSON' };
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return { bad: 'not an object' };
  if (!Array.isArray(v.history) || !(typeof v.next === 'string' || typeof v.next === 'number')) return { bad: 'shape' };
  if (v.history.length > MAX_HISTORY) return { bad: 'history too long' };
  for (const id of v.history) if (!inCatalogue(pair, id) || !isModelIndex(pair, id)) return { bad: 'history item' };
  if (!inCatalogue(pair, v.next)) return { bad: 'next' };
  return { history: v.history, next: v.next };
}

// ------------------------------------------------------------------ expected results

/** What `score` must write for the users of `valid` (in order): the library's own answer. */
function expectedScores(pair, users, k, excludeHistory) {
  if (users.length === 0) return [];
  const vectors = pair.encoder.encodeSync(users.map((u) => u.history));
  const exclude = excludeHistory ? users.map((u) => u.history) : undefined;
  const res = pair.cat.topK(vectors, { k: Math.min(k, pair.cat.size), exclude, threads: 1 });
  return users.map((u, i) => {
    const items = [];
    const scores = [];
    for (let p = 0; p < res.k; p++) {
      const row = res.rows[i * res.k + p];
      if (row < 0) break;
      items.push(pair.cat.id(row));
      scores.push(res.scores[i * res.k + p]);
    }
    return { user: JSON.parse(JSON.stringify(u.user)), items, scores };
  });
}

function compareScoreOutput(out, expected, where) {
  const lines = out.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  if (lines.length !== expected.length) wrong(`${where}: ${lines.length} output lines, expected ${expected.length}`);
  lines.forEach((l, i) => {
    let v;
    try {
      v = JSON.parse(l);
    } catch {
      wrong(`${where}: output line ${i + 1} is not JSON`);
    }
    const e = expected[i];
    if (!Object.is(v.user, e.user) && v.user !== e.user) wrong(`${where}: output line ${i + 1} is user ${JSON.stringify(v.user)}, expected ${JSON.stringify(e.user)}`);
    if (!Array.isArray(v.items) || v.items.length !== e.items.length) wrong(`${where}: output line ${i + 1} has ${v.items?.length} items, expected ${e.items.length}`);
    for (let p = 0; p < e.items.length; p++) {
      if (v.items[p] !== e.items[p] && Math.abs(v.scores[p] - e.scores[p]) > 1e-6 * Math.max(1, Math.abs(e.scores[p]))) {
        wrong(`${where}: output line ${i + 1} item ${p}: ${v.items[p]} (${v.scores[p]}), expected ${e.items[p]} (${e.scores[p]})`);
      }
    }
  });
}

/** Simulates `score` over the input: which users get written, which lines are errors, where it stops. */
function simulateScore(pair, input, { shard, maxErrors }) {
  const lines = splitLines(input);
  const users = [];
  const errors = [];
  const overLimit = [];
  let stop = null;
  for (let n = 1; n <= lines.length; n++) {
    if ((n - 1) % shard.count !== shard.index - 1) continue;
    const r = scoreLine(pair, lines[n - 1]);
    if (r === null) continue;
    if (r.bad) {
      if (r.bad === 'history too long') overLimit.push(n);
      if (errors.length >= maxErrors) {
        stop = n;
        break;
      }
      errors.push(n);
    } else users.push(r);
  }
  return { users, errors, stop, overLimit, lineCount: lines.length };
}

function checkScoreRun(ctx, r, pair, input, o, out, where = 'score') {
  const c = classifyRun(r);
  if (c.outcome !== 'ok' && c.outcome !== 'typed') return c;
  const sim = simulateScore(pair, input, o);
  const lineNo = c.message ? /line (\d+)/.exec(c.message)?.[1] : undefined;
  if (c.outcome === 'typed') {
    if (lineNo !== undefined && o.flagsValid && sim.stop !== null && Number(lineNo) !== sim.stop && !sim.overLimit.includes(sim.stop)) {
      const text = splitLines(input)[Number(lineNo) - 1] ?? '';
      wrong(`${where} stopped at line ${lineNo} (${text.slice(0, 60)}), but the first bad line beyond --max-errors is ${sim.stop}`);
    }
    if (lineNo !== undefined && o.flagsValid && sim.stop === null) {
      const text = splitLines(input)[Number(lineNo) - 1] ?? '';
      wrong(`${where} refused line ${lineNo} (${text.slice(0, 80)}), a valid line (or within --max-errors)`);
    }
    return c;
  }
  if (!o.flagsValid) wrong(`${where} exited 0 with invalid flags: ${o.flagsWhy}`);
  if (sim.stop !== null) wrong(`${where} exited 0, but line ${sim.stop} is bad beyond --max-errors ${o.maxErrors}: ${splitLines(input)[sim.stop - 1].slice(0, 80)}`);
  if (!existsSync(out)) wrong(`${where} exited 0 without writing ${out}`);
  const written = readFileSync(out, 'utf8').split('\n').filter(Boolean).length;
  if (sim.overLimit.length && written > sim.users.length) wrong(`${where} scored line ${sim.overLimit[0]}, a history of more than 2^20 events (LIMITS.maxHistory)`);
  compareScoreOutput(readFileSync(out, 'utf8'), expectedScores(pair, sim.users, o.k, o.excludeHistory), where);
  const errPath = `${out}.errors.jsonl`;
  const errLines = existsSync(errPath) ? readFileSync(errPath, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l).line) : [];
  if (errLines.join(',') !== sim.errors.join(',')) wrong(`${where}: errors file names lines [${errLines}], expected [${sim.errors}]`);
  return { outcome: 'correct', detail: `${sim.users.length} users scored, ${sim.errors.length} bad lines` };
}

// ------------------------------------------------------------------ cases

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

async function caseScore(ctx, rng, hostileFlags) {
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

async function caseEval(ctx, rng) {
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

async function casePaths(ctx, rng) {
  const s = ctx.shared;
  const pair = s.small;
  const valid = join(ctx.caseDir, 'users.jsonl');
  const content = Buffer.from(`${JSON.stringify({ user: 1, history: [1, 2] })}\n${JSON.stringify({ user: 2, history: [] })}\n`);
  writeFileSync(valid, content);
  const out = join(ctx.caseDir, 'recs.jsonl');
  const pick = (role) => {
    // A FIFO with no writer is refused for the model and the catalogue; --input is a stream,
    // where waiting for a writer is right (the FIFO-with-a-writer case checks that it works).
    const v = rng.pick(['dir', ...(role === 'input' ? [] : ['fifo']), 'missing', 'devnull', 'devzero', 'garbage', 'empty', 'swapped', 'relative', 'proc']);
    return {
      v,
      path: {
        dir: s.files.dir,
        fifo: s.files.fifo,
        missing: join(ctx.caseDir, 'nope', 'missing'),
        devnull: '/dev/null',
        devzero: '/dev/zero',
        garbage: s.files.garbage,
        empty: s.files.empty,
        swapped: role === 'model' ? pair.catalogue : role === 'catalogue' ? pair.model : pair.model,
        relative: 'no-such-file',
        proc: '/proc/self/status',
      }[v],
    };
  };
  const cmd = rng.bool(0.75) ? 'score' : 'eval';
  const role = rng.pick(cmd === 'score' ? ['model', 'catalogue', 'input', 'out', 'inputFifoWriter', 'outExists', 'outDir'] : ['model', 'catalogue', 'input', 'inputFifoWriter']);
  let inputKind = 'valid';
  let model = pair.model;
  let catalogue = pair.catalogue;
  let input = valid;
  let outPath = out;
  let what;
  let stop = null;
  if (role === 'model' || role === 'catalogue' || role === 'input') {
    const p = pick(role);
    what = `--${role} ${p.v}`;
    if (role === 'model') model = p.path;
    else if (role === 'catalogue') catalogue = p.path;
    else {
      input = p.path;
      inputKind = p.v;
    }
  } else if (role === 'out') {
    const v = rng.pick(['missingDir', 'dir', 'fifo', 'devnull', 'input']);
    what = `--out ${v}`;
    outPath = { missingDir: join(ctx.caseDir, 'no', 'such', 'out.jsonl'), dir: join(ctx.caseDir), fifo: join(ctx.caseDir, 'out.fifo'), devnull: '/dev/null', input: valid }[v];
    if (v === 'fifo') execFileSync('mkfifo', [outPath]);
    if (v === 'devnull') outPath = join(ctx.caseDir, 'null-link');
    if (v === 'devnull') execFileSync('ln', ['-s', '/dev/null', outPath]);
  } else if (role === 'inputFifoWriter') {
    input = join(ctx.caseDir, 'in.fifo');
    execFileSync('mkfifo', [input]);
    stop = fifoWriter(ctx, input, cmd === 'score' ? content : Buffer.from('{"history":[1,2],"next":3}\n'));
    what = '--input FIFO with a writer';
  } else if (role === 'outExists') {
    writeFileSync(out, 'old\n');
    what = '--out exists';
  } else {
    what = '--out is a directory';
    outPath = ctx.caseDir;
  }
  if (cmd === 'eval' && input === valid) writeFileSync(valid, '{"history":[1,2],"next":3}\n');
  const argv = cmd === 'score' ? ['score', '--model', model, '--catalogue', catalogue, '--input', input, '--out', outPath, '--threads', '1'] : ['eval', '--model', model, '--catalogue', catalogue, '--input', input, '--threads', '1', '--json'];
  ctx.kind = `recscore ${cmd} ${what}`;
  try {
    const r = await runCli(ctx, argv);
    const c = classifyRun(r);
    if (c.outcome !== 'ok') return c;
    // Exit 0 is right for a FIFO with a writer, and for empty streams (an empty file, /dev/null).
    const empty = role === 'input' && (inputKind === 'empty' || inputKind === 'devnull');
    if (!(role === 'inputFifoWriter' || empty)) wrong(`${cmd} exited 0 with ${what}`);
    const users = empty ? [] : [{ user: 1, history: [1, 2] }, { user: 2, history: [] }];
    if (cmd === 'score') compareScoreOutput(readFileSync(outPath, 'utf8'), expectedScores(pair, users, 100, true), 'score');
    return { outcome: 'correct', detail: `exit 0 with ${what}` };
  } finally {
    stop?.();
  }
}

async function caseResume(ctx, rng) {
  const s = ctx.shared;
  const pair = s.small;
  const n = rng.int(4, 14);
  const badAt = rng.int(2, n);
  const lines = Array.from({ length: n }, (_, i) => JSON.stringify({ user: i + 1, history: validHistory(rng, pair, 5) }));
  const good = lines[badAt - 1];
  lines[badAt - 1] = 'null';
  const inPath = join(ctx.caseDir, 'users.jsonl');
  const out = join(ctx.caseDir, 'recs.jsonl');
  writeFileSync(inPath, `${lines.join('\n')}\n`);
  const base = ['score', '--model', pair.model, '--catalogue', pair.catalogue, '--input', inPath, '--out', out, '--batch', String(rng.int(1, 3)), '--threads', '1', '--k', '5'];
  ctx.kind = `recscore score --resume: ${n} lines, line ${badAt} bad first`;
  const r1 = await runCli(ctx, base);
  const c1 = classifyRun(r1);
  if (c1.outcome !== 'typed') {
    if (c1.outcome === 'ok') wrong(`the first run exited 0 despite line ${badAt} = null and --max-errors 0`);
    return { ...c1, detail: `first run: ${c1.detail}` };
  }
  const ck = `${out}.progress`;
  const corruption = corruptCheckpoint(rng, ck, ctx);
  lines[badAt - 1] = good;
  writeFileSync(inPath, `${lines.join('\n')}\n`);
  ctx.kind = `recscore score --resume: ${n} lines, line ${badAt} fixed; checkpoint ${corruption}`;
  const r2 = await runCli(ctx, [...base, '--resume']);
  const c2 = classifyRun(r2);
  if (c2.outcome !== 'ok') return { ...c2, detail: `resume: ${c2.detail}` };
  const users = lines.map((l) => JSON.parse(l));
  compareScoreOutput(readFileSync(out, 'utf8'), expectedScores(pair, users, 5, true), `resume with checkpoint ${corruption}`);
  return { outcome: 'correct', detail: `resumed to ${n} users` };
}

function corruptCheckpoint(rng, path, ctx) {
  if (!existsSync(path)) return '(none written)';
  const text = readFileSync(path, 'utf8');
  const how = rng.weighted([
    [2, 'none'],
    [2, 'truncate'],
    [1, 'garbage'],
    [1, 'empty'],
    [2, 'notObject'],
    [6, 'field'],
    [1, 'deep'],
    [1, 'utf8'],
    [1, 'directory'],
    [1, 'fifo'],
  ]);
  if (how === 'none') return 'intact';
  if (how === 'truncate') {
    const len = rng.int(0, text.length - 1);
    writeFileSync(path, text.slice(0, len));
    return `truncated to ${len} chars`;
  }
  if (how === 'garbage') {
    writeFileSync(path, rng.bytes(rng.int(1, 300)));
    return 'random bytes';
  }
  if (how === 'empty') {
    writeFileSync(path, '');
    return 'empty';
  }
  if (how === 'notObject') {
    const v = rng.pick(['null', '[]', '1', '"x"', 'true', '[{"nextLine":1}]']);
    writeFileSync(path, v);
    return v;
  }
  if (how === 'deep') {
    writeFileSync(path, `${'['.repeat(1_000_000)}${']'.repeat(1_000_000)}`);
    return 'nested 1M deep';
  }
  if (how === 'utf8') {
    writeFileSync(path, Buffer.concat([Buffer.from(text.slice(0, 10)), Buffer.from([0xff, 0xfe]), Buffer.from(text.slice(10))]));
    return 'invalid UTF-8';
  }
  if (how === 'directory') {
    rmSync(path);
    mkdirSync(path);
    return 'a directory';
  }
  if (how === 'fifo') {
    rmSync(path);
    execFileSync('mkfifo', [path]);
    return 'a FIFO';
  }
  const ck = JSON.parse(text);
  const field = rng.pick(['nextLine', 'inputBytes', 'outBytes', 'errorBytes', 'scored', 'errors', 'complete', 'k', 'shard', 'identity', 'excludeHistory', 'inputTail', 'input', 'drop']);
  if (field === 'drop') {
    const k = rng.pick(Object.keys(ck));
    delete ck[k];
    writeFileSync(path, JSON.stringify(ck));
    return `without ${k}`;
  }
  // Values a reader can tell are wrong (a plausible value, like complete: true or outBytes: 0,
  // is a different checkpoint, not a corrupt one).
  const v = rng.pick(field === 'complete' || field === 'excludeHistory' ? ['x', 1, null, [], {}] : [-1, 1.5, 1e20, 'x', null, true, [], {}, 2 ** 53, NaN]);
  ck[field] = v;
  writeFileSync(path, JSON.stringify(ck));
  return `${field} = ${JSON.stringify(v)}`;
}

async function caseArgs(ctx, rng) {
  const s = ctx.shared;
  const pair = s.small;
  const inPath = join(ctx.caseDir, 'users.jsonl');
  writeFileSync(inPath, '{"user":1,"history":[1]}\n');
  const out = join(ctx.caseDir, 'recs.jsonl');
  const base = ['score', '--model', pair.model, '--catalogue', pair.catalogue, '--input', inPath, '--out', out];
  const items = join(ctx.root, 'test', 'fixtures', 'items.npy');
  const x = join(ctx.caseDir, 'x.rsc');
  // [argv, exit 0 expected: true, false, or null for either]
  const [v, ok] = rng.pick([
    [[], null],
    [['--help'], true],
    [['--version'], true],
    [['nonsense'], false],
    [['score'], false],
    [['score', '--model'], false],
    [[...base, '--unknown'], false],
    [[...base, 'extra', 'positional'], false],
    [base.filter((_x, i) => i !== 2 && i !== 1), false],
    [[...base, '--k'], false],
    [[...base, '--k=3'], true],
    [[...base, '--k', '3', '--k', '4'], true],
    [['eval', '--model', pair.model], false],
    [['catalogue', 'inspect', s.files.dir], false],
    [['catalogue', 'inspect', s.files.fifo], false],
    [['catalogue', 'inspect', s.files.garbage], false],
    [['catalogue', 'inspect', '/dev/zero'], false],
    [['catalogue', 'inspect', pair.catalogue, '--json'], true],
    [['catalogue', 'build', '--vectors', s.files.garbage, '--out', x], false],
    [['catalogue', 'build', '--vectors', items, '--out', x, '--precision', 'int4'], false],
    [['catalogue', 'build', '--vectors', s.files.fifo, '--out', x], false],
    [['catalogue', 'build', '--vectors', s.files.dir, '--out', x], false],
    [['catalogue', 'build', '--vectors', items, '--ids', s.files.garbage, '--out', x], false],
    [['catalogue', 'build', '--vectors', items, '--ids', s.files.fifo, '--out', x], false],
    [['catalogue', 'build', '--vectors', items, '--attributes', s.files.garbage, '--out', x], false],
    [['catalogue', 'build', '--vectors', items, '--bias', s.files.dir, '--out', x], false],
    [['catalogue', 'build', '--vectors', items, '--out', ctx.caseDir], false],
    [['catalogue', 'build', '--vectors', items, '--out', join(ctx.caseDir, 'no', 'dir', 'x.rsc')], false],
    [['--', 'score'], false],
  ]);
  ctx.kind = `recscore ${v.map((a) => a.replace(ctx.root, '.').replace(ctx.caseDir, 'CASE').replace(ctx.tmp, 'TMP')).join(' ')}`;
  const r = await runCli(ctx, v);
  const c = classifyRun(r);
  if (c.outcome === 'typed' && ok === true) wrong(`exit 2 for a valid command: ${c.detail}`);
  if (c.outcome !== 'ok') return c;
  if (ok === false) wrong(`exit 0 for ${ctx.kind}`);
  return { outcome: 'correct', detail: 'exit 0' };
}

/** A 1-D float32 .npy file. */
function npy1d(values) {
  const header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${values.length},), }`;
  const pad = 64 - ((10 + header.length + 1) % 64);
  const h = Buffer.from(`${header}${' '.repeat(pad === 64 ? 0 : pad)}\n`, 'latin1');
  const pre = Buffer.alloc(10);
  Buffer.from('\x93NUMPY', 'latin1').copy(pre, 0);
  pre[6] = 1;
  pre[7] = 0;
  pre.writeUInt16LE(h.length, 8);
  return Buffer.concat([pre, h, Buffer.from(Float32Array.from(values).buffer)]);
}

/** `catalogue build` with ids, attributes and bias files that are valid or subtly not. */
async function caseBuild(ctx, rng) {
  const items = join(ctx.root, 'test', 'fixtures', 'items.npy'); // 37 × 5
  const n = 37;
  const argv = ['catalogue', 'build', '--vectors', items, '--out', join(ctx.caseDir, 'out.rsc')];
  const what = [];
  let bad = false;
  let ids = null;
  if (rng.bool(0.6)) {
    const numeric = rng.bool(0.5);
    ids = Array.from({ length: n }, (_, i) => (numeric ? String(i * 3 + 1) : `sku-${i}`));
    const e = rng.pick(['none', 'none', 'duplicate', 'short', 'long', 'blank', 'crlf', 'unicode', 'huge', 'float', 'leadingZero', 'space']);
    const i = rng.int(0, n - 2);
    if (e === 'duplicate') (ids[i + 1] = ids[i]), (bad = true);
    else if (e === 'short') ids.pop(), (bad = true);
    else if (e === 'long') ids.push('extra'), (bad = true);
    else if (e === 'blank') ids[i] = '';
    else if (e === 'unicode') ids[i] = 'ü😀\u0000';
    else if (e === 'huge') ids[i] = '99999999999999999999';
    else if (e === 'float') ids[i] = '1.5';
    else if (e === 'leadingZero') ids[i] = '007';
    else if (e === 'space') ids[i] = ` ${ids[i]}`;
    const file = join(ctx.caseDir, 'ids.txt');
    writeFileSync(file, `${ids.join(e === 'crlf' ? '\r\n' : '\n')}\n`);
    argv.push('--ids', file);
    what.push(`ids ${numeric ? 'numeric' : 'strings'} ${e}`);
  }
  if (rng.bool(0.5)) {
    const attrs = Array.from({ length: n }, () => String(rng.int(0, 255)));
    const e = rng.pick(['none', 'none', 'float', 'negative', 'big', 'word', 'nan', 'short', 'long']);
    const i = rng.int(0, n - 1);
    if (e === 'float') attrs[i] = '1.5';
    else if (e === 'negative') attrs[i] = '-1';
    else if (e === 'big') attrs[i] = '4294967296';
    else if (e === 'word') attrs[i] = 'abc';
    else if (e === 'nan') attrs[i] = 'NaN';
    else if (e === 'short') attrs.pop();
    else if (e === 'long') attrs.push('1');
    if (e !== 'none') bad = true;
    const file = join(ctx.caseDir, 'attrs.txt');
    writeFileSync(file, `${attrs.join('\n')}\n`);
    argv.push('--attributes', file);
    what.push(`attributes ${e}`);
  }
  if (rng.bool(0.4)) {
    const bias = Array.from({ length: n }, () => rng.normal());
    const e = rng.pick(['none', 'none', 'nan', 'inf', 'huge', 'short']);
    if (e === 'nan') bias[rng.int(0, n - 1)] = NaN;
    else if (e === 'inf') bias[rng.int(0, n - 1)] = -Infinity;
    else if (e === 'huge') bias[rng.int(0, n - 1)] = 3e38;
    else if (e === 'short') bias.pop();
    if (e !== 'none') bad = true;
    const file = join(ctx.caseDir, 'bias.npy');
    writeFileSync(file, npy1d(bias));
    argv.push('--bias', file);
    what.push(`bias ${e}`);
  }
  if (rng.bool(0.3)) argv.push('--precision', rng.pick(['int8', 'bf16', 'f32']));
  ctx.kind = `recscore catalogue build (37 × 5) ${what.join(', ') || 'plain'}${argv.includes('--precision') ? ` ${argv[argv.length - 1]}` : ''}`;
  const r = await runCli(ctx, argv);
  const c = classifyRun(r);
  if (c.outcome === 'typed' && !bad) wrong(`refused a valid catalogue build: ${c.detail}`);
  if (c.outcome !== 'ok') return c;
  if (bad) wrong(`built a catalogue from invalid input (${what.join(', ')})`);
  const cat = await ctx.lib.Catalogue.open(join(ctx.caseDir, 'out.rsc'));
  try {
    if (cat.size !== n) wrong(`built ${cat.size} items, expected ${n}`);
    if (ids) {
      const got = Array.from({ length: n }, (_, r0) => cat.id(r0));
      if (new Set(got).size !== n) wrong('built a catalogue with duplicate ids');
      for (const id of got) if (!(typeof id === 'string' || Number.isSafeInteger(id))) wrong(`built an id ${String(id)}`);
      // Each line is its id: as a number when every line is a canonical integer, else as a string.
      got.forEach((id, r0) => {
        if (String(id) !== ids[r0] && id !== ids[r0].replace(/\r$/, '')) wrong(`row ${r0} has id ${JSON.stringify(id)}, the file says ${JSON.stringify(ids[r0])}`);
      });
    }
  } finally {
    await cat.close();
  }
  return { outcome: 'correct', detail: 'built and reopened' };
}

export async function run(ctx, rng) {
  const kind = rng.weighted([
    [2, 'build'],
    [8, 'score'],
    [3, 'scoreFlags'],
    [4, 'eval'],
    [4, 'paths'],
    [3, 'resume'],
    [2, 'args'],
  ]);
  try {
    if (kind === 'build') return await caseBuild(ctx, rng);
    if (kind === 'score') return await caseScore(ctx, rng, false);
    if (kind === 'scoreFlags') return await caseScore(ctx, rng, true);
    if (kind === 'eval') return await caseEval(ctx, rng);
    if (kind === 'paths') return await casePaths(ctx, rng);
    if (kind === 'resume') return await caseResume(ctx, rng);
    return await caseArgs(ctx, rng);
  } catch (e) {
    if (e instanceof Wrong) return { outcome: 'wrong', detail: e.message };
    return { outcome: 'untyped', detail: `harness: ${errText(e)}` };
  }
}
