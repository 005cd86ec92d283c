import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';

import { afterAll, describe, expect, it } from 'vitest';

import { Catalogue } from '../src/index.js';
import { randomMatrix } from './helpers.js';

const dist = new URL('../dist/index.cjs', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'recscore-worker-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// Each worker loads the addon itself (its own Node-API environment), maps the same catalogue
// file, wraps the same shared matrix, and scores; all of them at once.
const workerCode = `
const { parentPort, workerData } = require('node:worker_threads');
const { Catalogue } = require(workerData.dist);
(async () => {
  const { path, shared, users, k } = workerData;
  const mapped = await Catalogue.open(path);
  const inMemory = await Catalogue._fromShared(shared);
  const results = [];
  for (let i = 0; i < 5; i++) {
    results.push(mapped.topK(users, { k, threads: 1 }));
    results.push(await mapped.topKAsync(users, { k }));
    results.push(inMemory.topK(users, { k, threads: 1 }));
  }
  await mapped.close();
  parentPort.postMessage(results);
})().catch((e) => { throw e; });
`;

function runWorker(data: object): Promise<Array<{ k: number; rows: Int32Array; scores: Float32Array }>> {
  return new Promise((resolve, reject) => {
    const w = new Worker(workerCode, { eval: true, workerData: data });
    w.once('message', resolve);
    w.once('error', reject);
    w.once('exit', (code) => {
      if (code !== 0) reject(new Error(`worker exited with ${code}`));
    });
  });
}

const encoderWorkerCode = `
const { parentPort, workerData } = require('node:worker_threads');
const { Encoder } = require(workerData.dist);
(async () => {
  const enc = await Encoder.load(workerData.model, { threads: 2 });
  const out = [await enc.encode(workerData.histories), enc.encodeSync(workerData.histories)];
  const st = enc.initialState(1);
  for (const id of workerData.histories[0]) out.push(enc.stepSync(st, [id]));
  parentPort.postMessage(out);
})().catch((e) => { throw e; });
`;

describe('the addon in worker threads', () => {
  it('encoders with their own thread teams run in several workers at once and exit cleanly', async () => {
    const { Encoder } = await import('../src/index.js');
    const model = new URL('../models/fixtures/lstm2_bf_ylast_sigmoid.onnx', import.meta.url).pathname;
    const histories = [[1, 2, 3, 4], [5], [], [7, 8, 9, 10, 11, 12]];
    const enc = await Encoder.load(model, { threads: 1 });
    const expected = await enc.encode(histories);
    const results = await Promise.all(
      Array.from({ length: 3 }, () =>
        new Promise<Float32Array[]>((resolve, reject) => {
          const w = new Worker(encoderWorkerCode, { eval: true, workerData: { dist, model, histories } });
          w.once('message', (m: Float32Array[]) => {
            resolve(m);
            void w.terminate();
          });
          w.once('error', reject);
        }),
      ),
    );
    for (const r of results) {
      expect(r[0]).toEqual(expected);
      expect(r[1]).toEqual(expected);
      expect(r[r.length - 1]).toEqual(expected.subarray(0, 6));
    }
  });

  it('loads and scores in several workers at once, each result equal to the main thread', async () => {
    expect(existsSync(dist), `${dist} is missing: npm install builds it (npm run build)`).toBe(true);
    const dim = 24;
    const items = randomMatrix(30_000, dim, 61);
    const cat = Catalogue.fromVectors(items, { dim });
    const path = join(dir, 'w.rsc');
    await cat.save(path);
    const users = randomMatrix(6, dim, 62);
    const expected = cat.topK(users, { k: 12 });
    const shared = cat._share(); // the panels in shared memory: workers see them without a copy
    if (shared.kind !== 'memory') throw new Error('expected an in-memory share');
    expect(shared.panels.buffer).toBeInstanceOf(SharedArrayBuffer);
    const all = await Promise.all(
      Array.from({ length: 4 }, () => runWorker({ dist, path, shared, users, k: 12 })),
    );
    for (const results of all) {
      expect(results).toHaveLength(15);
      for (const r of results) {
        expect(r.k).toBe(12);
        expect(r.rows).toEqual(expected.rows);
        expect(r.scores).toEqual(expected.scores);
      }
    }
  });
});
