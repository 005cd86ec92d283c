/**
 * The dense head on the selected vector: Gemm, MatMul, elementwise Add/Sub/Mul/Div with a
 * constant folded into the preceding dense layer, and the activations the kernels implement.
 */
import * as C from '../consts.js';
import { type Tensor, size } from '../model.js';
import type { PlanHeadOp } from '../plan.js';
import { type NodeCtx, type Val, type VecSym, f32, isSym } from '../sym.js';

function withHead(c: NodeCtx, v: VecSym, op: PlanHeadOp, width: number): VecSym {
  return { ...v, head: [...v.head, op], width, shape: [c.st.probe.batch, width] };
}

function dense(c: NodeCtx, v: VecSym, wOutIn: Float32Array, out: number, bias: Float32Array | null): VecSym {
  return withHead(c, v, { kind: 'dense', in: v.width, out, w: wOutIn, b: bias ?? new Float32Array(out) }, out);
}

/**
 * A constant broadcast against [batch, out] without changing that shape: a scalar, [out], [1, out]
 * or [1] / [1, 1] (anything else would add axes or depend on the batch).
 */
function biasVector(c: NodeCtx, t: Tensor, out: number, scale: number): Float32Array {
  const d = t.dims;
  const ok = d.length <= 2 && (d.length === 0 || d[d.length - 1] === 1 || d[d.length - 1] === out) && (d.length < 2 || d[0] === 1);
  if (!ok) c.fail(`a constant of shape [${d.join(', ')}] for ${out} outputs`);
  const n = size(d);
  const v = f32(t);
  return Float32Array.from({ length: out }, (_, i) => scale * (n === 1 ? v[0] : v[i]));
}

export function gemm(c: NodeCtx): Val {
  const a = c.ins[0];
  if (!isSym(a) || a.kind !== 'vec') return c.fail('the first operand is not the selected vector');
  const Bt = c.weightIn(1, 'B');
  if (Bt.dims.length !== 2) c.fail('B is not 2-D');
  const transB = c.attrs.int('transB', 0) === 1;
  const alpha = c.attrs.float('alpha', 1);
  const beta = c.attrs.float('beta', 1);
  const [inDim, out] = transB ? [Bt.dims[1], Bt.dims[0]] : Bt.dims;
  if (inDim !== a.width) c.fail(`B expects ${inDim} inputs, the vector has ${a.width}`);
  const w = transB ? f32(Bt).slice() : f32(C.transpose({ ...Bt, data: f32(Bt) }, [1, 0]));
  if (alpha !== 1) for (let i = 0; i < w.length; i++) w[i] *= alpha;
  const bias = c.ins[2] !== undefined ? biasVector(c, c.weightIn(2, 'C'), out, beta) : null;
  return dense(c, a, w, out, bias);
}

export function matmul(c: NodeCtx): Val {
  const a = c.ins[0];
  if (!isSym(a) || a.kind !== 'vec') return c.fail('the first operand is not the selected vector');
  const Bt = c.weightIn(1, 'B');
  if (Bt.dims.length !== 2 || Bt.dims[0] !== a.width) c.fail(`B of shape [${Bt.dims.join(', ')}] for a ${a.width}-wide vector`);
  return dense(c, a, f32(C.transpose({ ...Bt, data: f32(Bt) }, [1, 0])), Bt.dims[1], null);
}

export function arith(c: NodeCtx): Val {
  const [x, y] = c.ins;
  let v: VecSym;
  let k: Tensor;
  let vFirst: boolean;
  if (isSym(x) && x.kind === 'vec' && y !== undefined && !isSym(y)) [v, k, vFirst] = [x, c.weightIn(1, 'the constant operand'), true];
  else if (isSym(y) && y.kind === 'vec' && x !== undefined && !isSym(x)) [v, k, vFirst] = [y, c.weightIn(0, 'the constant operand'), false];
  else return c.fail('operands are not a [batch, dim] vector and a constant');
  const op = c.op;
  const last = v.head[v.head.length - 1];
  if (!last || last.kind !== 'dense') return c.fail(`${op} not directly after a dense layer`);
  const vals = biasVector(c, k, last.out, 1);
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
    if (op === 'Div' && !vFirst) c.fail('a constant divided by the vector');
    for (let o = 0; o < last.out; o++) {
      const s = op === 'Mul' ? vals[o] : 1 / vals[o];
      for (let i = 0; i < last.in; i++) w[o * last.in + i] *= s;
      b[o] *= s;
    }
  }
  return { ...v, head: [...v.head.slice(0, -1), { ...last, w, b }] };
}

export function activation(c: NodeCtx): Val {
  const a = c.ins[0];
  if (!isSym(a) || a.kind !== 'vec') return c.fail(`${c.op} of something other than the selected vector`);
  return withHead(c, a, { kind: c.op.toLowerCase() as 'tanh' | 'sigmoid' | 'relu' }, a.width);
}
