/**
 * Nodes whose inputs are all constants (the shape plumbing exporters emit around recurrent
 * layers), computed on the real tensors at the probe sizes.
 */
import * as C from '../consts.js';
import { type Tensor, dtypeOf, size } from '../model.js';
import { type NodeCtx, type Val } from '../sym.js';

function filled(dtype: Tensor['dtype'], dims: number[], v: number): Tensor {
  const n = size(dims);
  return dtype === 'float32' ? { dtype, dims, data: new Float32Array(n).fill(v) } : { dtype, dims, data: new Array<number>(n).fill(v) };
}

/** The first and last axis of a Shape node (opset 15 start/end, clamped as the schema says). */
export function shapeOf(c: NodeCtx, dims: readonly number[]): Tensor {
  const r = dims.length;
  const clamp = (v: number): number => Math.min(Math.max(v < 0 ? v + r : v, 0), r);
  const out = dims.slice(clamp(c.attrs.int('start', 0)), clamp(c.attrs.int('end', r)));
  return { dtype: 'int64', dims: [out.length], data: out };
}

export function evalConst(c: NodeCtx): Array<Val | undefined> {
  const t = (i: number): Tensor => c.constIn(i, `input ${i}`);
  const a = c.attrs;
  switch (c.op) {
    case 'Constant': {
      const forms = ['value', 'value_float', 'value_floats', 'value_int', 'value_ints'].filter((k) => a.has(k));
      if (forms.length !== 1) return c.fail(`a Constant needs exactly one value attribute, got ${forms.length ? forms.join(', ') : 'none'}`);
      const v = a.tensor('value');
      if (v) return v.dtype === 'other' ? c.fail('a Constant of a data type the importer does not evaluate') : [v];
      if (a.has('value_int')) return [{ dtype: 'int64', dims: [], data: [a.int('value_int', 0)] }];
      if (a.has('value_ints')) return [{ dtype: 'int64', dims: [(a.ints('value_ints') as number[]).length], data: a.ints('value_ints') as number[] }];
      if (a.has('value_float')) return [{ dtype: 'float32', dims: [], data: Float32Array.of(a.float('value_float', 0)) }];
      const fs = a.floats('value_floats') as number[];
      return [{ dtype: 'float32', dims: [fs.length], data: Float32Array.from(fs) }];
    }
    case 'Identity':
      return [t(0)];
    case 'Dropout':
      dropoutInference(c);
      return [t(0)];
    case 'Shape':
      return [shapeOf(c, t(0).dims)];
    case 'Gather':
      c.ints(1, 'indices', { int32: true, anyRank: true });
      return [C.gather(t(0), t(1), a.int('axis', 0))];
    case 'Unsqueeze': {
      const axes = c.axes();
      if (!axes) return c.fail('axes are missing');
      const rank = t(0).dims.length + axes.length;
      const norm = axes.map((x) => C.normAxis(x, rank)).sort((x, y) => x - y);
      if (new Set(norm).size !== norm.length) return c.fail(`axes [${axes.join(', ')}] repeat an axis`);
      const dims = t(0).dims.slice();
      for (const x of norm) dims.splice(x, 0, 1);
      return [{ ...t(0), dims }];
    }
    case 'Squeeze': {
      const axes = c.axes();
      const src = t(0);
      const drop = new Set(axes ? axes.map((x) => C.normAxis(x, src.dims.length)) : src.dims.flatMap((d, i) => (d === 1 ? [i] : [])));
      for (const x of drop) if (src.dims[x] !== 1) c.fail(`squeezing axis ${x} of size ${src.dims[x]}`);
      return [{ ...src, dims: src.dims.filter((_, i) => !drop.has(i)) }];
    }
    case 'Concat':
      return [C.concat(c.ins.map((_, i) => t(i)), a.int('axis', 0))];
    case 'ConstantOfShape': {
      const shape = c.ints(0, 'shape');
      const v = a.tensor('value');
      if (v && (v.dims.length !== 1 || v.dims[0] !== 1 || v.dtype === 'other')) return c.fail('value must be a [1] tensor of a type the importer evaluates');
      C.checkSize(shape);
      return [filled(v ? v.dtype : 'float32', shape, v ? v.data[0] : 0)];
    }
    case 'Slice': {
      if (c.st.opset < 10) {
        const [s, e] = [a.ints('starts'), a.ints('ends')];
        if (!s || !e) return c.fail('starts and ends are required');
        return [C.slice(t(0), s, e, a.ints('axes'), null)];
      }
      const opt = (i: number, what: string): number[] | null => (c.ins[i] !== undefined ? c.ints(i, what, { int32: true }) : null);
      return [C.slice(t(0), c.ints(1, 'starts', { int32: true }), c.ints(2, 'ends', { int32: true }), opt(3, 'axes'), opt(4, 'steps'))];
    }
    case 'Cast': {
      const to = dtypeOf(a.int('to', 0));
      const src = t(0);
      if (to === 'float32') return [{ dtype: 'float32', dims: src.dims, data: Float32Array.from(src.data) }];
      if (to === 'int64' || to === 'int32') return [{ dtype: to, dims: src.dims, data: Array.from(src.data, (x) => Math.trunc(x)) }];
      if (to === 'bool') return [{ dtype: to, dims: src.dims, data: Array.from(src.data, (x) => (x ? 1 : 0)) }];
      return c.fail('cast to an unsupported type');
    }
    case 'Expand':
      return [C.expand(t(0), c.ints(1, 'shape'))];
    case 'Reshape':
      return [{ ...t(0), dims: C.reshapeDims(t(0).dims, c.ints(1, 'shape'), a.int('allowzero', 0) === 1) }];
    case 'Transpose':
      return [C.transpose(t(0), checkedPerm(c, t(0).dims.length))];
    case 'Range': {
      const [s, l, d] = [0, 1, 2].map((i) => {
        if (size(t(i).dims) !== 1 || t(i).dtype !== t(0).dtype) c.fail(`input ${i} is not a scalar of the type of input 0`);
        return t(i).data[0];
      });
      if (d === 0) return c.fail('delta 0');
      const n = Math.max(Math.ceil((l - s) / d), 0);
      C.checkSize([n]);
      return [C.make(t(0), [n], Array.from({ length: n }, (_, i) => s + i * d))];
    }
    case 'ReduceProd': {
      const src = t(0);
      const axes = c.st.opset >= 18 ? (c.ins[1] !== undefined ? c.ints(1, 'axes') : null) : a.ints('axes');
      if (src.dims.length !== 1 || (axes && !(axes.length === 1 && (axes[0] === 0 || axes[0] === -1)))) {
        return c.fail('only the product of a 1-D tensor is evaluated');
      }
      const p = Array.from(src.data).reduce((x, y) => x * y, 1);
      return [{ dtype: src.dtype, dims: a.int('keepdims', 1) === 1 ? [1] : [], data: [p] }];
    }
    case 'Add':
    case 'Sub':
    case 'Mul':
    case 'Div':
    case 'Equal': {
      const [x, y] = [t(0), t(1)];
      if (x.dtype !== y.dtype) return c.fail(`operands of types ${x.dtype} and ${y.dtype}`);
      const f = {
        Add: (p: number, q: number) => p + q,
        Sub: (p: number, q: number) => p - q,
        Mul: (p: number, q: number) => p * q,
        Div: (p: number, q: number) => {
          if (x.dtype === 'float32' || x.dtype === 'float64') return p / q;
          if (q === 0) throw new Error('integer division by zero');
          return Math.trunc(p / q);
        },
        Equal: (p: number, q: number) => (p === q ? 1 : 0),
      }[c.op as 'Add'];
      return [C.broadcast(x, y, f, c.op === 'Equal' ? 'bool' : undefined)];
    }
    case 'Neg':
      return [C.broadcast(t(0), { dtype: t(0).dtype, dims: [], data: [0] }, (x) => -x)];
    default:
      throw c.unsupportedOp();
  }
}

/** Transpose's perm attribute checked to be a permutation of the input's axes (default: reversed). */
export function checkedPerm(c: NodeCtx, rank: number): number[] {
  const perm = c.attrs.ints('perm') ?? Array.from({ length: rank }, (_, i) => rank - 1 - i);
  const sorted = perm.slice().sort((x, y) => x - y);
  if (perm.length !== rank || sorted.some((v, i) => v !== i)) c.fail(`perm [${perm.join(', ')}] is not a permutation of ${rank} axes`);
  return perm;
}

/** Dropout is the identity only in inference: a training_mode input must be a constant false. */
export function dropoutInference(c: NodeCtx): void {
  if (c.ins[2] !== undefined && c.constIn(2, 'training_mode').data.some((x) => x !== 0)) c.fail('training_mode is true');
}
