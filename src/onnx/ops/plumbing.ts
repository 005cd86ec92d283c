/**
 * Shape operators applied to symbolic values: what they select or rearrange is recorded (the
 * embedding lookup, the last time step, directions, batch permutations); anything that would
 * change what is computed in a way the plan cannot express refuses the node.
 */
import * as C from '../consts.js';
import { dtypeOf } from '../model.js';
import { type Axis, type FinalSym, type NodeCtx, type SeqSym, type Sym, type Val, cancelOrder, checkFinite, inversePerm, isSym, sameOrder } from '../sym.js';
import { checkedPerm } from './const.js';

export function castSym(c: NodeCtx, s: Sym): Sym {
  const to = dtypeOf(c.attrs.int('to', 0));
  if ((s.kind === 'ids' || s.kind === 'lengths' || s.kind === 'perm') && (to === 'int64' || to === 'int32')) return s;
  if ((s.kind === 'seq' || s.kind === 'final' || s.kind === 'vec') && to === 'float32') return s;
  return c.fail(`cast of ${s.kind} to ${to}`);
}

export function gatherSym(c: NodeCtx): Val {
  const axis0 = c.attrs.int('axis', 0);
  const [data, idx] = c.ins;
  const st = c.st;
  if (data !== undefined && !isSym(data) && isSym(idx)) {
    if (idx.kind !== 'ids') return c.fail('only item ids can index a constant (the embedding)');
    if (data.dims.length !== 2 || C.normAxis(axis0, 2) !== 0 || data.dtype !== 'float32') {
      return c.fail('the embedding must be a float32 [items, dim] table gathered on axis 0');
    }
    if (st.embedding && st.embedding !== data) return c.fail('a second embedding table');
    checkFinite(data, `the embedding (${c.node.input[0]})`, (why) => c.fail(why));
    st.embedding = data;
    return { sym: true, kind: 'seq', axes: [...idx.axes, 'f'], shape: [...idx.shape, data.dims[1]], order: idx.order, groups: [[{ src: 'emb' }]], last: false };
  }
  if (!isSym(data) || idx === undefined) return c.fail('unexpected operands');
  const axis = C.normAxis(axis0, data.axes.length);
  const tag = data.axes[axis];
  if (isSym(idx)) {
    if (idx.kind !== 'perm' || tag !== 'b') return c.fail('a computed index on a non-batch axis');
    return c.normalize({ ...data, order: cancelOrder(data.order, idx.perm as string) } as Sym);
  }
  const k = c.ints(1, 'indices', { int32: true, anyRank: true });
  const scalar = idx.dims.length === 0;
  const without = <T extends Sym>(s: T): T => ({ ...s, axes: s.axes.filter((_, i) => i !== axis), shape: s.shape.filter((_, i) => i !== axis) });
  if (tag === 't' && data.kind === 'seq') {
    // Checked at every probe length, so a constant that happens to equal one probe's last index refuses.
    if (!scalar || !(k[0] === -1 || k[0] === data.shape[axis] - 1)) return c.fail(`index ${k.join(', ')} on the time axis is not the last time step`);
    return c.normalize({ ...without(data), last: true });
  }
  if (tag === 'd' && data.kind === 'final') {
    const n = data.entries.length;
    const pick = k.map((v) => (v < 0 ? v + n : v));
    if (pick.some((v) => v < 0 || v >= n)) return c.fail(`index ${k.join(', ')} out of range for ${n} states`);
    const entries = pick.map((v) => data.entries[v]);
    if (scalar) return c.normalize({ ...without(data), entries });
    const shape = data.shape.slice();
    shape[axis] = entries.length;
    return { ...data, entries, shape };
  }
  if (tag === 'd' && data.kind === 'seq') {
    const n = data.groups.length;
    const v = k[0] < 0 ? k[0] + n : k[0];
    if (!scalar || v < 0 || v >= n) return c.fail(`direction index ${k.join(', ')} of ${n}`);
    return c.normalize({ ...without(data), groups: [data.groups[v]] });
  }
  return c.fail(`selection on a ${tag} axis of ${data.kind}`);
}

export function transposeSym(c: NodeCtx, s: Sym): Sym {
  const p = checkedPerm(c, s.axes.length);
  return { ...s, axes: p.map((a) => s.axes[a]), shape: p.map((a) => s.shape[a]) } as Sym;
}

export function squeezeSym(c: NodeCtx, s: Sym): Sym {
  const axes = c.axes();
  const rank = s.axes.length;
  const drop = new Set(axes ? axes.map((a) => C.normAxis(a, rank)) : s.shape.flatMap((d, i) => (d === 1 ? [i] : [])));
  for (const a of drop) {
    if (s.shape[a] !== 1) return c.fail(`squeezing axis ${a} of size ${s.shape[a]}`);
    const tag = s.axes[a];
    if (tag === 't') {
      if (s.kind !== 'seq' || !s.last) return c.fail('squeezing a time axis that is not the last step');
    } else if (tag !== 'd' && tag !== '1') {
      // 'd' of size 1: one direction / one state entry, nothing to record
      return c.fail(`squeezing the ${tag === 'b' ? 'batch' : 'feature'} axis`);
    }
  }
  return c.normalize({ ...s, axes: s.axes.filter((_, i) => !drop.has(i)), shape: s.shape.filter((_, i) => !drop.has(i)) } as Sym);
}

export function unsqueezeSym(c: NodeCtx, s: Sym): Sym {
  const axes = c.axes();
  if (!axes) return c.fail('axes are missing');
  const rank = s.axes.length + axes.length;
  const norm = axes.map((a) => C.normAxis(a, rank)).sort((a, b) => a - b);
  if (new Set(norm).size !== norm.length) return c.fail(`axes [${axes.join(', ')}] repeat an axis`);
  const ax = s.axes.slice();
  const sh = s.shape.slice();
  for (const a of norm) {
    ax.splice(a, 0, '1');
    sh.splice(a, 0, 1);
  }
  return { ...s, axes: ax, shape: sh } as Sym;
}

export function flattenSym(c: NodeCtx, s: Sym): Sym {
  const axis = c.attrs.int('axis', 1);
  const a = axis < 0 ? axis + s.shape.length : axis;
  if (a < 0 || a > s.shape.length) return c.fail(`axis ${axis} for rank ${s.shape.length}`);
  if (s.kind === 'vec' && a === 1) return s;
  return reshapeTo(c, s, [s.shape.slice(0, a).reduce((x, y) => x * y, 1), s.shape.slice(a).reduce((x, y) => x * y, 1)]);
}

export function reshapeSym(c: NodeCtx, s: Sym): Sym {
  return reshapeTo(c, s, C.reshapeDims(s.shape, c.ints(1, 'shape'), c.attrs.int('allowzero', 0) === 1));
}

/** Reshapes that only drop/merge size-1 axes or merge (d, f) into f are understood. */
function reshapeTo(c: NodeCtx, s: Sym, target: number[]): Sym {
  const axes: Axis[] = [];
  let i = 0;
  let merged = false;
  const bad = (): never => c.fail(`reshape of [${s.shape.join(', ')}] to [${target.join(', ')}]`);
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
    if (prod !== dim) bad();
    const tags = take.filter((a) => s.shape[a] !== 1 || s.axes[a] === 'd' || s.axes[a] === 't').map((a) => s.axes[a]);
    if (tags.length <= 1) {
      axes.push(tags.length ? tags[0] : '1');
    } else if (tags.length === 2 && tags[0] === 'd' && tags[1] === 'f') {
      axes.push('f');
      merged = true;
    } else {
      return c.fail(`reshape merging ${tags.join(', ')} axes`);
    }
  }
  for (; i < s.axes.length; i++) if (s.shape[i] !== 1) bad();
  let out: Sym = { ...s, axes, shape: target } as Sym;
  if (merged) {
    if (s.kind === 'seq') out = { ...(out as SeqSym), groups: [s.groups.flat()] };
    else if (s.kind !== 'final') return c.fail('reshape merging directions');
  } else if (s.kind === 'final' && !axes.includes('d') && s.entries.length > 1) {
    return c.fail('reshape dropping a direction axis of several entries');
  }
  return c.normalize(out);
}

export function sliceSym(c: NodeCtx, s: Sym): Sym {
  let starts: number[];
  let ends: number[];
  let axes: number[] | null;
  let steps: number[] | null = null;
  if (c.st.opset < 10) {
    const [st, en] = [c.attrs.ints('starts'), c.attrs.ints('ends')];
    if (!st || !en) return c.fail('starts and ends are required');
    [starts, ends, axes] = [st, en, c.attrs.ints('axes')];
  } else {
    starts = c.ints(1, 'starts', { int32: true });
    ends = c.ints(2, 'ends', { int32: true });
    axes = c.ins[3] !== undefined ? c.ints(3, 'axes', { int32: true }) : null;
    steps = c.ins[4] !== undefined ? c.ints(4, 'steps', { int32: true }) : null;
  }
  const ax = (axes ?? starts.map((_, i) => i)).map((a) => C.normAxis(a, s.axes.length));
  if (ends.length !== starts.length || ax.length !== starts.length || (steps && steps.length !== starts.length) || new Set(ax).size !== ax.length) {
    return c.fail('starts, ends, axes and steps differ in length or repeat an axis');
  }
  let out: Sym = s;
  ax.forEach((a, j) => {
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
      c.fail(`slice [${starts[j]}:${ends[j]}${steps ? `:${steps[j]}` : ''}] of the ${tag} axis of ${s.kind}`);
    }
  });
  return out;
}

export function concatSym(c: NodeCtx): Sym {
  const parts = c.ins.map((v, i) => (v === undefined ? c.fail(`input ${i} is missing`) : v));
  if (!parts.every(isSym)) return c.fail('concatenating constants with computed values');
  const syms = parts as Sym[];
  const axis = C.normAxis(c.attrs.int('axis', 0), syms[0].axes.length);
  const tag = syms[0].axes[axis];
  if (syms.some((p) => p.axes.length !== syms[0].axes.length || p.axes[axis] !== tag)) return c.fail('operands of different ranks or axes');
  if (syms.every((p) => p.kind === 'final') && tag === 'd') {
    const all = syms as FinalSym[];
    if (!all.every((p) => sameOrder(p.order, all[0].order))) return c.fail('states in different batch orders');
    const entries = all.flatMap((p) => p.entries);
    const shape = all[0].shape.slice();
    shape[axis] = entries.length;
    return { ...all[0], entries, shape };
  }
  if (syms.every((p) => p.kind === 'vec' && p.head.length === 0) && tag === 'f') {
    if (!syms.every((p) => sameOrder(p.order, syms[0].order))) return c.fail('vectors in different batch orders');
    return c.vec(syms.flatMap((p) => (p.kind === 'vec' ? p.segments : [])), syms[0].order);
  }
  return c.fail(`concatenation of ${syms.map((p) => p.kind).join(', ')} on the ${tag} axis`);
}

/** Sorting the batch by length (pack_padded_sequence with enforce_sorted=False). */
export function topk(c: NodeCtx): Array<Val | undefined> {
  const v = c.ins[0];
  if (!isSym(v) || v.kind !== 'lengths') return c.fail('TopK of something other than the lengths');
  if (C.normAxis(c.attrs.int('axis', -1), 1) !== 0) return c.fail('TopK not along the batch');
  const k = c.ints(1, 'K');
  if (k.length !== 1 || k[0] !== c.st.probe.batch) c.fail('TopK does not sort the whole batch');
  const perm = c.node.output[1] || c.name;
  return [
    { ...v, order: cancelOrder(v.order, perm) },
    { sym: true, kind: 'perm', axes: ['b'], shape: [c.st.probe.batch], order: [], perm },
  ];
}

/** inverse[perm[i]] = i: ScatterElements(zeros, perm, range(batch)). */
export function scatterInverse(c: NodeCtx): Val {
  const [data, idx, upd] = c.ins;
  if (data === undefined || isSym(data) || !isSym(idx) || idx.kind !== 'perm' || upd === undefined || isSym(upd)) {
    return c.fail('only the inverse of a batch permutation is understood');
  }
  const B = c.st.probe.batch;
  if (C.normAxis(c.attrs.int('axis', 0), 1) !== 0 || data.dims.join() !== `${B}` || upd.dims.join() !== `${B}`) {
    return c.fail('data and updates are not [batch] vectors scattered on axis 0');
  }
  const u = c.ints(2, 'updates');
  if (u.some((x, i) => x !== i)) c.fail('updates are not range(batch)');
  if (data.dtype !== 'int64') c.fail(`data is ${data.dtype}, expected int64`);
  return { ...idx, perm: inversePerm(idx.perm as string) };
}
