/**
 * The values the lowering computes with: constant tensors, and symbolic values that record what
 * a heavy operator produced (item ids, embedded sequences, recurrent outputs and final states,
 * the selected vector and the dense head on it), with their axes and probe shape. NodeCtx is one
 * node being evaluated: its inputs, checked attributes and the Unsupported it throws.
 */
import { ModelError } from '../errors.js';
import type { Attrs } from './attrs.js';
import * as C from './consts.js';
import type { Tensor } from './model.js';
import { type PlanHeadOp, type PlanLayer, type PlanSegment, Unsupported } from './plan.js';
import type { NodeProto } from './proto/onnx_pb.js';

/** b: batch, t: time, d: direction (or state entry), f: features, 1: an added size-1 axis. */
export type Axis = 'b' | 't' | 'd' | 'f' | '1';
export type Seg = { src: 'emb' } | { src: 'layer'; layer: number; dir: number };

interface SymBase {
  sym: true;
  axes: Axis[];
  shape: number[];
  order: string[]; // batch permutations applied, composed; [] is the original order
}
export interface IdsSym extends SymBase {
  kind: 'ids' | 'lengths' | 'perm';
  perm?: string;
}
export interface SeqSym extends SymBase {
  kind: 'seq';
  groups: Seg[][]; // along 'd' when present, else one group
  last: boolean; // the t axis (or its absence) means the last position only
}
export interface FinalSym extends SymBase {
  kind: 'final';
  entries: PlanSegment[]; // along 'd'
}
export interface VecSym extends SymBase {
  kind: 'vec';
  segments: PlanSegment[];
  head: PlanHeadOp[];
  width: number;
}
export type Sym = IdsSym | SeqSym | FinalSym | VecSym;
export type Val = Tensor | Sym;

export const isSym = (v: Val | undefined): v is Sym => v !== undefined && (v as Sym).sym === true;

/** The concrete sizes the graph is evaluated at. */
export interface Probe {
  batch: number;
  steps: number;
}

/** What the lowering has found so far in one evaluation of the graph. */
export interface LowerState {
  /** The model's path, or 'model bytes', for ModelError messages. */
  where: string;
  probe: Probe;
  opset: number;
  layers: PlanLayer[];
  embedding: Tensor | null;
  usesLengths: boolean;
}

export function f32(t: Tensor): Float32Array {
  return t.data instanceof Float32Array ? t.data : Float32Array.from(t.data);
}

/** The name of a batch permutation's inverse. */
export function inversePerm(p: string): string {
  return p.endsWith('^-1') ? p.slice(0, -3) : `${p}^-1`;
}

export function cancelOrder(order: string[], p: string): string[] {
  const inv = inversePerm(p);
  if (order.length > 0 && order[order.length - 1] === inv) return order.slice(0, -1);
  return [...order, p];
}

export function sameOrder(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

const finite = new WeakSet<Tensor>(); // checked once per load, though the graph is evaluated twice

/** Calls fail() naming the first NaN or infinity in a float32 tensor. */
export function checkFinite(t: Tensor, what: string, fail: (why: string) => never): void {
  if (finite.has(t)) return;
  const d = t.data;
  for (let k = 0; k < d.length; k++) {
    if (!Number.isFinite(d[k])) fail(`${what} holds ${d[k]} at element ${k}; only finite weights are lowered`);
  }
  finite.add(t);
}

export class NodeCtx {
  readonly op: string;
  readonly name: string;
  constructor(
    readonly node: NodeProto,
    readonly ins: Array<Val | undefined>,
    readonly attrs: Attrs,
    readonly st: LowerState,
  ) {
    this.op = node.opType;
    this.name = node.name || node.output[0] || node.opType;
  }

  fail(why: string): never {
    throw new Unsupported(`${this.op} at node ${this.name}: ${why}`);
  }

  /**
   * The node breaks its operator's schema (e.g. LSTM weights of the wrong shape): no backend can
   * run it, and onnxruntime is not asked (it aborts the process on some such models).
   */
  invalid(why: string): never {
    throw new ModelError(`${this.st.where}: ${this.op} at node ${this.name}: ${why}`);
  }

  /** The operator is understood, but not with these operands. */
  unsupportedOp(): Unsupported {
    return new Unsupported(`op ${this.op} at node ${this.name} is not supported`);
  }

  constIn(i: number, what: string): Tensor {
    const v = this.ins[i];
    if (v === undefined) return this.fail(`${what} is missing`);
    if (isSym(v)) return this.fail(`${what} must be a constant`);
    if (v.dtype === 'other') return this.fail(`${what} (${this.node.input[i]}) has a data type the importer does not evaluate`);
    return v;
  }

  /** A float32 constant (weights, biases, initial states): other types are not what the kernels run. */
  floatIn(i: number, what: string): Tensor {
    const t = this.constIn(i, what);
    if (t.dtype !== 'float32') this.fail(`${what} (${this.node.input[i]}) is ${t.dtype}, expected float32`);
    return t;
  }

  /**
   * A float32 constant the kernels compute with (weights, biases, the embedding): finite, since
   * the kernels' activations do not propagate NaN as onnxruntime does.
   */
  weightIn(i: number, what: string): Tensor {
    const t = this.floatIn(i, what);
    checkFinite(t, `${what} (${this.node.input[i]})`, (why) => this.fail(why));
    return t;
  }

  /**
   * An integer constant (shapes, axes, indices) as numbers: int64, or int32 where the schema
   * allows it; a 1-D tensor unless any rank is (Gather's indices).
   */
  ints(i: number, what: string, o: { int32?: boolean; anyRank?: boolean } = {}): number[] {
    const t = this.constIn(i, what);
    if (t.dtype !== 'int64' && !(o.int32 && t.dtype === 'int32')) {
      this.fail(`${what} (${this.node.input[i]}) is ${t.dtype}, expected ${o.int32 ? 'int64 or int32' : 'int64'}`);
    }
    if (!o.anyRank && t.dims.length !== 1) this.fail(`${what} (${this.node.input[i]}) has shape [${t.dims.join(', ')}], expected a 1-D tensor`);
    return C.scalarOrList(t);
  }

  /** Squeeze/Unsqueeze axes: the attribute before opset 13, the optional input from 13 on. */
  axes(): number[] | null {
    if (this.st.opset >= 13) return this.ins.length > 1 && this.ins[1] !== undefined ? this.ints(1, 'axes') : null;
    return this.attrs.ints('axes');
  }

  vec(segments: PlanSegment[], order: string[]): VecSym {
    const width = segments.reduce((a, sg) => a + this.st.layers[sg.layer].hidden, 0);
    return { sym: true, kind: 'vec', axes: ['b', 'f'], shape: [this.st.probe.batch, width], order, segments, head: [], width };
  }

  /** A selected last step or final state with only [batch, features] left is the vector. */
  normalize(s: Sym): Sym {
    const two = s.axes.length === 2 && s.axes[0] === 'b' && !s.axes.includes('d') && !s.axes.includes('1');
    if (s.kind === 'seq' && s.last && two && !s.axes.includes('t')) {
      const segments = s.groups[0].map((g): PlanSegment => {
        if (g.src !== 'layer') return this.fail('the selected vector is the embedding of the last item, not a recurrent state');
        // Forward directions end at the last position; a backward one starts there.
        const backwards = g.dir === 1 || this.st.layers[g.layer].reverse;
        return { layer: g.layer, dir: g.dir, what: backwards ? 'y_last' : 'h_final' };
      });
      return this.vec(segments, s.order);
    }
    if (s.kind === 'final' && two) return this.vec(s.entries, s.order);
    return s;
  }
}
