// ScoringEngine for services (issue #15): recommend() and sessions.recommend() at 1, 16 and 256
// concurrent clients (closed loop), session pushes (events/s, 1,000 users) with the in-process
// store and with Redis on loopback, p50/p99 latency, against onnxruntime-node as the peer: the
// same encoder model in an InferenceSession plus a Gemm + TopK graph, batched by the same kind of
// harness (concurrent requests queue; one session.run per batch of up to 64, padded to the
// nearest compiled batch size), and for pushes the encoder re-run on the user's whole history
// (onnxruntime has no state to step). Same process, histories and catalogue.
//   node bench/engine-sessions.mjs [--quick] [--threads=2]   (needs dist/: npx tsup)
// Prints a table and writes bench/results/engine-sessions-<date>.json.
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';

import { closedLoop } from './engine.mjs';
import { scoringModel } from './onnx-graphs.mjs';
import { ROOT, fmt, prng, require, textTable, uniform } from './lib.mjs';

const MODEL = join(ROOT, 'models', 'fixtures', 'bench_lstm2x128.onnx');
const D = 64;
const T = 20;
const K = 20;
const USERS = 1000;

/** A micro-batcher like the engine's: requests queue, one run per batch (at most `max`) while none is in flight. */
function batched(runBatch, max = 64) {
  let queue = [];
  let busy = false;
  const pump = async () => {
    if (busy || queue.length === 0) return;
    busy = true;
    const batch = queue.slice(0, max);
    queue = queue.slice(max);
    try {
      const out = await runBatch(batch.map((q) => q.h));
      batch.forEach((q, i) => q.resolve(out[i]));
    } catch (e) {
      for (const q of batch) q.reject(e);
    }
    busy = false;
    setImmediate(pump);
  };
  return (h) =>
    new Promise((resolve, reject) => {
      queue.push({ h, resolve, reject });
      setImmediate(pump);
    });
}

async function ortPeer(ort, threads, N, items, bias) {
  const so = { intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all' };
  const enc = await ort.InferenceSession.create(MODEL, so);
  const score = await ort.InferenceSession.create(scoringModel({ B: 'batch', N, d: D, k: K, items, bias }), so);
  return batched(async (hs) => {
    // Histories of equal length here (T events); onnxruntime takes one [B, T] tensor.
    const ids = new ort.Tensor('int64', BigInt64Array.from(hs.flat(), (v) => BigInt(v)), [hs.length, hs[0].length]);
    const users = (await enc.run({ items: ids })).user;
    const out = await score.run({ users: new ort.Tensor('float32', users.data, [hs.length, D]) });
    return hs.map((_, u) => out.indices.data.subarray(u * K, (u + 1) * K));
  });
}

async function freePort() {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function startRedis() {
  const port = await freePort();
  const proc = spawn('redis-server', ['--port', String(port), '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  const failed = new Promise((resolve) => proc.on('error', (e) => resolve(e)));
  for (let i = 0; i < 50; i++) {
    const up = await new Promise((resolve) => {
      const c = require('node:net').connect(port, '127.0.0.1', () => (c.end(), resolve(true)));
      c.on('error', () => resolve(false));
    });
    if (up) return { url: `redis://127.0.0.1:${port}`, stop: () => proc.kill('SIGKILL') };
    const e = await Promise.race([failed, new Promise((r) => setTimeout(() => r(null), 100))]);
    if (e) return { skip: `redis-server could not start: ${e.message}` };
  }
  proc.kill('SIGKILL');
  return { skip: 'redis-server did not accept connections within 5 s' };
}

/** Pushes: `clients` concurrent pushers, one event each to a random user of USERS, for `events` events. */
async function pushLoop(push, clients, events, seed) {
  const next = prng(seed);
  let left = events;
  const lat = [];
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (left-- > 0) {
        const s = performance.now();
        await push(next() % USERS, next() % 5000);
        lat.push(performance.now() - s);
      }
    }),
  );
  const wall = performance.now() - t0;
  lat.sort((a, b) => a - b);
  const q = (f) => lat[Math.min(lat.length - 1, Math.floor(f * lat.length))];
  return { perSec: (events * 1000) / wall, p50: q(0.5), p99: q(0.99) };
}

export async function runEngineSessions({ threads = 2, quick = false } = {}) {
  const { Catalogue, ScoringEngine, RedisSessionStore } = await import(join(ROOT, 'dist', 'index.js'));
  const ort = require('onnxruntime-node');
  const next = prng(17);
  const histories = Array.from({ length: USERS }, () => Array.from({ length: T }, () => next() % 5000));
  const N = quick ? 20_000 : 200_000;
  const items = uniform(N * D, 23);
  const bias = uniform(N, 24);
  const catalogue = Catalogue.fromVectors(items, { dim: D, bias });
  const peer = await ortPeer(ort, threads, N, items, bias);
  const rows = [];
  const stores = [['memory', null]];
  const redis = RedisSessionStore ? await startRedis() : { skip: 'RedisSessionStore is not in dist/' };
  if (redis.url) stores.push(['redis', redis.url]);
  else console.log(`  redis: skipped (${redis.skip})`);
  for (const [kind, url] of stores) {
    const store = url ? new RedisSessionStore({ url, prefix: `bench:${Date.now()}:` }) : undefined;
    const engine = await ScoringEngine.create({ model: MODEL, catalogue, threads, sessions: store ? { store } : {} });
    // Sessions: every user's history pushed once (also the push benchmark's starting state).
    await Promise.all(histories.map((h, u) => engine.sessions.push(u, h)));
    let user = 0;
    const stateless = (h) => engine.recommend({ history: h, k: K, exclude: 'none' });
    const session = () => engine.sessions.recommend(user++ % USERS, { k: K, exclude: 'none' });
    // The same answers: a session's recommendation equals the stateless one on its history.
    let mismatches = 0;
    for (let u = 0; u < 4; u++) {
      const a = (await engine.sessions.recommend(u, { k: K, exclude: 'none' })).items.map((x) => x.id).join();
      const b = (await stateless(histories[u])).items.map((x) => x.id).join();
      const c = Array.from(await peer(histories[u]), Number).join();
      if (a !== b || b !== c) mismatches++;
    }
    for (const C of [1, 16, 256]) {
      const per = Math.max(4, Math.round((quick ? 60 : 200) / Math.sqrt(C)));
      if (kind === 'memory') {
        await closedLoop(stateless, C, 1, histories);
        const r = await closedLoop(stateless, C, per, histories);
        const p = await closedLoop(peer, C, per, histories);
        rows.push({ case: 'recommend', store: '', clients: C, 'req/s': fmt(r.reqPerSec, 0), 'p50 ms': fmt(r.p50), 'p99 ms': fmt(r.p99), 'ORT req/s': fmt(p.reqPerSec, 0), 'ORT p99 ms': fmt(p.p99), 'vs ORT': `${fmt(r.reqPerSec / p.reqPerSec)}x`, 'vs recommend': '', raw: { kind: 'recommend', C, N, ours: r, ort: p, mismatches } });
      }
      await closedLoop(session, C, 1, histories);
      const s = await closedLoop(session, C, per, histories);
      const p = await closedLoop(peer, C, per, histories);
      const base = rows.find((x) => x.raw.kind === 'recommend' && x.raw.C === C);
      rows.push({ case: 'sessions.recommend', store: kind, clients: C, 'req/s': fmt(s.reqPerSec, 0), 'p50 ms': fmt(s.p50), 'p99 ms': fmt(s.p99), 'ORT req/s': fmt(p.reqPerSec, 0), 'ORT p99 ms': fmt(p.p99), 'vs ORT': `${fmt(s.reqPerSec / p.reqPerSec)}x`, 'vs recommend': base ? `${fmt(s.reqPerSec / base.raw.ours.reqPerSec)}x` : '', raw: { kind: `sessions.recommend/${kind}`, C, N, ours: s, ort: p, mismatches } });
    }
    // Pushes: 256 concurrent pushers, one event each, 1,000 users. The peer re-encodes the user's
    // whole (sliding) history per event, batched: what a stateless service would do.
    const events = quick ? 4000 : 20000;
    const pushed = await pushLoop((u, item) => engine.sessions.push(u, [item]), 256, events, 5);
    const windows = histories.map((h) => h.slice());
    const ortPush = await pushLoop((u, item) => {
      windows[u] = [...windows[u].slice(1), item];
      return peer(windows[u]);
    }, 256, Math.round(events / 4), 6);
    rows.push({ case: 'push (1 event)', store: kind, clients: 256, 'req/s': fmt(pushed.perSec, 0), 'p50 ms': fmt(pushed.p50), 'p99 ms': fmt(pushed.p99), 'ORT req/s': fmt(ortPush.perSec, 0), 'ORT p99 ms': fmt(ortPush.p99), 'vs ORT': `${fmt(pushed.perSec / ortPush.perSec)}x`, 'vs recommend': '', raw: { kind: `push/${kind}`, C: 256, N, ours: pushed, ort: ortPush, mismatches } });
    await engine.close();
    await store?.close();
  }
  redis.stop?.();
  await catalogue.close();
  return rows;
}

export function engineSessionsTable(rows) {
  return textTable(rows.map(({ raw, ...r }) => r));
}

/** Writes bench/results/engine-sessions-<date>.json (what bench/report.mjs reads); returns its path. */
export function writeEngineSessions(rows, threads) {
  mkdirSync(join(ROOT, 'bench', 'results'), { recursive: true });
  const out = join(ROOT, 'bench', 'results', `engine-sessions-${new Date().toISOString().slice(0, 10)}.json`);
  writeFileSync(out, JSON.stringify({ suite: 'engine-sessions', threads, date: new Date().toISOString(), rows: rows.map((r) => r.raw) }, null, 2));
  return out;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const threads = Number((process.argv.find((a) => a.startsWith('--threads=')) ?? '--threads=2').split('=')[1]);
  const rows = await runEngineSessions({ threads, quick: process.argv.includes('--quick') });
  console.log(engineSessionsTable(rows));
  const bad = rows.filter((r) => r.raw.mismatches > 0);
  if (bad.length) console.log(`top-k mismatches (session vs stateless vs ORT): ${bad.map((r) => `${r.case}/${r.store}: ${r.raw.mismatches}/4`).join(', ')}`);
  console.log(`wrote ${writeEngineSessions(rows, threads)}`);
}
