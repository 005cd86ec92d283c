/**
 * Family b (gen_onnx.mjs): the structured edits of an ONNX model, through the protobuf schema.
 * Each entry of STRUCTURED changes the decoded model in place and says what it did (null when
 * the model has nothing to change): attributes renamed, changed, added or dropped; node inputs
 * dropped, added or swapped; initializer dims and data; Constant values; op types, domains,
 * opsets; graph input/output types; names; external data.
 */
import { Attr, AttributeProtoSchema, DT, StringStringEntryProtoSchema, create } from './onnx_schema.mjs';

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

export function pickNode(rng, g, prefer = ['LSTM', 'GRU', 'Gemm', 'Gather', 'ConstantOfShape', 'Slice', 'Concat', 'Squeeze', 'Transpose', 'Constant', 'Tanh', 'Sigmoid', 'Relu', 'Expand', 'MatMul', 'Add']) {
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

export const STRUCTURED = {
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
