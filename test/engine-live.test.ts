// ScoringEngine for services (issue #15): sessions through the batcher, live catalogue and model
// swaps under load, attribute flags changed live, close with a deadline, stats and metrics.
// References: the library's own encode + topK on the whole history (an independent path: no
// batcher, no worker, no session store), computed here.
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { fromBinary, toBinary } from '@bufbuild/protobuf';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { Catalogue, ClosedError, Encoder, InvalidArgumentError, QueueFullError, ScoringEngine } from '../src/index.js';
import { ModelProtoSchema } from '../src/onnx/proto/onnx_pb.js';
import { randomMatrix, rng } from './helpers.js';

const model = new URL('../models/fixtures/bench_lstm2x128.onnx', import.meta.url).pathname;
const N = 3000;
const D = 64;
const dir = mkdtempSync(join(tmpdir(), 'recscore-live-'));
let catA: Catalogue;
let catB: Catalogue;
let encoder: Encoder;
let model2: string;
let encoder2: Encoder;

beforeAll(async () => {
  const attrs = Uint32Array.from({ length: N }, (_, j) => j % 3);
  catA = Catalogue.fromVectors(randomMatrix(N, D, 11), { dim: D, bias: randomMatrix(N, 1, 12), attributes: attrs });
  catB = Catalogue.fromVectors(randomMatrix(N, D, 13), { dim: D, attributes: attrs });
  encoder = await Encoder.load(model, { threads: 1 });
  // A second model: the same graph with its last float initializer negated (another file,
  // another hash, other vectors).
  const m = fromBinary(ModelProtoSchema, readFileSync(model));
  const t = [...(m.graph?.initializer ?? [])].reverse().find((x) => x.dataType === 1 && x.rawData.length >= 4);
  if (!t) throw new Error('no float initializer to change');
  const f = new Float32Array(Uint8Array.from(t.rawData).buffer);
  for (let i = 0; i < f.length; i++) f[i] = -f[i];
  t.rawData = new Uint8Array(f.buffer);
  model2 = join(dir, 'model2.onnx');
  writeFileSync(model2, toBinary(ModelProtoSchema, m));
  encoder2 = await Encoder.load(model2, { threads: 1 });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function histories(n: number, seed: number): number[][] {
  const r = rng(seed);
  return Array.from({ length: n }, () => Array.from({ length: 1 + Math.floor(r() * 8) }, () => Math.floor(r() * 2500)));
}

async function direct(enc: Encoder, cat: Catalogue, h: number[], k: number, opts: { filter?: { noneOf?: number } } = {}): Promise<number[]> {
  const res = cat.topK(await enc.encode([h]), { k, exclude: [h], ...opts });
  return Array.from(res.rows).filter((r) => r >= 0);
}

const ids = (r: { items: Array<{ id: number | string }> }): Array<number | string> => r.items.map((x) => x.id);

describe('sessions through the batcher', () => {
  it('sessions.recommend joins native batches and takes every recommend option', async () => {
    const engine = await ScoringEngine.create({ model, catalogue: catA, threads: 2, maxBatch: 64 });
    expect(encoder2.dim).toBe(D);
    const hs = histories(200, 5);
    await Promise.all(hs.map((h, u) => engine.sessions.push(`u${u}`, h)));
    const before = engine.stats().batches;
    const answers = await Promise.all(hs.map((_, u) => engine.sessions.recommend(`u${u}`, { k: 7 })));
    const st = engine.stats();
    expect(st.batches - before).toBeLessThan(200); // batched, not one native call each
    expect(st.sessionAnswers).toBe(200);
    expect(st.sessionEvents).toBe(hs.reduce((a, h) => a + h.length, 0));
    for (const u of [0, 17, 199]) expect(ids(answers[u])).toEqual(await direct(encoder, catA, hs[u], 7));
    // filter, exclude, signal
    const f = await engine.sessions.recommend('u3', { k: 5, filter: { noneOf: 1 } });
    expect(ids(f)).toEqual(await direct(encoder, catA, hs[3], 5, { filter: { noneOf: 1 } }));
    const none = await engine.sessions.recommend('u3', { k: 5, exclude: 'none' });
    expect(ids(none)).toEqual(Array.from(catA.topK(await encoder.encode([hs[3]]), { k: 5 }).rows));
    const ac = new AbortController();
    ac.abort(new Error('gone'));
    await expect(engine.sessions.recommend('u3', { k: 5, signal: ac.signal })).rejects.toMatchObject({ code: 'ABORT_ERR' });
    await expect(engine.sessions.recommend('u3', { k: 0 })).rejects.toThrow('options.k must be a positive integer');
    await engine.close();
  });

  it('maxQueue refuses session requests too (ERR_QUEUE_FULL)', async () => {
    const engine = await ScoringEngine.create({ model, catalogue: catA, threads: 1, maxQueue: 5 });
    await engine.sessions.push('q', [1, 2]);
    const all = await Promise.allSettled(Array.from({ length: 60 }, () => engine.sessions.recommend('q', { k: 3 }).then(() => engine.recommend({ history: [1], k: 3 }))).concat(Array.from({ length: 60 }, () => engine.recommend({ history: [2], k: 3 }))));
    const full = all.filter((r) => r.status === 'rejected' && (r.reason as { code?: string }).code === 'ERR_QUEUE_FULL');
    expect(full.length).toBeGreaterThan(0);
    expect(full.every((r) => (r as PromiseRejectedResult).reason instanceof QueueFullError)).toBe(true);
    await engine.close();
  });
});

describe('live updates', () => {
  it('10 catalogue swaps under 256 concurrent clients fail nothing; every answer is one version\'s', async () => {
    const engine = await ScoringEngine.create({ model, catalogue: catA, threads: 2 });
    const hs = histories(32, 9);
    const want = new Map<string, string>();
    for (const [name, cat] of [['A', catA], ['B', catB]] as const) {
      for (let u = 0; u < hs.length; u++) want.set(`${name}${u}`, (await direct(encoder, cat, hs[u], 5)).join());
    }
    let stop = false;
    let answered = 0;
    const failures: unknown[] = [];
    const client = async (c: number): Promise<void> => {
      while (!stop) {
        const u = (c + answered) % hs.length;
        try {
          const got = ids(await engine.recommend({ history: hs[u], k: 5 })).join();
          if (got !== want.get(`A${u}`) && got !== want.get(`B${u}`)) failures.push(new Error(`user ${u}: ${got} is neither version's`));
          answered++;
        } catch (e) {
          failures.push(e);
        }
      }
    };
    const clients = Array.from({ length: 256 }, (_, c) => client(c));
    for (let i = 0; i < 10; i++) {
      const next = i % 2 === 0 ? catB : catA;
      await engine.update({ catalogue: next });
      expect(engine.catalogue).toBe(next);
      // Once update() resolves, requests go to the new version.
      expect(ids(await engine.recommend({ history: hs[0], k: 5 })).join()).toBe(want.get(`${next === catA ? 'A' : 'B'}0`));
    }
    stop = true;
    await Promise.all(clients);
    expect(failures).toEqual([]);
    expect(answered).toBeGreaterThan(256);
    expect(engine.stats().swaps).toBe(10);
    await engine.close();
    expect(catA.closed).toBe(false); // given catalogues are the caller's
  });

  it('swaps catalogue files: opened and verified once on the main thread, the old file closed after its last answer', async () => {
    const pathA = join(dir, 'a.rsc');
    const pathB = join(dir, 'b.rsc');
    await catA.save(pathA);
    await catB.save(pathB);
    const engine = await ScoringEngine.create({ model, catalogue: pathA, threads: 2 });
    const first = engine.catalogue;
    const h = [4, 5, 6];
    const inFlight = Array.from({ length: 64 }, () => engine.recommend({ history: h, k: 5 }));
    await engine.update({ catalogue: pathB });
    // Accepted before the swap: answered by the old version.
    const onA = await direct(encoder, catA, h, 5);
    for (const r of await Promise.all(inFlight)) expect(ids(r)).toEqual(onA);
    expect(first.closed).toBe(true); // the engine opened it, and retired it after the swap
    expect(engine.catalogue.path).toBe(pathB);
    expect(ids(await engine.recommend({ history: h, k: 5 }))).toEqual(await direct(encoder, catB, h, 5));
    await expect(engine.update({ catalogue: join(dir, 'missing.rsc') })).rejects.toMatchObject({ code: 'ERR_RECSCORE_FILE' });
    expect(ids(await engine.recommend({ history: h, k: 5 }))).toEqual(await direct(encoder, catB, h, 5)); // a failed update changes nothing
    await engine.close();
    expect(engine.catalogue.closed).toBe(true);
  });

  it('a model swap re-encodes live sessions from their recent items', async () => {
    const engine = await ScoringEngine.create({ model, catalogue: catA, threads: 1 });
    const h = [5, 8, 13, 21, 34];
    await engine.sessions.push('m', h);
    expect(ids(await engine.sessions.recommend('m', { k: 6 }))).toEqual(await direct(encoder, catA, h, 6));
    await engine.update({ model: model2 });
    const after = ids(await engine.sessions.recommend('m', { k: 6 }));
    expect(after).toEqual(await direct(encoder2, catA, h, 6));
    expect(after).not.toEqual(await direct(encoder, catA, h, 6));
    await engine.sessions.push('m', [55]);
    expect(ids(await engine.sessions.recommend('m', { k: 6 }))).toEqual(await direct(encoder2, catA, [...h, 55], 6));
    await expect(engine.update({})).rejects.toThrow('change must name a catalogue, a model or both');
    await expect(engine.update({ model: 3 as unknown as string })).rejects.toThrow('change.model must be a path or a Uint8Array, got 3');
    await engine.close();
  });

  it('setAttributes changes flags in every worker for the next request', async () => {
    const cat = Catalogue.fromVectors(randomMatrix(N, D, 21), { dim: D, attributes: new Uint32Array(N) });
    const engine = await ScoringEngine.create({ model, catalogue: cat, threads: 2 });
    const h = [1, 2, 3];
    const top = await direct(encoder, cat, h, 3);
    engine.setAttributes(top, 1); // out of stock
    for (let i = 0; i < 4; i++) {
      // Each request may land on either worker.
      const got = ids(await engine.recommend({ history: h, k: 3, filter: { noneOf: 1 } }));
      expect(got.some((id) => top.includes(id as number))).toBe(false);
      expect(got).toEqual(await direct(encoder, cat, h, 3, { filter: { noneOf: 1 } }));
    }
    engine.setAttributes(top, [0, 0, 0]);
    expect(ids(await engine.recommend({ history: h, k: 3, filter: { noneOf: 1 } }))).toEqual(top);
    expect(() => engine.setAttributes(top, [1])).toThrow('bits has 1 entries for 3 ids');
    expect(() => engine.setAttributes([N + 5], 1)).toThrow(`ids[0] = ${N + 5} is not in the catalogue`);
    expect(() => engine.setAttributes(top, -1)).toThrow(InvalidArgumentError);
    await engine.close();
    const plain = await ScoringEngine.create({ model, catalogue: Catalogue.fromVectors(randomMatrix(50, D, 3), { dim: D }), threads: 1 });
    expect(() => plain.setAttributes([1], 1)).toThrow('setAttributes needs a catalogue built with attributes');
    await plain.close();
  });
});

describe('start, stop and observability', () => {
  it('reports time to ready and per-worker counts, extends the metrics, and close() keeps a deadline', async () => {
    const registry = new Registry();
    const engine = await ScoringEngine.create({ model, catalogue: catA, threads: 2, registry });
    const st0 = engine.stats();
    expect(st0.readyMs).toBeGreaterThan(0);
    expect(st0.workersReadyMs).toBeGreaterThan(0);
    await Promise.all(histories(300, 3).map((history) => engine.recommend({ history, k: 4 })));
    await engine.sessions.push('s', [1, 2]);
    await engine.sessions.recommend('s', { k: 2 });
    const st = engine.stats();
    expect(st.workers.reduce((a, w) => a + w.requests, 0)).toBe(301);
    expect(st.workers.every((w) => w.batches > 0 && w.requests >= w.batches)).toBe(true);
    expect(st.latencyMs.p99).toBeGreaterThanOrEqual(st.latencyMs.p50);
    const text = await registry.metrics();
    expect(text).toMatch(/recscore_session_events_total 2/);
    expect(text).toMatch(/recscore_session_answers_total 1/);
    expect(text).toMatch(/recscore_swaps_total 0/);
    expect(text).toMatch(/recscore_session_store_errors_total 0/);
    // A deadline: what is still queued after it is refused, and close() returns.
    const many = Promise.allSettled(histories(2000, 4).map((history) => engine.recommend({ history, k: 4 })));
    await engine.close({ timeoutMs: 0 });
    const settled = await many;
    const refused = settled.filter((r) => r.status === 'rejected');
    expect(refused.every((r) => (r as PromiseRejectedResult).reason instanceof ClosedError)).toBe(true);
    expect(refused.length).toBeGreaterThan(0);
    await expect(engine.recommend({ history: [1], k: 1 })).rejects.toBeInstanceOf(ClosedError);
  });
});
