/**
 * Family d (gen_cli.mjs): JSONL input for `score` and `eval`, and what the CLI must make of it.
 * randomLine makes a valid or hostile line; scoreLine and evalLine say what a line means (a user,
 * a session, or why it is bad); simulateScore replays `score` over an input (--shard: 0-based,
 * contiguous parts; --max-errors; --unknown), modelled on docs/pipelines.md, not on the CLI's
 * code; checkScoreRun checks a run's exit status, output file and errors file against that
 * simulation and the library's own encoder + topK in this process.
 */
import { existsSync, readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';

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

/**
 * What a line means to `score` (docs/pipelines.md, #14): a user, or why it is a bad line, or null
 * (blank). Bad: not JSON, not an object, a user that is not a string or a finite number, a history
 * that is not an array or is over 2^20 ids, an id that is not a string or a safe integer, an id
 * the catalogue or the model does not know (dropped instead with `--unknown skip`), or a history
 * that is (or is left) empty.
 */
export function scoreLine(pair, text, unknown = 'error') {
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
  const history = [];
  for (const id of v.history) {
    if (!(typeof id === 'string' || Number.isSafeInteger(id))) return { bad: `history item of type ${id === null ? 'null' : typeof id}` };
    if (inCatalogue(pair, id) && isModelIndex(pair, id)) history.push(id);
    else if (unknown !== 'skip') return { bad: `unknown history item ${String(id)}` };
  }
  if (history.length === 0) return { bad: 'empty history' };
  return { user: v.user, history };
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

/** The input's lines with the byte offset where each starts (offsets in the decompressed input). */
export function lineSpans(buf) {
  const out = [];
  let start = 0;
  for (;;) {
    const nl = buf.indexOf(10, start);
    if (nl < 0) break;
    out.push({ start, text: buf.toString('utf8', start, nl).replace(/\r$/, '') });
    start = nl + 1;
  }
  if (start < buf.length) out.push({ start, text: buf.toString('utf8', start).replace(/\r$/, '') });
  return out;
}

/**
 * The line numbers (1-based, inclusive range) of shard I of N (docs/pipelines.md, #14: I counts
 * from 0; each shard one contiguous part, the parts concatenated in index order the whole input).
 * A plain file is split by bytes: shard I holds the lines that start in
 * [floor(I*S/N), floor((I+1)*S/N)) of its S bytes. A gzip file is split by lines: shard I holds
 * lines floor(I*L/N)+1 .. floor((I+1)*L/N) of its L lines.
 */
export function shardRange(spans, size, shard, gzip) {
  const { index: i, count: n } = shard;
  if (n === 1) return { first: 1, last: spans.length };
  if (gzip) {
    const l = spans.length;
    return { first: Math.floor((i * l) / n) + 1, last: Math.floor(((i + 1) * l) / n) };
  }
  const from = Math.floor((i * size) / n);
  const to = Math.floor(((i + 1) * size) / n);
  let first = spans.length + 1;
  let last = 0;
  spans.forEach((sp, k) => {
    if (sp.start >= from && sp.start < to) {
      first = Math.min(first, k + 1);
      last = k + 1;
    }
  });
  return { first, last };
}

/**
 * Simulates `score` over the (decompressed) input: which users get written, which lines are
 * recorded as bad, and the bad line it stops at (the first beyond --max-errors: exit 1).
 */
export function simulateScore(pair, input, { shard, maxErrors, unknown = 'error', gzip = false }) {
  const spans = lineSpans(input);
  const { first, last } = shardRange(spans, input.length, shard, gzip);
  const users = [];
  const usersLines = [];
  const errors = [];
  let stop = null;
  for (let n = first; n <= last; n++) {
    const r = scoreLine(pair, spans[n - 1].text, unknown);
    if (r === null) continue;
    if (r.bad) {
      if (errors.length >= maxErrors) {
        stop = n;
        break;
      }
      errors.push(n);
    } else {
      users.push(r);
      usersLines.push(n);
    }
  }
  return { users, usersLines, errors, stop, first, last, lineCount: spans.length };
}

/** A `score` output file as text (a `.gz` output is gzip members, read as one stream). */
export function readOutput(path) {
  const b = readFileSync(path);
  return path.endsWith('.gz') && b.length > 0 ? gunzipSync(b).toString('utf8') : b.toString('utf8');
}

/** The line numbers an errors file names (each record must give a line number and a reason). */
export function errorLines(path, where) {
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l, i) => {
      let v;
      try {
        v = JSON.parse(l);
      } catch {
        wrong(`${where}: line ${i + 1} of the errors file is not JSON: ${l.slice(0, 80)}`);
      }
      if (!Number.isSafeInteger(v?.line) || typeof v.error !== 'string' || v.error === '') wrong(`${where}: errors file record ${i + 1} lacks a line number or a reason: ${l.slice(0, 80)}`);
      return v.line;
    });
}

/**
 * Checks a `score` run (docs/pipelines.md, exit statuses): usage mistakes (`o.flagsValid` false,
 * `o.usage` set) exit 2; valid flags on a usable input exit 0 with every user of the shard scored
 * and the bad lines (at most --max-errors) recorded, or exit 1 at the first bad line beyond
 * --max-errors, with the users before it written and the bad lines before it recorded. The
 * errors file exists only when --max-errors allows bad lines. `o.ambiguous`: exit 2 is also right.
 */
export function checkScoreRun(ctx, r, pair, input, o, out, where = 'score') {
  const c = classifyRun(r);
  if (c.outcome !== 'ok' && c.outcome !== 'typed') return c;
  if (!o.flagsValid) {
    if (r.code === 0) wrong(`${where} exited 0 with ${o.flagsWhy}, a usage mistake`);
    if (r.code !== 2) wrong(`${where} exited ${r.code} with ${o.flagsWhy}, a usage mistake (usage mistakes exit 2): ${c.message}`);
    return c;
  }
  if (r.code === 2 && o.ambiguous) return c;
  const sim = simulateScore(pair, input, o);
  const lines = splitLines(input);
  const lineNo = c.message ? /line (\d+)/.exec(c.message)?.[1] : undefined;
  if (r.code === 2) wrong(`${where} exited 2 (${c.message}) with valid flags on a usable input: bad lines exit 1 (#14), 2 is for usage mistakes and unusable inputs`);
  if (r.code === 1) {
    if (sim.stop === null) {
      const text = lineNo === undefined ? '' : ` (${(lines[Number(lineNo) - 1] ?? '').slice(0, 80)})`;
      wrong(`${where} exited 1 (${c.message})${text}, but no bad line goes beyond --max-errors ${o.maxErrors} in lines ${sim.first}..${sim.last}`);
    }
    if (lineNo === undefined || Number(lineNo) !== sim.stop) {
      wrong(`${where} stopped at ${lineNo === undefined ? 'no line' : `line ${lineNo} (${(lines[Number(lineNo) - 1] ?? '').slice(0, 60)})`}, but the first bad line beyond --max-errors ${o.maxErrors} is ${sim.stop}: ${lines[sim.stop - 1].slice(0, 60)}`);
    }
  } else if (sim.stop !== null) {
    wrong(`${where} exited 0, but line ${sim.stop} is bad beyond --max-errors ${o.maxErrors}: ${lines[sim.stop - 1].slice(0, 80)}`);
  }
  const tag = r.code === 1 ? `${where} (stopped at line ${sim.stop})` : where;
  if (!existsSync(out)) wrong(`${tag} exited ${r.code} without writing ${out}`);
  compareScoreOutput(readOutput(out), expectedScores(pair, sim.users, o.k, o.excludeHistory), tag);
  const errPath = `${out}.errors.jsonl`;
  if (o.maxErrors === 0 && existsSync(errPath)) wrong(`${tag} wrote ${errPath} with --max-errors 0 (it is written only when --max-errors allows bad lines)`);
  const errLines = errorLines(errPath, tag);
  if (errLines.join(',') !== sim.errors.join(',')) wrong(`${tag}: errors file names lines [${errLines}], expected [${sim.errors}]`);
  if (r.code === 1) return { ...c, detail: `exit 1 at line ${sim.stop}, ${sim.users.length} users before it, ${sim.errors.length} bad lines recorded` };
  return { outcome: 'correct', detail: `${sim.users.length} users scored (lines ${sim.first}..${sim.last}), ${sim.errors.length} bad lines` };
}
