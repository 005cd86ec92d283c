/**
 * Family c (gen_api.mjs): the environment's shape (D, N), the hostile values that replace valid
 * arguments, and the checks of a result's shape shared by the targets.
 */
import { show, wrong } from './common.mjs';

export const D = 6; // lstm1_bf_ylast_tanh: dim 6, vocab 40
export const N = 40;

// --------------------------------------------------------------------- hostile values

export const big = (n) => ({ __desc: `{length: ${n}}`, length: n });

export function nasty(rng) {
  return rng.pick([
    undefined,
    null,
    NaN,
    Infinity,
    -Infinity,
    0,
    -0,
    -1,
    1.5,
    2 ** 31,
    2 ** 32 + 1,
    2 ** 53,
    1e308,
    -1e308,
    Number.MIN_VALUE,
    '',
    '1',
    'abc',
    true,
    false,
    {},
    [],
    [NaN],
    [[[]]],
    big(1e10),
    big(-1),
    big(NaN),
    big(2 ** 32),
    { __desc: '{length: 2, 0: 1, 1: 2}', length: 2, 0: 1, 1: 2 },
    new Float32Array(3),
    new Float64Array([1, 2]),
    new Int32Array([0, 1]),
    new Uint8Array(2),
    new DataView(new ArrayBuffer(4)),
    new ArrayBuffer(8),
    1n,
    2n ** 64n,
    Symbol('s'),
    () => 1,
    new Date(0),
    /re/,
    new Map([[1, 2]]),
    new Set([1]),
    Object.create(null),
    Object.assign(Object.create(null), { length: 2, 0: 1, 1: 2 }),
    { toString: null, valueOf: null },
    new Array(5),
    // a hole on purpose
    [1, , 3],
    'x'.repeat(100_000),
  ]);
}

/** Mostly the valid value, sometimes a hostile one. */
export const maybe = (rng, valid, p = 0.25) => (rng.bool(p) ? nasty(rng) : valid());

// --------------------------------------------------------------------- checks

export function arrayOrNull(x, what) {
  if (x === null || x === undefined) return [];
  const len = x.length;
  if (typeof len !== 'number' || !(len >= 0) || len > 1 << 22) wrong(`accepted ${what} = ${show(x)} (not an array of finite length)`);
  return Array.from(x);
}

export function checkVector(v, len, what) {
  if (!(v instanceof Float32Array) || v.length !== len) wrong(`${what} returned ${show(v)}, expected Float32Array(${len})`);
}
