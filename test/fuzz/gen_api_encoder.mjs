/**
 * Family c (gen_api.mjs): the Encoder targets: load, encode and encodeSync, initialState, step
 * and stepSync, restoreState and output. encode is checked against encodeSync, and a step from a
 * fresh state against encode([[id]]).
 */
import { readFileSync } from 'node:fs';

import { rejected, show, wrong } from './common.mjs';
import { N, arrayOrNull, big, checkVector, maybe, nasty } from './gen_api_values.mjs';

export const ENCODER_TARGETS = {
  async load(ctx, rng) {
    const s = ctx.shared;
    const which = rng.pick(['lstm1', 'lstm1', 'bilstm', 'layernorm', 'bytes', 'buffer', 'arraybuffer', 'dir', 'fifo', 'missing', 'garbage', 'empty', 'nasty']);
    const src = { bytes: new Uint8Array(readFileSync(s.files.lstm1)), buffer: readFileSync(s.files.layernorm), arraybuffer: new Uint8Array(readFileSync(s.files.lstm1)).buffer, nasty: nasty(rng) }[which] ?? s.files[which];
    const o = {};
    if (rng.bool(0.4)) o.backend = maybe(rng, () => rng.pick(['auto', 'native', 'onnxruntime']), 0.3);
    // Threads: valid ones kept small (each is a real thread), or hostile.
    o.threads = rng.bool(0.5) ? 1 : rng.pick([0, -1, 1.5, NaN, 100_000, 2 ** 31, 1e9, '2', null, big(2)]);
    if (rng.bool(0.3)) o.isa = maybe(rng, () => rng.pick(['auto', 'scalar', 'avx2']), 0.4);
    if (rng.bool(0.3)) o.foldBytes = maybe(rng, () => rng.pick([0, 1024, 256 << 20]), 0.5);
    const opts = rng.bool(0.1) ? nasty(rng) : o;
    const kind = `Encoder.load(${which === 'nasty' ? show(src) : which}, ${opts === o ? `{${Object.entries(o).map(([k, x]) => `${k}: ${show(x, 40)}`).join(', ')}}` : show(opts)})`;
    ctx.kind = kind;
    let enc;
    try {
      enc = await ctx.lib.Encoder.load(src, opts);
    } catch (e) {
      return { ...rejected(e), kind };
    }
    try {
      if (!['lstm1', 'bilstm', 'layernorm', 'bytes', 'buffer'].includes(which)) wrong(`loaded ${which}`);
      // Any object is an options object (its unknown keys ignored); its fields were o's only if it is o.
      if (opts !== undefined && (typeof opts !== 'object' || opts === null)) wrong(`accepted options ${show(opts)}`);
      if (opts === o && o.threads !== undefined && !(Number.isSafeInteger(o.threads) && o.threads > 0 && o.threads <= 1024)) wrong(`accepted threads = ${show(o.threads)}`);
      const v = await enc.encode([[1, 2, 3]]);
      checkVector(v, enc.dim, 'encode');
      return { outcome: 'correct', kind, detail: `${enc.backend} dim ${enc.dim}` };
    } finally {
      await enc.close();
    }
  },

  async encode(ctx, rng) {
    const s = ctx.shared;
    const name = rng.pick(['native', 'native', 'bidi', 'ort']);
    const enc = s.encoders[name];
    const vocab = enc.vocab ?? N;
    const b = rng.int(0, 5);
    const id = () => (rng.bool(0.1) ? rng.pick([-1, vocab, 1.5, NaN, '1', 2 ** 31, 1e10, null, undefined, 2 ** 53 + 2]) : rng.int(0, vocab - 1));
    let hs = Array.from({ length: b }, () => (rng.bool(0.1) ? nasty(rng) : Array.from({ length: rng.int(name === 'ort' ? 1 : 0, 6) }, id)));
    if (rng.bool(0.1)) hs = nasty(rng);
    else if (rng.bool(0.04) && name !== 'ort') hs = [new Int32Array((1 << 20) + 1)];
    else if (rng.bool(0.03)) hs = Array.from({ length: (1 << 20) + 1 }, () => []);
    const sync = name !== 'ort' && rng.bool(0.4);
    const kind = `${name} ${sync ? 'encodeSync' : 'encode'}(${show(hs, 80)})`;
    ctx.kind = kind;
    let v;
    try {
      v = sync ? enc.encodeSync(hs) : await enc.encode(hs);
    } catch (e) {
      return { ...rejected(e), kind };
    }
    if (!Array.isArray(hs)) wrong(`accepted histories ${show(hs)}`);
    if (hs.length > 1 << 20) wrong(`accepted ${hs.length} histories (limit 2^20)`);
    for (const h of hs) {
      const a = arrayOrNull(h, 'history');
      if (a.length > 1 << 20) wrong(`accepted a history of ${a.length} events (limit 2^20)`);
      for (const x of a) if (!(Number.isInteger(x) && x >= 0 && x < vocab)) wrong(`accepted item ${show(x)}`);
    }
    checkVector(v, hs.length * enc.dim, 'encode');
    if (name !== 'ort' && hs.length <= 8) {
      const other = sync ? await enc.encode(hs) : enc.encodeSync(hs);
      for (let i = 0; i < v.length; i++) if (!Object.is(v[i], other[i])) wrong(`encode and encodeSync differ at ${i}`);
    }
    return { outcome: 'correct', kind, detail: `${v.length} values` };
  },

  async initialState(ctx, rng) {
    const s = ctx.shared;
    const name = rng.pick(['native', 'bidi', 'ort']);
    const enc = s.encoders[name];
    const batch = rng.bool(0.4) ? rng.int(0, 4) : rng.pick([1e8, 2 ** 31, (1 << 20) + 1, -1, 1.5, NaN, '1', null, undefined, 2 ** 53, Infinity, big(3)]);
    const kind = `${name} initialState(${show(batch)})`;
    ctx.kind = kind;
    let st;
    try {
      st = enc.initialState(batch);
    } catch (e) {
      return { ...rejected(e), kind };
    }
    if (!(Number.isSafeInteger(batch) && batch >= 0 && batch <= 1 << 20)) wrong(`accepted batch ${show(batch)}`);
    if (st.batch !== batch) wrong(`state.batch = ${st.batch}`);
    return { outcome: 'correct', kind, detail: `batch ${st.batch}` };
  },

  async step(ctx, rng) {
    const s = ctx.shared;
    const name = rng.pick(['native', 'native', 'bidi', 'ort']);
    const enc = s.encoders[name];
    const vocab = enc.vocab ?? N;
    const b = rng.int(1, 3);
    let stateKind = rng.weighted([[6, 'own'], [1, 'other'], [1, 'nasty'], [1, 'restored']]);
    let state;
    if (stateKind === 'own') state = enc.initialState(b);
    else if (stateKind === 'other') state = s.encoders[name === 'native' ? 'bidi' : 'native'].initialState(b);
    else if (stateKind === 'restored' && enc.incremental) state = enc.restoreState(new Float32Array(b * enc.stateSize));
    else if ((stateKind = 'nasty')) state = rng.bool(0.5) ? nasty(rng) : { batch: b, owner: enc, data: new Float32Array(4) };
    const ids = maybe(rng, () => Array.from({ length: b }, () => (rng.bool(0.1) ? rng.pick([-1, vocab, 1.5, NaN, '3', 2 ** 31]) : rng.int(0, vocab - 1))), 0.2);
    const sync = rng.bool(0.4);
    const kind = `${name} ${sync ? 'stepSync' : 'step'}(${stateKind} state of ${b}, ${show(ids)})`;
    ctx.kind = kind;
    let v;
    try {
      v = sync ? enc.stepSync(state, ids) : await enc.step(state, ids);
    } catch (e) {
      return { ...rejected(e), kind };
    }
    if (stateKind !== 'own' && stateKind !== 'restored') wrong(`accepted a ${stateKind} state`);
    const a = arrayOrNull(ids, 'ids');
    if (a.length !== b) wrong(`accepted ${a.length} ids for ${b} users`);
    for (const x of a) if (!(Number.isInteger(x) && x >= 0 && x < vocab)) wrong(`accepted item ${show(x)}`);
    checkVector(v, b * enc.dim, 'step');
    const ref = await enc.encode(a.map((x) => [x]));
    for (let i = 0; i < v.length; i++) if (!(Math.abs(v[i] - ref[i]) <= 1e-5)) wrong(`step from a fresh state differs from encode([[id]]) at ${i}: ${v[i]} vs ${ref[i]}`);
    return { outcome: 'correct', kind, detail: `${v.length} values` };
  },

  async restoreState(ctx, rng) {
    const s = ctx.shared;
    const name = rng.pick(['native', 'native', 'bidi', 'ort']);
    const enc = s.encoders[name];
    const size = enc.stateSize || 8;
    const data = rng.weighted([
      [3, () => Float32Array.from({ length: size * rng.int(0, 3) }, () => rng.normal() * 0.5)],
      [1, () => Float32Array.from({ length: size }, (_, i) => (i === 0 ? rng.pick([NaN, Infinity, -Infinity, 1e30]) : 0))],
      [1, () => new Float32Array(size + 1)],
      [1, () => nasty(rng)],
      [1, () => new Float64Array(size)],
    ])();
    const kind = `${name} restoreState(${show(data)})`;
    ctx.kind = kind;
    let st;
    try {
      st = enc.restoreState(data);
    } catch (e) {
      return { ...rejected(e), kind };
    }
    if (!(data instanceof Float32Array) || data.length % size !== 0) wrong(`accepted ${show(data)}`);
    for (const x of data) if (!Number.isFinite(x)) wrong(`accepted a state holding ${x}`);
    if (st.batch !== data.length / size) wrong(`restored batch ${st.batch}`);
    const out = await enc.output(st);
    checkVector(out, st.batch * enc.dim, 'output');
    return { outcome: 'correct', kind, detail: `batch ${st.batch}` };
  },

  async output(ctx, rng) {
    const s = ctx.shared;
    const enc = s.encoders[rng.pick(['native', 'bidi', 'ort'])];
    const state = rng.bool(0.5) ? nasty(rng) : s.encoders[rng.pick(['native', 'bidi', 'ort'])].initialState(rng.int(0, 2));
    const kind = `output(${show(state)})`;
    ctx.kind = kind;
    let v;
    try {
      v = await enc.output(state);
    } catch (e) {
      return { ...rejected(e), kind };
    }
    if (!(state && state.owner === enc)) wrong('accepted a state of another encoder or a non-state');
    checkVector(v, state.batch * enc.dim, 'output');
    return { outcome: 'correct', kind, detail: `${v.length}` };
  },
};
