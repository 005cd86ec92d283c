/**
 * ONNX LSTM and GRU nodes lowered to plan layers: weights bound by input position, every
 * attribute checked against what the kernels implement, initial states checked to be the zero
 * states the kernels start from (of exactly the shape the schema requires at this probe).
 */
import type { Tensor } from '../model.js';
import type { PlanDirection, PlanLayer } from '../plan.js';
import { type Axis, type FinalSym, type IdsSym, type NodeCtx, type Seg, type SeqSym, type Val, f32, isSym, sameOrder } from '../sym.js';

const DEFAULT_ACTS = { lstm: ['sigmoid', 'tanh', 'tanh'], gru: ['sigmoid', 'tanh'] };

export function recurrent(c: NodeCtx): Array<Val | undefined> {
  const cell = c.op === 'LSTM' ? 'lstm' : 'gru';
  const G = cell === 'lstm' ? 4 : 3;
  const a = c.attrs;
  // The schema's shapes first: onnxruntime aborts the process on some models that break them,
  // so such a model is a ModelError here rather than a reason to try onnxruntime.
  const H = a.int('hidden_size', 0);
  if (!(H > 0)) return c.invalid(`attribute hidden_size = ${H} is not positive`);
  const direction = a.str('direction', 'forward');
  const dirs = direction === 'bidirectional' ? 2 : 1;
  const W = c.floatIn(1, 'W');
  const R = c.floatIn(2, 'R');
  const B = c.ins[3] === undefined ? null : c.floatIn(3, 'B');
  const P = cell === 'lstm' && c.ins[7] !== undefined ? c.floatIn(7, 'P') : null;
  const shapeIs = (t: Tensor | null, what: string, want: Array<number | string>): void => {
    const ok = t === null || (t.dims.length === want.length && want.every((d, i) => typeof d === 'string' || d === t.dims[i]));
    if (!ok) c.invalid(`${what} has shape [${t?.dims.join(', ')}], expected [${want.join(', ')}]`);
  };
  shapeIs(W, 'W', [dirs, G * H, 'input_size']);
  shapeIs(R, 'R', [dirs, G * H, H]);
  shapeIs(B, 'B', [dirs, 2 * G * H]);
  shapeIs(P, 'P', [dirs, 3 * H]);
  const x = c.ins[0];
  if (!isSym(x) || x.kind !== 'seq') return c.fail('the input is not an embedded sequence');
  const layout = a.int('layout', 0);
  const want: Axis[] = layout === 0 ? ['t', 'b', 'f'] : ['b', 't', 'f'];
  if (x.axes.join() !== want.join() || x.last) {
    return c.fail(`input axes [${x.axes.join(', ')}], expected [${want.join(', ')}] for layout ${layout}`);
  }
  const inSize = x.shape[2];
  shapeIs(W, 'W', [dirs, G * H, inSize]);
  const acts = a.strs('activations');
  if (acts) {
    // onnxruntime matches activation names case-insensitively; one list per direction.
    const want2 = Array.from({ length: dirs }, () => DEFAULT_ACTS[cell]).flat();
    if (acts.length !== want2.length || acts.some((s, i) => s.toLowerCase() !== want2[i])) {
      c.fail(`attribute activations = [${acts.join(', ')}] is not supported (only the defaults, ${DEFAULT_ACTS[cell].join(', ')} per direction, are lowered)`);
    }
  }
  const clip = a.float('clip', 0);
  if (a.has('clip') && !(clip > 0)) c.fail(`attribute clip = ${clip} is not positive`);
  // sequence_lens: the model's own lengths input (in the same batch order), or nothing.
  const sl = c.ins[4];
  if (sl !== undefined) {
    if (!isSym(sl) || sl.kind !== 'lengths') c.fail('sequence_lens is not the lengths input');
    if (!sameOrder((sl as IdsSym).order, x.order)) c.fail('sequence_lens is in another batch order than the input');
    c.st.usesLengths = true;
  }
  const batch = layout === 0 ? x.shape[1] : x.shape[0];
  const stateShape = layout === 0 ? [dirs, batch, H] : [batch, dirs, H];
  for (const [i, label] of cell === 'lstm' ? ([[5, 'initial_h'], [6, 'initial_c']] as const) : ([[5, 'initial_h']] as const)) {
    const v = c.ins[i];
    if (v === undefined) continue;
    const what = `${label} (${c.node.input[i]})`;
    if (isSym(v)) c.fail(`${what} is computed from the input; only zero initial states are lowered`);
    const t = c.floatIn(i, label);
    if (t.dims.join() !== stateShape.join()) c.fail(`${what} has shape [${t.dims.join(', ')}], expected [${stateShape.join(', ')}]`);
    const nz = Array.prototype.findIndex.call(t.data, (e: number) => e !== 0);
    if (nz >= 0) c.fail(`${what} is not zero (element ${nz} is ${t.data[nz]}); only zero initial states are lowered`);
  }
  // Finite weights, checked once the shapes are known to be the schema's.
  for (const [i, what] of [[1, 'W'], [2, 'R'], [3, 'B'], [7, 'P']] as const) {
    if (c.ins[i] !== undefined && (i !== 7 || cell === 'lstm')) c.weightIn(i, what);
  }
  // The layer's input must be the embedding or the whole output of the layer below, in order.
  const layers = c.st.layers;
  const below = layers[layers.length - 1];
  const expected: Seg[] = below ? below.dirs.map((_, d) => ({ src: 'layer' as const, layer: layers.length - 1, dir: d })) : [{ src: 'emb' }];
  if (x.groups.length !== 1 || JSON.stringify(x.groups[0]) !== JSON.stringify(expected)) c.fail('the input is not the output of the previous layer');
  const plan = layerPlan(cell, direction, inSize, H, clip, a.int('input_forget', 0) === 1, a.int('linear_before_reset', 0) === 1, dirs, W, R, B, P);
  const li = layers.length;
  layers.push(plan);
  const groups: Seg[][] = plan.dirs.map((_, d) => [{ src: 'layer', layer: li, dir: d }]);
  const yAxes: Axis[] = layout === 0 ? ['t', 'd', 'b', 'f'] : ['b', 't', 'd', 'f'];
  const yShape = layout === 0 ? [x.shape[0], dirs, x.shape[1], H] : [x.shape[0], x.shape[1], dirs, H];
  const finals = (what: 'h_final' | 'c_final'): FinalSym => ({
    sym: true,
    kind: 'final',
    axes: layout === 0 ? ['d', 'b', 'f'] : ['b', 'd', 'f'],
    shape: layout === 0 ? [dirs, x.shape[1], H] : [x.shape[0], dirs, H],
    order: x.order,
    entries: plan.dirs.map((_, d) => ({ layer: li, dir: d, what })),
  });
  const y: SeqSym = { sym: true, kind: 'seq', axes: yAxes, shape: yShape, order: x.order, groups, last: false };
  return cell === 'lstm' ? [y, finals('h_final'), finals('c_final')] : [y, finals('h_final')];
}

function layerPlan(
  cell: 'lstm' | 'gru',
  direction: string,
  inSize: number,
  H: number,
  clip: number,
  inputForget: boolean,
  lbr: boolean,
  dirs: number,
  W: Tensor,
  R: Tensor,
  B: Tensor | null,
  P: Tensor | null,
): PlanLayer {
  const G = cell === 'lstm' ? 4 : 3;
  const w = f32(W);
  const r = f32(R);
  const b = B ? f32(B) : new Float32Array(dirs * 2 * G * H);
  const plan: PlanLayer = {
    kind: cell,
    reverse: direction === 'reverse',
    input: inSize,
    hidden: H,
    clip,
    inputForget: cell === 'lstm' && inputForget,
    linearBeforeReset: cell === 'gru' && lbr,
    dirs: [],
  };
  const gh = G * H;
  for (let d = 0; d < dirs; d++) {
    const wb = b.subarray(d * 2 * gh, d * 2 * gh + gh);
    const rb = b.subarray(d * 2 * gh + gh, (d + 1) * 2 * gh);
    const biasX = new Float32Array(gh);
    for (let q = 0; q < gh; q++) biasX[q] = wb[q] + rb[q];
    const dir: PlanDirection = {
      w: w.slice(d * gh * inSize, (d + 1) * gh * inSize),
      r: r.slice(d * gh * H, (d + 1) * gh * H),
      biasX,
    };
    if (plan.linearBeforeReset) {
      for (let q = 2 * H; q < 3 * H; q++) biasX[q] = wb[q]; // Rb_h goes inside r ⊙ (...)
      dir.rbh = rb.slice(2 * H, 3 * H);
    }
    if (P) dir.peep = f32(P).slice(d * 3 * H, (d + 1) * 3 * H);
    plan.dirs.push(dir);
  }
  return plan;
}
