/**
 * `recscore demo` (`npm run demo`): the whole pipeline on the bundled example (models/example:
 * an LSTM session model trained with PyTorch on synthetic shop sessions, its item table and
 * sample users), then the scoring kernel at scale on a 1M-item catalogue. No network, no setup.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { Catalogue } from '../catalogue/catalogue.js';
import { defaultThreads } from '../native/cpu_quota.js';
import { Encoder } from '../encoder/encoder.js';
import { ScoringEngine } from '../engine/engine.js';
import { native, packageRoot } from '../native/addon.js';
import { buildCatalogue } from './catalogue_cmd.js';
import { type EvalSession, evaluate } from '../eval/evaluate.js';

function ms(t0: number): string {
  return `${(performance.now() - t0).toFixed(1)} ms`;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1];
}

async function timeIt(f: () => unknown, n: number): Promise<number> {
  await f();
  const t: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await f();
    t.push(performance.now() - t0);
  }
  return median(t);
}

export async function demo(o: { scaleItems: number; out: (s: string) => void }): Promise<void> {
  const say = o.out;
  const ex = join(packageRoot(), 'models', 'example');
  const dir = mkdtempSync(join(tmpdir(), 'recscore-demo-'));
  try {
    say(`recscore demo — level ${native().level}, ${defaultThreads()} threads`);
    say('\n1. The example shop (models/example: 2,000 items in 20 categories, an LSTM trained on sessions)');
    let t0 = performance.now();
    const file = join(dir, 'items.rsc');
    await buildCatalogue({ vectors: join(ex, 'items.npy'), bias: join(ex, 'bias.npy'), precision: 'f32', out: file });
    const category = readFileSync(join(ex, 'categories.txt'), 'utf8').trim().split('\n').map(Number);
    const cat = await Catalogue.open(file);
    const enc = await Encoder.load(join(ex, 'session_lstm.onnx'));
    say(`   catalogue built and memory-mapped, encoder loaded (${enc.backend}): ${ms(t0)}`);

    const users = readFileSync(join(ex, 'users.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { user: string; history: number[] });
    const shown = users.slice(0, 3);
    const vectors = await enc.encode(shown.map((u) => u.history));
    const res = await cat.topKAsync(vectors, { k: 5, exclude: shown.map((u) => u.history) });
    say('\n2. Recommendations (top 5, already-seen items excluded; item:category)');
    shown.forEach((u, i) => {
      const last = u.history.slice(-4).map((id) => `${id}:c${category[id]}`).join(' ');
      const recs = Array.from(res.rows.subarray(i * 5, i * 5 + 5), (r) => `${cat.id(r)}:c${category[r]}`).join(' ');
      say(`   ${u.user} …${last}  ->  ${recs}`);
    });

    say('\n3. A live session, one event at a time (state advanced in O(1) per event)');
    const st = enc.initialState(1);
    const seen: number[] = [];
    for (const id of [17, 905, 1330]) {
      const v = enc.stepSync(st, [id]);
      seen.push(id);
      const r = cat.topK(v, { k: 4, exclude: [seen] });
      say(`   after ${String(id).padStart(4)}:c${String(category[id]).padEnd(2)} -> ${Array.from(r.rows, (x) => `${x}:c${category[x]}`).join(' ')}`);
    }

    say('\n4. Next-item evaluation on 1,000 held-out sessions (k = 20)');
    const sessions = readFileSync(join(ex, 'sessions.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as EvalSession);
    const m = await evaluate({ encoder: enc, catalogue: cat, sessions, k: 20 });
    say(`   Recall@20 ${m.recall.toFixed(3)}  MRR@20 ${m.mrr.toFixed(3)}  NDCG@20 ${m.ndcg.toFixed(3)}  coverage ${(100 * m.coverage).toFixed(1)}%  novelty ${m.novelty.toFixed(2)} bits`);

    say('\n5. Timings (median)');
    const h20 = users.map((u) => [...u.history, ...u.history, ...u.history].slice(0, 20));
    say(`   encode, 1 user, 20 events:       ${(await timeIt(() => enc.encodeSync([h20[0]]), 200)).toFixed(3)} ms`);
    say(`   encode, 256 users, 20 events:    ${(await timeIt(() => enc.encodeSync(h20.slice(0, 256)), 20)).toFixed(2)} ms`);
    say(`   step, 1 event:                   ${((await timeIt(() => enc.stepSync(st, [5]), 2000)) * 1000).toFixed(1)} µs`);
    const engine = await ScoringEngine.create({ model: join(ex, 'session_lstm.onnx'), catalogue: cat });
    await Promise.all(users.slice(0, 8).map((u) => engine.recommend({ history: u.history, k: 20 }))); // workers load the model
    t0 = performance.now();
    await Promise.all(users.map((u) => engine.recommend({ history: u.history, k: 20 })));
    const took = performance.now() - t0;
    say(`   ScoringEngine, 500 concurrent recommends: ${took.toFixed(1)} ms (${Math.round((500 * 1000) / took)} users/s, mean batch ${engine.stats().meanBatchSize.toFixed(1)})`);
    await engine.close();
    await enc.close();
    await cat.close();

    if (o.scaleItems > 0) {
      const N = o.scaleItems;
      const D = 64;
      say(`\n6. The scoring kernel at scale: ${N.toLocaleString()} random items × ${D} dims`);
      let s = 42;
      const rnd = (): number => {
        s ^= s << 13;
        s >>>= 0;
        s ^= s >>> 17;
        s ^= s << 5;
        s >>>= 0;
        return s / 4294967296 - 0.5;
      };
      const vecs = new Float32Array(N * D);
      for (let i = 0; i < vecs.length; i++) vecs[i] = rnd();
      t0 = performance.now();
      const big = Catalogue.fromVectors(vecs, { dim: D, bias: Float32Array.from({ length: N }, () => 0.1 * rnd()) });
      const bigFile = join(dir, 'big.rsc');
      await big.save(bigFile);
      await big.close();
      const mapped = await Catalogue.open(bigFile);
      say(`   built, saved and memory-mapped: ${ms(t0)}`);
      for (const b of [1, 32, 256]) {
        const q = Float32Array.from({ length: b * D }, rnd);
        const t = await timeIt(() => mapped.topK(q, { k: 20 }), b === 256 ? 3 : 5);
        say(
          `   top-20, B = ${String(b).padStart(3)}: ${t.toFixed(1).padStart(7)} ms  ${String(Math.round((b * 1000) / t)).padStart(6)} users/s  ` +
            `${((2 * b * N * D) / t / 1e6).toFixed(1)} GFLOP/s  ${((N * D * 4) / t / 1e6).toFixed(1)} GB/s scanned`,
        );
      }
      await mapped.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
