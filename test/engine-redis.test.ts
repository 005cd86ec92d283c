// ScoringEngine with a RedisSessionStore (issue #15): two engine processes share live sessions
// through a real redis-server with no event lost; a Redis that goes away fails session calls with
// ERR_SESSION_STORE while stateless recommend keeps serving, and sessions work again once it is
// back. References: the library's encode + topK over the stored history (independent of the
// engine's batcher, workers and store).
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { Catalogue, Encoder, RedisSessionStore, ScoringEngine, SessionStoreError } from '../src/index.js';
import { randomMatrix } from './helpers.js';
import { type RedisServer, redisServerPath, startRedis } from './redis-server.js';

const model = new URL('../models/fixtures/bench_lstm2x128.onnx', import.meta.url).pathname;
const dist = new URL('../dist/index.js', import.meta.url).pathname;
const N = 2000;
const D = 64;
const dir = mkdtempSync(join(tmpdir(), 'recscore-engine-redis-'));
const why = redisServerPath() ? null : 'redis-server is not on PATH (.ci/run installs the Debian package)';
if (why) console.log(`skipping the engine's Redis tests: ${why}`);

let server: RedisServer;
let catalogue: Catalogue;
let catPath: string;
let encoder: Encoder;

beforeAll(async () => {
  if (why) return;
  server = await startRedis();
  catalogue = Catalogue.fromVectors(randomMatrix(N, D, 31), { dim: D });
  catPath = join(dir, 'items.rsc');
  await catalogue.save(catPath);
  encoder = await Encoder.load(model, { threads: 1 });
});
afterAll(async () => {
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function direct(h: number[], k: number): Promise<number[]> {
  return Array.from(catalogue.topK(await encoder.encode([h]), { k, exclude: [h] }).rows);
}

describe.skipIf(why !== null)('ScoringEngine sessions in Redis', () => {
  it('two engine processes pushing to one user concurrently lose no event', async () => {
    const prefix = `two:${Date.now()}:`;
    const child = join(dir, 'child.mjs');
    writeFileSync(
      child,
      `import { RedisSessionStore, ScoringEngine } from ${JSON.stringify(dist)};
const [url, prefix, model, catalogue] = process.argv.slice(2);
const store = new RedisSessionStore({ url, prefix, historyLimit: 1000 });
const engine = await ScoringEngine.create({ model, catalogue, threads: 1, sessions: { store } });
console.log('ready');
for await (const line of (await import('node:readline')).createInterface({ input: process.stdin })) if (line === 'go') break;
process.stdin.destroy();
const r = await Promise.allSettled(Array.from({ length: 60 }, (_, i) => engine.sessions.push('shared', [1000 + i])));
console.log(JSON.stringify({ ok: r.filter((x) => x.status === 'fulfilled').length, errors: r.filter((x) => x.status === 'rejected').map((x) => String(x.reason)) }));
await engine.close();
await store.close();
`,
    );
    const store = new RedisSessionStore({ url: server.url(), prefix, historyLimit: 1000 });
    const engine = await ScoringEngine.create({ model, catalogue: catPath, threads: 1, sessions: { store } });
    const proc = spawn(process.execPath, [child, server.url(), prefix, model, catPath], { stdio: ['pipe', 'pipe', 'inherit'] });
    const lines = createInterface({ input: proc.stdout! })[Symbol.asyncIterator]();
    expect((await lines.next()).value).toBe('ready');
    proc.stdin!.write('go\n');
    const mine = await Promise.allSettled(Array.from({ length: 60 }, (_, i) => engine.sessions.push('shared', [i])));
    const theirs = JSON.parse((await lines.next()).value as string) as { ok: number; errors: string[] };
    expect(mine.filter((r) => r.status === 'rejected')).toEqual([]);
    expect(theirs).toEqual({ ok: 60, errors: [] });
    const rec = await store.get('shared');
    expect(rec!.history.length).toBe(120);
    expect(new Set(rec!.history)).toEqual(new Set([...Array.from({ length: 60 }, (_, i) => i), ...Array.from({ length: 60 }, (_, i) => 1000 + i)]));
    expect(rec!.version).toBe(120);
    // The stored state is the model run over the stored history, in its order.
    const h = rec!.history as number[];
    expect((await engine.sessions.recommend('shared', { k: 8 })).items.map((x) => x.id)).toEqual(await direct(h, 8));
    await engine.close();
    await store.close();
  });

  it('a Redis that goes away fails session calls with ERR_SESSION_STORE; stateless recommend keeps serving; sessions come back', async () => {
    const store = new RedisSessionStore({ url: server.url(), prefix: `down:${Date.now()}:`, commandTimeoutMs: 500 });
    const engine = await ScoringEngine.create({ model, catalogue, threads: 1, sessions: { store } });
    await engine.sessions.push('u', [1, 2, 3]);
    await server.kill();
    const err = await engine.sessions.push('u', [4]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SessionStoreError);
    expect((err as SessionStoreError).code).toBe('ERR_SESSION_STORE');
    await expect(engine.sessions.recommend('u', { k: 3 })).rejects.toBeInstanceOf(SessionStoreError);
    expect((await engine.recommend({ history: [1, 2, 3], k: 3 })).items.map((x) => x.id)).toEqual(await direct([1, 2, 3], 3));
    expect(engine.stats().storeErrors).toBeGreaterThanOrEqual(2);
    await server.restart();
    let back: unknown = null;
    for (let i = 0; i < 50 && back === null; i++) {
      back = await engine.sessions.recommend('u', { k: 3 }).catch(() => null);
      if (back === null) await new Promise((r) => setTimeout(r, 100));
    }
    // The restarted server is empty (no persistence): the user is a new session; nothing half-written.
    expect(back).not.toBeNull();
    await engine.sessions.push('u', [7, 8]);
    const rec = await store.get('u');
    expect([rec!.history, rec!.version]).toEqual([[7, 8], 1]);
    expect((await engine.sessions.recommend('u', { k: 4 })).items.map((x) => x.id)).toEqual(await direct([7, 8], 4));
    await engine.close();
    await store.close();
  });
});
