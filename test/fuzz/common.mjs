/** Shared by the fuzz families: outcome classes, error classification, a float64 top-k oracle. */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** Outcome classes, in table order. `ortRefused` is family b's "accepted what onnxruntime refuses". */
export const OUTCOMES = ['typed', 'correct', 'untyped', 'crash', 'hang', 'wrong', 'ortRefused'];
export const BAD = new Set(['untyped', 'crash', 'hang', 'wrong', 'ortRefused']);
export const LABEL = {
  typed: 'typed rejection',
  correct: 'accepted, correct',
  untyped: 'untyped error',
  crash: 'crash',
  hang: 'hang',
  wrong: 'wrong answer',
  ortRefused: 'accepted, ORT refuses',
};

/** The error codes the library documents (src/errors.ts ErrorCode), read from the source. */
export const TYPED_CODES = (() => {
  const src = readFileSync(fileURLToPath(new URL('../../src/errors.ts', import.meta.url)), 'utf8');
  const block = /export type ErrorCode\s*=([^;]+);/.exec(src)?.[1] ?? '';
  const codes = new Set([...block.matchAll(/'([A-Z_]+)'/g)].map((m) => m[1]));
  if (codes.size === 0) throw new Error('could not read ErrorCode from src/errors.ts');
  return codes;
})();

/** A typed error: one of the library's error codes (Node's own ERR_* codes do not count). */
export function isTyped(e) {
  return e !== null && typeof e === 'object' && typeof e.code === 'string' && TYPED_CODES.has(e.code);
}

function oneLine(s, max = 300) {
  const t = String(s).replace(/\s+/g, ' ').trim();
  return t.length > max ? `${t.slice(0, max)}…` : t;
}

export function errText(e) {
  if (e === null || typeof e !== 'object') return `thrown non-error ${oneLine(String(e))}`;
  const where = typeof e.stack === 'string' ? (/\n\s+at ([^\n]+)/.exec(e.stack)?.[1] ?? '') : '';
  const code = e.code !== undefined ? ` [${e.code}]` : '';
  return `${e.name ?? 'Error'}${code}: ${oneLine(e.message ?? '')}${where ? ` (at ${oneLine(where, 120)})` : ''}`;
}

/** The outcome of a call that threw: typed rejection or untyped error. */
export function rejected(e, stage = '') {
  const pre = stage ? `${stage}: ` : '';
  return isTyped(e) ? { outcome: 'typed', detail: pre + errText(e) } : { outcome: 'untyped', detail: pre + errText(e) };
}

export class Wrong extends Error {}
export const wrong = (msg) => {
  throw new Wrong(msg);
};

/** float32 unit roundoff */
const U = 2 ** -24;

/**
 * Checks a top-k result against float64 brute force over `items` (n×d float32) + `bias`.
 * `eligible(u, j)` says whether row j may be returned to user u. Returns null when the result
 * is an exact top-k within float32 rounding (ties: lower row first when scores are equal), else
 * a description of the first difference.
 */
export function checkTopK({ items, n, d, bias, users, k, res, eligible }) {
  const b = users.length / d;
  const kk = Math.min(k, n);
  if (res.k !== kk) return `res.k = ${res.k}, expected min(k, n) = ${kk}`;
  if (!(res.rows instanceof Int32Array) || res.rows.length !== b * kk) return `rows has length ${res.rows?.length}, expected ${b}×${kk}`;
  if (!(res.scores instanceof Float32Array) || res.scores.length !== b * kk) return `scores has length ${res.scores?.length}, expected ${b}×${kk}`;
  const s = new Float64Array(n);
  const tol = new Float64Array(n);
  for (let u = 0; u < b; u++) {
    let nonFinite = -1;
    for (let j = 0; j < n; j++) {
      let t = bias ? bias[j] : 0;
      let m = Math.abs(t);
      for (let p = 0; p < d; p++) {
        const prod = users[u * d + p] * items[j * d + p];
        t += prod;
        m += Math.abs(prod);
      }
      s[j] = t;
      tol[j] = (d + 4) * U * 2 * m + 1e-38;
      if (!Number.isFinite(t) && nonFinite < 0) nonFinite = j;
    }
    if (nonFinite >= 0) return `user ${u}: the true score of row ${nonFinite} is ${s[nonFinite]} (non-finite data accepted), yet a result was returned`;
    const elig = [];
    for (let j = 0; j < n; j++) if (eligible(u, j)) elig.push(j);
    const real = Math.min(kk, elig.length);
    const seen = new Set();
    for (let i = 0; i < kk; i++) {
      const r = res.rows[u * kk + i];
      const sc = res.scores[u * kk + i];
      if (i >= real) {
        if (r !== -1 || sc !== -Infinity) return `user ${u} pos ${i}: expected an empty slot (-1, -Infinity), got row ${r} score ${sc}`;
        continue;
      }
      if (!Number.isInteger(r) || r < 0 || r >= n) return `user ${u} pos ${i}: row ${r} (only ${elig.length} eligible, k ${kk})`;
      if (!eligible(u, r)) return `user ${u} pos ${i}: row ${r} is not eligible (excluded/filtered)`;
      if (seen.has(r)) return `user ${u}: row ${r} returned twice`;
      seen.add(r);
      if (!(Math.abs(sc - s[r]) <= tol[r])) return `user ${u} pos ${i}: row ${r} score ${sc}, float64 says ${s[r]} (tol ${tol[r].toExponential(2)})`;
      if (i > 0) {
        const pr = res.rows[u * kk + i - 1];
        const ps = res.scores[u * kk + i - 1];
        if (ps < sc) return `user ${u} pos ${i}: scores not descending (${ps} then ${sc})`;
        if (ps === sc && pr > r) return `user ${u} pos ${i}: equal scores ${sc} not ordered by row (${pr} before ${r})`;
      }
    }
    if (real > 0) {
      const lastRow = res.rows[u * kk + real - 1];
      const last = s[lastRow];
      for (const j of elig) {
        if (seen.has(j)) continue;
        if (s[j] > last + tol[j] + tol[lastRow]) {
          return `user ${u}: row ${j} (float64 score ${s[j]}) was left out but beats the last returned row ${lastRow} (${last})`;
        }
      }
    }
  }
  return null;
}

/** Bit-exact comparison of two top-k results (or of one user's slice of a batch). */
export function sameResult(a, b, ua = 0, ub = 0) {
  if (a.k !== b.k) return `k ${a.k} vs ${b.k}`;
  const k = a.k;
  for (let i = 0; i < k; i++) {
    const ra = a.rows[ua * k + i];
    const rb = b.rows[ub * k + i];
    const sa = a.scores[ua * k + i];
    const sb = b.scores[ub * k + i];
    if (ra !== rb || !Object.is(sa, sb)) return `pos ${i}: row ${ra} score ${sa} vs row ${rb} score ${sb}`;
  }
  return null;
}

/** Runs fn, returns its value or the thrown error as { error }. */
export async function attempt(fn) {
  try {
    return { value: await fn() };
  } catch (error) {
    return { error };
  }
}

/** Short text for a generated value, for case descriptions. */
export function show(v, max = 60) {
  let s;
  try {
    if (typeof v === 'bigint') s = `${v}n`;
    else if (typeof v === 'symbol') s = v.toString();
    else if (typeof v === 'function') s = 'function';
    else if (v === undefined) s = 'undefined';
    else if (typeof v === 'number') s = Object.is(v, -0) ? '-0' : String(v);
    else if (ArrayBuffer.isView(v)) s = `${v.constructor.name}(${v.length ?? v.byteLength})`;
    else if (Array.isArray(v)) s = v.length > 8 ? `Array(${v.length})` : `[${v.map((x) => show(x, 20)).join(',')}]`;
    else if (v && typeof v === 'object' && v.__desc) s = v.__desc;
    else if (v && typeof v === 'object' && Object.getPrototypeOf(v) === null) s = `Object.create(null)${Object.keys(v).length ? ` with ${Object.keys(v).join(',')}` : ''}`;
    else if (v && typeof v === 'object' && typeof v.toString !== 'function') s = '{ toString: not a function }';
    else s = JSON.stringify(v) ?? String(v);
  } catch {
    s = Object.prototype.toString.call(v);
  }
  return s.length > max ? `${s.slice(0, max)}…` : s;
}
