/**
 * Family d (gen_cli.mjs): JSONL input for `score` and `eval`, and what the CLI must make of it.
 * randomLine makes a valid or hostile line; scoreLine and evalLine say what a line means (a user,
 * a session, or why it is bad); simulateScore replays `score` over an input (--shard,
 * --max-errors); checkScoreRun checks a run's exit, output file and errors file against that
 * simulation and the library's own encoder + topK in this process.
 */
import { existsSync, readFileSync } from 'node:fs';

import { wrong } from './common.mjs';
import { classifyRun } from './gen_cli_exec.mjs';

const MAX_HISTORY = 1 << 20;

export function validHistory(rng, pair, maxLen = 8) {
  return Array.from({ length: rng.int(0, maxLen) }, () => rng.int(0, pair.vocab - 1));
}

/** A hostile or valid JSONL line as bytes (Buffer); `kind` says what it is. */
export function randomLine(rng, pair, mode) {
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
export function splitLines(buf) {
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

export function evalLine(pair, text) {
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
export function expectedScores(pair, users, k, excludeHistory) {
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

export function compareScoreOutput(out, expected, where) {
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

export function checkScoreRun(ctx, r, pair, input, o, out, where = 'score') {
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
