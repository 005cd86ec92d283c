/**
 * Lowering an ONNX session encoder onto the native LSTM/GRU kernels.
 *
 * The graph is evaluated once with concrete probe sizes (batch B0, sequence T0). Plumbing
 * (Shape, Gather, Concat, ConstantOfShape, Slice, Expand, ...) is computed on real constant
 * tensors, so the zero initial states exporters build come out as all-zero constants. The heavy
 * operators produce symbolic values that record what they are: the item ids, embedded
 * sequences, recurrent layer outputs, final states, the selected vector, and the dense head on
 * it. Anything the symbolic rules do not cover throws Unsupported, naming the operator and node:
 * the encoder then runs on onnxruntime with that reason.
 */
import { ModelError } from '../errors.js';
import * as C from './consts.js';
import { type AttrValue, type LoadedModel, type Tensor, attributes, dimOf, dtypeOf, num, size, tensorOf } from './model.js';
import type { ValueInfoProto } from './proto/onnx_pb.js';

export class Unsupported extends Error {}

export interface PlanDirection {
  w: Float32Array;
  r: Float32Array;
  biasX: Float32Array;
  rbh?: Float32Array;
  peep?: Float32Array;
}
export interface PlanLayer {
  kind: 'lstm' | 'gru';
  /** A single direction that runs from the last event to the first (ONNX direction=reverse). */
  reverse: boolean;
  input: number;
  hidden: number;
  clip: number;
  inputForget: boolean;
  linearBeforeReset: boolean;
  dirs: PlanDirection[];
}
export interface PlanSegment {
  layer: number;
  dir: number;
  what: 'y_last' | 'h_final' | 'c_final';
}
export type PlanHeadOp =
  | { kind: 'dense'; in: number; out: number; w: Float32Array; b: Float32Array }
  | { kind: 'tanh' | 'sigmoid' | 'relu' };
export interface EncoderPlan {
  vocab: number;
  embDim: number;
  embedding: Float32Array;
  layers: PlanLayer[];
  output: PlanSegment[];
  head: PlanHeadOp[];
  outDim: number;
  usesLengths: boolean;
}

/** What the model takes and gives, read from the graph's inputs and outputs. */
export interface Signature {
  ids: { name: string; dtype: 'int64' | 'int32'; seqFirst: boolean };
  lengths: { name: string; dtype: 'int64' | 'int32' } | null;
  output: string;
  outDim: number | null;
}

const B0 = 13; // probe batch size
const T0 = 17; // probe sequence length

type Axis = 'b' | 't' | 'd' | 'f' | '1';
type Seg = { src: 'emb' } | { src: 'layer'; layer: number; dir: number };

interface SymBase {
  sym: true;
  axes: Axis[];
  shape: number[];
  order: string[]; // batch permutations applied, composed; [] is the original order
}
interface IdsSym extends SymBase {
  kind: 'ids' | 'lengths' | 'perm';
  perm?: string;
}
interface SeqSym extends SymBase {
  kind: 'seq';
  groups: Seg[][]; // along 'd' when present, else one group
  last: boolean; // the t axis (or its absence) means the last position only
}
interface FinalSym extends SymBase {
  kind: 'final';
  entries: PlanSegment[]; // along 'd'
}
interface VecSym extends SymBase {
  kind: 'vec';
  segments: PlanSegment[];
  head: PlanHeadOp[];
  width: number;
}
type Sym = IdsSym | SeqSym | FinalSym | VecSym;
type Val = Tensor | Sym;

const isSym = (v: Val | undefined): v is Sym => v !== undefined && (v as Sym).sym === true;

function tensorInfo(vi: ValueInfoProto): { dtype: string; dims: Array<number | string> | null } {
  const tt = vi.type?.value.case === 'tensorType' ? vi.type.value.value : undefined;
  const dims = tt?.shape ? tt.shape.dim.map(dimOf) : null;
  return { dtype: dtypeOf(tt?.elemType), dims };
}

/** Reads and checks the model's inputs and output (ModelError when it cannot be an encoder). */
export function signature(model: LoadedModel): Signature {
  const g = model.graph;
  const inits = new Set(g.initializer.map((t) => t.name));
  const inputs = g.input.filter((i) => !inits.has(i.name));
  const where = model.path ?? 'model';
  if (inputs.length === 0 || inputs.length > 2) {
    throw new ModelError(`${where}: expected one input of item ids (and optionally lengths), found ${inputs.length} inputs`);
  }
  const int = (name: string, dtype: string): 'int64' | 'int32' => {
    if (dtype !== 'int64' && dtype !== 'int32') {
      throw new ModelError(`${where}: input ${name} has dtype ${dtype}; expected int64 or int32 item ids`);
    }
    return dtype;
  };
  const first = tensorInfo(inputs[0]);
  if (first.dims && first.dims.length !== 2) {
    throw new ModelError(`${where}: input ${inputs[0].name} has rank ${first.dims.length}; expected [batch, sequence]`);
  }
  // [batch, seq] unless the dimension names say [seq, batch].
  const named = (d: number | string | undefined, re: RegExp): boolean => typeof d === 'string' && re.test(d);
  const seqFirst = !!first.dims && named(first.dims[0], /seq|time|step|len/i) && named(first.dims[1], /batch/i);
  const ids = { name: inputs[0].name, dtype: int(inputs[0].name, first.dtype), seqFirst };
  let lengths: Signature['lengths'] = null;
  if (inputs.length === 2) {
    const info = tensorInfo(inputs[1]);
    if (info.dims && info.dims.length !== 1) {
      throw new ModelError(`${where}: second input ${inputs[1].name} must be the [batch] sequence lengths`);
    }
    lengths = { name: inputs[1].name, dtype: int(inputs[1].name, info.dtype) };
  }
  const outputs = g.output;
  if (outputs.length !== 1) throw new ModelError(`${where}: expected one output (the user vector), found ${outputs.length}`);
  const out = tensorInfo(outputs[0]);
  if (out.dtype !== 'float32') throw new ModelError(`${where}: output ${outputs[0].name} has dtype ${out.dtype}; expected float32`);
  if (out.dims && out.dims.length !== 2) {
    throw new ModelError(`${where}: output ${outputs[0].name} has rank ${out.dims.length}; expected [batch, dim]`);
  }
  const outDim = out.dims && typeof out.dims[1] === 'number' && out.dims[1] > 0 ? out.dims[1] : null;
  return { ids, lengths, output: outputs[0].name, outDim };
}

function f32(t: Tensor): Float32Array {
  return t.data instanceof Float32Array ? t.data : Float32Array.from(t.data);
}

/** The name of a batch permutation's inverse. */
function inversePerm(p: string): string {
  return p.endsWith('^-1') ? p.slice(0, -3) : `${p}^-1`;
}

function cancelOrder(order: string[], p: string): string[] {
  const inv = inversePerm(p);
  if (order.length > 0 && order[order.length - 1] === inv) return order.slice(0, -1);
  return [...order, p];
}

function sameOrder(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function segWidth(s: Seg, layers: PlanLayer[], embDim: number): number {
  return s.src === 'emb' ? embDim : layers[s.layer].hidden;
}

/** Lowers the graph to a plan, or throws Unsupported / ModelError. */
export function lower(model: LoadedModel, sig: Signature): EncoderPlan {
  const g = model.graph;
  const where = model.path ?? 'model';
  const values = new Map<string, Val>();
  for (const t of g.initializer) values.set(t.name, tensorOf(t, model.dir, where));
  values.set(sig.ids.name, sig.ids.seqFirst
    ? { sym: true, kind: 'ids', axes: ['t', 'b'], shape: [T0, B0], order: [] }
    : { sym: true, kind: 'ids', axes: ['b', 't'], shape: [B0, T0], order: [] });
  if (sig.lengths) values.set(sig.lengths.name, { sym: true, kind: 'lengths', axes: ['b'], shape: [B0], order: [] });

  let embedding: Tensor | null = null;
  const layers: PlanLayer[] = [];
  let usesLengths = false;

  for (const node of g.node) {
    const op = node.opType;
    const name = node.name || node.output[0] || op;
    const fail = (why: string): never => {
      throw new Unsupported(`${op} at node ${name}: ${why}`);
    };
    const attrs = attributes(node, model.dir, where);
    const attr = (k: string, d: AttrValue = null): AttrValue => (attrs.has(k) ? (attrs.get(k) as AttrValue) : d);
    if (node.domain && node.domain !== 'ai.onnx') fail(`operator domain ${node.domain} is not supported`);
    const ins: Array<Val | undefined> = node.input.map((n) => (n === '' ? undefined : values.get(n)));
    node.input.forEach((n, i) => {
      if (n !== '' && ins[i] === undefined) fail(`input ${n} is not produced by any node before it`);
    });
    const outs: Array<Val | undefined> = evaluate();
    node.output.forEach((n, i) => {
      const v = outs[i];
      if (n !== '' && v !== undefined) values.set(n, v);
    });

    function constIn(i: number, what: string): Tensor {
      const v = ins[i];
      if (v === undefined) return fail(`${what} is missing`);
      if (isSym(v)) return fail(`${what} must be a constant`);
      return v;
    }
    function ints(i: number): number[] {
      return C.scalarOrList(constIn(i, `input ${i}`));
    }

    function evaluate(): Array<Val | undefined> {
      const anySym = ins.some(isSym);
      if (!anySym) return evalConst();
      switch (op) {
        case 'Identity':
        case 'Dropout':
          return [ins[0]];
        case 'Cast':
          return [castSym(ins[0] as Sym)];
        case 'Shape':
          return [{ dtype: 'int64', dims: [(ins[0] as Sym).shape.length], data: (ins[0] as Sym).shape.slice() }];
        case 'Gather':
          return [gatherSym()];
        case 'Transpose':
          return [transposeSym(ins[0] as Sym, (attr('perm') as number[] | null) ?? null)];
        case 'Squeeze':
          return [squeezeSym(ins[0] as Sym, opsetAxes())];
        case 'Unsqueeze':
          return [unsqueezeSym(ins[0] as Sym, opsetAxes() ?? [])];
        case 'Reshape':
          return [reshapeSym(ins[0] as Sym)];
        case 'Slice':
          return [sliceSym(ins[0] as Sym)];
        case 'Concat':
          return [concatSym()];
        case 'LSTM':
        case 'GRU':
          return recurrent();
        case 'Gemm':
          return [gemm()];
        case 'MatMul':
          return [matmul()];
        case 'Add':
        case 'Sub':
        case 'Mul':
        case 'Div':
          return [arith()];
        case 'Tanh':
        case 'Sigmoid':
        case 'Relu':
          return [activation(op.toLowerCase() as 'tanh' | 'sigmoid' | 'relu')];
        case 'Flatten':
          return [flattenSym(ins[0] as Sym)];
        case 'TopK':
          return topk();
        case 'ScatterElements':
          return [scatterInverse()];
        default:
          throw new Unsupported(`op ${op} at node ${name} is not supported`);
      }
    }

    function opsetAxes(): number[] | null {
      if (ins.length > 1 && ins[1] !== undefined) return ints(1);
      const a = attr('axes');
      return Array.isArray(a) ? (a as number[]) : null;
    }

    function evalConst(): Array<Val | undefined> {
      const t = ins as Tensor[];
      try {
        switch (op) {
          case 'Constant': {
            const v = attr('value');
            if (v && typeof v === 'object' && !Array.isArray(v) && 'dtype' in v) return [v];
            const vi = attr('value_int');
            if (typeof vi === 'number') return [{ dtype: 'int64', dims: [], data: [vi] }];
            const vis = attr('value_ints');
            if (Array.isArray(vis)) return [{ dtype: 'int64', dims: [vis.length], data: vis }];
            const vf = attr('value_float');
            if (typeof vf === 'number') return [{ dtype: 'float32', dims: [], data: Float32Array.of(vf) }];
            return fail('unsupported Constant form');
          }
          case 'Identity':
          case 'Dropout':
            return [t[0]];
          case 'Shape':
            return [{ dtype: 'int64', dims: [t[0].dims.length], data: t[0].dims.slice() }];
          case 'Gather':
            return [C.gather(t[0], t[1], (attr('axis', 0) as number) ?? 0)];
          case 'Unsqueeze': {
            const axes = opsetAxes() ?? [];
            const rank = t[0].dims.length + axes.length;
            const norm = axes.map((a) => C.normAxis(a, rank)).sort((a, b) => a - b);
            const dims = t[0].dims.slice();
            for (const a of norm) dims.splice(a, 0, 1);
            return [{ ...t[0], dims }];
          }
          case 'Squeeze': {
            const axes = opsetAxes();
            const rank = t[0].dims.length;
            const drop = new Set(axes ? axes.map((a) => C.normAxis(a, rank)) : t[0].dims.flatMap((d, i) => (d === 1 ? [i] : [])));
            return [{ ...t[0], dims: t[0].dims.filter((_, i) => !drop.has(i)) }];
          }
          case 'Concat':
            return [C.concat(t.filter((x) => x !== undefined), attr('axis', 0) as number)];
          case 'ConstantOfShape': {
            const shape = C.scalarOrList(t[0]);
            const v = attr('value') as Tensor | null;
            const fill = v ? v.data[0] : 0;
            const dtype = v ? v.dtype : 'float32';
            const n = size(shape);
            return [dtype === 'float32' ? { dtype, dims: shape, data: new Float32Array(n).fill(fill) } : { dtype, dims: shape, data: new Array<number>(n).fill(fill) }];
          }
          case 'Slice': {
            if (t.length === 1) {
              return [C.slice(t[0], attr('starts') as number[], attr('ends') as number[], (attr('axes') as number[] | null) ?? null, null)];
            }
            return [C.slice(t[0], ints(1), ints(2), t[3] ? ints(3) : null, t[4] ? ints(4) : null)];
          }
          case 'Cast': {
            const to = dtypeOf(attr('to') as number);
            if (to === 'float32') return [{ dtype: 'float32', dims: t[0].dims, data: Float32Array.from(t[0].data) }];
            if (to === 'int64' || to === 'int32') return [{ dtype: to, dims: t[0].dims, data: Array.from(t[0].data, (x) => Math.trunc(x)) }];
            if (to === 'bool') return [{ dtype: to, dims: t[0].dims, data: Array.from(t[0].data, (x) => (x ? 1 : 0)) }];
            return fail('cast to an unsupported type');
          }
          case 'Expand':
            return [C.expand(t[0], C.scalarOrList(t[1]))];
          case 'Reshape':
            return [{ ...t[0], dims: C.reshapeDims(t[0].dims, C.scalarOrList(t[1]), attr('allowzero', 0) === 1) }];
          case 'Transpose':
            return [C.transpose(t[0], (attr('perm') as number[] | null) ?? null)];
          case 'Range': {
            const [s, l, d] = [t[0].data[0], t[1].data[0], t[2].data[0]];
            const n = Math.max(Math.ceil((l - s) / d), 0);
            const vals = Array.from({ length: n }, (_, i) => s + i * d);
            return [t[0].dtype === 'float32' ? { dtype: 'float32', dims: [n], data: Float32Array.from(vals) } : { dtype: t[0].dtype, dims: [n], data: vals }];
          }
          case 'ReduceProd': {
            if (t[0].dims.length > 1) return fail('ReduceProd over more than one axis');
            const p = Array.from(t[0].data).reduce((a, b) => a * b, 1);
            return [{ dtype: t[0].dtype, dims: attr('keepdims', 1) === 1 ? [1] : [], data: [p] }];
          }
          case 'Add':
            return [C.broadcast(t[0], t[1], (x, y) => x + y)];
          case 'Sub':
            return [C.broadcast(t[0], t[1], (x, y) => x - y)];
          case 'Mul':
            return [C.broadcast(t[0], t[1], (x, y) => x * y)];
          case 'Div':
            return [C.broadcast(t[0], t[1], (x, y) => (t[0].dtype === 'float32' ? x / y : Math.trunc(x / y)))];
          case 'Neg':
            return [C.broadcast(t[0], { dtype: t[0].dtype, dims: [], data: [0] }, (x) => -x)];
          case 'Equal':
            return [C.broadcast(t[0], t[1], (x, y) => (x === y ? 1 : 0), 'bool')];
          default:
            throw new Unsupported(`op ${op} at node ${name} is not supported`);
        }
      } catch (e) {
        if (e instanceof Unsupported) throw e;
        return fail((e as Error).message);
      }
    }

    function castSym(s: Sym): Sym {
      const to = dtypeOf(attr('to') as number);
      if ((s.kind === 'ids' || s.kind === 'lengths' || s.kind === 'perm') && (to === 'int64' || to === 'int32')) return s;
      if ((s.kind === 'seq' || s.kind === 'final' || s.kind === 'vec') && to === 'float32') return s;
      return fail(`cast of ${s.kind} to ${to}`);
    }

    function normalize(s: Sym): Sym {
      // A selected last step or final state with only [batch, features] left is the vector.
      if (s.kind === 'seq' && s.last && !s.axes.includes('t') && !s.axes.includes('d') && !s.axes.includes('1') && s.axes.length === 2 && s.axes[0] === 'b') {
        const segments = s.groups[0].map((g): PlanSegment => {
          if (g.src !== 'layer') return fail('the selected vector is the embedding of the last item, not a recurrent state');
          // Forward directions end at the last position; a backward one starts there.
          const backwards = g.dir === 1 || layers[g.layer].reverse;
          return { layer: g.layer, dir: g.dir, what: backwards ? 'y_last' : 'h_final' };
        });
        return vec(segments, s.order);
      }
      if (s.kind === 'final' && !s.axes.includes('d') && !s.axes.includes('1') && s.axes.length === 2 && s.axes[0] === 'b') {
        return vec(s.entries, s.order);
      }
      return s;
    }

    function vec(segments: PlanSegment[], order: string[]): VecSym {
      const width = segments.reduce((a, sg) => a + layers[sg.layer].hidden, 0);
      return { sym: true, kind: 'vec', axes: ['b', 'f'], shape: [B0, width], order, segments, head: [], width };
    }

    function gatherSym(): Val {
      const axis0 = (attr('axis', 0) as number) ?? 0;
      const [data, idx] = ins;
      if (data !== undefined && !isSym(data) && isSym(idx)) {
        if (idx.kind !== 'ids') return fail('only item ids can index a constant (the embedding)');
        if (C.normAxis(axis0, data.dims.length) !== 0 || data.dims.length !== 2 || data.dtype !== 'float32') {
          return fail('the embedding must be a float32 [items, dim] table gathered on axis 0');
        }
        if (embedding && embedding !== data) return fail('a second embedding table');
        embedding = data;
        return { sym: true, kind: 'seq', axes: [...idx.axes, 'f'], shape: [...idx.shape, data.dims[1]], order: idx.order, groups: [[{ src: 'emb' }]], last: false };
      }
      if (!isSym(data) || idx === undefined) return fail('unexpected operands');
      const axis = C.normAxis(axis0, data.axes.length);
      const tag = data.axes[axis];
      if (isSym(idx)) {
        if (idx.kind !== 'perm' || tag !== 'b') return fail('a computed index on a non-batch axis');
        return normalize({ ...data, order: cancelOrder(data.order, idx.perm as string) } as Sym);
      }
      const k = C.scalarOrList(idx);
      const scalar = idx.dims.length === 0;
      if (tag === 't' && data.kind === 'seq') {
        if (!scalar || !(k[0] === -1 || k[0] === data.shape[axis] - 1)) return fail('only the last time step can be selected');
        return normalize({ ...data, axes: data.axes.filter((_, i) => i !== axis), shape: data.shape.filter((_, i) => i !== axis), last: true });
      }
      if (tag === 'd' && data.kind === 'final') {
        const n = data.entries.length;
        const pick = k.map((v) => (v < 0 ? v + n : v));
        if (pick.some((v) => v < 0 || v >= n)) return fail('index out of range');
        const entries = pick.map((v) => data.entries[v]);
        if (scalar) {
          return normalize({ ...data, entries, axes: data.axes.filter((_, i) => i !== axis), shape: data.shape.filter((_, i) => i !== axis) });
        }
        const shape = data.shape.slice();
        shape[axis] = entries.length;
        return { ...data, entries, shape };
      }
      if (tag === 'd' && data.kind === 'seq') {
        const n = data.groups.length;
        const v = k[0] < 0 ? k[0] + n : k[0];
        if (!scalar || v < 0 || v >= n) return fail('direction index');
        return normalize({ ...data, groups: [data.groups[v]], axes: data.axes.filter((_, i) => i !== axis), shape: data.shape.filter((_, i) => i !== axis) });
      }
      return fail(`selection on a ${tag} axis of ${data.kind}`);
    }

    function transposeSym(s: Sym, perm: number[] | null): Sym {
      const p = perm ?? s.axes.map((_, i) => s.axes.length - 1 - i);
      return { ...s, axes: p.map((a) => s.axes[a]), shape: p.map((a) => s.shape[a]) } as Sym;
    }

    function squeezeSym(s: Sym, axes: number[] | null): Sym {
      const rank = s.axes.length;
      const drop = new Set(axes ? axes.map((a) => C.normAxis(a, rank)) : s.shape.flatMap((d, i) => (d === 1 ? [i] : [])));
      let out = { ...s } as Sym;
      for (const a of drop) {
        if (s.shape[a] !== 1) return fail(`squeezing axis ${a} of size ${s.shape[a]}`);
        const tag = s.axes[a];
        if (tag === 't') {
          if (s.kind !== 'seq' || !s.last) return fail('squeezing a time axis that is not the last step');
        } else if (tag === 'd') {
          // one direction / one state entry: nothing to record
        } else if (tag !== '1') {
          return fail(`squeezing the ${tag === 'b' ? 'batch' : 'feature'} axis`);
        }
      }
      out = { ...out, axes: s.axes.filter((_, i) => !drop.has(i)), shape: s.shape.filter((_, i) => !drop.has(i)) } as Sym;
      return normalize(out);
    }

    function unsqueezeSym(s: Sym, axes: number[]): Sym {
      const rank = s.axes.length + axes.length;
      const norm = axes.map((a) => C.normAxis(a, rank)).sort((a, b) => a - b);
      const ax = s.axes.slice();
      const sh = s.shape.slice();
      for (const a of norm) {
        ax.splice(a, 0, '1');
        sh.splice(a, 0, 1);
      }
      return { ...s, axes: ax, shape: sh } as Sym;
    }

    function flattenSym(s: Sym): Sym {
      const axis = (attr('axis', 1) as number) ?? 1;
      if (s.kind === 'vec' && axis === 1) return s;
      return reshapeTo(s, [s.shape.slice(0, axis).reduce((a, b) => a * b, 1), s.shape.slice(axis).reduce((a, b) => a * b, 1)]);
    }

    function reshapeSym(s: Sym): Sym {
      const target = C.reshapeDims(s.shape, ints(1), attr('allowzero', 0) === 1);
      return reshapeTo(s, target);
    }

    /** Reshapes that only drop/merge size-1 axes or merge (d, f) into f are understood. */
    function reshapeTo(s: Sym, target: number[]): Sym {
      const axes: Axis[] = [];
      let i = 0;
      let merged = false;
      for (const dim of target) {
        const take: number[] = [];
        let prod = 1;
        while (i < s.axes.length && (prod < dim || (take.length > 0 && s.shape[i] === 1 && s.axes[i] === '1'))) {
          take.push(i);
          prod *= s.shape[i];
          i++;
          if (prod === dim) break;
        }
        if (take.length === 0 && dim === 1) {
          axes.push('1');
          continue;
        }
        if (prod !== dim) return fail(`reshape of [${s.shape.join(', ')}] to [${target.join(', ')}]`);
        const real = take.filter((a) => s.shape[a] !== 1 || s.axes[a] === 'd' || s.axes[a] === 't');
        const tags = real.map((a) => s.axes[a]);
        if (tags.length <= 1) {
          axes.push(tags.length ? tags[0] : '1');
        } else if (tags.length === 2 && tags[0] === 'd' && tags[1] === 'f') {
          axes.push('f');
          merged = true;
        } else {
          return fail(`reshape merging ${tags.join(', ')} axes`);
        }
      }
      while (i < s.axes.length) {
        if (s.shape[i] !== 1) return fail(`reshape of [${s.shape.join(', ')}] to [${target.join(', ')}]`);
        i++;
      }
      let out: Sym = { ...s, axes, shape: target } as Sym;
      if (merged) {
        if (s.kind === 'seq') out = { ...(out as SeqSym), groups: [s.groups.flat()] };
        else if (s.kind === 'final') out = normalize({ ...(out as FinalSym) });
        else return fail('reshape merging directions');
      } else if (s.kind === 'final' && !axes.includes('d') && s.entries.length > 1) {
        return fail('reshape dropping a direction axis of several entries');
      }
      return normalize(out);
    }

    function sliceSym(s: Sym): Sym {
      let starts: number[];
      let ends: number[];
      let axes: number[] | null;
      let steps: number[] | null = null;
      if (ins.length === 1) {
        starts = attr('starts') as number[];
        ends = attr('ends') as number[];
        axes = (attr('axes') as number[] | null) ?? null;
      } else {
        starts = ints(1);
        ends = ints(2);
        axes = ins[3] ? ints(3) : null;
        steps = ins[4] ? ints(4) : null;
      }
      let out: Sym = s;
      (axes ?? starts.map((_, i) => i)).forEach((a0, j) => {
        const a = C.normAxis(a0, s.axes.length);
        const r = C.sliceRange(s.shape[a], starts[j], ends[j], steps ? steps[j] : 1);
        if (r.start === 0 && r.count === s.shape[a] && r.step === 1) return; // whole axis
        const tag = s.axes[a];
        const shape = out.shape.slice();
        if (tag === 't' && out.kind === 'seq' && r.count === 1 && r.start === s.shape[a] - 1) {
          shape[a] = 1;
          out = { ...out, shape, last: true };
        } else if (tag === 'd' && out.kind === 'final' && r.step === 1) {
          shape[a] = r.count;
          out = { ...out, shape, entries: out.entries.slice(r.start, r.start + r.count) };
        } else {
          fail(`slice of the ${tag} axis of ${s.kind}`);
        }
      });
      return out;
    }

    function concatSym(): Sym {
      const parts = ins.filter((v): v is Val => v !== undefined);
      if (!parts.every(isSym)) return fail('concatenating constants with computed values');
      const syms = parts as Sym[];
      const axis = C.normAxis(attr('axis', 0) as number, syms[0].axes.length);
      const tag = syms[0].axes[axis];
      if (syms.every((p) => p.kind === 'final') && tag === 'd') {
        const all = syms as FinalSym[];
        if (!all.every((p) => sameOrder(p.order, all[0].order))) return fail('states in different batch orders');
        const entries = all.flatMap((p) => p.entries);
        const shape = all[0].shape.slice();
        shape[axis] = entries.length;
        return { ...all[0], entries, shape };
      }
      if (syms.every((p) => p.kind === 'vec' && p.head.length === 0) && tag === 'f') {
        const all = syms as VecSym[];
        return vec(all.flatMap((p) => p.segments), all[0].order);
      }
      return fail(`concatenation of ${syms.map((p) => p.kind).join(', ')} on the ${tag} axis`);
    }

    function recurrent(): Array<Val | undefined> {
      const cell = op === 'LSTM' ? 'lstm' : 'gru';
      const G = cell === 'lstm' ? 4 : 3;
      const x = ins[0];
      if (!isSym(x) || x.kind !== 'seq') return fail('the input is not an embedded sequence');
      const layout = (attr('layout', 0) as number) ?? 0;
      const want: Axis[] = layout === 0 ? ['t', 'b', 'f'] : ['b', 't', 'f'];
      if (x.axes.join() !== want.join() || x.last) {
        return fail(`input axes [${x.axes.join(', ')}], expected [${want.join(', ')}] for layout ${layout}`);
      }
      const W = constIn(1, 'W');
      const R = constIn(2, 'R');
      const B = ins[3] === undefined ? null : constIn(3, 'B');
      const H = attr('hidden_size') as number;
      const direction = (attr('direction', 'forward') as string) ?? 'forward';
      const dirs = direction === 'bidirectional' ? 2 : 1;
      if (!['forward', 'reverse', 'bidirectional'].includes(direction)) fail(`direction ${direction}`);
      const acts = attr('activations') as unknown as string[] | null;
      const defaults = cell === 'lstm' ? ['Sigmoid', 'Tanh', 'Tanh'] : ['Sigmoid', 'Tanh'];
      if (acts && acts.some((a, i) => a.toLowerCase() !== defaults[i % defaults.length].toLowerCase())) {
        fail(`activations ${acts.join(', ')} (only the defaults are lowered)`);
      }
      if (attrs.has('activation_alpha') || attrs.has('activation_beta')) fail('activation_alpha/beta');
      const inSize = x.shape[2];
      if (W.dims.join() !== [dirs, G * H, inSize].join()) fail(`W has shape [${W.dims.join(', ')}], expected [${dirs}, ${G * H}, ${inSize}]`);
      if (R.dims.join() !== [dirs, G * H, H].join()) fail(`R has shape [${R.dims.join(', ')}]`);
      if (B && B.dims.join() !== [dirs, 2 * G * H].join()) fail(`B has shape [${B.dims.join(', ')}]`);
      // sequence_lens: the model's own lengths input (in the same batch order), or nothing.
      const sl = ins[4];
      if (sl !== undefined) {
        if (!isSym(sl) || sl.kind !== 'lengths') fail('sequence_lens is not the lengths input');
        if (!sameOrder((sl as IdsSym).order, x.order)) fail('sequence_lens is in another batch order than the input');
        usesLengths = true;
      }
      for (const [i, label] of [
        [5, 'initial_h'],
        [6, 'initial_c'],
      ] as const) {
        if (i === 6 && cell === 'gru') break;
        const v = ins[i];
        if (v === undefined) continue;
        if (isSym(v)) fail(`${label} is computed from the input; only zero initial states are lowered`);
        const t = v as Tensor;
        if (Array.from(t.data).some((e) => e !== 0)) fail(`${label} is not zero`);
      }
      const P = cell === 'lstm' && ins[7] !== undefined ? constIn(7, 'P') : null;
      if (P && P.dims.join() !== [dirs, 3 * H].join()) fail(`P has shape [${P.dims.join(', ')}]`);
      // The layer's input must be the embedding or the whole output of the layer below, in order.
      const expected: Seg[] = layers.length === 0 ? [{ src: 'emb' }] : layers[layers.length - 1].dirs.map((_, d) => ({ src: 'layer' as const, layer: layers.length - 1, dir: d }));
      if (JSON.stringify(x.groups[0]) !== JSON.stringify(expected)) fail('the input is not the output of the previous layer');
      const lbr = cell === 'gru' ? (attr('linear_before_reset', 0) as number) === 1 : false;
      const w = f32(W);
      const r = f32(R);
      const b = B ? f32(B) : new Float32Array(dirs * 2 * G * H);
      const plan: PlanLayer = {
        kind: cell,
        reverse: direction === 'reverse',
        input: inSize,
        hidden: H,
        clip: (attr('clip', 0) as number) ?? 0,
        inputForget: cell === 'lstm' && (attr('input_forget', 0) as number) === 1,
        linearBeforeReset: lbr,
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
        if (cell === 'gru' && lbr) {
          for (let q = 2 * H; q < 3 * H; q++) biasX[q] = wb[q]; // Rb_h goes inside r ⊙ (...)
          dir.rbh = rb.slice(2 * H, 3 * H);
        }
        if (P) dir.peep = f32(P).slice(d * 3 * H, (d + 1) * 3 * H);
        plan.dirs.push(dir);
      }
      const li = layers.length;
      layers.push(plan);
      const groups: Seg[][] = plan.dirs.map((_, d) => [{ src: 'layer', layer: li, dir: d }]);
      const yAxes: Axis[] = layout === 0 ? ['t', 'd', 'b', 'f'] : ['b', 't', 'd', 'f'];
      const yShape = layout === 0 ? [x.shape[0], dirs, x.shape[1], H] : [x.shape[0], x.shape[1], dirs, H];
      const fAxes: Axis[] = layout === 0 ? ['d', 'b', 'f'] : ['b', 'd', 'f'];
      const fShape = layout === 0 ? [dirs, x.shape[1], H] : [x.shape[0], dirs, H];
      const finals = (what: 'h_final' | 'c_final'): FinalSym => ({
        sym: true,
        kind: 'final',
        axes: fAxes,
        shape: fShape,
        order: x.order,
        entries: plan.dirs.map((_, d) => ({ layer: li, dir: d, what })),
      });
      const y: SeqSym = { sym: true, kind: 'seq', axes: yAxes, shape: yShape, order: x.order, groups, last: false };
      return cell === 'lstm' ? [y, finals('h_final'), finals('c_final')] : [y, finals('h_final')];
    }

    function headOperand(): { v: VecSym; c: Tensor; vFirst: boolean } {
      const [a, b] = ins;
      if (isSym(a) && a.kind === 'vec' && b !== undefined && !isSym(b)) return { v: a, c: b, vFirst: true };
      if (isSym(b) && b.kind === 'vec' && a !== undefined && !isSym(a)) return { v: b, c: a, vFirst: false };
      return fail('operands are not a [batch, dim] vector and a constant');
    }

    function withHead(v: VecSym, op2: PlanHeadOp, width: number): VecSym {
      return { ...v, head: [...v.head, op2], width, shape: [B0, width] };
    }

    function dense(v: VecSym, wOutIn: Float32Array, out: number, bias: Float32Array | null): VecSym {
      return withHead(v, { kind: 'dense', in: v.width, out, w: wOutIn, b: bias ?? new Float32Array(out) }, out);
    }

    function biasVector(t: Tensor, out: number, scale: number): Float32Array {
      const n = size(t.dims);
      if (n !== 1 && n !== out) fail(`bias of shape [${t.dims.join(', ')}] for ${out} outputs`);
      const v = f32(t);
      return Float32Array.from({ length: out }, (_, i) => scale * (n === 1 ? v[0] : v[i]));
    }

    function gemm(): Val {
      const a = ins[0];
      if (!isSym(a) || a.kind !== 'vec') return fail('the first operand is not the selected vector');
      if ((attr('transA', 0) as number) !== 0) fail('transA');
      const Bt = constIn(1, 'B');
      if (Bt.dims.length !== 2) fail('B is not 2-D');
      const transB = (attr('transB', 0) as number) === 1;
      const alpha = (attr('alpha', 1) as number) ?? 1;
      const beta = (attr('beta', 1) as number) ?? 1;
      const [inDim, out] = transB ? [Bt.dims[1], Bt.dims[0]] : Bt.dims;
      if (inDim !== a.width) fail(`B expects ${inDim} inputs, the vector has ${a.width}`);
      const w = transB ? f32(Bt).slice() : f32(C.transpose({ ...Bt, data: f32(Bt) }, [1, 0]));
      if (alpha !== 1) for (let i = 0; i < w.length; i++) w[i] *= alpha;
      const bias = ins[2] !== undefined ? biasVector(constIn(2, 'C'), out, beta) : null;
      return dense(a, w, out, bias);
    }

    function matmul(): Val {
      const a = ins[0];
      if (!isSym(a) || a.kind !== 'vec') return fail('the first operand is not the selected vector');
      const Bt = constIn(1, 'B');
      if (Bt.dims.length !== 2 || Bt.dims[0] !== a.width) fail(`B of shape [${Bt.dims.join(', ')}] for a ${a.width}-wide vector`);
      return dense(a, f32(C.transpose({ ...Bt, data: f32(Bt) }, [1, 0])), Bt.dims[1], null);
    }

    function arith(): Val {
      const { v, c, vFirst } = headOperand();
      const last = v.head[v.head.length - 1];
      if (!last || last.kind !== 'dense') return fail(`${op} not directly after a dense layer`);
      const vals = biasVector(c, last.out, 1);
      const w = last.w.slice();
      const b = last.b.slice();
      if (op === 'Add' || op === 'Sub') {
        // v + c, v - c, or c - v (= -(v) + c)
        if (op === 'Sub' && !vFirst) {
          for (let i = 0; i < w.length; i++) w[i] = -w[i];
          for (let i = 0; i < b.length; i++) b[i] = -b[i];
        }
        const sign = op === 'Sub' && vFirst ? -1 : 1;
        for (let i = 0; i < b.length; i++) b[i] += sign * vals[i];
      } else {
        if (op === 'Div' && !vFirst) fail('a constant divided by the vector');
        for (let o = 0; o < last.out; o++) {
          const s = op === 'Mul' ? vals[o] : 1 / vals[o];
          for (let i = 0; i < last.in; i++) w[o * last.in + i] *= s;
          b[o] *= s;
        }
      }
      return { ...v, head: [...v.head.slice(0, -1), { ...last, w, b }] };
    }

    function activation(kind: 'tanh' | 'sigmoid' | 'relu'): Val {
      const a = ins[0];
      if (!isSym(a) || a.kind !== 'vec') return fail(`${op} of something other than the selected vector`);
      return withHead(a, { kind }, a.width);
    }

    function topk(): Array<Val | undefined> {
      // Sorting the batch by length (pack_padded_sequence with enforce_sorted=False).
      const v = ins[0];
      if (!isSym(v) || v.kind !== 'lengths') return fail('TopK of something other than the lengths');
      const k = C.scalarOrList(constIn(1, 'K'))[0];
      if (k !== B0) fail('TopK does not sort the whole batch');
      const perm = node.output[1] ?? name;
      return [
        { ...v, order: cancelOrder(v.order, perm) },
        { sym: true, kind: 'perm', axes: ['b'], shape: [B0], order: [], perm },
      ];
    }

    function scatterInverse(): Val {
      // inverse[perm[i]] = i: ScatterElements(zeros, perm, range(batch))
      const [data, idx, upd] = ins;
      if (isSym(data) || !isSym(idx) || idx.kind !== 'perm' || upd === undefined || isSym(upd)) {
        return fail('only the inverse of a batch permutation is understood');
      }
      const u = C.scalarOrList(upd);
      if (u.length !== B0 || u.some((x, i) => x !== i)) fail('updates are not range(batch)');
      return { ...idx, perm: inversePerm(idx.perm as string) };
    }
  }

  const out = values.get(sig.output);
  if (!isSym(out) || out.kind !== 'vec') {
    throw new Unsupported(`output ${sig.output} is not a [batch, dim] vector computed from the recurrent states`);
  }
  if (out.order.length > 0) throw new Unsupported(`output ${sig.output} is left in a permuted batch order`);
  if (!embedding || layers.length === 0) throw new Unsupported('no embedding followed by LSTM/GRU layers');
  const emb = embedding as Tensor;
  return {
    vocab: emb.dims[0],
    embDim: emb.dims[1],
    embedding: f32(emb),
    layers,
    output: out.segments,
    head: out.head,
    outDim: out.width,
    usesLengths,
  };
}
