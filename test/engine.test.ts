import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { pack } from 'msgpackr';
import { Registry, register as globalRegistry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { AbortError, Catalogue, ClosedError, Encoder, InvalidArgumentError, MemorySessionStore, OutOfRangeError, QueueFullError, ScoringEngine, WorkerCrashError } from '../src/index.js';
import { randomMatrix, rng } from './helpers.js';

const model = new URL('../models/fixtures/bench_lstm2x128.onnx', import.meta.url).pathname;
const N = 6000;
const D = 64;
const dir = mkdtempSync(join(tmpdir(), 'recscore-engine-'));
let catalogue: Catalogue;
let encoder: Encoder;

beforeAll(async () => {
  // Ids 0..N-1: the model's items are 0..4999, so 5000..5999 exist only in the catalogue.
  catalogue = Catalogue.fromVectors(randomMatrix(N, D, 77), { dim: D, bias: randomMatrix(N, 1, 78) });
  encoder = await Encoder.load(model, { threads: 1 });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function histories(n: number, seed: number): number[][] {
  const r = rng(seed);
  return Array.from({ length: n }, () => Array.from({ length: 1 + Math.floor(r() * 10) }, () => Math.floor(r() * 5000)));
}

/** What a user would compute by hand: encode every history, then top-k without its items. */
async function direct(hs: number[][], k: number): Promise<Array<Array<{ id: number; score: number }>>> {
  const vectors = await encoder.encode(hs);
  const res = catalogue.topK(vectors, { k, exclude: hs });
  return hs.map((_, u) =>
    Array.from({ length: res.k }, (_, i) => ({ id: res.rows[u * res.k + i], score: res.scores[u * res.k + i] })).filter((x) => x.id >= 0),
  );
}

describe('ScoringEngine', () => {
  it('answers 10,000 concurrent recommends, each equal to a direct encode + topK', async () => {
    const engine = await ScoringEngine.create({ model, catalogue, threads: 2, maxBatch: 64 });
    const hs = histories(10_000, 1);
    const answers = await Promise.all(hs.map((history) => engine.recommend({ history, k: 10 })));
    const expected = await direct(hs, 10);
    answers.forEach((a, u) => expect(a.items).toEqual(expected[u]));
    const st = engine.stats();
    expect(st.completed).toBe(10_000);
    expect(st.failed).toBe(0);
    expect(st.meanBatchSize).toBeGreaterThan(8); // batched, not one at a time
    expect(st.maxBatchSize).toBeLessThanOrEqual(64);
    expect(st.latencyMs.p99).toBeGreaterThanOrEqual(st.latencyMs.p50);
    // Sequential calls give the same answers as concurrent ones.
    for (const u of [0, 17, 4242, 9999]) expect(await engine.recommend({ history: hs[u], k: 10 })).toEqual(answers[u]);
    await engine.close();
  });

  it('honours k per request, exclude modes and recommendBatch', async () => {
    const engine = await ScoringEngine.create({ model, catalogue, threads: 2 });
    const h = [5, 6, 7];
    const [a, b, c] = await engine.recommendBatch([
      { history: h, k: 3 },
      { history: h, k: 7, exclude: 'none' },
      { history: h, k: 5, exclude: [5999] },
    ]);
    expect(a.items).toEqual((await direct([h], 3))[0]);
    const vec = await encoder.encode([h]);
    const none = catalogue.topK(vec, { k: 7 });
    expect(b.items.map((x) => x.id)).toEqual(Array.from(none.rows));
    const ex = catalogue.topK(vec, { k: 5, exclude: [[5999]] });
    expect(c.items.map((x) => x.id)).toEqual(Array.from(ex.rows));
    await engine.close();
  });

  it('rejects bad requests with typed errors that carry the caller stack', async () => {
    const engine = await ScoringEngine.create({ model, catalogue, threads: 1 });
    const err = await engine.recommend({ history: [1, 5500], k: 3 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OutOfRangeError);
    expect((err as Error).message).toBe('request.history[1] = 5500 has no item index in the model');
    expect((err as Error).stack).toContain('engine.test.ts');
    await expect(engine.recommend({ history: [1, 'x'], k: 3 })).rejects.toThrow('request.history[1] = "x" is not in the catalogue');
    await expect(engine.recommend({ history: [1], k: 0 })).rejects.toThrow('request.k must be a positive integer, got 0');
    await expect(engine.recommend({ history: [1], k: 2, exclude: 'all' as 'none' })).rejects.toThrow(InvalidArgumentError);
    await expect(engine.recommend({ history: [1], k: 2, filter: { anyOf: 1 } })).rejects.toThrow('request.filter needs a catalogue built with attributes');
    await engine.close();
  });

  it('aborts queued requests with AbortError and answers the others', async () => {
    const engine = await ScoringEngine.create({ model, catalogue, threads: 1, maxBatch: 4 });
    const before = new AbortController();
    before.abort();
    await expect(engine.recommend({ history: [1], k: 2, signal: before.signal })).rejects.toBeInstanceOf(AbortError);
    const ac = new AbortController();
    const hs = histories(40, 3);
    const calls = hs.map((history, i) => engine.recommend({ history, k: 5, signal: i >= 20 ? ac.signal : undefined }));
    ac.abort();
    const settled = await Promise.allSettled(calls);
    const expected = await direct(hs, 5);
    settled.slice(0, 20).forEach((s, u) => expect(s).toEqual({ status: 'fulfilled', value: { items: expected[u] } }));
    for (const s of settled.slice(20)) {
      expect(s.status).toBe('rejected');
      expect((s as PromiseRejectedResult).reason).toBeInstanceOf(AbortError);
      expect((s as PromiseRejectedResult).reason.code).toBe('ABORT_ERR');
    }
    await engine.close();
  });

  it('refuses requests beyond maxQueue with ERR_QUEUE_FULL', async () => {
    const engine = await ScoringEngine.create({ model, catalogue, threads: 1, maxQueue: 10 });
    const calls = Array.from({ length: 30 }, (_, i) => engine.recommend({ history: [i], k: 2 }));
    const settled = await Promise.allSettled(calls);
    const full = settled.filter((s) => s.status === 'rejected');
    expect(full.length).toBe(20);
    for (const s of full) {
      expect((s as PromiseRejectedResult).reason).toBeInstanceOf(QueueFullError);
      expect((s as PromiseRejectedResult).reason.code).toBe('ERR_QUEUE_FULL');
    }
    expect(settled.slice(0, 10).every((s) => s.status === 'fulfilled')).toBe(true);
    await engine.close();
  });

  it('close() finishes accepted work under load, then rejects with ERR_CLOSED', async () => {
    const engine = await ScoringEngine.create({ model, catalogue, threads: 2 });
    const hs = histories(3000, 4);
    const calls = hs.map((history) => engine.recommend({ history, k: 4 }));
    const closing = engine.close();
    await expect(engine.recommend({ history: [1], k: 1 })).rejects.toBeInstanceOf(ClosedError);
    await expect(engine.recommend({ history: [1], k: 1 })).rejects.toMatchObject({ code: 'ERR_CLOSED' });
    const answers = await Promise.all(calls);
    await closing;
    const expected = await direct(hs.slice(0, 50), 4);
    answers.slice(0, 50).forEach((a, u) => expect(a.items).toEqual(expected[u]));
    expect(engine.closed).toBe(true);
  });

  it('a worker killed mid-batch fails only its own work; the pool replaces it', async () => {
    const engine = await ScoringEngine.create({ model, catalogue, threads: 2, testHooks: true });
    const hs = histories(400, 5);
    const crash = engine._run({ op: 'crash' });
    const calls = hs.map((history) => engine.recommend({ history, k: 3 }));
    await expect(crash).rejects.toBeInstanceOf(WorkerCrashError);
    await expect(crash).rejects.toMatchObject({ code: 'ERR_WORKER_CRASHED' });
    const answers = await Promise.all(calls);
    const expected = await direct(hs, 3);
    answers.forEach((a, u) => expect(a.items).toEqual(expected[u]));
    expect(await engine.recommend({ history: [9], k: 3 })).toEqual({ items: (await direct([[9]], 3))[0] });
    await engine.close();
  });

  it('a worker terminated while it runs a batch fails that batch only', async () => {
    const engine = await ScoringEngine.create({ model, catalogue, threads: 2, maxBatch: 32 });
    const hs = histories(3000, 6);
    const calls = hs.map((history) => engine.recommend({ history, k: 3 }));
    await new Promise((r) => setTimeout(r, 30)); // both workers are busy with batches by now
    await engine._threads()[0].terminate();
    const settled = await Promise.allSettled(calls);
    const failed = settled.filter((s) => s.status === 'rejected') as PromiseRejectedResult[];
    for (const f of failed) expect(f.reason).toBeInstanceOf(WorkerCrashError);
    expect(failed.length).toBeGreaterThan(0);
    expect(failed.length).toBeLessThanOrEqual(32); // one batch
    const expected = await direct(hs, 3);
    settled.forEach((s, u) => {
      if (s.status === 'fulfilled') expect(s.value.items).toEqual(expected[u]);
    });
    expect(await engine.recommend({ history: [9], k: 3 })).toEqual({ items: (await direct([[9]], 3))[0] });
    await engine.close();
  });
});

describe('ScoringEngine catalogues and item identity', () => {
  it('maps a catalogue file in each worker, and string ids through a vocabulary', async () => {
    // Catalogue ids are SKUs; the model's item i is "sku-<4999 - i>" (a reversed vocabulary).
    const ids = Array.from({ length: N }, (_, i) => `sku-${i}`);
    const named = Catalogue.fromVectors(randomMatrix(N, D, 77), { dim: D, ids, bias: randomMatrix(N, 1, 78) });
    const path = join(dir, 'named.rsc');
    await named.save(path);
    const vocabulary = Array.from({ length: 5000 }, (_, i) => `sku-${4999 - i}`);
    const engine = await ScoringEngine.create({ model, catalogue: path, threads: 2, vocabulary });
    const history = ['sku-4999', 'sku-10', 'sku-0'];
    const modelIds = [0, 4989, 4999];
    const got = await engine.recommend({ history, k: 6 });
    const vec = await encoder.encode([modelIds]);
    const top = catalogue.topK(vec, { k: 6, exclude: [[4999, 10, 0]] });
    expect(got.items.map((x) => x.id)).toEqual(Array.from(top.rows, (r) => `sku-${r}`));
    expect(got.items.map((x) => x.score)).toEqual(Array.from(top.scores));
    await expect(engine.recommend({ history: ['sku-5500'], k: 1 })).rejects.toThrow('request.history[0] = "sku-5500" has no item index in the model');
    await engine.close();
    expect(engine.catalogue.closed).toBe(true); // opened by the engine, closed with it
    // The same vocabulary as a file (line i: model item i), as `recscore score --vocabulary`.
    const vocabFile = join(dir, 'vocabulary.txt');
    writeFileSync(vocabFile, `${vocabulary.join('\n')}\n`);
    const fromFile = await ScoringEngine.create({ model, catalogue: path, threads: 1, vocabulary: vocabFile });
    expect(await fromFile.recommend({ history, k: 6 })).toEqual(got);
    await fromFile.close();
    writeFileSync(vocabFile, 'sku-1\nsku-1\n');
    await expect(ScoringEngine.create({ model, catalogue: path, threads: 1, vocabulary: vocabFile })).rejects.toThrow(`options.vocabulary ${vocabFile} line 2 = "sku-1" repeats options.vocabulary ${vocabFile} line 1`);
  });

  it('keeps answering from the catalogue version it opened when the file is replaced; a new worker refuses the new file', async () => {
    const path = join(dir, 'swapped.rsc');
    await catalogue.save(path);
    const engine = await ScoringEngine.create({ model, catalogue: path, threads: 1, testHooks: true });
    await Catalogue.fromVectors(randomMatrix(N, D, 99), { dim: D }).save(path); // replaced (a new inode)
    // The workers mapped the opened version at create(): answers still come from it.
    const top = catalogue.topK(await encoder.encode([[1]]), { k: 2, exclude: [Int32Array.of(1)] });
    expect((await engine.recommend({ history: [1], k: 2 })).items.map((x) => x.id)).toEqual(Array.from(top.rows));
    // A replacement worker (after a crash) maps the path again: another version, refused.
    await expect(engine._run({ op: 'crash' })).rejects.toThrow();
    await expect(engine.recommend({ history: [1], k: 2 })).rejects.toThrow(/the catalogue file changed since it was first opened/);
    await engine.close();
  });

  it('an empty history on an onnxruntime-backed model fails alone, not its batch', async () => {
    const ortModel = new URL('../models/fixtures/lstm_layernorm.onnx', import.meta.url).pathname;
    const small = Catalogue.fromVectors(randomMatrix(40, 6, 3), { dim: 6 });
    const engine = await ScoringEngine.create({ model: ortModel, catalogue: small, threads: 1 });
    expect(engine.encoder.backend).toBe('onnxruntime');
    const [a, b, c] = await Promise.allSettled([
      engine.recommend({ history: [1, 2, 3], k: 3 }),
      engine.recommend({ history: [], k: 3 }),
      engine.recommend({ history: [4], k: 3 }),
    ]);
    expect(a.status).toBe('fulfilled');
    expect(c.status).toBe('fulfilled');
    expect((b as PromiseRejectedResult).reason.message).toBe('request.history is empty: this model runs on onnxruntime, which cannot encode zero events');
    const enc = await Encoder.load(ortModel);
    const v = await enc.encode([[1, 2, 3]]);
    expect((a as PromiseFulfilledResult<{ items: Array<{ id: number }> }>).value.items.map((x) => x.id)).toEqual(Array.from(small.topK(v, { k: 3, exclude: [[1, 2, 3]] }).rows));
    await engine.close();
  });

  it('checks its options', async () => {
    await expect(ScoringEngine.create({ model, catalogue, threads: 0 })).rejects.toThrow('options.threads must be a positive integer, got 0');
    await expect(ScoringEngine.create({ model, catalogue: 42 as unknown as string })).rejects.toThrow('options.catalogue must be a path or a Catalogue, got 42');
    const small = Catalogue.fromVectors(randomMatrix(10, 8, 1), { dim: 8 });
    await expect(ScoringEngine.create({ model, catalogue: small })).rejects.toThrow("the model's vectors have 64 dimensions, the catalogue's 8");
  });
});

describe('ScoringEngine sessions', () => {
  it('push advances the state: push-then-recommend equals recommending on the whole history', async () => {
    const engine = await ScoringEngine.create({ model, catalogue, threads: 2 });
    const a = [10, 20, 30, 40, 50];
    const b = [7, 8, 9];
    await Promise.all([engine.sessions.push('alice', a.slice(0, 2)), engine.sessions.push(42, b.slice(0, 1))]);
    await engine.sessions.push('alice', a.slice(2));
    await engine.sessions.push(42, b.slice(1));
    expect(await engine.sessions.recommend('alice', { k: 8 })).toEqual(await engine.recommend({ history: a, k: 8 }));
    expect(await engine.sessions.recommend(42, { k: 8 })).toEqual(await engine.recommend({ history: b, k: 8 }));
    // Calls for one user run in order: a recommend made right after a push sees it.
    const p = engine.sessions.push('bob', [1, 2, 3]);
    const r = engine.sessions.recommend('bob', { k: 4, exclude: 'none' });
    await p;
    const vec = await encoder.encode([[1, 2, 3]]);
    const top = catalogue.topK(vec, { k: 4 });
    expect((await r).items.map((x) => x.id)).toEqual(Array.from(top.rows));
    // A new user is the empty session.
    const fresh = await engine.sessions.recommend('nobody', { k: 2, exclude: 'none' });
    const zero = catalogue.topK(await encoder.encode([[]]), { k: 2 });
    expect(fresh.items.map((x) => x.id)).toEqual(Array.from(zero.rows));
    expect(await engine.sessions.size()).toBe(3);
    expect(engine.stats().sessions).toBe(3);
    await expect(engine.sessions.push('x', [5500])).rejects.toThrow('itemIds[0] = 5500 has no item index in the model');
    await expect(engine.sessions.push({} as unknown as string, [1])).rejects.toThrow('userId must be a string or a safe integer');
    await engine.close();
  });

  it('snapshot on close, restore on create: identical answers after a restart', async () => {
    const snapshot = join(dir, 'sessions.bin');
    const e1 = await ScoringEngine.create({ model, catalogue, threads: 1, sessions: { snapshot } });
    await e1.sessions.push('u1', [3, 1, 4, 1, 5]);
    await e1.sessions.push('u2', [9, 2, 6]);
    const before = [await e1.sessions.recommend('u1', { k: 6 }), await e1.sessions.recommend('u2', { k: 6 })];
    await e1.close();
    const logs: string[] = [];
    const e2 = await ScoringEngine.create({ model, catalogue, threads: 1, sessions: { snapshot }, logger: { info: (_o, m) => logs.push(String(m)) } });
    expect(logs).toContain('sessions restored');
    expect(await e2.sessions.size()).toBe(2);
    expect([await e2.sessions.recommend('u1', { k: 6 }), await e2.sessions.recommend('u2', { k: 6 })]).toEqual(before);
    await e2.sessions.push('u1', [9]);
    expect(await e2.sessions.recommend('u1', { k: 6 })).toEqual(await e2.recommend({ history: [3, 1, 4, 1, 5, 9], k: 6 }));
    await e2.close();
  });

  it('a snapshot from another model is not restored (sessions start empty), and says why', async () => {
    const path = join(dir, 'other.bin');
    const store = new MemorySessionStore();
    await store.update('u', () => ({ state: new Float32Array(4), history: [1], model: 'model-A' }));
    await store.snapshot(path, 'model-A', 4);
    const again = new MemorySessionStore();
    expect(await again.restore(path, 'model-B', 4)).toMatch(/made by another model; sessions start empty/);
    expect(await again.size()).toBe(0);
    expect(await again.restore(path, 'model-A', 4)).toBeNull();
    expect(await again.size()).toBe(1);
  });

  it('errors raised in a worker keep their class and code across threads', async () => {
    const snapshot = join(dir, 'bad.bin');
    const modelHash = (await import('node:crypto')).createHash('sha256').update((await import('node:fs')).readFileSync(model)).digest('hex');
    const bad = new Float32Array(encoder.stateSize).fill(Number.NaN);
    writeFileSync(snapshot, pack({ format: 'recscore-sessions', version: 1, model: modelHash, stateSize: encoder.stateSize, entries: [['eve', new Uint8Array(bad.buffer), [1], Date.now()]] }));
    const engine = await ScoringEngine.create({ model, catalogue, threads: 1, sessions: { snapshot } });
    const err = await engine.sessions.recommend('eve', { k: 2 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect((err as InvalidArgumentError).code).toBe('ERR_RECSCORE_INVALID_ARGUMENT');
    expect((err as Error).message).toBe('data[0] is not finite');
    expect((err as Error).stack).toContain('engine.test.ts');
    await engine.close();
  });
});

describe('ScoringEngine observability', () => {
  it('registers metrics in the injected prom-client Registry only, and logs batches', async () => {
    const registry = new Registry();
    const debug: object[] = [];
    const engine = await ScoringEngine.create({ model, catalogue, threads: 1, registry, logger: { debug: (o) => debug.push(o) } });
    await Promise.all(histories(20, 9).map((history) => engine.recommend({ history, k: 2 })));
    const text = await registry.metrics();
    expect(text).toMatch(/recscore_requests_total\{outcome="ok"\} 20/);
    expect(text).toContain('recscore_batch_size_count');
    expect(await globalRegistry.metrics()).not.toContain('recscore_');
    expect(debug.length).toBeGreaterThan(0);
    await engine.close();
  });
});
