/**
 * Lowering an ONNX session encoder onto the native LSTM/GRU kernels.
 *
 * The graph is evaluated with concrete probe sizes (batch × sequence length). Plumbing (Shape,
 * Gather, Concat, ConstantOfShape, Slice, Expand, ...) is computed on real constant tensors, so
 * the zero initial states exporters build come out as all-zero constants. The heavy operators
 * produce symbolic values that record what they are (ops/*). Every node is first checked against
 * its operator's allow-list (attrs.ts). Anything the rules do not cover throws Unsupported, naming
 * the operator and node: the encoder then runs on onnxruntime with that reason.
 *
 * The evaluation runs at two different probe sizes and must give the same plan: a constant that
 * only agrees with the plan at one batch size or length (a hard-coded last index, a fixed-size
 * initial state) refuses the native path instead of being read as what the exporter usually means.
 */
import { FileError, FormatError, ModelError } from '../errors.js';
import { checkNode } from './attrs.js';
import * as C from './consts.js';
import { type LoadedModel, type Tensor, tensorOf } from './model.js';
import { evalConst } from './ops/const.js';
import { dropoutInference, shapeOf } from './ops/const.js';
import { activation, arith, gemm, matmul } from './ops/head.js';
import { castSym, concatSym, flattenSym, gatherSym, reshapeSym, scatterInverse, sliceSym, squeezeSym, topk, transposeSym, unsqueezeSym } from './ops/plumbing.js';
import { recurrent } from './ops/recurrent.js';
import { type EncoderPlan, Unsupported, samePlan } from './plan.js';
import type { Signature } from './signature.js';
import { type LowerState, NodeCtx, type Probe, type Sym, type Val, checkFinite, f32, isSym } from './sym.js';

export { Unsupported } from './plan.js';
export type { EncoderPlan, PlanDirection, PlanHeadOp, PlanLayer, PlanSegment } from './plan.js';
export { signature, type Signature } from './signature.js';

/**
 * Default-domain opsets whose operator schemas the allow-lists were written against (older ones
 * differ: LSTM-1, broadcast attributes; newer ones may change what an operator means), and the
 * IR versions whose semantics the importer reads (onnxruntime 1.23 supports the same ones).
 */
const OPSETS = { min: 7, max: 23 };
const IR_VERSIONS = { min: 3, max: 11 };

/** Two probe sizes with nothing in common (and neither 1, which broadcasting treats specially). */
const PROBES: readonly Probe[] = [
  { batch: 13, steps: 17 },
  { batch: 7, steps: 5 },
];

function evaluate(c: NodeCtx): Array<Val | undefined> {
  if (!c.ins.some(isSym)) return evalConst(c);
  const s = c.ins[0] as Sym;
  switch (c.op) {
    case 'Identity':
      return [c.ins[0]];
    case 'Dropout':
      dropoutInference(c);
      return [c.ins[0]];
    case 'Cast':
      return [castSym(c, s)];
    case 'Shape':
      return [shapeOf(c, s.shape)];
    case 'Gather':
      return [gatherSym(c)];
    case 'Transpose':
      return [transposeSym(c, s)];
    case 'Squeeze':
      return [squeezeSym(c, s)];
    case 'Unsqueeze':
      return [unsqueezeSym(c, s)];
    case 'Reshape':
      return [reshapeSym(c, s)];
    case 'Slice':
      return [sliceSym(c, s)];
    case 'Concat':
      return [concatSym(c)];
    case 'LSTM':
    case 'GRU':
      return recurrent(c);
    case 'Gemm':
      return [gemm(c)];
    case 'MatMul':
      return [matmul(c)];
    case 'Add':
    case 'Sub':
    case 'Mul':
    case 'Div':
      return [arith(c)];
    case 'Tanh':
    case 'Sigmoid':
    case 'Relu':
      return [activation(c)];
    case 'Flatten':
      return [flattenSym(c, s)];
    case 'TopK':
      return topk(c);
    case 'ScatterElements':
      return [scatterInverse(c)];
    default:
      throw c.unsupportedOp();
  }
}

function lowerAt(model: LoadedModel, sig: Signature, inits: Map<string, Tensor>, probe: Probe): EncoderPlan {
  const where = model.path ?? 'model bytes';
  const values = new Map<string, Val>(inits);
  const { batch: B, steps: T } = probe;
  values.set(sig.ids.name, { sym: true, kind: 'ids', axes: sig.ids.seqFirst ? ['t', 'b'] : ['b', 't'], shape: sig.ids.seqFirst ? [T, B] : [B, T], order: [] });
  if (sig.lengths) values.set(sig.lengths.name, { sym: true, kind: 'lengths', axes: ['b'], shape: [B], order: [] });
  const st: LowerState = { where, probe, opset: model.opset, layers: [], embedding: null, usesLengths: false };

  const names = new Set<string>();
  const defined = new Set<string>([...values.keys(), ...model.graph.input.map((i) => i.name)]);
  for (const node of model.graph.node) {
    const name = node.name || node.output[0] || node.opType;
    if (node.name && names.has(node.name)) throw new Unsupported(`node name ${node.name} is used by two nodes`);
    names.add(node.name);
    if (node.domain && node.domain !== 'ai.onnx') throw new Unsupported(`${node.opType} at node ${name}: operator domain ${node.domain} is not supported`);
    const attrs = checkNode(node, model.opset, model.dir, where);
    const ins = node.input.map((n) => (n === '' ? undefined : values.get(n)));
    const c = new NodeCtx(node, ins, attrs, st);
    node.input.forEach((n, i) => {
      if (n !== '' && ins[i] === undefined) c.fail(`input ${n} is not produced by any node before it`);
    });
    let outs: Array<Val | undefined>;
    try {
      outs = evaluate(c);
    } catch (e) {
      if (e instanceof Unsupported || e instanceof ModelError || e instanceof FormatError || e instanceof FileError) throw e;
      if (e instanceof C.TooLarge) return c.invalid(e.message);
      return c.fail((e as Error).message); // an axis out of range, shapes that do not broadcast, ...
    }
    node.output.forEach((n, i) => {
      // Single assignment: a value defined twice would be whichever definition came last.
      if (n !== '' && defined.has(n)) c.fail(`output ${n} is already defined`);
      defined.add(n);
      const v = outs[i];
      if (n !== '' && v !== undefined) values.set(n, v);
    });
  }

  const out = values.get(sig.output);
  if (!isSym(out) || out.kind !== 'vec') {
    throw new Unsupported(`output ${sig.output} is not a [batch, dim] vector computed from the recurrent states`);
  }
  if (out.order.length > 0) throw new Unsupported(`output ${sig.output} is left in a permuted batch order`);
  if (!st.embedding || st.layers.length === 0) throw new Unsupported('no embedding followed by LSTM/GRU layers');
  const emb = st.embedding;
  return {
    vocab: emb.dims[0],
    embDim: emb.dims[1],
    embedding: f32(emb),
    layers: st.layers,
    output: out.segments,
    head: out.head,
    outDim: out.width,
    usesLengths: st.usesLengths,
  };
}

/** Sums and scalings folded at load (Wb + Rb, alpha, a Mul after a dense layer) can overflow. */
function checkFolded(plan: EncoderPlan): void {
  const fail = (why: string): never => {
    throw new Unsupported(why);
  };
  const check = (what: string, a: Float32Array | undefined): void => {
    if (a) checkFinite({ dtype: 'float32', dims: [a.length], data: a }, `${what}, folded at load,`, fail);
  };
  plan.layers.forEach((l, i) =>
    l.dirs.forEach((d, j) => {
      check(`the biases of layer ${i} direction ${j}`, d.biasX);
      check(`Rb_h of layer ${i} direction ${j}`, d.rbh);
    }),
  );
  plan.head.forEach((h, i) => {
    if (h.kind !== 'dense') return;
    check(`the weights of head operation ${i}`, h.w);
    check(`the biases of head operation ${i}`, h.b);
  });
}

/** Lowers the graph to a plan, or throws Unsupported (the native path cannot run it) / ModelError. */
export function lower(model: LoadedModel, sig: Signature): EncoderPlan {
  const where = model.path ?? 'model bytes';
  if (model.opset < OPSETS.min || model.opset > OPSETS.max) {
    throw new Unsupported(`opset ${model.opset} of the default domain is not one the importer knows (${OPSETS.min} to ${OPSETS.max})`);
  }
  if (model.irVersion < IR_VERSIONS.min || model.irVersion > IR_VERSIONS.max) {
    throw new Unsupported(`IR version ${model.irVersion} is not one the importer knows (${IR_VERSIONS.min} to ${IR_VERSIONS.max})`);
  }
  const inits = new Map<string, Tensor>();
  for (const t of model.graph.initializer) inits.set(t.name, tensorOf(t, model.dir, where));
  const [p, q] = PROBES;
  const plan = lowerAt(model, sig, inits, p);
  if (!samePlan(plan, lowerAt(model, sig, inits, q))) {
    throw new Unsupported(
      `the graph computes a different encoder for ${p.batch} users × ${p.steps} events than for ${q.batch} × ${q.steps}: ` +
        'a constant in it assumes a fixed batch size or history length',
    );
  }
  checkFolded(plan);
  return plan;
}
