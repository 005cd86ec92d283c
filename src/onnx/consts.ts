/**
 * Evaluation of ONNX "plumbing" operators on small constant tensors: the shape arithmetic
 * exporters emit around recurrent layers (Shape, Gather, Concat, ConstantOfShape, Slice, ...).
 */
import { type Tensor, size } from './model.js';

export function strides(dims: readonly number[]): number[] {
  const s = new Array<number>(dims.length).fill(1);
  for (let i = dims.length - 2; i >= 0; i--) s[i] = s[i + 1] * dims[i + 1];
  return s;
}

export function make(like: Tensor, dims: number[], values: ArrayLike<number>): Tensor {
  return like.dtype === 'float32'
    ? { dtype: 'float32', dims, data: Float32Array.from(values) }
    : { dtype: like.dtype, dims, data: Array.from(values) };
}

/**
 * Plumbing tensors are small (shapes, zero states of batch × hidden). One larger than this would
 * only exhaust memory, here or in onnxruntime (which would try to build it on every run).
 */
export const MAX_ELEMENTS = 1 << 24;

export class TooLarge extends Error {}

export function checkSize(dims: readonly number[]): void {
  if (dims.some((d) => !Number.isSafeInteger(d) || d < 0)) throw new Error(`a shape [${dims.join(', ')}] with a negative or non-integer dimension`);
  if (size(dims) > MAX_ELEMENTS) {
    throw new TooLarge(`it computes a constant of shape [${dims.join(', ')}], more than ${MAX_ELEMENTS} elements: no encoder's plumbing is that large`);
  }
}

export function scalarOrList(t: Tensor): number[] {
  return Array.from(t.data);
}

export function normAxis(axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= Math.max(rank, 1)) throw new Error(`axis ${axis} out of range for rank ${rank}`);
  return a;
}

/** Calls f(outIndex, srcFlatIndex) for every element of a tensor of `dims`. */
function forEachIndex(dims: readonly number[], f: (idx: number[], flat: number) => void): void {
  const n = size(dims);
  const idx = new Array<number>(dims.length).fill(0);
  for (let flat = 0; flat < n; flat++) {
    f(idx, flat);
    for (let a = dims.length - 1; a >= 0; a--) {
      if (++idx[a] < dims[a]) break;
      idx[a] = 0;
    }
  }
}

export function gather(data: Tensor, indices: Tensor, axis: number): Tensor {
  const ax = normAxis(axis, data.dims.length);
  const outDims = [...data.dims.slice(0, ax), ...indices.dims, ...data.dims.slice(ax + 1)];
  checkSize(outDims);
  const ds = strides(data.dims);
  const ind = Array.from(indices.data);
  const out = new Array<number>(size(outDims));
  const r = indices.dims.length;
  const is = strides(indices.dims);
  forEachIndex(outDims, (idx, flat) => {
    let src = 0;
    for (let a = 0; a < ax; a++) src += idx[a] * ds[a];
    let ii = 0;
    for (let a = 0; a < r; a++) ii += idx[ax + a] * is[a];
    let k = ind[ii];
    if (k < 0) k += data.dims[ax];
    if (k < 0 || k >= data.dims[ax]) throw new Error(`Gather index ${ind[ii]} out of range`);
    src += k * ds[ax];
    for (let a = ax + 1; a < data.dims.length; a++) src += idx[a - 1 + r] * ds[a];
    out[flat] = data.data[src];
  });
  return make(data, outDims, out);
}

export function transpose(t: Tensor, perm: number[] | null): Tensor {
  const p = perm ?? t.dims.map((_, i) => t.dims.length - 1 - i);
  const outDims = p.map((a) => t.dims[a]);
  const ts = strides(t.dims);
  const out = new Array<number>(size(outDims));
  forEachIndex(outDims, (idx, flat) => {
    let src = 0;
    for (let a = 0; a < p.length; a++) src += idx[a] * ts[p[a]];
    out[flat] = t.data[src];
  });
  return make(t, outDims, out);
}

/** Normalised Slice parameters for one axis (ONNX clamping rules, positive or negative step). */
export function sliceRange(dim: number, start: number, end: number, step: number): { start: number; count: number; step: number } {
  if (step === 0) throw new Error('Slice step 0');
  let s = start < 0 ? start + dim : start;
  let e = end < 0 ? end + dim : end;
  if (step > 0) {
    s = Math.min(Math.max(s, 0), dim);
    e = Math.min(Math.max(e, 0), dim);
    return { start: s, count: Math.max(0, Math.ceil((e - s) / step)), step };
  }
  s = Math.min(Math.max(s, -1), dim - 1);
  e = Math.min(Math.max(e, -1), dim - 1);
  return { start: s, count: Math.max(0, Math.ceil((e - s) / step)), step };
}

export function slice(t: Tensor, starts: number[], ends: number[], axes: number[] | null, steps: number[] | null): Tensor {
  const rank = t.dims.length;
  const ax = (axes ?? starts.map((_, i) => i)).map((a) => normAxis(a, rank));
  if (ends.length !== starts.length || ax.length !== starts.length || (steps && steps.length !== starts.length) || new Set(ax).size !== ax.length) {
    throw new Error('Slice starts, ends, axes and steps differ in length or repeat an axis');
  }
  const ranges = t.dims.map((d) => ({ start: 0, count: d, step: 1 }));
  ax.forEach((a, i) => {
    ranges[a] = sliceRange(t.dims[a], starts[i], ends[i], steps ? steps[i] : 1);
  });
  const outDims = ranges.map((r) => r.count);
  const ts = strides(t.dims);
  const out = new Array<number>(size(outDims));
  forEachIndex(outDims, (idx, flat) => {
    let src = 0;
    for (let a = 0; a < rank; a++) src += (ranges[a].start + idx[a] * ranges[a].step) * ts[a];
    out[flat] = t.data[src];
  });
  return make(t, outDims, out);
}

export function concat(ts: Tensor[], axis: number): Tensor {
  const rank = ts[0].dims.length;
  const ax = normAxis(axis, rank);
  for (const t of ts) {
    if (t.dtype !== ts[0].dtype || t.dims.length !== rank || t.dims.some((d, a) => a !== ax && d !== ts[0].dims[a])) {
      throw new Error(`Concat of [${ts[0].dims.join(', ')}] ${ts[0].dtype} and [${t.dims.join(', ')}] ${t.dtype} on axis ${axis}`);
    }
  }
  const outDims = ts[0].dims.slice();
  outDims[ax] = ts.reduce((a, t) => a + t.dims[ax], 0);
  const out = new Array<number>(size(outDims));
  const os = strides(outDims);
  let offset = 0;
  for (const t of ts) {
    forEachIndex(t.dims, (idx, flat) => {
      let dst = 0;
      for (let a = 0; a < rank; a++) dst += (a === ax ? idx[a] + offset : idx[a]) * os[a];
      out[dst] = t.data[flat];
    });
    offset += t.dims[ax];
  }
  return make(ts[0], outDims, out);
}

/** Target dims of Reshape (0 copies the input dim unless allowzero; one -1 is inferred). */
export function reshapeDims(dims: readonly number[], shape: number[], allowzero: boolean): number[] {
  const out = shape.map((s, i) => (s === 0 && !allowzero ? dims[i] : s));
  const known = out.filter((s) => s !== -1).reduce((a, b) => a * b, 1);
  const total = size(dims);
  const neg = out.indexOf(-1);
  if (neg >= 0) out[neg] = known === 0 ? 0 : total / known;
  if (size(out) !== total || out.some((v) => !Number.isInteger(v) || v < 0)) {
    throw new Error(`cannot reshape [${dims.join(', ')}] to [${shape.join(', ')}]`);
  }
  return out;
}

/** Elementwise binary op with NumPy broadcasting. */
export function broadcast(a: Tensor, b: Tensor, f: (x: number, y: number) => number, outType?: Tensor['dtype']): Tensor {
  const rank = Math.max(a.dims.length, b.dims.length);
  const ad = [...new Array<number>(rank - a.dims.length).fill(1), ...a.dims];
  const bd = [...new Array<number>(rank - b.dims.length).fill(1), ...b.dims];
  const outDims = ad.map((d, i) => {
    if (d !== bd[i] && d !== 1 && bd[i] !== 1) throw new Error('shapes do not broadcast');
    return d === 0 || bd[i] === 0 ? 0 : Math.max(d, bd[i]);
  });
  checkSize(outDims);
  const as = strides(ad);
  const bs = strides(bd);
  const out = new Array<number>(size(outDims));
  forEachIndex(outDims, (idx, flat) => {
    let ai = 0;
    let bi = 0;
    for (let k = 0; k < rank; k++) {
      if (ad[k] !== 1) ai += idx[k] * as[k];
      if (bd[k] !== 1) bi += idx[k] * bs[k];
    }
    out[flat] = f(a.data[ai], b.data[bi]);
  });
  return make({ ...a, dtype: outType ?? a.dtype }, outDims, out);
}

export function expand(t: Tensor, shape: number[]): Tensor {
  checkSize(shape);
  const ones: Tensor = { dtype: t.dtype, dims: shape, data: new Array<number>(size(shape)).fill(0) };
  return broadcast(t, ones, (x) => x);
}
