/**
 * Family c: API arguments. Each case calls one entry point (Catalogue.topK/topKAsync, open,
 * fromVectors, fromNpy, save and the accessors; Encoder.load, encode/encodeSync, initialState,
 * step/stepSync, restoreState, output; ScoringEngine.create, recommend, recommendBatch and the
 * live sessions) with arguments that are mostly valid and partly random hostile values: wrong
 * types, NaN, huge numbers, array-likes with a huge `length`, null options, directories, FIFOs,
 * missing files, corrupt session snapshots. Oracle: a typed error (one of the library's codes),
 * or a result of the right shape, checked where it can be: top-k against float64 brute force,
 * encode against encodeSync and step against encode, recommend against encoder + catalogue.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { pack, unpack } from 'msgpackr';

import { Wrong, checkTopK, errText, isTyped, rejected, show, wrong } from './common.mjs';
import { Rng } from './prng.mjs';


const D = 6; // lstm1_bf_ylast_tanh: dim 6, vocab 40
const N = 40;

// --------------------------------------------------------------------- hostile values

const big = (n) => ({ __desc: `{length: ${n}}`, length: n });

function nasty(rng) {
  return rng.pick([
    undefined,
    null,
    NaN,
    Infinity,
    -Infinity,
    0,
    -0,
    -1,
    1.5,
    2 ** 31,
    2 ** 32 + 1,
    2 ** 53,
    1e308,
    -1e308,
    Number.MIN_VALUE,
    '',
    '1',
    'abc',
    true,
    false,
    {},
    [],
    [NaN],
    [[[]]],
    big(1e10),
    big(-1),
    big(NaN),
    big(2 ** 32),
    { __desc: '{length: 2, 0: 1, 1: 2}', length: 2, 0: 1, 1: 2 },
    new Float32Array(3),
    new Float64Array([1, 2]),
    new Int32Array([0, 1]),
    new Uint8Array(2),
    new DataView(new ArrayBuffer(4)),
    new ArrayBuffer(8),
    1n,
    2n ** 64n,
    Symbol('s'),
    () => 1,
    new Date(0),
    /re/,
    new Map([[1, 2]]),
    new Set([1]),
    Object.create(null),
    Object.assign(Object.create(null), { length: 2, 0: 1, 1: 2 }),
    { toString: null, valueOf: null },
    new Array(5),
    // biome-ignore lint/suspicious/noSparseArray: a hole on purpose
    [1, , 3],
    'x'.repeat(100_000),
  ]);
}

/** Mostly the valid value, sometimes a hostile one. */
const maybe = (rng, valid, p = 0.25) => (rng.bool(p) ? nasty(rng) : valid());

// --------------------------------------------------------------------- the environment

export async function setup(ctx) {
  const { Catalogue, Encoder } = ctx.lib;
  const rng = new Rng('api-setup');
  const vectors = Float32Array.from({ length: N * D }, () => rng.normal());
  const bias = Float32Array.from({ length: N }, () => rng.normal() * 0.1);
  const attributes = Uint32Array.from({ length: N }, () => rng.u32() & 0xf);
  const strIds = Array.from({ length: N }, (_, i) => `sku-${i}`);
  const dir = join(ctx.tmp, 'env');
  mkdirSync(dir, { recursive: true });
  const fx = join(ctx.root, 'models', 'fixtures');
  const files = {
    f32: join(dir, 'f32.rsc'),
    int8: join(dir, 'int8.rsc'),
    dir: join(dir, 'a-directory'),
    fifo: join(dir, 'fifo'),
    missing: join(dir, 'missing.rsc'),
    garbage: join(dir, 'garbage.bin'),
    empty: join(dir, 'empty.bin'),
    lstm1: join(fx, 'lstm1_bf_ylast_tanh.onnx'),
    bilstm: join(fx, 'bilstm2_bf_ylast.onnx'),
    layernorm: join(fx, 'lstm_layernorm.onnx'),
    npy: join(ctx.root, 'test', 'fixtures', 'items.npy'),
    npyF64: join(ctx.root, 'test', 'fixtures', 'items_f64.npy'),
    npy3d: join(ctx.root, 'test', 'fixtures', 'items_3d.npy'),
    npyFortran: join(ctx.root, 'test', 'fixtures', 'items_fortran.npy'),
    npy1d: join(ctx.root, 'test', 'fixtures', 'bias.npy'),
    npyTrunc: join(dir, 'trunc.npy'),
  };
  mkdirSync(files.dir, { recursive: true });
  execFileSync('mkfifo', [files.fifo]);
  writeFileSync(files.garbage, rng.bytes(3000));
  writeFileSync(files.empty, new Uint8Array(0));
  const npyBytes = readFileSync(files.npy);
  writeFileSync(files.npyTrunc, npyBytes.subarray(0, npyBytes.length - 100));
  const base = Catalogue.fromVectors(vectors, { dim: D, bias, attributes });
  await base.save(files.f32);
  const c8 = Catalogue.fromVectors(vectors, { dim: D, bias, attributes, precision: 'int8' });
  await c8.save(files.int8);
  await c8.close();
  const cats = {
    mem: { cat: base, ids: null },
    file: { cat: await Catalogue.open(files.int8), ids: null },
    str: { cat: Catalogue.fromVectors(vectors, { dim: D, ids: strIds, bias, attributes }), ids: strIds },
  };
  const encoders = {
    native: await Encoder.load(files.lstm1, { threads: 1 }),
    bidi: await Encoder.load(files.bilstm, { threads: 1 }),
    ort: await Encoder.load(files.layernorm, { threads: 1 }),
  };
  return { vectors, bias, attributes, strIds, files, cats, encoders, engine: null, snapshot: null };
}

export async function teardown(ctx) {
  const s = ctx.shared;
  await s.engine?.close().catch(() => {});
  for (const e of Object.values(s.encoders)) await e.close().catch(() => {});
  for (const c of Object.values(s.cats)) await c.cat.close().catch(() => {});
}

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

// --------------------------------------------------------------------- checks

function arrayOrNull(x, what) {
  if (x === null || x === undefined) return [];
  const len = x.length;
  if (typeof len !== 'number' || !(len >= 0) || len > 1 << 22) wrong(`accepted ${what} = ${show(x)} (not an array of finite length)`);
  return Array.from(x);
}

function checkCatTopK(s, entry, users, opts, res) {
  const { cat } = entry;
  const b = users.length / D;
  const k = opts.k;
  const excl = opts.exclude ? opts.exclude.map((e, u) => new Set(arrayOrNull(e, `exclude[${u}]`))) : null;
  const allow = opts.allow !== undefined ? new Set(arrayOrNull(opts.allow, 'allow')) : null;
  const f = opts.filter;
  const all = (f?.allOf ?? 0) >>> 0;
  const any = (f?.anyOf ?? 0) >>> 0;
  const none = (f?.noneOf ?? 0) >>> 0;
  const eligible = (u, j) =>
    !(excl && excl[u].has(j)) &&
    !(allow && !allow.has(j)) &&
    !(f && ((s.attributes[j] & all) >>> 0 !== all || (any !== 0 && (s.attributes[j] & any) === 0) || (s.attributes[j] & none) !== 0));
  const diff = checkTopK({ items: s.vectors, n: cat.size, d: D, bias: s.bias, users, k, res, eligible });
  if (diff) wrong(`topK (${b} users) differs from brute force: ${diff}`);
}

function checkVector(v, len, what) {
  if (!(v instanceof Float32Array) || v.length !== len) wrong(`${what} returned ${show(v)}, expected Float32Array(${len})`);
}

// --------------------------------------------------------------------- targets

const TARGETS = {
  async topK(ctx, rng) {
    const s = ctx.shared;
    const entry = s.cats[rng.pick(['mem', 'mem', 'file', 'str'])];
    const { cat } = entry;
    const b = rng.weighted([[1, 0], [5, rng.int(1, 3)], [2, rng.int(4, 12)]]);
    const users = maybe(rng, () => Float32Array.from({ length: b * D }, () => rng.normal()), 0.15);
    const o = {};
    const field = (name, p, valid, pv = 0.25) => {
      if (rng.bool(p)) o[name] = maybe(rng, valid, pv);
    };
    field('k', 0.97, () => rng.pick([1, 2, 5, N, N + 10]), 0.2);
    field('exclude', 0.4, () => Array.from({ length: b }, () => (rng.bool(0.3) ? null : maybe(rng, () => Array.from({ length: rng.int(0, 4) }, () => rng.int(0, N - 1)), 0.15))), 0.15);
    field('allow', 0.2, () => Array.from({ length: rng.int(0, 12) }, () => rng.int(0, N - 1)));
    field('filter', 0.2, () => ({ allOf: maybe(rng, () => rng.int(0, 3), 0.15), anyOf: rng.bool() ? rng.int(0, 15) : undefined, noneOf: rng.bool() ? rng.int(0, 3) : undefined }));
    field('threads', 0.3, () => rng.pick([1, 2, 4]), 0.6);
    field('isa', 0.15, () => rng.pick(['auto', 'scalar', 'avx2']));
    const opts = rng.bool(0.05) ? nasty(rng) : o;
    const async = rng.bool(0.4);
    const kind = `${async ? 'topKAsync' : 'topK'}(${show(users)}, ${opts === o ? `{${Object.entries(o).map(([k, v]) => `${k}: ${show(v, 40)}`).join(', ')}}` : show(opts)}) on the ${entry === s.cats.str ? 'string-id' : entry === s.cats.file ? 'int8 file' : 'in-memory'} catalogue`;
    ctx.kind = kind;
    let res;
    try {
      res = async ? await cat.topKAsync(users, opts) : cat.topK(users, opts);
    } catch (e) {
      return { ...rejected(e), kind };
    }
    if (!(users instanceof Float32Array) || typeof opts !== 'object' || opts === null) wrong(`accepted users ${show(users)} / options ${show(opts)}`);
    if (!(Number.isSafeInteger(o.k) && o.k > 0)) wrong(`accepted k = ${show(o.k)}`);
    if (o.threads !== undefined && !(Number.isSafeInteger(o.threads) && o.threads > 0)) wrong(`accepted threads = ${show(o.threads)}`);
    checkCatTopK(s, entry, users, o, res);
    return { outcome: 'correct', kind, detail: `k ${res.k}` };
  },

  async open(ctx, rng) {
    const s = ctx.shared;
    const which = rng.pick(['f32', 'int8', 'missing', 'dir', 'fifo', 'garbage', 'empty', 'devnull', 'devzero', 'proc', 'nul', 'long', 'emptyString', 'nasty']);
    const path = {
      devnull: '/dev/null',
      devzero: '/dev/zero',
      proc: '/proc/self/status',
      nul: `${s.files.f32}\u0000x`,
      long: `/tmp/${'a'.repeat(5000)}`,
      emptyString: '',
      nasty: nasty(rng),
    }[which] ?? s.files[which];
    const opts = rng.weighted([[4, undefined], [2, { verify: rng.bool() }], [3, nasty(rng)], [2, { verify: nasty(rng) }]]);
    const kind = `Catalogue.open(${which === 'nasty' ? show(path) : which}, ${show(opts)})`;
    ctx.kind = kind;
    let cat;
    try {
      cat = await ctx.lib.Catalogue.open(path, opts);
    } catch (e) {
      return { ...rejected(e), kind };
    }
    try {
      if (which !== 'f32' && which !== 'int8') wrong(`opened ${which}`);
      if (opts !== undefined && (typeof opts !== 'object' || opts === null)) wrong(`accepted options ${show(opts)}`);
      const users = Float32Array.from({ length: 2 * D }, () => rng.normal());
      const res = cat.topK(users, { k: 5 });
      checkCatTopK(s, { cat }, users, { k: 5 }, res);
      return { outcome: 'correct', kind, detail: 'opened' };
    } finally {
      await cat.close();
    }
  },

  async fromVectors(ctx, rng) {
    const s = ctx.shared;
    const n = rng.int(1, 30);
    const d = rng.int(1, 8);
    const v = maybe(rng, () => Float32Array.from({ length: n * d }, () => rng.normal()), 0.2);
    const o = {};
    if (rng.bool(0.95)) o.dim = maybe(rng, () => d, 0.2);
    if (rng.bool(0.4)) o.ids = maybe(rng, () => (rng.bool(0.2) ? Array.from({ length: n }, () => rng.int(0, 3)) : Array.from({ length: n }, (_, i) => (rng.bool() ? i * 7 : `id${i}`))), 0.3);
    if (rng.bool(0.4)) o.bias = maybe(rng, () => (rng.bool() ? Float32Array : Array).from({ length: n }, () => (rng.bool(0.05) ? rng.pick([NaN, Infinity, 1e39]) : rng.normal())), 0.3);
    if (rng.bool(0.3)) o.attributes = maybe(rng, () => Array.from({ length: n }, () => (rng.bool(0.05) ? rng.pick([-1, 1.5, 2 ** 32]) : rng.int(0, 255))), 0.3);
    if (rng.bool(0.3)) o.precision = maybe(rng, () => rng.pick(['f32', 'int8', 'bf16']), 0.3);
    const opts = rng.bool(0.05) ? nasty(rng) : o;
    const kind = `Catalogue.fromVectors(${show(v)}, ${opts === o ? `{${Object.entries(o).map(([k, x]) => `${k}: ${show(x, 40)}`).join(', ')}}` : show(opts)})`;
    ctx.kind = kind;
    let cat;
    try {
      cat = ctx.lib.Catalogue.fromVectors(v, opts);
    } catch (e) {
      return { ...rejected(e), kind };
    }
    try {
      if (!(v instanceof Float32Array)) wrong(`accepted vectors ${show(v)}`);
      if (opts !== o) wrong(`accepted options ${show(opts)} (no dim)`);
      const rows = v.length / o.dim;
      if (cat.size !== rows || cat.dim !== o.dim) wrong(`built ${cat.size}×${cat.dim} from ${v.length} values, dim ${show(o.dim)}`);
      for (let i = 0; i < v.length; i++) if (!Number.isFinite(v[i])) wrong(`accepted a non-finite vector value ${v[i]}`);
      if (o.ids !== undefined) {
        const ids = arrayOrNull(o.ids, 'ids');
        if (ids.length !== rows) wrong(`accepted ${ids.length} ids for ${rows} rows`);
        if (new Set(ids).size !== ids.length) wrong(`accepted duplicate ids ${show(o.ids)}`);
        for (const id of ids) if (!(typeof id === 'string' || Number.isSafeInteger(id))) wrong(`accepted id ${show(id)}`);
        for (let r = 0; r < rows; r++) if (cat.id(r) !== ids[r] || cat.row(ids[r]) !== r) wrong(`id/row of row ${r} do not round-trip`);
      }
      let bias = null;
      if (o.bias !== undefined) {
        bias = Float32Array.from(arrayOrNull(o.bias, 'bias'));
        if (bias.length !== rows) wrong(`accepted a bias of ${bias.length} for ${rows} rows`);
        for (const x of bias) if (!Number.isFinite(x)) wrong(`accepted bias value ${x}`);
      }
      if (o.attributes !== undefined) for (const a of arrayOrNull(o.attributes, 'attributes')) if (!(Number.isInteger(a) && a >= 0 && a <= 0xffffffff)) wrong(`accepted attribute ${show(a)}`);
      const users = Float32Array.from({ length: 2 * o.dim }, () => rng.normal());
      const k = rng.int(1, rows + 2);
      const res = cat.topK(users, { k });
      const diff = checkTopK({ items: v, n: rows, d: o.dim, bias, users, k, res, eligible: () => true });
      if (diff) wrong(`topK differs from brute force: ${diff}`);
      return { outcome: 'correct', kind, detail: `${rows}×${o.dim} ${cat.precision}` };
    } finally {
      await cat.close();
    }
  },

  async fromNpy(ctx, rng) {
    const s = ctx.shared;
    const which = rng.pick(['npy', 'npy', 'npyF64', 'npy3d', 'npyFortran', 'npy1d', 'npyTrunc', 'dir', 'fifo', 'missing', 'garbage', 'empty', 'nasty', 'edited', 'edited', 'edited']);
    let path = which === 'nasty' ? nasty(rng) : s.files[which];
    let edit = '';
    if (which === 'edited') {
      ({ path, edit } = editedNpy(ctx, rng));
    }
    const opts = rng.weighted([[4, undefined], [2, { precision: maybe(rng, () => 'int8') }], [2, nasty(rng)], [1, { ids: nasty(rng) }], [1, { bias: nasty(rng) }]]);
    const kind = `Catalogue.fromNpy(${which === 'nasty' ? show(path) : which === 'edited' ? `npy with ${edit}` : which}, ${show(opts)})`;
    ctx.kind = kind;
    let cat;
    try {
      cat = await ctx.lib.Catalogue.fromNpy(path, opts);
    } catch (e) {
      return { ...rejected(e), kind };
    }
    try {
      if (which === 'edited') {
        // Whatever shape it was read as, the rows are the file's float32 values after the header.
        const bytes = readFileSync(path);
        const hlen = bytes[6] === 1 ? bytes.readUInt16LE(8) + 10 : bytes.readUInt32LE(8) + 12;
        if (hlen + cat.size * cat.dim * 4 > bytes.length) wrong(`read ${cat.size}×${cat.dim} from a ${bytes.length}-byte file`);
      } else if (which !== 'npy' && which !== 'npyFortran' && which !== 'npyF64') wrong(`accepted ${which}`);
      if (opts !== undefined && (typeof opts !== 'object' || opts === null)) wrong(`accepted options ${show(opts)}`);
      const users = Float32Array.from({ length: cat.dim }, () => rng.normal());
      const res = cat.topK(users, { k: 3 });
      if (res.rows.length !== Math.min(3, cat.size)) wrong(`topK returned ${res.rows.length} rows`);
      return { outcome: 'correct', kind, detail: `${cat.size}×${cat.dim}` };
    } finally {
      await cat.close();
    }
  },

  async save(ctx, rng) {
    const s = ctx.shared;
    // Only paths inside this case's folder: a writer renames over its target.
    const which = rng.pick(['ok', 'dir', 'missingDir', 'fifo', 'nul', 'nasty', 'long']);
    const fifo = join(ctx.caseDir, 'fifo.rsc');
    if (which === 'fifo') execFileSync('mkfifo', [fifo]);
    const path = { ok: join(ctx.caseDir, 'out.rsc'), dir: ctx.caseDir, missingDir: join(ctx.caseDir, 'no', 'such', 'x.rsc'), fifo, nul: join(ctx.caseDir, 'a\u0000b'), long: join(ctx.caseDir, 'a'.repeat(300)) }[which] ?? nasty(rng);
    if (typeof path === 'string' && !path.startsWith(ctx.caseDir)) return { outcome: 'typed', kind: 'save (skipped: unsafe path)', detail: 'skipped' };
    const kind = `catalogue.save(${which === 'nasty' ? show(path) : which})`;
    ctx.kind = kind;
    try {
      await s.cats.mem.cat.save(path);
    } catch (e) {
      return { ...rejected(e), kind };
    }
    if (which !== 'ok' && which !== 'fifo') wrong(`saved to ${which}`);
    const back = await ctx.lib.Catalogue.open(path);
    const ok = back.size === N && back.dim === D;
    await back.close();
    if (!ok) wrong('the saved file does not reopen as the same catalogue');
    return { outcome: 'correct', kind, detail: 'saved and reopened' };
  },

  async accessors(ctx, rng) {
    const s = ctx.shared;
    const entry = s.cats[rng.pick(['mem', 'file', 'str'])];
    const { cat } = entry;
    const fn = rng.pick(['id', 'row', 'has', 'vector', 'bias', 'attributes']);
    const valid = fn === 'row' || fn === 'has' ? () => (entry.ids ? rng.pick(entry.ids) : rng.int(0, N - 1)) : () => rng.int(0, N - 1);
    const x = maybe(rng, valid, 0.7);
    const kind = `catalogue.${fn}(${show(x)})`;
    ctx.kind = kind;
    let r;
    try {
      r = cat[fn](x);
    } catch (e) {
      return { ...rejected(e), kind };
    }
    if (fn === 'has') {
      if (typeof r !== 'boolean') wrong(`has returned ${show(r)}`);
    } else if (fn === 'row') {
      if (!(Number.isInteger(r) && r >= 0 && r < N) || !Object.is(cat.id(r), x)) wrong(`row(${show(x)}) = ${show(r)}`);
    } else {
      if (!(Number.isInteger(x) && x >= 0 && x < N)) wrong(`accepted row ${show(x)}`);
      if (fn === 'vector') checkVector(r, D, 'vector');
      else if (fn === 'id' && !Object.is(r, entry.ids ? entry.ids[x] : x)) wrong(`id(${x}) = ${show(r)}`);
      else if ((fn === 'bias' || fn === 'attributes') && typeof r !== 'number') wrong(`${fn} returned ${show(r)}`);
    }
    return { outcome: 'correct', kind, detail: show(r) };
  },

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

/** A .npy file of random float32 values with an edited header. */
function editedNpy(ctx, rng) {
  const rows = rng.int(1, 6);
  const cols = rng.int(1, 4);
  let descr = "'<f4'";
  let fortran = 'False';
  let shape = `(${rows}, ${cols})`;
  let version = 1;
  let extra = '';
  let cut = 0;
  const e = rng.pick(['shape-huge', 'shape-negative', 'shape-float', 'shape-empty', 'shape-zero', 'shape-3d', 'shape-text', 'descr', 'fortran', 'version', 'version2', 'hlen', 'truncate', 'noshape', 'extra', 'missing-quote', 'shape-unsafe']);
  if (e === 'shape-huge') shape = `(${2 ** 31}, ${cols})`;
  else if (e === 'shape-unsafe') shape = `(${2 ** 53 + 2}, 1)`;
  else if (e === 'shape-negative') shape = `(-1, ${cols})`;
  else if (e === 'shape-float') shape = `(1.5, ${cols})`;
  else if (e === 'shape-empty') shape = '()';
  else if (e === 'shape-zero') shape = `(0, ${cols})`;
  else if (e === 'shape-3d') shape = `(${rows}, ${cols}, 1)`;
  else if (e === 'shape-text') shape = "('a', 2)";
  else if (e === 'descr') descr = rng.pick(["'>f4'", "'<f8'", "'|u1'", "'<f2'", "''", "'<f4"]);
  else if (e === 'fortran') fortran = rng.pick(['True', 'None', '1']);
  else if (e === 'version') version = rng.pick([0, 4, 255]);
  else if (e === 'version2') version = 2;
  else if (e === 'truncate') cut = rng.int(1, 12);
  else if (e === 'noshape') shape = null;
  else if (e === 'extra') extra = " 'shape': (1000000, 1000000),";
  else if (e === 'missing-quote') descr = "<f4";
  const dict = `{'descr': ${descr}, 'fortran_order': ${fortran},${shape === null ? '' : ` 'shape': ${shape},`}${extra} }`;
  const pre = version === 2 ? 12 : 10;
  const pad = (64 - ((pre + dict.length + 1) % 64)) % 64;
  const header = Buffer.from(`${dict}${' '.repeat(pad)}\n`, 'latin1');
  const start = Buffer.alloc(pre);
  Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]).copy(start);
  start[6] = version;
  if (version === 2) start.writeUInt32LE(e === 'hlen' ? 0xffffffff : header.length, 8);
  else start.writeUInt16LE(e === 'hlen' ? 0xffff : header.length, 8);
  const data = Buffer.from(Float32Array.from({ length: rows * cols }, () => rng.normal()).buffer);
  let bytes = Buffer.concat([start, header, data]);
  if (cut) bytes = bytes.subarray(0, bytes.length - cut);
  const path = join(ctx.caseDir, 'edited.npy');
  writeFileSync(path, bytes);
  return { path, edit: `${e} (${rows}×${cols})` };
}

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

export async function run(ctx, rng) {
  const target = rng.weighted([
    [8, 'topK'],
    [3, 'open'],
    [3, 'fromVectors'],
    [2, 'fromNpy'],
    [1, 'save'],
    [2, 'accessors'],
    [2, 'load'],
    [4, 'encode'],
    [2, 'initialState'],
    [3, 'step'],
    [2, 'restoreState'],
    [1, 'output'],
    [2, 'engineCreate'],
    [2, 'snapshot'],
    [4, 'recommend'],
    [2, 'sessions'],
  ]);
  ctx.kind = target;
  try {
    return await TARGETS[target](ctx, rng);
  } catch (e) {
    if (e instanceof Wrong) return { outcome: 'wrong', kind: ctx.kind, detail: e.message };
    return { ...rejected(e, 'after the call'), kind: ctx.kind };
  }
}

