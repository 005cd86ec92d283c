/**
 * Family b: ONNX models. Each case mutates one of models/fixtures/*.onnx or
 * models/example/session_lstm.onnx: raw byte flips, truncation, extension, or structured edits
 * through the protobuf schema (attributes renamed, changed, added or dropped; node inputs
 * dropped, added or swapped; initializer dims and data; Constant values; op types, domains,
 * opsets; graph input/output types; names that are not UTF-8). Oracle: Encoder.load refuses the
 * bytes with a typed error, or it accepts them and its output equals onnxruntime-node's on the
 * same bytes within 1e-4 (and, natively, `step` agrees with `encode`); accepting natively what
 * onnxruntime refuses to load or run is its own class (`ortRefused`).
 *
 * This module holds the setup, the case and its oracle; the mutations are in gen_onnx_mutate.mjs
 * and the structured edits in gen_onnx_structured.mjs.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';

import { Wrong, errText, rejected, wrong } from './common.mjs';
import { mutate } from './gen_onnx_mutate.mjs';
import { DT, decodeModel } from './onnx_schema.mjs';

export async function setup(ctx) {
  const fx = join(ctx.root, 'models', 'fixtures');
  const bases = readdirSync(fx)
    .filter((f) => f.endsWith('.onnx'))
    .map((f) => join(fx, f));
  bases.push(join(ctx.root, 'models', 'example', 'session_lstm.onnx'));
  const models = bases.map((path) => ({ path, name: basename(path), bytes: new Uint8Array(readFileSync(path)) }));
  const mod = await import('onnxruntime-node');
  const ort = mod.default ?? mod;
  // Bases onnxruntime itself does not run (e.g. LSTM layout 1): their mutants have no reference
  // when onnxruntime refuses them for that same reason.
  for (const m of models) {
    try {
      const s = await ort.InferenceSession.create(m.path, { intraOpNumThreads: 1, interOpNumThreads: 1, logSeverityLevel: 4 });
      await s.release();
      m.ortRefusal = null;
    } catch (e) {
      m.ortRefusal = ortReason(e);
    }
  }
  return { models, ort };
}

const weightOf = (name) => (name.startsWith('bench_') ? 0.3 : name.startsWith('bad_') ? 0.5 : name === 'session_lstm.onnx' ? 1.5 : 2);

function pickWeighted(rng, items, w) {
  return rng.weighted(items.map((x) => [w(x), x]));
}

/** The part of an onnxruntime error that says why (without paths). */
function ortReason(e) {
  const msg = String(e?.message ?? e);
  return /(\S+ was false\.[^.]*)/.exec(msg)?.[1] ?? msg.replace(/\/tmp\/\S+/g, '').slice(-120);
}

function histories(rng, vocab, count) {
  return Array.from({ length: count }, () => Array.from({ length: rng.int(1, 7) }, () => rng.int(0, Math.max(1, vocab) - 1)));
}

function feedsFor(ort, proto, h) {
  // What onnxruntime is fed: the graph's first input (ids, [1, t]) and, when there is a second
  // non-initializer input, the lengths ([1]). Types follow the (mutated) declarations.
  const inits = new Set(proto?.graph?.initializer?.map((t) => t.name) ?? []);
  const inputs = (proto?.graph?.input ?? []).filter((i) => !inits.has(i.name));
  if (!inputs.length) return null;
  const tensor = (v, dims, elem) => {
    if (elem === DT.INT32) return new ort.Tensor('int32', Int32Array.from(v), dims);
    if (elem === DT.FLOAT) return new ort.Tensor('float32', Float32Array.from(v), dims);
    if (elem === DT.DOUBLE) return new ort.Tensor('float64', Float64Array.from(v), dims);
    return new ort.Tensor('int64', BigInt64Array.from(v, (x) => BigInt(x)), dims);
  };
  const feeds = { [inputs[0].name]: tensor(h, [1, h.length], inputs[0].type?.value?.value?.elemType) };
  if (inputs[1]) feeds[inputs[1].name] = tensor([h.length], [1], inputs[1].type?.value?.value?.elemType);
  return feeds;
}

export async function run(ctx, rng) {
  const { Encoder } = ctx.lib;
  const { models, ort } = ctx.shared;
  const base = pickWeighted(rng, models, (m) => weightOf(m.name));
  const external = base.name === 'lstm2_external.onnx';
  // The external-data file, sometimes not a good one: not a regular file, cut short, longer; the
  // model itself is then mostly left intact, so that the weights file is what gets tested.
  const wEdit = external ? rng.weighted([[8, 'intact'], [1, 'fifo'], [1, 'dir'], [1, 'devzero'], [1, 'missing'], [1, 'truncated'], [1, 'extended'], [1, 'flipped']]) : 'intact';
  const mut = wEdit !== 'intact' && rng.bool(0.7) ? { bytes: base.bytes, what: 'unmodified' } : mutate(rng, base);
  const fromPath = external || rng.bool(0.2);
  let source = mut.bytes;
  if (fromPath) {
    const p = join(ctx.caseDir, base.name);
    writeFileSync(p, mut.bytes);
    if (external) {
      const w = join(ctx.caseDir, 'lstm2_external.weights');
      const src = join(ctx.root, 'models', 'fixtures', 'lstm2_external.weights');
      const e = wEdit;
      if (e === 'fifo') execFileSync('mkfifo', [w]);
      else if (e === 'dir') mkdirSync(w);
      else if (e === 'devzero') symlinkSync('/dev/zero', w);
      else if (e === 'truncated') writeFileSync(w, readFileSync(src).subarray(0, rng.int(0, 50000)));
      else if (e === 'extended') writeFileSync(w, Buffer.concat([readFileSync(src), Buffer.from(rng.bytes(100))]));
      else if (e === 'flipped') {
        const b = readFileSync(src);
        for (let i = rng.int(1, 8); i > 0; i--) b[rng.int(0, b.length - 1)] ^= 1 << rng.int(0, 7);
        writeFileSync(w, b);
      } else if (e !== 'missing') copyFileSync(src, w);
      if (e !== 'intact') mut.what += `; weights file ${e}`;
    }
    source = p;
  }
  const threads = rng.pick([1, 1, 2]);
  const kind = `${base.name}${fromPath ? ' (path)' : ''}: ${mut.what}`;
  const hrng = rng.u32();

  ctx.kind = kind;
  let enc;
  try {
    enc = await Encoder.load(source, { threads });
  } catch (e) {
    return { ...rejected(e, 'load'), kind };
  }
  let session = null;
  try {
    let ortError = null;
    try {
      session = await ort.InferenceSession.create(source, { intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: 'all', logSeverityLevel: 4 });
    } catch (e) {
      ortError = e;
    }
    if (ortError) {
      if (base.ortRefusal && ortReason(ortError) === base.ortRefusal) {
        return { outcome: 'correct', kind, detail: `${enc.backend}; no reference: onnxruntime does not run ${base.name} either (${base.ortRefusal})` };
      }
      if (enc.backend === 'native') return { outcome: 'ortRefused', kind, detail: `loaded natively; onnxruntime refuses to load it: ${errText(ortError)}` };
      return { outcome: 'untyped', kind, detail: `onnxruntime backend accepted what onnxruntime refuses?! ${errText(ortError)}` };
    }
    let proto = null;
    try {
      proto = decodeModel(mut.bytes);
    } catch {
      proto = null;
    }
    const r2 = new (await import('./prng.mjs')).Rng('hist', hrng);
    const vocab = enc.vocab ?? 2;
    const hs = histories(r2, Math.min(vocab, 1 << 20), r2.int(1, 4));
    let ours;
    try {
      ours = await enc.encode(hs);
    } catch (e) {
      return { ...rejected(e, 'encode'), kind };
    }
    if (!(ours instanceof Float32Array) || ours.length !== hs.length * enc.dim) wrong(`encode returned ${ours?.length} values for ${hs.length} users × dim ${enc.dim}`);
    for (let u = 0; u < hs.length; u++) {
      let res;
      try {
        const feeds = feedsFor(ort, proto, hs[u]);
        if (!feeds) throw new Error('no graph input to feed');
        res = await session.run(feeds);
      } catch (e) {
        if (enc.backend === 'native') return { outcome: 'ortRefused', kind, detail: `encoded natively; onnxruntime cannot run it on history ${JSON.stringify(hs[u])}: ${errText(e)}` };
        return { outcome: 'typed', kind, detail: `onnxruntime backend and onnxruntime both fail to run (fed alike): ${errText(e)}` };
      }
      const outName = session.outputNames[0];
      const y = res[outName];
      const dims = y.dims.map(Number);
      if (dims.length !== 2 || dims[0] !== 1 || dims[1] !== enc.dim) {
        wrong(`onnxruntime's output ${outName} has shape [${dims}], ${enc.backend} gives [1, ${enc.dim}] (history ${JSON.stringify(hs[u])})`);
      }
      const ref = y.data;
      for (let p = 0; p < enc.dim; p++) {
        const a = ours[u * enc.dim + p];
        const b = Number(ref[p]);
        const same = (Number.isNaN(a) && Number.isNaN(b)) || a === b || Math.abs(a - b) <= 1e-4 * Math.max(1, Math.abs(b));
        if (!same) wrong(`${enc.backend} output[${u}][${p}] = ${a}, onnxruntime says ${b} (history ${JSON.stringify(hs[u])})`);
      }
    }
    if (enc.backend === 'native') {
      const sync = enc.encodeSync(hs);
      for (let i = 0; i < sync.length; i++) if (!Object.is(sync[i], ours[i])) wrong(`encodeSync differs from encode at ${i}: ${sync[i]} vs ${ours[i]}`);
      if (enc.incremental) {
        const st = enc.initialState(1);
        let v = null;
        for (const id of hs[0]) v = await enc.step(st, [id]);
        for (let p = 0; p < enc.dim; p++) {
          const a = v[p];
          const b = ours[p];
          if (!(Object.is(a, b) || Math.abs(a - b) <= 1e-5 * Math.max(1, Math.abs(b)))) wrong(`step-by-step output[${p}] = ${a}, encode gives ${b} (history ${JSON.stringify(hs[0])})`);
        }
      }
    }
    return { outcome: 'correct', kind, detail: `${enc.backend}, dim ${enc.dim}, ${hs.length} histories agree with onnxruntime` };
  } catch (e) {
    if (e instanceof Wrong) return { outcome: 'wrong', kind, detail: e.message };
    return { ...rejected(e, 'after load'), kind };
  } finally {
    await enc.close().catch(() => {});
    await session?.release().catch(() => {});
  }
}
