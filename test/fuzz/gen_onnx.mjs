/**
 * Family b: ONNX models. Each case mutates one of models/fixtures/*.onnx or
 * models/example/session_lstm.onnx: raw byte flips, truncation, extension, or structured edits
 * through the protobuf schema (attributes renamed, changed, added or dropped; node inputs
 * dropped, added or swapped; initializer dims and data; Constant values; op types, domains,
 * opsets; graph input/output types; names that are not UTF-8). Oracle: Encoder.load refuses the
 * bytes with a typed error, or it accepts them and its output equals onnxruntime-node's on the
 * same bytes within 1e-4 (and, natively, `step` agrees with `encode`); accepting natively what
 * onnxruntime refuses to load or run is its own class (`ortRefused`).
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';

import { Wrong, errText, rejected, wrong } from './common.mjs';
import { Attr, AttributeProtoSchema, DT, StringStringEntryProtoSchema, create, decodeModel, encodeModel } from './onnx_schema.mjs';


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

// ------------------------------------------------------------------ structured mutations

const TYPO = (rng, s) => {
  const how = rng.int(0, 4);
  if (how === 0) return `${s}${rng.pick(['s', 't', '_', '0'])}`;
  if (how === 1 && s.length > 1) {
    const i = rng.int(0, s.length - 2);
    return s.slice(0, i) + s[i + 1] + s[i] + s.slice(i + 2);
  }
  if (how === 2) return s.toUpperCase();
  if (how === 3) return s.slice(0, -1);
  return rng.pick(['clip', 'direction', 'hidden_size', 'layout', 'input_forget', 'linear_before_reset', 'activations', 'axis', 'transB', 'alpha', 'value', 'foo']);
};

const ACTIVATIONS = ['Sigmoid', 'Tanh', 'Relu', 'HardSigmoid', 'Elu', 'Affine', 'LeakyRelu', 'ThresholdedRelu', 'ScaledTanh', 'Softsign', 'Softplus', 'Foo'];

function nodesWith(g, pred) {
  return g.node.filter(pred);
}

function pickNode(rng, g, prefer = ['LSTM', 'GRU', 'Gemm', 'Gather', 'ConstantOfShape', 'Slice', 'Concat', 'Squeeze', 'Transpose', 'Constant', 'Tanh', 'Sigmoid', 'Relu', 'Expand', 'MatMul', 'Add']) {
  const pref = nodesWith(g, (n) => prefer.includes(n.opType));
  return rng.bool(0.8) && pref.length ? rng.pick(pref) : rng.pick(g.node);
}

function changeAttrValue(rng, a) {
  switch (a.type) {
    case Attr.INT: {
      const v = Number(a.i);
      a.i = BigInt(rng.pick([v + 1, v - 1, 0, 1, 2, -1, 3, 1 << 20, -(2 ** 40)]));
      return `${a.name} = ${a.i}`;
    }
    case Attr.FLOAT:
      a.f = rng.pick([NaN, -1, 0, 1e30, 0.5, Infinity, a.f * 2, -a.f]);
      return `${a.name} = ${a.f}`;
    case Attr.STRING: {
      const s = rng.pick(['forward', 'reverse', 'bidirectional', 'sideways', '', 'FORWARD']);
      a.s = new TextEncoder().encode(s);
      return `${a.name} = "${s}"`;
    }
    case Attr.STRINGS: {
      if (a.strings.length === 0) return null;
      const i = rng.int(0, a.strings.length - 1);
      const s = rng.pick(ACTIVATIONS);
      a.strings[i] = new TextEncoder().encode(s);
      if (rng.bool(0.2)) a.strings.pop();
      return `${a.name}[${i}] = ${s}`;
    }
    case Attr.INTS: {
      if (a.ints.length === 0) {
        a.ints.push(1n);
        return `${a.name} = [1]`;
      }
      const i = rng.int(0, a.ints.length - 1);
      a.ints[i] = BigInt(rng.pick([0, 1, -1, 2, 3, Number(a.ints[i]) + 1]));
      return `${a.name}[${i}] = ${a.ints[i]}`;
    }
    case Attr.FLOATS:
      if (a.floats.length) a.floats[0] = rng.pick([NaN, 0, -1, 5]);
      else a.floats.push(1);
      return `${a.name}[0] = ${a.floats[0]}`;
    case Attr.TENSOR: {
      const t = a.t;
      if (!t) return null;
      return `${a.name}: ${changeTensor(rng, t)}`;
    }
    default:
      a.type = Attr.INT;
      a.i = 1n;
      return `${a.name} type -> INT`;
  }
}

function changeTensor(rng, t) {
  const how = rng.pick(['value', 'value', 'dims', 'dtype', 'truncate', 'nan', 'zero', 'huge']);
  const dims = t.dims.map(Number);
  if (how === 'dims') {
    if (dims.length === 0 || rng.bool(0.3)) t.dims.push(1n);
    else {
      const i = rng.int(0, dims.length - 1);
      t.dims[i] = BigInt(rng.pick([dims[i] + 1, Math.max(0, dims[i] - 1), 1, 0, dims[i] * 2]));
    }
    return `dims [${dims}] -> [${t.dims.map(Number)}]`;
  }
  if (how === 'huge') {
    t.dims = [1_000_000_000n, 1_000_000_000n];
    return 'dims -> [1e9, 1e9]';
  }
  if (how === 'dtype') {
    const before = t.dataType;
    t.dataType = rng.pick([DT.DOUBLE, DT.INT32, DT.FLOAT16, DT.INT64, DT.FLOAT, DT.UINT8, 0, 999]);
    return `dataType ${before} -> ${t.dataType}`;
  }
  const raw = t.rawData;
  if (how === 'truncate') {
    if (raw.length) t.rawData = raw.subarray(0, Math.max(0, raw.length - rng.pick([1, 4, 8])));
    else if (t.floatData.length) t.floatData.pop();
    else if (t.int64Data.length) t.int64Data.pop();
    else if (t.int32Data.length) t.int32Data.pop();
    return 'data truncated';
  }
  // Value edits
  if (t.dataType === DT.FLOAT) {
    const f = raw.length ? new Float32Array(Uint8Array.from(raw).buffer) : Float32Array.from(t.floatData);
    if (f.length === 0) return 'no data';
    const i = rng.int(0, f.length - 1);
    if (how === 'nan') f[i] = rng.pick([NaN, Infinity, -Infinity]);
    else if (how === 'zero') f.fill(0);
    else f[i] = rng.pick([1, -1, 0.5, 1e30, f[i] * 100, 2]);
    if (raw.length) t.rawData = new Uint8Array(f.buffer);
    else t.floatData = Array.from(f);
    return `float[${how === 'zero' ? 'all' : i}] -> ${how === 'zero' ? 0 : f[i]}`;
  }
  if (t.dataType === DT.INT64 || t.dataType === DT.INT32) {
    const w = t.dataType === DT.INT64 ? 8 : 4;
    if (raw.length) {
      const dv = new DataView(Uint8Array.from(raw).buffer);
      const n = raw.length / w;
      if (n < 1) return 'no data';
      const i = rng.int(0, n - 1);
      const v = rng.pick([0, 1, -1, 2, 3, 64, 2 ** 31 - 1, -(2 ** 31)]);
      if (w === 8) dv.setBigInt64(i * 8, BigInt(v), true);
      else dv.setInt32(i * 4, v, true);
      t.rawData = new Uint8Array(dv.buffer);
      return `int[${i}] -> ${v}`;
    }
    const arr = t.dataType === DT.INT64 ? t.int64Data : t.int32Data;
    if (!arr.length) return 'no data';
    const i = rng.int(0, arr.length - 1);
    const v = rng.pick([0, 1, -1, 2, 5]);
    arr[i] = t.dataType === DT.INT64 ? BigInt(v) : v;
    return `int[${i}] -> ${v}`;
  }
  return 'unchanged (other dtype)';
}

const STRUCTURED = {
  attrRename(rng, m) {
    const n = pickNode(rng, m.graph, ['LSTM', 'GRU', 'Gemm', 'Gather', 'ConstantOfShape', 'Concat', 'Transpose', 'Squeeze', 'Unsqueeze', 'Constant']);
    if (!n.attribute.length) return null;
    const a = rng.pick(n.attribute);
    const old = a.name;
    a.name = TYPO(rng, old);
    return `${n.opType} ${n.name}: attribute ${old} -> ${a.name}`;
  },
  attrValue(rng, m) {
    const n = pickNode(rng, m.graph);
    if (!n.attribute.length) return null;
    const a = rng.pick(n.attribute);
    const what = changeAttrValue(rng, a);
    return what && `${n.opType} ${n.name}: ${what}`;
  },
  attrAdd(rng, m) {
    const n = pickNode(rng, m.graph, ['LSTM', 'GRU', 'Gemm', 'Gather']);
    const cands = {
      LSTM: [['clip', Attr.FLOAT, 0.5], ['input_forget', Attr.INT, 1], ['layout', Attr.INT, 1], ['activation_alpha', Attr.FLOATS, [0.5]], ['activations', Attr.STRINGS, ['Relu', 'Tanh', 'Tanh']], ['direction', Attr.STRING, 'reverse']],
      GRU: [['linear_before_reset', Attr.INT, 1], ['linear_before_reset', Attr.INT, 0], ['clip', Attr.FLOAT, 0.1], ['layout', Attr.INT, 1], ['activations', Attr.STRINGS, ['Tanh', 'Sigmoid']]],
      Gemm: [['alpha', Attr.FLOAT, 2], ['beta', Attr.FLOAT, 0.5], ['transA', Attr.INT, 1], ['transB', Attr.INT, 0]],
      Gather: [['axis', Attr.INT, 1]],
    }[n.opType] ?? [['foo', Attr.INT, 1], ['axis', Attr.INT, 2]];
    const [name, type, v] = rng.pick(cands);
    const a = create(AttributeProtoSchema, { name, type });
    if (type === Attr.INT) a.i = BigInt(v);
    else if (type === Attr.FLOAT) a.f = v;
    else if (type === Attr.STRING) a.s = new TextEncoder().encode(v);
    else if (type === Attr.FLOATS) a.floats = v;
    else if (type === Attr.STRINGS) a.strings = v.map((s) => new TextEncoder().encode(s));
    // Replace an existing one of that name, or add (a duplicate name when asked).
    const dup = rng.bool(0.2);
    const at = n.attribute.findIndex((x) => x.name === name);
    if (at >= 0 && !dup) n.attribute[at] = a;
    else n.attribute.push(a);
    return `${n.opType} ${n.name}: ${at >= 0 && !dup ? 'set' : 'added'} ${name} = ${JSON.stringify(v)}`;
  },
  attrDrop(rng, m) {
    const n = pickNode(rng, m.graph);
    if (!n.attribute.length) return null;
    const i = rng.int(0, n.attribute.length - 1);
    const [a] = n.attribute.splice(i, 1);
    return `${n.opType} ${n.name}: attribute ${a.name} removed`;
  },
  inputDrop(rng, m) {
    const n = pickNode(rng, m.graph, ['LSTM', 'GRU', 'Gemm', 'Slice', 'Concat', 'Expand', 'Add', 'MatMul']);
    if (!n.input.length) return null;
    const i = rng.bool(0.5) ? n.input.length - 1 : rng.int(0, n.input.length - 1);
    if (rng.bool(0.5)) {
      n.input[i] = '';
      return `${n.opType} ${n.name}: input ${i} set to ''`;
    }
    n.input.splice(i, 1);
    return `${n.opType} ${n.name}: input ${i} removed`;
  },
  inputAdd(rng, m) {
    const n = pickNode(rng, m.graph, ['LSTM', 'GRU', 'Gemm', 'Gather', 'Tanh']);
    const name = rng.pick(['', 'nonexistent', ...m.graph.initializer.map((t) => t.name), ...m.graph.input.map((i) => i.name)]);
    n.input.push(name);
    return `${n.opType} ${n.name}: input ${JSON.stringify(name)} added`;
  },
  inputSwap(rng, m) {
    const n = pickNode(rng, m.graph, ['LSTM', 'GRU', 'Gemm', 'Gather', 'MatMul', 'Add']);
    if (n.input.length < 2) return null;
    const i = rng.int(0, n.input.length - 1);
    let j = rng.int(0, n.input.length - 1);
    if (i === j) j = (i + 1) % n.input.length;
    [n.input[i], n.input[j]] = [n.input[j], n.input[i]];
    return `${n.opType} ${n.name}: inputs ${i} and ${j} swapped`;
  },
  initializer(rng, m) {
    const g = m.graph;
    if (!g.initializer.length) return null;
    const t = rng.pick(g.initializer);
    return `initializer ${t.name}: ${changeTensor(rng, t)}`;
  },
  constant(rng, m) {
    const cs = nodesWith(m.graph, (n) => (n.opType === 'Constant' || n.opType === 'ConstantOfShape') && n.attribute.some((a) => a.t));
    if (!cs.length) return null;
    const n = rng.pick(cs);
    const a = n.attribute.find((x) => x.t);
    if (n.opType === 'ConstantOfShape' && rng.bool(0.6)) {
      // A non-zero initial state.
      const v = rng.pick([1, 0.5, -1, NaN]);
      a.t.rawData = new Uint8Array(Float32Array.of(v).buffer);
      a.t.floatData = [];
      a.t.dataType = DT.FLOAT;
      return `ConstantOfShape ${n.name}: value ${v}`;
    }
    return `${n.opType} ${n.name}: ${changeTensor(rng, a.t)}`;
  },
  opType(rng, m) {
    const swaps = { Tanh: ['Sigmoid', 'Relu', 'Identity', 'Softsign'], Sigmoid: ['Tanh', 'HardSigmoid'], Relu: ['Tanh', 'LeakyRelu'], LSTM: ['GRU', 'RNN'], GRU: ['LSTM', 'RNN'], Gemm: ['MatMul'], Squeeze: ['Unsqueeze', 'Identity'], Gather: ['GatherElements'], Transpose: ['Identity'], Concat: ['Add'], Slice: ['Identity'] };
    const cands = nodesWith(m.graph, (n) => swaps[n.opType]);
    if (!cands.length) return null;
    const n = rng.pick(cands);
    const old = n.opType;
    n.opType = rng.pick(swaps[old]);
    return `node ${n.name}: op ${old} -> ${n.opType}`;
  },
  nodeDrop(rng, m) {
    const g = m.graph;
    const i = rng.int(0, g.node.length - 1);
    const [n] = g.node.splice(i, 1);
    if (rng.bool(0.5) && n.input.length && n.output.length) {
      // Rewire: what read the dropped node's output reads its input (an op silently removed).
      for (const x of g.node) x.input = x.input.map((s) => (s === n.output[0] ? n.input[0] : s));
      for (const o of g.output) if (o.name === n.output[0]) o.name = n.input[0];
      return `node ${n.opType} ${n.name} removed (rewired)`;
    }
    return `node ${n.opType} ${n.name} removed`;
  },
  nodeDup(rng, m) {
    const g = m.graph;
    const i = rng.int(0, g.node.length - 1);
    g.node.splice(i, 0, structuredClone(g.node[i]));
    return `node ${g.node[i].opType} ${g.node[i].name} duplicated`;
  },
  domain(rng, m) {
    const n = pickNode(rng, m.graph);
    n.domain = rng.pick(['com.microsoft', 'ai.onnx.ml', 'x.y', 'ai.onnx']);
    return `${n.opType} ${n.name}: domain ${n.domain}`;
  },
  opset(rng, m) {
    if (rng.bool(0.7) && m.opsetImport.length) {
      const v = rng.pick([1, 7, 9, 11, 13, 17, 21, 99, 0]);
      m.opsetImport[0].version = BigInt(v);
      return `opset -> ${v}`;
    }
    const v = rng.pick([1, 3, 6, 10, 99, 0]);
    m.irVersion = BigInt(v);
    return `ir_version -> ${v}`;
  },
  ioType(rng, m) {
    const g = m.graph;
    const io = rng.bool(0.6) ? g.input : g.output;
    if (!io.length) return null;
    const v = rng.pick(io);
    // TypeProto.value is a oneof: { case: 'tensorType', value: { elemType, shape } }
    const tensor = v.type?.value?.value;
    if (!tensor) return null;
    if (rng.bool(0.5)) {
      const old = tensor.elemType;
      tensor.elemType = rng.pick([DT.INT32, DT.FLOAT, DT.DOUBLE, DT.INT64, DT.STRING, DT.BOOL]);
      return `${io === g.input ? 'input' : 'output'} ${v.name}: elem type ${old} -> ${tensor.elemType}`;
    }
    const dims = tensor.shape?.dim;
    if (!dims) return null;
    if (rng.bool(0.5) && dims.length) dims.pop();
    else dims.push(structuredClone(dims[dims.length - 1] ?? { value: { case: 'dimValue', value: 1n } }));
    return `${io === g.input ? 'input' : 'output'} ${v.name}: rank -> ${dims.length}`;
  },
  rename(rng, m) {
    const g = m.graph;
    const what = rng.pick(['output', 'initializerCollision', 'nodeOutput', 'graphInput']);
    if (what === 'output' && g.output.length) {
      g.output[0].name = `${g.output[0].name}_x`;
      return 'graph output renamed (nothing produces it)';
    }
    if (what === 'initializerCollision' && g.initializer.length > 1) {
      const [a, b] = [rng.pick(g.initializer), rng.pick(g.initializer)];
      const old = a.name;
      a.name = b.name;
      return `initializer ${old} renamed to ${b.name}`;
    }
    if (what === 'nodeOutput') {
      const n = pickNode(rng, g);
      if (!n.output.length) return null;
      const other = rng.pick(g.node);
      const old = n.output[0];
      n.output[0] = other.output[0] ?? old;
      return `${n.opType} ${n.name}: output ${old} -> ${n.output[0]}`;
    }
    if (g.input.length) {
      const old = g.input[0].name;
      g.input[0].name = 'renamed_input';
      return `graph input ${old} renamed (its readers dangle)`;
    }
    return null;
  },
  external(rng, m) {
    const g = m.graph;
    if (!g.initializer.length) return null;
    const t = rng.pick(g.initializer);
    const loc = rng.pick(['../../etc/passwd', '/etc/passwd', 'missing.bin', 'weights.bin', '', '.', 'a/../../x']);
    t.dataLocation = 1;
    const kv = (key, value) => create(StringStringEntryProtoSchema, { key, value });
    t.externalData = [kv('location', loc), ...(rng.bool(0.5) ? [kv('offset', rng.pick(['0', '-8', '1e30', 'abc']))] : [])];
    t.rawData = new Uint8Array(0);
    return `initializer ${t.name}: external data at ${JSON.stringify(loc)}`;
  },
};

/** Names that are not UTF-8: set a marker, encode, then overwrite the marker's bytes. */
function invalidUtf8(rng, m) {
  const g = m.graph;
  const marker = `Q${Array.from({ length: 7 }, () => String.fromCharCode(97 + rng.int(0, 25))).join('')}`;
  const where = rng.pick(['node.name', 'node.input', 'node.output', 'attr.name', 'initializer.name', 'graph.input', 'opType', 'docString', 'attr.s']);
  const n = pickNode(rng, g);
  if (where === 'node.name') n.name = marker;
  else if (where === 'node.input' && n.input.length) {
    const old = n.input[0];
    for (const x of g.node) x.input = x.input.map((s) => (s === old ? marker : s));
    for (const t of g.initializer) if (t.name === old) t.name = marker;
    for (const i of g.input) if (i.name === old) i.name = marker;
  } else if (where === 'node.output' && n.output.length) {
    const old = n.output[0];
    n.output[0] = marker;
    for (const x of g.node) x.input = x.input.map((s) => (s === old ? marker : s));
    for (const o of g.output) if (o.name === old) o.name = marker;
  } else if (where === 'attr.name' && n.attribute.length) rng.pick(n.attribute).name = marker;
  else if (where === 'initializer.name' && g.initializer.length) {
    const t = rng.pick(g.initializer);
    const old = t.name;
    t.name = marker;
    for (const x of g.node) x.input = x.input.map((s) => (s === old ? marker : s));
  } else if (where === 'graph.input' && g.input.length) {
    const old = g.input[0].name;
    g.input[0].name = marker;
    for (const x of g.node) x.input = x.input.map((s) => (s === old ? marker : s));
  } else if (where === 'opType') n.opType = marker;
  else if (where === 'attr.s') {
    const a = n.attribute.find((x) => x.type === Attr.STRING);
    if (!a) return null;
    a.s = new TextEncoder().encode(marker);
  } else g.docString = marker;
  const bad = rng.pick([
    [0xff, 0xfe, 0xfd, 0x41, 0x42, 0x43, 0x44, 0x45],
    [0xc3, 0x28, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41],
    [0x41, 0xed, 0xa0, 0x80, 0x41, 0x41, 0x41, 0x41],
    [0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0xe2],
  ]);
  return {
    what: `invalid UTF-8 in ${where}${where.startsWith('node') || where.startsWith('attr') || where === 'opType' ? ` (${n.opType} ${n.name})` : ''}`,
    patch(bytes) {
      const mk = new TextEncoder().encode(marker);
      let count = 0;
      for (let i = 0; i + mk.length <= bytes.length; i++) {
        let ok = true;
        for (let k = 0; k < mk.length && ok; k++) ok = bytes[i + k] === mk[k];
        if (ok) {
          bytes.set(bad, i);
          count++;
        }
      }
      return count;
    },
  };
}

function rawMutation(rng, bytes) {
  const kind = rng.weighted([[4, 'flip'], [2, 'truncate'], [1, 'extend'], [1, 'splice'], [1, 'zero']]);
  const b = Uint8Array.from(bytes);
  if (kind === 'flip') {
    const m = rng.int(1, 8);
    const at = [];
    for (let i = 0; i < m; i++) {
      const o = rng.bool(0.5) ? rng.int(0, Math.min(b.length, 2048) - 1) : rng.int(0, b.length - 1);
      b[o] ^= 1 << rng.int(0, 7);
      at.push(o);
    }
    return { bytes: b, what: `bit flips at ${at.join(',')}` };
  }
  if (kind === 'truncate') {
    const len = rng.pick([0, 1, 2, 10, b.length - 1, b.length - 4, rng.int(0, b.length - 1), Math.floor(b.length / 2)]);
    return { bytes: b.slice(0, Math.max(0, Math.min(len, b.length - 1))), what: `truncated to ${Math.max(0, Math.min(len, b.length - 1))} of ${b.length}` };
  }
  if (kind === 'extend') {
    const extra = rng.bytes(rng.pick([1, 3, 16, 200]));
    const out = new Uint8Array(b.length + extra.length);
    out.set(b);
    out.set(extra, b.length);
    return { bytes: out, what: `extended by ${extra.length} random bytes` };
  }
  if (kind === 'splice') {
    const from = rng.int(0, b.length - 1);
    const len = rng.int(1, Math.min(64, b.length - from));
    const to = rng.int(0, b.length - len);
    b.copyWithin(to, from, from + len);
    return { bytes: b, what: `${len} bytes copied from ${from} to ${to}` };
  }
  const o = rng.int(0, b.length - 1);
  const len = rng.int(1, 16);
  b.fill(0, o, o + len);
  return { bytes: b, what: `${len} bytes zeroed at ${o}` };
}

// ------------------------------------------------------------------ a case

function mutate(rng, base) {
  if (rng.bool(0.04)) return { bytes: base.bytes, what: 'unmodified' };
  if (rng.bool(0.3)) return rawMutation(rng, base.bytes);
  for (let attempt = 0; attempt < 8; attempt++) {
    const m = decodeModel(base.bytes);
    const whats = [];
    let patch = null;
    const count = rng.weighted([[6, 1], [2, 2], [1, 3]]);
    for (let c = 0; c < count; c++) {
      const key = rng.weighted([
        [4, 'attrRename'],
        [5, 'attrValue'],
        [3, 'attrAdd'],
        [2, 'attrDrop'],
        [2, 'inputDrop'],
        [1, 'inputAdd'],
        [2, 'inputSwap'],
        [4, 'initializer'],
        [3, 'constant'],
        [2, 'opType'],
        [1, 'nodeDrop'],
        [1, 'nodeDup'],
        [1, 'domain'],
        [1, 'opset'],
        [2, 'ioType'],
        [1, 'rename'],
        [1, 'external'],
        [2, 'utf8'],
      ]);
      try {
        if (key === 'utf8') {
          const r = invalidUtf8(rng, m);
          if (r) {
            patch = r.patch;
            whats.push(r.what);
          }
        } else {
          const w = STRUCTURED[key](rng, m);
          if (w) whats.push(w);
        }
      } catch (e) {
        whats.push(`(${key} failed: ${e.message})`);
      }
    }
    if (!whats.length) continue;
    let bytes;
    try {
      bytes = encodeModel(m);
    } catch {
      continue;
    }
    if (patch && patch(bytes) === 0) whats.push('(marker not found)');
    return { bytes, what: whats.join('; ') };
  }
  return rawMutation(rng, base.bytes);
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
