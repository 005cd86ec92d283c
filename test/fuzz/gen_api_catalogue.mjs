/**
 * Family c (gen_api.mjs): the Catalogue targets: topK and topKAsync, open, fromVectors, fromNpy
 * (with .npy files whose headers are edited), save and the accessors. Top-k answers are checked
 * against float64 brute force with the exclusions, allow-list and filter applied.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { checkTopK, rejected, show, wrong } from './common.mjs';
import { D, N, arrayOrNull, checkVector, maybe, nasty } from './gen_api_values.mjs';

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

// --------------------------------------------------------------------- targets

export const CATALOGUE_TARGETS = {
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
