import { describe, expect, it } from 'vitest';

import { Catalogue, InvalidArgumentError, OutOfRangeError, nativeInfo } from '../src/index.js';
import { randomMatrix } from './helpers.js';

const d = 4;
const items = randomMatrix(10, d, 1);
const cat = Catalogue.fromVectors(items, { dim: d, attributes: new Uint32Array(10) });
const user = randomMatrix(1, d, 2);

/** Asserts both topK (throws) and topKAsync (rejects, never throws) fail the same way. */
async function expectBoth(users: unknown, opts: unknown, cls: new (...a: never[]) => Error, message: string | RegExp) {
  const call = (): unknown => cat.topK(users as Float32Array, opts as { k: number });
  expect(call).toThrow(cls);
  expect(call).toThrow(message);
  let p: Promise<unknown> | undefined;
  expect(() => {
    p = cat.topKAsync(users as Float32Array, opts as { k: number });
  }).not.toThrow();
  await expect(p).rejects.toBeInstanceOf(cls);
  await expect(p).rejects.toThrow(message);
}

describe('bad input to topK / topKAsync', () => {
  it.each([
    [-1, 'options.k must be a positive integer, got -1'],
    [0, 'options.k must be a positive integer, got 0'],
    [1.5, 'options.k must be a positive integer, got 1.5'],
    [Number.NaN, 'options.k must be a positive integer, got NaN'],
    ['3', 'options.k must be a positive integer, got "3"'],
    [undefined, 'options.k must be a positive integer, got undefined'],
  ])('k = %s', async (k, message) => {
    await expectBoth(user, { k }, InvalidArgumentError, message);
  });

  it('users must be a Float32Array whose length is a multiple of dim', async () => {
    await expectBoth([1, 2, 3, 4], { k: 1 }, InvalidArgumentError, 'users must be a Float32Array, got Array(4)');
    await expectBoth(new Float64Array(4), { k: 1 }, InvalidArgumentError, 'users must be a Float32Array, got Float64Array(4)');
    await expectBoth(new Float32Array(6), { k: 1 }, InvalidArgumentError, "users.length (6) is not a multiple of the catalogue's dim (4)");
  });

  it('NaN and Infinity in users name the user and component', async () => {
    const u = randomMatrix(3, d, 3);
    u[9] = Number.NaN;
    await expectBoth(u, { k: 1 }, InvalidArgumentError, 'users[9] (user 2, component 1) is NaN');
    u[9] = -Infinity;
    await expectBoth(u, { k: 1 }, InvalidArgumentError, 'users[9] (user 2, component 1) is -Infinity');
  });

  it('user vectors whose scores could overflow float32', async () => {
    const u = new Float32Array([3e38, 0, 0, 0]);
    await expectBoth(u, { k: 1 }, OutOfRangeError, /user 0 has norm 3\.0*\d*e\+38; its scores could overflow float32/);
  });

  it('exclusions: shape, types and rows out of range', async () => {
    await expectBoth(user, { k: 1, exclude: [1, 2] }, InvalidArgumentError, 'options.exclude has 2 entries for 1 users');
    await expectBoth(user, { k: 1, exclude: 'abc' }, InvalidArgumentError, 'options.exclude must be an array');
    await expectBoth(user, { k: 1, exclude: [[10]] }, OutOfRangeError, 'options.exclude[0][0] = 10 is not a row of the catalogue (0..9)');
    await expectBoth(user, { k: 1, exclude: [[0, -1]] }, OutOfRangeError, 'options.exclude[0][1] = -1 is not a row of the catalogue (0..9)');
    await expectBoth(user, { k: 1, exclude: [[0.5]] }, InvalidArgumentError, 'options.exclude[0][0] must be an integer row index, got 0.5');
    await expectBoth(user, { k: 1, exclude: [7] }, InvalidArgumentError, 'options.exclude[0] must be an array of numbers, got 7');
  });

  it('allow-list and filter', async () => {
    await expectBoth(user, { k: 1, allow: [3, 99] }, OutOfRangeError, 'options.allow[1] = 99 is not a row of the catalogue (0..9)');
    await expectBoth(user, { k: 1, filter: { anyOf: -1 } }, InvalidArgumentError, 'options.filter.anyOf must be an integer in 0..2^32-1, got -1');
    await expectBoth(user, { k: 1, filter: 3 }, InvalidArgumentError, 'options.filter must be an object, got 3');
    const plain = Catalogue.fromVectors(items, { dim: d });
    expect(() => plain.topK(user, { k: 1, filter: { anyOf: 1 } })).toThrow('options.filter needs a catalogue built with attributes');
  });

  it('threads, isa and options', async () => {
    await expectBoth(user, { k: 1, threads: 0 }, InvalidArgumentError, 'options.threads must be a positive integer, got 0');
    await expectBoth(user, { k: 1, isa: 'avx1024' }, InvalidArgumentError, "options.isa must be 'auto' or a level (scalar, avx2, avx512), got \"avx1024\"");
    const missing = (['avx2', 'avx512'] as const).find((l) => !nativeInfo().levels.includes(l));
    if (missing) {
      await expectBoth(user, { k: 1, isa: missing }, InvalidArgumentError, `options.isa '${missing}' is not available on this CPU (it runs ${nativeInfo().levels.join(', ')})`);
    } else {
      console.warn('skipped: the "level not available" case needs a CPU without AVX-512; this one runs every level');
    }
    await expectBoth(user, null, InvalidArgumentError, 'options must be an object with k, got null');
  });

  it('results too large for one call', async () => {
    const big = Catalogue.fromVectors(randomMatrix(3000, 1, 1), { dim: 1 });
    const users = new Float32Array(800_000);
    expect(() => big.topK(users, { k: 3000 })).toThrow(OutOfRangeError);
    expect(() => big.topK(users, { k: 3000 })).toThrow('the result would hold 800000×3000 entries; split the batch (at most 2^31-1)');
  });
});

describe('bad input to Catalogue.fromVectors', () => {
  it('vectors and dim', () => {
    expect(() => Catalogue.fromVectors([1, 2] as unknown as Float32Array, { dim: 1 })).toThrow('vectors must be a Float32Array, got Array(2)');
    expect(() => Catalogue.fromVectors(new Float32Array(6), { dim: 4 })).toThrow('vectors.length (6) is not a multiple of dim (4)');
    expect(() => Catalogue.fromVectors(new Float32Array(6), { dim: 0 })).toThrow('options.dim must be a positive integer, got 0');
    expect(() => Catalogue.fromVectors(new Float32Array(6), undefined as unknown as { dim: number })).toThrow(InvalidArgumentError);
  });

  it('a zero-size catalogue', () => {
    expect(() => Catalogue.fromVectors(new Float32Array(0), { dim: 4 })).toThrow(OutOfRangeError);
    expect(() => Catalogue.fromVectors(new Float32Array(0), { dim: 4 })).toThrow('vectors is empty: a catalogue needs at least one item');
  });

  it('NaN / Infinity in the catalogue name the row and component', () => {
    const v = randomMatrix(5, 3, 1);
    v[7] = Number.POSITIVE_INFINITY;
    expect(() => Catalogue.fromVectors(v, { dim: 3 })).toThrow('vectors[7] (row 2, component 1) is Infinity');
    v[7] = Number.NaN;
    expect(() => Catalogue.fromVectors(v, { dim: 3 })).toThrow(InvalidArgumentError);
  });

  it('ids: length, types and uniqueness', () => {
    const v = randomMatrix(3, 2, 1);
    expect(() => Catalogue.fromVectors(v, { dim: 2, ids: ['a', 'b'] })).toThrow('options.ids has 2 entries for 3 items');
    expect(() => Catalogue.fromVectors(v, { dim: 2, ids: ['a', 'b', 'a'] })).toThrow('options.ids are not unique: "a" is at rows 0 and 2');
    expect(() => Catalogue.fromVectors(v, { dim: 2, ids: [1, 2, 1.5] })).toThrow('options.ids[2] must be a string or a safe integer, got 1.5');
    expect(() => Catalogue.fromVectors(v, { dim: 2, ids: [1, 2, null] as unknown as number[] })).toThrow('options.ids[2] must be a string or a safe integer, got null');
  });

  it('bias and attributes', () => {
    const v = randomMatrix(3, 2, 1);
    expect(() => Catalogue.fromVectors(v, { dim: 2, bias: new Float32Array(2) })).toThrow('options.bias has 2 entries for 3 items');
    expect(() => Catalogue.fromVectors(v, { dim: 2, bias: [0, Number.NaN, 0] })).toThrow('options.bias[1] must be a finite float32, got NaN');
    expect(() => Catalogue.fromVectors(v, { dim: 2, bias: [0, 1e39, 0] })).toThrow('options.bias[1] must be a finite float32, got 1e+39');
    expect(() => Catalogue.fromVectors(v, { dim: 2, attributes: [1, 2] })).toThrow('options.attributes has 2 entries for 3 items');
    expect(() => Catalogue.fromVectors(v, { dim: 2, attributes: [1, 2, 2 ** 32] })).toThrow('options.attributes[2] must be an integer in 0..2^32-1, got 4294967296');
  });

  it('row / id lookups out of range', () => {
    const c = Catalogue.fromVectors(randomMatrix(3, 2, 1), { dim: 2, ids: ['x', 'y', 'z'] });
    expect(() => c.id(3)).toThrow('row must be an integer in 0..2, got 3');
    expect(() => c.id(-1)).toThrow(OutOfRangeError);
    expect(() => c.row('w')).toThrow('id "w" is not in the catalogue');
    expect(c.row('z')).toBe(2);
  });

  it('the catalogue copies its input: later writes to the caller array change nothing', () => {
    const v = randomMatrix(20, 3, 9);
    const c = Catalogue.fromVectors(v, { dim: 3 });
    const before = c.topK(v.subarray(0, 3), { k: 5 });
    v.fill(0);
    expect(c.topK(Float32Array.from(c.vector(0)), { k: 5 })).toEqual(before);
  });
});
