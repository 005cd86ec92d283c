/**
 * Bounded sizes and one validation layer: every public argument, given anything at all, either
 * works (with a result of the right shape) or throws one of the library's typed errors; never a
 * raw TypeError/RangeError, never a hang. Plus the exact message of every limit.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import fc from 'fast-check';
import { pack } from 'msgpackr';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { LIMITS } from '../src/limits.js';
import { Catalogue, Encoder, type EncoderState, FileError, InvalidArgumentError, OutOfRangeError, ScoringEngine } from '../src/index.js';
import { randomMatrix } from './helpers.js';

const fixtures = new URL('../models/fixtures/', import.meta.url).pathname;
const LSTM = `${fixtures}lstm1_bf_ylast_tanh.onnx`; // native, incremental: dim 6, vocab 40
const BILSTM = `${fixtures}bilstm2_bf_ylast.onnx`; // native, re-encodes
const ORT = `${fixtures}lstm_layernorm.onnx`; // onnxruntime fallback
const dir = mkdtempSync(join(tmpdir(), 'recscore-bounds-'));

const LIBRARY_CODES = new Set(['INVALID_ARGUMENT', 'OUT_OF_RANGE', 'FORMAT', 'FILE', 'MODEL', 'UNSUPPORTED_MODEL'].map((c) => `ERR_RECSCORE_${c}`).concat('ERR_PEER_MISSING', 'ERR_CLOSED'));

/** A typed error of the library: an Error with one of its codes. */
function expectTyped(e: unknown): void {
  expect(e, String(e)).toBeInstanceOf(Error);
  const code = (e as { code?: unknown }).code;
  expect(LIBRARY_CODES.has(code as string), `${(e as Error).name}: ${(e as Error).message} (code ${String(code)})`).toBe(true);
}

/** Runs a sync call: its result, or null after checking the error is typed. */
function sync<T>(f: () => T): T | null {
  try {
    return f();
  } catch (e) {
    expectTyped(e);
    return null;
  }
}

/** Runs an async call: it must not throw synchronously, must settle within 5 s, typed on failure. */
async function settle<T>(f: () => Promise<T>): Promise<T | null> {
  let p: Promise<T>;
  try {
    p = f();
  } catch (e) {
    throw new Error(`threw synchronously instead of rejecting: ${String(e)}`);
  }
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('did not settle within 5 s')), 5000);
  });
  try {
    return await Promise.race([p, hang]);
  } catch (e) {
    if ((e as Error).message === 'did not settle within 5 s') throw e;
    expectTyped(e);
    return null;
  } finally {
    clearTimeout(timer);
  }
}

// ---- Hostile values -----------------------------------------------------------------------

const deep = ((): unknown[] => {
  let v: unknown[] = [];
  for (let i = 0; i < 10_000; i++) v = [v];
  return v;
})();

const hostileNumber = fc.constantFrom(0, -0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 1e10, 2 ** 31, 2 ** 32, 2 ** 53, 1e8, 100_000, 1025, LIMITS.maxBatch + 1, Number.MAX_VALUE, Number.MIN_VALUE);

const hostile: fc.Arbitrary<unknown> = fc.oneof(
  fc.anything(),
  hostileNumber,
  fc.constantFrom(null, undefined, deep, new DataView(new ArrayBuffer(8)), Symbol('s'), () => 1, new Map(), new Set([1]), Object.create(null) as object),
  fc.record({ length: hostileNumber }),
  fc.int32Array({ maxLength: 5 }),
  fc.float32Array({ maxLength: 5 }),
  fc.bigInt64Array({ maxLength: 3 }),
  fc.array(fc.anything(), { maxLength: 5 }),
  fc.string(),
  fc.bigInt(),
);

/** Mostly valid item indices (model vocab and catalogue are 40), sometimes not. */
const ids = fc.oneof(
  { arbitrary: fc.array(fc.integer({ min: 0, max: 39 }), { maxLength: 6 }), weight: 3 },
  { arbitrary: fc.int32Array({ min: -2, max: 45, maxLength: 6 }), weight: 1 },
  { arbitrary: fc.record({ length: hostileNumber }), weight: 1 },
  { arbitrary: hostile, weight: 1 },
);
const smallOrHostile = fc.oneof({ arbitrary: fc.integer({ min: 0, max: 50 }), weight: 3 }, { arbitrary: hostile, weight: 1 });
/** Mostly valid (`a`), sometimes anything. */
const maybe = <T>(a: fc.Arbitrary<T>): fc.Arbitrary<T | unknown> => fc.oneof({ arbitrary: a, weight: 3 }, { arbitrary: hostile, weight: 1 });

// ---- Fixtures -------------------------------------------------------------------------------

let cat: Catalogue;
let native: Encoder;
let bidi: Encoder;
let ort: Encoder;
let engine: ScoringEngine;

beforeAll(async () => {
  cat = Catalogue.fromVectors(randomMatrix(40, 6, 11), { dim: 6, bias: randomMatrix(40, 1, 12), attributes: Array.from({ length: 40 }, (_, i) => i % 4) });
  [native, bidi, ort] = await Promise.all([LSTM, BILSTM, ORT].map((m) => Encoder.load(m, { threads: 1 })));
  engine = await ScoringEngine.create({ model: LSTM, catalogue: cat, threads: 1, maxBatch: 8 });
});
afterAll(async () => {
  await engine.close();
  await Promise.all([native, bidi, ort].map((e) => e.close()));
  rmSync(dir, { recursive: true, force: true });
});

// ---- Properties -----------------------------------------------------------------------------

describe('any argument: a correct result or a typed error', () => {
  it('Catalogue.topK / topKAsync', async () => {
    // Mostly well-formed calls (b users, b exclusion lists) with hostile values inside.
    const call = fc.integer({ min: 0, max: 3 }).chain((b) =>
      fc.tuple(
        maybe(fc.float32Array({ minLength: b * 6, maxLength: b * 6, min: -2, max: 2, noNaN: true })),
        maybe(
          fc.record(
            {
              k: smallOrHostile,
              exclude: maybe(fc.array(fc.oneof(ids, fc.constant(null)), { minLength: b, maxLength: b })),
              allow: maybe(ids),
              filter: maybe(fc.record({ allOf: smallOrHostile, anyOf: smallOrHostile, noneOf: smallOrHostile }, { requiredKeys: [] })),
              threads: maybe(fc.integer({ min: 1, max: 2 })),
              isa: maybe(fc.constantFrom('auto', 'scalar')),
            },
            { requiredKeys: ['k'] },
          ),
        ),
      ),
    );
    await fc.assert(
      fc.asyncProperty(call, async ([u, o]) => {
        const check = (r: { k: number; rows: Int32Array; scores: Float32Array } | null): void => {
          if (!r) return;
          const b = (u as Float32Array).length / 6;
          expect(r.k).toBe(Math.min((o as { k: number }).k, 40));
          expect(r.rows).toBeInstanceOf(Int32Array);
          expect(r.rows.length).toBe(b * r.k);
          expect(r.scores.length).toBe(b * r.k);
        };
        check(sync(() => cat.topK(u as Float32Array, o as { k: number })));
        check(await settle(() => cat.topKAsync(u as Float32Array, o as { k: number })));
      }),
      { numRuns: 2000 },
    );
  });

  it('Encoder.encode / encodeSync on every backend', async () => {
    const histories = fc.oneof(fc.array(ids, { maxLength: 4 }), hostile);
    await fc.assert(
      fc.asyncProperty(histories, async (h) => {
        for (const enc of [native, bidi, ort]) {
          const r = await settle(() => enc.encode(h as number[][]));
          if (r) expect(r.length).toBe((h as unknown[]).length * enc.dim);
          if (enc.backend === 'native') {
            const s = sync(() => enc.encodeSync(h as number[][]));
            if (s) expect(s).toEqual(r);
          }
        }
      }),
      { numRuns: 600 },
    );
  });

  it('Encoder.initialState / step / stepSync / output / restoreState on every backend', async () => {
    const batch = fc.oneof(fc.integer({ min: 0, max: 3 }), hostile);
    const stateData = fc.oneof(fc.float32Array({ maxLength: 70 }), hostile);
    await fc.assert(
      fc.asyncProperty(batch, ids, stateData, async (b, itemIds, data) => {
        for (const enc of [native, bidi, ort]) {
          const st = sync(() => enc.initialState(b as number));
          if (st) expect(st.batch === b).toBe(true); // -0 users is 0
          const state = st ?? enc.initialState(2);
          const v = await settle(() => enc.step(state, itemIds as number[]));
          if (v) expect(v.length).toBe(state.batch * enc.dim);
          if (enc.incremental) {
            const w = sync(() => enc.stepSync(state, itemIds as number[]));
            if (w) expect(w.length).toBe(state.batch * enc.dim);
          }
          const out = await settle(() => enc.output(state));
          if (out) expect(out.length).toBe(state.batch * enc.dim);
          const restored = sync(() => enc.restoreState(data as Float32Array));
          if (restored) expect(restored.batch).toBe((data as Float32Array).length / enc.stateSize);
          // Somebody else's or no state at all.
          await settle(() => enc.step(data as unknown as EncoderState, [1]));
        }
      }),
      { numRuns: 600 },
    );
  });

  it('Encoder.load options', async () => {
    const options = fc.oneof(
      fc.record(
        {
          backend: maybe(fc.constantFrom('auto', 'native', 'onnxruntime')),
          threads: maybe(fc.integer({ min: 1, max: 2 })),
          isa: maybe(fc.constantFrom('auto', 'scalar')),
          foldBytes: maybe(fc.constantFrom(0, 1024, 2 ** 40)),
        },
        { requiredKeys: [] },
      ),
      hostile,
    );
    const source = fc.oneof(fc.constantFrom(LSTM, ORT), hostile);
    await fc.assert(
      fc.asyncProperty(source, options, async (s, o) => {
        const enc = await settle(() => Encoder.load(s as string, o as object));
        if (enc) {
          expect(enc.dim).toBe(6);
          await enc.close();
        }
      }),
      { numRuns: 150 },
    );
  });

  it('ScoringEngine.recommend and engine.sessions', async () => {
    const catalogueIds = fc.oneof(fc.array(fc.integer({ min: 0, max: 39 }), { maxLength: 5 }), ids);
    const request = fc.oneof(
      fc.record(
        {
          history: catalogueIds,
          k: smallOrHostile,
          exclude: fc.oneof(fc.constantFrom('history', 'none'), catalogueIds),
          filter: maybe(fc.record({ allOf: smallOrHostile, anyOf: smallOrHostile, noneOf: smallOrHostile }, { requiredKeys: [] })),
          signal: maybe(fc.constant(new AbortController().signal)),
        },
        { requiredKeys: ['history', 'k'] },
      ),
      hostile,
    );
    await fc.assert(
      fc.asyncProperty(request, hostile, catalogueIds, async (req, user, pushed) => {
        const r = await settle(() => engine.recommend(req as { history: number[]; k: number }));
        if (r) {
          expect(Array.isArray(r.items)).toBe(true);
          expect(r.items.length).toBeLessThanOrEqual(Math.min((req as { k: number }).k, 40));
        }
        const u = typeof user === 'string' || typeof user === 'number' ? user : 'u';
        await settle(() => engine.sessions.push(user as string, pushed as number[]));
        await settle(() => engine.sessions.push(u, pushed as number[]));
        const s = await settle(() => engine.sessions.recommend(u, req as { k: number }));
        if (s) expect(s.items.length).toBeLessThanOrEqual(40);
      }),
      { numRuns: 500 },
    );
  });
});

// ---- Exact messages -------------------------------------------------------------------------

describe('limits: exact messages', () => {
  it('threads: Encoder.load, topK, the engine', async () => {
    await expect(Encoder.load(LSTM, { threads: 100_000 })).rejects.toThrow(OutOfRangeError);
    await expect(Encoder.load(LSTM, { threads: 100_000 })).rejects.toThrow('options.threads must be at most 1024, got 100000');
    await expect(Encoder.load(ORT, { threads: 100_000, backend: 'onnxruntime' })).rejects.toThrow('options.threads must be at most 1024, got 100000');
    const user = new Float32Array(6);
    expect(() => cat.topK(user, { k: 1, threads: 1025 })).toThrow('options.threads must be at most 1024, got 1025');
    await expect(ScoringEngine.create({ model: LSTM, catalogue: cat, threads: 100_000 })).rejects.toThrow('options.threads must be at most 1024, got 100000');
  });

  it('initialState(1e8) is refused before allocating, on every backend', () => {
    for (const enc of [native, bidi, ort]) {
      expect(() => enc.initialState(1e8)).toThrow(OutOfRangeError);
      expect(() => enc.initialState(1e8)).toThrow('batch must be at most 1048576, got 100000000');
    }
    expect(() => native.initialState(-1)).toThrow('batch must be a non-negative integer, got -1');
  });

  it('batch sizes, history lengths and events in one call, the same on every backend', async () => {
    const tooMany = new Array<number[]>(LIMITS.maxBatch + 1);
    const long = new Int32Array(LIMITS.maxHistory + 1);
    const row = new Int32Array(LIMITS.maxHistory);
    const manyEvents = new Array<Int32Array>(257).fill(row);
    for (const enc of [native, bidi, ort]) {
      await expect(enc.encode(tooMany)).rejects.toThrow('histories.length must be at most 1048576, got 1048577');
      await expect(enc.encode([[1], long])).rejects.toThrow('histories[1].length must be at most 1048576, got 1048577');
      await expect(enc.encode(manyEvents)).rejects.toThrow('the events in histories (in total) must be at most 268435456, got 269484032');
      await expect(enc.encode([[1], null as unknown as number[]])).rejects.toThrow('histories[1] must be an array of item indices, got null');
      await expect(enc.encode([{ length: 1e10 } as unknown as number[]])).rejects.toThrow('histories[0] must be an array of item indices, got Object');
      await expect(enc.step(enc.initialState(1), new Int32Array(LIMITS.maxBatch + 1))).rejects.toThrow('itemIds.length must be at most 1048576, got 1048577');
    }
    expect(() => native.encodeSync(tooMany)).toThrow(OutOfRangeError);
    const users = new Float32Array((LIMITS.maxBatch + 1) * 6);
    expect(() => cat.topK(users, { k: 1 })).toThrow(OutOfRangeError);
    expect(() => cat.topK(new Float32Array(6), { k: LIMITS.maxK + 1 })).toThrow('options.k must be at most 1048576, got 1048577');
  });

  it('state sizes: restoreState', () => {
    const max = Math.min(LIMITS.maxStateFloats, LIMITS.maxBatch * native.stateSize);
    expect(() => native.restoreState(new Float32Array(max + native.stateSize))).toThrow(`data.length must be at most ${max}, got ${max + native.stateSize}`);
    expect(() => native.restoreState(new Float32Array(native.stateSize * 2))).not.toThrow();
  });

  it('array-like arguments: arrays or typed arrays only (exclude: [{ length: 1e10 }])', () => {
    const user = new Float32Array(6);
    expect(() => cat.topK(user, { k: 1, exclude: [{ length: 1e10 } as unknown as number[]] })).toThrow(InvalidArgumentError);
    expect(() => cat.topK(user, { k: 1, exclude: [{ length: 1e10 } as unknown as number[]] })).toThrow('options.exclude[0] must be an array of numbers, got Object');
    expect(() => cat.topK(user, { k: 1, allow: new DataView(new ArrayBuffer(4)) as unknown as number[] })).toThrow('options.allow must be an array of numbers, got DataView(4 bytes)');
    expect(() => cat.topK(user, { k: 1, exclude: [new Int32Array([3])] })).not.toThrow();
  });

  it('null or non-object options name the parameter', async () => {
    await expect(Encoder.load(LSTM, null as unknown as object)).rejects.toThrow(InvalidArgumentError);
    await expect(Encoder.load(LSTM, null as unknown as object)).rejects.toThrow('options must be an object, got null');
    await expect(Encoder.load(LSTM, 5 as unknown as object)).rejects.toThrow('options must be an object, got 5');
    await expect(ScoringEngine.create(null as unknown as { model: string; catalogue: Catalogue })).rejects.toThrow('options must be an object, got null');
    await expect(ScoringEngine.create({ model: LSTM, catalogue: cat, sessions: null as unknown as object })).rejects.toThrow('options.sessions must be an object, got null');
    await expect(ScoringEngine.create({ model: LSTM, catalogue: cat, logger: { info: 5 } as unknown as object })).rejects.toThrow('options.logger.info must be a function, got 5');
    await expect(ScoringEngine.create({ model: 5 as unknown as string, catalogue: cat })).rejects.toThrow('options.model must be a path or a Uint8Array, got 5');
    await expect(engine.recommend(null as unknown as { history: number[]; k: number })).rejects.toThrow('request must be an object, got null');
    await expect(engine.sessions.recommend('u', null as unknown as { k: number })).rejects.toThrow('options must be an object, got null');
  });

  it('the engine: k, maxBatch, history lengths, filters', async () => {
    await expect(engine.recommend({ history: [1], k: LIMITS.maxK + 1 })).rejects.toThrow('request.k must be at most 1048576, got 1048577');
    await expect(engine.recommend({ history: new Array(LIMITS.maxHistory + 1).fill(1), k: 1 })).rejects.toThrow('request.history.length must be at most 1048576, got 1048577');
    await expect(engine.recommend({ history: [1], k: 1, filter: { allOf: 1n as unknown as number } })).rejects.toThrow('request.filter.allOf must be an integer in 0..2^32-1, got 1n');
    await expect(engine.recommend({ history: [1], k: 1, exclude: 5 as unknown as 'none' })).rejects.toThrow("request.exclude must be 'history', 'none' or an array of ids, got 5");
    await expect(engine.sessions.push('u', new Array(LIMITS.maxHistory + 1).fill(1))).rejects.toThrow('itemIds.length must be at most 1048576, got 1048577');
    await expect(engine.sessions.recommend('u', { k: 1, exclude: { length: 3 } as unknown as number[] })).rejects.toThrow(
      "options.exclude must be 'history', 'none' or an array of ids, got Object",
    );
    await expect(ScoringEngine.create({ model: LSTM, catalogue: cat, maxBatch: LIMITS.maxBatch + 1 })).rejects.toThrow('options.maxBatch must be at most 1048576, got 1048577');
    await expect(ScoringEngine.create({ model: LSTM, catalogue: cat, sessions: { historyLimit: LIMITS.maxHistory + 1 } })).rejects.toThrow(
      'options.sessions.historyLimit must be at most 1048576, got 1048577',
    );
  });
});

describe('files: typed errors, no hangs', () => {
  it('a model path that is a directory, a FIFO or missing is a FileError', async () => {
    const fifo = join(dir, 'model-fifo');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    for (const path of [dir, fifo, join(dir, 'none.onnx')]) {
      const err = await settle(() => Encoder.load(path));
      expect(err).toBeNull();
      await expect(Encoder.load(path)).rejects.toThrow(FileError);
      await expect(ScoringEngine.create({ model: path, catalogue: cat })).rejects.toThrow(FileError);
    }
  });

  it('an engine snapshot path that is a directory or a FIFO is a FileError; a missing one starts empty', async () => {
    const fifo = join(dir, 'snap-fifo');
    const snapDir = join(dir, 'snap-dir');
    mkdirSync(snapDir);
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    await expect(ScoringEngine.create({ model: LSTM, catalogue: cat, threads: 1, sessions: { snapshot: fifo } })).rejects.toThrow(`${fifo}: is a FIFO, not a regular file`);
    const e = await ScoringEngine.create({ model: LSTM, catalogue: cat, threads: 1, sessions: { snapshot: snapDir } }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(FileError);
    expect((e as FileError).message).toBe(`${snapDir}: is a directory, not a regular file`);
    const logs: string[] = [];
    const fresh = await ScoringEngine.create({ model: LSTM, catalogue: cat, threads: 1, sessions: { snapshot: join(dir, 'new.bin') }, logger: { info: (_o, m) => logs.push(String(m)) } });
    expect(logs).toEqual([`no snapshot at ${join(dir, 'new.bin')} (ENOENT)`, 'engine ready']);
    expect(await fresh.sessions.size()).toBe(0);
    await fresh.close();
  });

  it('a snapshot whose entries have the wrong shape restores nothing and says why', async () => {
    const path = join(dir, 'bad-entries.bin');
    const hash = createHash('sha256').update(readFileSync(LSTM)).digest('hex');
    const state = new Uint8Array(native.stateSize * 4);
    const cases: Array<[unknown[], string]> = [
      [[['u', state, 'not-a-history', 0]], 'entry 0 has a history that is not an array of ids'],
      [[['u', state, [1], 0], [{}, state, [1], 0]], 'entry 1 has a user that is not a string or a safe integer'],
      [[['u', new Uint8Array(3), [1], 0]], `entry 0 has a state of 3 bytes (expected ${native.stateSize * 4})`],
      [[['u', state, [[[1]]], 0]], 'entry 0 has a history that is not an array of ids'],
      [[null], 'entry 0 is not [user, state, history, lastSeen]'],
    ];
    for (const [entries, why] of cases) {
      writeFileSync(path, pack({ format: 'recscore-sessions', version: 1, model: hash, stateSize: native.stateSize, entries }));
      const logs: string[] = [];
      const e = await ScoringEngine.create({ model: LSTM, catalogue: cat, threads: 1, sessions: { snapshot: path }, logger: { info: (_o, m) => logs.push(String(m)) } });
      expect(logs).toEqual([`snapshot ${path} is corrupt: ${why}`, 'engine ready']);
      expect(await e.sessions.size()).toBe(0);
      await e.close();
    }
  });
});
