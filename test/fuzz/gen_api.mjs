/**
 * Family c: API arguments. Each case calls one entry point (Catalogue.topK/topKAsync, open,
 * fromVectors, fromNpy, save and the accessors; Encoder.load, encode/encodeSync, initialState,
 * step/stepSync, restoreState, output; ScoringEngine.create, recommend, recommendBatch and the
 * live sessions) with arguments that are mostly valid and partly random hostile values: wrong
 * types, NaN, huge numbers, array-likes with a huge `length`, null options, directories, FIFOs,
 * missing files, corrupt session snapshots. Oracle: a typed error (one of the library's codes),
 * or a result of the right shape, checked where it can be: top-k against float64 brute force,
 * encode against encodeSync and step against encode, recommend against encoder + catalogue.
 *
 * This module holds the environment and picks a target; the targets are in gen_api_catalogue.mjs,
 * gen_api_encoder.mjs and gen_api_engine.mjs, the hostile values in gen_api_values.mjs.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { Wrong, rejected } from './common.mjs';
import { CATALOGUE_TARGETS } from './gen_api_catalogue.mjs';
import { ENCODER_TARGETS } from './gen_api_encoder.mjs';
import { ENGINE_TARGETS } from './gen_api_engine.mjs';
import { D, N } from './gen_api_values.mjs';
import { Rng } from './prng.mjs';

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

const TARGETS = { ...CATALOGUE_TARGETS, ...ENCODER_TARGETS, ...ENGINE_TARGETS };

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
