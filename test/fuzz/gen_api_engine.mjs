/**
 * Family c (gen_api.mjs): the ScoringEngine targets: create, restoring from a corrupted session
 * snapshot, recommend and recommendBatch, and the live sessions. recommend is checked against the
 * encoder plus the catalogue in this process.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { pack, unpack } from 'msgpackr';

import { Wrong, isTyped, rejected, show, wrong } from './common.mjs';
import { N, arrayOrNull, maybe, nasty } from './gen_api_values.mjs';

async function engineOf(ctx) {
  const s = ctx.shared;
  if (!s.engine) s.engine = await ctx.lib.ScoringEngine.create({ model: s.files.lstm1, catalogue: s.cats.mem.cat, threads: 1 });
  return s.engine;
}

/** A valid session snapshot (made once per process), for corrupting. */
async function snapshotBytes(ctx) {
  const s = ctx.shared;
  if (!s.snapshot) {
    const p = join(ctx.tmp, 'env', 'sessions.bin');
    const e = await ctx.lib.ScoringEngine.create({ model: s.files.lstm1, catalogue: s.cats.mem.cat, threads: 1, sessions: { snapshot: p } });
    await e.sessions.push('alice', [1, 2, 3]);
    await e.sessions.push(7, [4]);
    await e.sessions.push('bob', [5, 6]);
    await e.close();
    s.snapshot = new Uint8Array(readFileSync(p));
  }
  return s.snapshot;
}

export const ENGINE_TARGETS = {
  async engineCreate(ctx, rng) {
    const s = ctx.shared;
    const o = { model: s.files.lstm1, catalogue: s.cats.mem.cat, threads: 1 };
    const fields = rng.int(1, 2);
    const what = [];
    for (let i = 0; i < fields; i++) {
      const f = rng.pick(['model', 'catalogue', 'threads', 'maxBatch', 'maxDelayMs', 'maxQueue', 'vocabulary', 'sessions', 'snapshot', 'snapshot', 'backend', 'logger', 'registry']);
      if (f === 'threads') o.threads = rng.pick([0, -1, 1.5, NaN, 100_000, 2 ** 31, '1', null]);
      else if (f === 'model') o.model = rng.pick([s.files.dir, s.files.fifo, s.files.missing, s.files.garbage, s.files.bilstm, nasty(rng)]);
      else if (f === 'catalogue') o.catalogue = rng.pick([s.files.dir, s.files.fifo, s.files.missing, s.files.garbage, s.files.int8, nasty(rng)]);
      else if (f === 'maxBatch' || f === 'maxQueue') o[f] = rng.pick([0, -1, 1.5, 2 ** 53, 1e9, nasty(rng)]);
      else if (f === 'maxDelayMs') o.maxDelayMs = rng.pick([-1, NaN, Infinity, 2 ** 31, 1e12, nasty(rng)]);
      else if (f === 'vocabulary') o.vocabulary = rng.pick([nasty(rng), new Map([[0, -1]]), new Map([['a', 1.5]]), [0, 0, 1], { 0: 'x' }, new Map([[0, 2 ** 40]]), Array.from({ length: 40 }, (_, i) => i)]);
      else if (f === 'sessions') o.sessions = rng.pick([nasty(rng), { maxSessions: rng.pick([-1, 0, 1.5, NaN, 1e12]) }, { ttlMs: rng.pick([-1, NaN, Infinity]) }, { historyLimit: rng.pick([-1, 0, 1e9, 1.5]) }, { snapshot: rng.pick([s.files.dir, s.files.fifo, nasty(rng)]) }]);
      else if (f === 'snapshot') {
        const snap = Uint8Array.from(await snapshotBytes(ctx));
        const p = join(ctx.caseDir, 'sessions.bin');
        writeFileSync(p, corruptSnapshot(rng, snap, what));
        o.sessions = { snapshot: p };
      } else if (f === 'backend') o.backend = nasty(rng);
      else if (f === 'logger') o.logger = rng.pick([nasty(rng), { info: 1 }, { warn: 'x', error: null }]);
      else o.registry = rng.pick([nasty(rng), {}, { registerMetric: 1 }]);
      if (f !== 'snapshot') what.push(`${f}: ${show(f === 'sessions' ? o.sessions : o[f], 50)}`);
    }
    const opts = rng.bool(0.05) ? nasty(rng) : o;
    const kind = `ScoringEngine.create(${opts === o ? `{${what.join(', ')}}` : show(opts)})`;
    ctx.kind = kind;
    let engine;
    try {
      engine = await ctx.lib.ScoringEngine.create(opts);
    } catch (e) {
      return { ...rejected(e), kind };
    }
    try {
      if (opts !== o) wrong(`accepted options ${show(opts)}`);
      if (!(Number.isSafeInteger(o.threads) && o.threads > 0 && o.threads <= 1024)) wrong(`accepted threads ${show(o.threads)}`);
      const r = await engine.recommend({ history: [1, 2], k: 3 });
      if (!Array.isArray(r?.items) || r.items.length > 3) wrong(`recommend returned ${show(r)}`);
      if (o.sessions?.snapshot && typeof o.sessions.snapshot === 'string') {
        // Whatever was restored must answer.
        await engine.sessions.recommend('alice', { k: 2 }).catch((e) => {
          if (!isTyped(e)) throw e;
        });
      }
      return { outcome: 'correct', kind, detail: 'created, answered' };
    } catch (e) {
      if (e instanceof Wrong) throw e;
      return { ...rejected(e, 'after create'), kind };
    } finally {
      await engine.close().catch(() => {});
    }
  },

  async snapshot(ctx, rng) {
    const s = ctx.shared;
    const what = [];
    const snap = Uint8Array.from(await snapshotBytes(ctx));
    const p = join(ctx.caseDir, 'sessions.bin');
    writeFileSync(p, corruptSnapshot(rng, snap, what));
    const kind = `ScoringEngine.create({sessions: {snapshot}}) with ${what.join(', ')}`;
    ctx.kind = kind;
    let engine;
    try {
      engine = await ctx.lib.ScoringEngine.create({ model: s.files.lstm1, catalogue: s.cats.mem.cat, threads: 1, sessions: { snapshot: p } });
    } catch (e) {
      return { ...rejected(e), kind };
    }
    try {
      // Restored or not, the sessions must answer (or refuse with a typed error), and close must
      // write a snapshot that opens again.
      for (const user of ['alice', 7, 'bob', 'carol']) {
        try {
          const r = await engine.sessions.recommend(user, { k: 3 });
          if (!Array.isArray(r?.items) || r.items.length > 3) wrong(`sessions.recommend(${show(user)}) returned ${show(r)}`);
          for (const it of r.items) if (!(Number.isInteger(it.id) && it.id >= 0 && it.id < N) || !Number.isFinite(it.score)) wrong(`sessions.recommend(${show(user)}) returned item ${show(it)}`);
        } catch (e) {
          if (e instanceof Wrong || !isTyped(e)) throw e;
        }
      }
      await engine.sessions.push('dave', [1, 2]);
      await engine.close();
      const again = await ctx.lib.ScoringEngine.create({ model: s.files.lstm1, catalogue: s.cats.mem.cat, threads: 1, sessions: { snapshot: p } });
      const r = await again.sessions.recommend('dave', { k: 2 });
      await again.close();
      if (!Array.isArray(r?.items)) wrong('the snapshot written on close does not restore');
      return { outcome: 'correct', kind, detail: 'created, answered, rewrote the snapshot' };
    } catch (e) {
      if (e instanceof Wrong) throw e;
      return { ...rejected(e, 'after create'), kind };
    } finally {
      await engine.close().catch(() => {});
    }
  },

  async recommend(ctx, rng) {
    const s = ctx.shared;
    const engine = await engineOf(ctx);
    const id = () => (rng.bool(0.08) ? rng.pick([-1, N, 1.5, NaN, '3', null, {}, 2 ** 53, 'sku-1']) : rng.int(0, N - 1));
    const r = {};
    if (rng.bool(0.97)) r.history = maybe(rng, () => (rng.bool(0.03) ? Array.from({ length: 300_000 }, () => rng.int(0, N - 1)) : Array.from({ length: rng.int(0, 6) }, id)), 0.15);
    if (rng.bool(0.97)) r.k = maybe(rng, () => rng.pick([1, 3, 10, N, N + 5, 100_000]), 0.2);
    if (rng.bool(0.3)) r.exclude = maybe(rng, () => rng.pick(['history', 'none', Array.from({ length: rng.int(0, 3) }, id)]), 0.3);
    if (rng.bool(0.2)) r.filter = maybe(rng, () => ({ allOf: rng.int(0, 3), noneOf: maybe(rng, () => rng.int(0, 3), 0.2) }), 0.3);
    if (rng.bool(0.1)) r.signal = rng.pick([AbortSignal.abort(), new AbortController().signal, AbortSignal.timeout(1), nasty(rng)]);
    const req = rng.bool(0.05) ? nasty(rng) : r;
    const batchCall = rng.bool(0.2);
    const kind = `engine.${batchCall ? 'recommendBatch([req, req])' : 'recommend(req)'}, req = ${req === r ? `{${Object.entries(r).map(([k, x]) => `${k}: ${show(x, 40)}`).join(', ')}}` : show(req)}`;
    ctx.kind = kind;
    let res;
    try {
      res = batchCall ? (await engine.recommendBatch([req, req]))[0] : await engine.recommend(req);
    } catch (e) {
      return { ...rejected(e), kind };
    }
    if (req !== r) wrong(`accepted request ${show(req)}`);
    if (!(Number.isSafeInteger(r.k) && r.k > 0)) wrong(`accepted k ${show(r.k)}`);
    const hist = arrayOrNull(r.history, 'history');
    for (const x of hist) if (!(Number.isInteger(x) && x >= 0 && x < N)) wrong(`accepted history item ${show(x)}`);
    if (!Array.isArray(res?.items) || res.items.length > Math.min(r.k, N)) wrong(`recommend returned ${show(res)}`);
    // The same answer from the encoder and the catalogue in this process.
    const ex = r.exclude ?? 'history';
    const exRows = ex === 'history' ? hist : ex === 'none' ? [] : arrayOrNull(ex, 'exclude');
    const v = s.encoders.native.encodeSync([hist]);
    const filter = r.filter;
    const want = s.cats.mem.cat.topK(v, { k: Math.min(r.k, N), exclude: [exRows], filter, threads: 1 });
    const got = res.items;
    const real = Array.from(want.rows).filter((x) => x >= 0);
    if (got.length !== real.length) wrong(`recommend gave ${got.length} items, encoder + topK ${real.length}`);
    for (let i = 0; i < got.length; i++) {
      if (got[i].id !== real[i] && Math.abs(got[i].score - want.scores[i]) > 1e-5) wrong(`item ${i}: ${got[i].id} (${got[i].score}) vs ${real[i]} (${want.scores[i]})`);
    }
    return { outcome: 'correct', kind, detail: `${got.length} items` };
  },

  async sessions(ctx, rng) {
    const engine = await engineOf(ctx);
    const user = maybe(rng, () => rng.pick(['u1', 'u2', 7, 'ü']), 0.4);
    const push = rng.bool(0.6);
    const items = maybe(rng, () => Array.from({ length: rng.int(0, 4) }, () => (rng.bool(0.1) ? rng.pick([-1, N, 1.5, 'x', null]) : rng.int(0, N - 1))), 0.2);
    const opts = maybe(rng, () => ({ k: maybe(rng, () => rng.int(1, 10), 0.2) }), 0.2);
    const kind = push ? `sessions.push(${show(user)}, ${show(items)})` : `sessions.recommend(${show(user)}, ${show(opts)})`;
    ctx.kind = kind;
    let r;
    try {
      r = push ? await engine.sessions.push(user, items) : await engine.sessions.recommend(user, opts);
    } catch (e) {
      return { ...rejected(e), kind };
    }
    if (!(typeof user === 'string' || (typeof user === 'number' && Number.isFinite(user)))) wrong(`accepted user ${show(user)}`);
    if (push) {
      for (const x of arrayOrNull(items, 'items')) if (!(Number.isInteger(x) && x >= 0 && x < N)) wrong(`accepted item ${show(x)}`);
    } else if (!Array.isArray(r?.items)) wrong(`sessions.recommend returned ${show(r)}`);
    return { outcome: 'correct', kind, detail: push ? 'pushed' : `${r.items.length} items` };
  },
};

/** Corrupts a session snapshot: bytes, or its msgpack content re-packed. */
function corruptSnapshot(rng, bytes, what) {
  const how = rng.pick(['flip', 'truncate', 'edit', 'edit', 'garbage']);
  if (how === 'flip') {
    for (let i = rng.int(1, 4); i > 0; i--) bytes[rng.int(0, bytes.length - 1)] ^= 1 << rng.int(0, 7);
    what.push('snapshot: bit flips');
    return bytes;
  }
  if (how === 'truncate') {
    const len = rng.int(0, bytes.length - 1);
    what.push(`snapshot: truncated to ${len}`);
    return bytes.subarray(0, len);
  }
  if (how === 'garbage') {
    what.push('snapshot: random bytes');
    return rng.bytes(rng.int(0, 200));
  }
  let d;
  try {
    d = unpack(bytes);
  } catch {
    what.push('snapshot: (unparsable base)');
    return bytes;
  }
  const e = rng.pick(['entries', 'entry', 'state', 'history', 'lastSeen', 'user', 'stateSize', 'version']);
  const entries = Array.isArray(d.entries) ? d.entries : [];
  const ent = entries.length ? rng.pick(entries) : null;
  if (e === 'entries') d.entries = rng.pick([null, 'x', {}, [1, 2], Array.from({ length: 3 }, () => [])]);
  else if (e === 'entry' && ent) entries[entries.indexOf(ent)] = rng.pick([null, 5, 'x', [], [1], { a: 1 }]);
  else if (e === 'state' && Array.isArray(ent)) ent[1] = rng.pick([new Uint8Array(3), new Uint8Array(new Float32Array([NaN, 1, 2, 3]).buffer), 'x', 7, new Uint8Array(1 << 16)]);
  else if (e === 'history' && Array.isArray(ent)) ent[2] = rng.pick([null, 'x', [-1], [1.5], [{}], Array.from({ length: 1000 }, () => 1), [[[]]]]);
  else if (e === 'lastSeen' && Array.isArray(ent)) ent[3] = rng.pick([NaN, -1, 'x', null, 1e300]);
  else if (e === 'user' && Array.isArray(ent)) ent[0] = rng.pick([null, {}, NaN, [1], true]);
  else if (e === 'stateSize') d.stateSize = rng.pick([-1, 0, 'x', 1e9]);
  else d.version = rng.pick([0, 2, 'x']);
  what.push(`snapshot: ${e} edited`);
  return pack(d);
}
