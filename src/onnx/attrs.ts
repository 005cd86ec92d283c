/**
 * What the importer understands of each operator it evaluates or lowers: the number of inputs
 * and outputs, and an allow-list of attributes with their types and, where the kernels implement
 * only some, their values (per opset, as the ONNX schemas define them). Anything else — a
 * misspelt or unknown attribute, an extra input, a value the kernels do not implement — refuses
 * the native path naming the node and the attribute, rather than being ignored.
 */
import { type AttrValue, type Tensor, attributes } from './model.js';
import { Unsupported } from './plan.js';
import { AttributeProto_AttributeType as AttrType, type NodeProto } from './proto/onnx_pb.js';

type Kind = 'int' | 'float' | 'string' | 'ints' | 'floats' | 'strings' | 'tensor';

interface AttrRule {
  kind: Kind;
  /** The only values understood (ints and strings compared exactly). */
  values?: ReadonlyArray<number | string>;
  /** First opset whose schema has this attribute, and the first that no longer has it. */
  since?: number;
  until?: number;
}

interface OpRule {
  /** [min, max] inputs (counting empty optional ones), for this opset. */
  inputs: (opset: number) => [number, number];
  outputs: [number, number];
  attrs: Record<string, AttrRule>;
  required?: string[];
}

const KIND: Record<Kind, AttrType> = {
  int: AttrType.INT,
  float: AttrType.FLOAT,
  string: AttrType.STRING,
  ints: AttrType.INTS,
  floats: AttrType.FLOATS,
  strings: AttrType.STRINGS,
  tensor: AttrType.TENSOR,
};

const n = (lo: number, hi = lo) => (): [number, number] => [lo, hi];
const BIN: OpRule = { inputs: n(2), outputs: [1, 1], attrs: {} };
const UNARY: OpRule = { inputs: n(1), outputs: [1, 1], attrs: {} };
const DIRECTIONS = ['forward', 'reverse', 'bidirectional'];
const BOOL = [0, 1];

export const RULES: Record<string, OpRule> = {
  Constant: {
    inputs: n(0),
    outputs: [1, 1],
    attrs: { value: { kind: 'tensor' }, value_float: { kind: 'float' }, value_floats: { kind: 'floats' }, value_int: { kind: 'int' }, value_ints: { kind: 'ints' } },
  },
  Identity: UNARY,
  Dropout: {
    inputs: (o) => (o < 12 ? [1, 1] : [1, 3]),
    outputs: [1, 2],
    attrs: { ratio: { kind: 'float', until: 12 }, is_test: { kind: 'int', until: 7, values: [1] }, seed: { kind: 'int', since: 12 } },
  },
  Cast: { inputs: n(1), outputs: [1, 1], attrs: { to: { kind: 'int' }, saturate: { kind: 'int', since: 19 } }, required: ['to'] },
  Shape: { inputs: n(1), outputs: [1, 1], attrs: { start: { kind: 'int', since: 15 }, end: { kind: 'int', since: 15 } } },
  Gather: { inputs: n(2), outputs: [1, 1], attrs: { axis: { kind: 'int' } } },
  Transpose: { inputs: n(1), outputs: [1, 1], attrs: { perm: { kind: 'ints' } } },
  Squeeze: { inputs: (o) => (o < 13 ? [1, 1] : [1, 2]), outputs: [1, 1], attrs: { axes: { kind: 'ints', until: 13 } } },
  Unsqueeze: { inputs: (o) => (o < 13 ? [1, 1] : [2, 2]), outputs: [1, 1], attrs: { axes: { kind: 'ints', until: 13 } } },
  Reshape: { inputs: n(2), outputs: [1, 1], attrs: { allowzero: { kind: 'int', since: 14, values: BOOL } } },
  Flatten: { inputs: n(1), outputs: [1, 1], attrs: { axis: { kind: 'int' } } },
  Slice: {
    inputs: (o) => (o < 10 ? [1, 1] : [3, 5]),
    outputs: [1, 1],
    attrs: { starts: { kind: 'ints', until: 10 }, ends: { kind: 'ints', until: 10 }, axes: { kind: 'ints', until: 10 } },
  },
  Concat: { inputs: n(1, Infinity), outputs: [1, 1], attrs: { axis: { kind: 'int' } }, required: ['axis'] },
  ConstantOfShape: { inputs: n(1), outputs: [1, 1], attrs: { value: { kind: 'tensor' } } },
  Expand: BIN,
  Range: { inputs: n(3), outputs: [1, 1], attrs: {} },
  ReduceProd: {
    inputs: (o) => (o < 18 ? [1, 1] : [1, 2]),
    outputs: [1, 1],
    attrs: { axes: { kind: 'ints', until: 18 }, keepdims: { kind: 'int', values: BOOL }, noop_with_empty_axes: { kind: 'int', since: 18, values: [0] } },
  },
  Add: BIN,
  Sub: BIN,
  Mul: BIN,
  Div: BIN,
  Equal: BIN,
  Neg: UNARY,
  Tanh: UNARY,
  Sigmoid: UNARY,
  Relu: UNARY,
  MatMul: BIN,
  Gemm: {
    inputs: n(2, 3),
    outputs: [1, 1],
    attrs: { alpha: { kind: 'float' }, beta: { kind: 'float' }, transA: { kind: 'int', values: [0] }, transB: { kind: 'int', values: BOOL } },
  },
  LSTM: {
    inputs: n(3, 8),
    outputs: [0, 3],
    attrs: {
      activations: { kind: 'strings' },
      clip: { kind: 'float' },
      direction: { kind: 'string', values: DIRECTIONS },
      hidden_size: { kind: 'int' },
      input_forget: { kind: 'int', values: BOOL },
      layout: { kind: 'int', since: 14, values: BOOL },
    },
    required: ['hidden_size'],
  },
  GRU: {
    inputs: n(3, 6),
    outputs: [0, 2],
    attrs: {
      activations: { kind: 'strings' },
      clip: { kind: 'float' },
      direction: { kind: 'string', values: DIRECTIONS },
      hidden_size: { kind: 'int' },
      layout: { kind: 'int', since: 14, values: BOOL },
      linear_before_reset: { kind: 'int', values: BOOL },
    },
    required: ['hidden_size'],
  },
  TopK: {
    inputs: (o) => (o < 10 ? [1, 1] : [2, 2]), // TopK-1's k attribute is not in the allow-list
    outputs: [2, 2],
    attrs: { axis: { kind: 'int' }, largest: { kind: 'int', since: 11, values: BOOL }, sorted: { kind: 'int', since: 11, values: BOOL } },
  },
  ScatterElements: { inputs: n(3), outputs: [1, 1], attrs: { axis: { kind: 'int' }, reduction: { kind: 'string', since: 16, values: ['none'] } } },
};

/** A node's attributes after the allow-list check: typed reads with the schema defaults. */
export class Attrs {
  constructor(private readonly m: Map<string, AttrValue>) {}
  has(k: string): boolean {
    return this.m.has(k);
  }
  int(k: string, d: number): number {
    return (this.m.get(k) as number | undefined) ?? d;
  }
  float(k: string, d: number): number {
    return (this.m.get(k) as number | undefined) ?? d;
  }
  str(k: string, d: string): string {
    return (this.m.get(k) as string | undefined) ?? d;
  }
  ints(k: string): number[] | null {
    return (this.m.get(k) as number[] | undefined) ?? null;
  }
  floats(k: string): number[] | null {
    return (this.m.get(k) as number[] | undefined) ?? null;
  }
  strs(k: string): string[] | null {
    return (this.m.get(k) as unknown as string[] | undefined) ?? null;
  }
  tensor(k: string): Tensor | null {
    return (this.m.get(k) as Tensor | undefined) ?? null;
  }
}

const checked = new WeakMap<NodeProto, Attrs>();

const show = (v: AttrValue): string => (typeof v === 'string' ? JSON.stringify(v) : Array.isArray(v) ? `[${v.join(', ')}]` : String(v));

/**
 * Checks a node against its operator's rule at this opset; throws Unsupported naming the node
 * and the attribute or input. `where` and `dir` locate tensor attributes' data.
 */
export function checkNode(node: NodeProto, opset: number, dir: string | null, where: string): Attrs {
  // The graph is evaluated twice: decode a Constant's tensor (it may be a weight) only once.
  const done = checked.get(node);
  if (done) return done;
  const op = node.opType;
  const name = node.name || node.output[0] || op;
  const fail = (why: string): never => {
    throw new Unsupported(`${op} at node ${name}: ${why}`);
  };
  const rule = Object.hasOwn(RULES, op) ? RULES[op] : undefined; // not Object.prototype's members
  if (!rule) throw new Unsupported(`op ${op} at node ${name} is not supported`);
  const [lo, hi] = rule.inputs(opset);
  if (node.input.length < lo || node.input.length > hi) {
    fail(`${node.input.length} inputs; opset ${opset} ${op} takes ${lo === hi ? lo : hi === Infinity ? `${lo} or more` : `${lo} to ${hi}`}`);
  }
  // '' is an omitted optional input, but onnxruntime's Squeeze fails on an axes input given as ''.
  if (op === 'Squeeze' && node.input[1] === '') fail("the axes input is given as ''; leave it out");
  if (node.output.length < rule.outputs[0] || node.output.length > rule.outputs[1]) {
    fail(`${node.output.length} outputs; ${op} has ${rule.outputs[0] === rule.outputs[1] ? rule.outputs[0] : `${rule.outputs[0]} to ${rule.outputs[1]}`}`);
  }
  const known = Object.keys(rule.attrs).filter((k) => opset >= (rule.attrs[k].since ?? 0) && opset < (rule.attrs[k].until ?? Infinity));
  const seen = new Set<string>();
  for (const a of node.attribute) {
    const r = known.includes(a.name) ? rule.attrs[a.name] : undefined;
    if (!r) {
      const takes = known.length ? `opset ${opset} ${op} takes ${known.join(', ')}` : `opset ${opset} ${op} takes no attributes`;
      fail(`attribute ${a.name} is not understood (${takes})`);
    }
    const rr = r as AttrRule;
    if (seen.has(a.name)) fail(`attribute ${a.name} is given twice`);
    seen.add(a.name);
    if (a.refAttrName) fail(`attribute ${a.name} refers to a function attribute`);
    if (a.type !== KIND[rr.kind]) fail(`attribute ${a.name} has type ${AttrType[a.type] ?? a.type}, expected ${AttrType[KIND[rr.kind]]}`);
  }
  for (const k of rule.required ?? []) if (!seen.has(k)) fail(`attribute ${k} is missing`);
  const m = attributes(node, dir, where);
  for (const [k, v] of m) {
    const r = rule.attrs[k];
    if (r.kind === 'float' && !Number.isFinite(v)) fail(`attribute ${k} = ${show(v)} is not finite`);
    if (r.values && !r.values.includes(v as number | string)) {
      fail(`attribute ${k} = ${show(v)} is not supported (${r.values.map((x) => show(x)).join(', ')})`);
    }
  }
  const attrs = new Attrs(m);
  checked.set(node, attrs);
  return attrs;
}
