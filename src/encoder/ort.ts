/**
 * The onnxruntime backend of Encoder: runs the exported graph itself, rows of equal length
 * together (no padding, so each row equals the row run alone).
 */
import { InvalidArgumentError, ModelError } from '../errors.js';
import type { FlatHistories } from './input.js';
import type { Signature } from '../onnx/lower.js';
import { type LoadedModel, num } from '../onnx/model.js';

export type OrtModule = typeof import('onnxruntime-node');
export type OrtSession = import('onnxruntime-node').InferenceSession;

export interface OrtBackend {
  session: OrtSession;
  ort: OrtModule;
  sig: Signature;
}

/** Encodes validated histories: B × dim. Empty histories are refused (the graph needs a step). */
export async function encodeOrt(b: OrtBackend, dim: number, flat: FlatHistories): Promise<Float32Array> {
  const users = flat.offsets.length - 1;
  const out = new Float32Array(users * dim);
  const byLength = new Map<number, number[]>();
  for (let u = 0; u < users; u++) {
    const len = flat.offsets[u + 1] - flat.offsets[u];
    if (len === 0) {
      throw new InvalidArgumentError(`histories[${u}] is empty: the onnxruntime backend cannot run a model on zero events`);
    }
    const rows = byLength.get(len) ?? [];
    rows.push(u);
    byLength.set(len, rows);
  }
  for (const rows of byLength.values()) {
    const res = await runOrt(b, rows.map((u) => Array.from(flat.ids.subarray(flat.offsets[u], flat.offsets[u + 1]))), dim);
    rows.forEach((u, i) => out.set(res.subarray(i * dim, (i + 1) * dim), u * dim));
  }
  return out;
}

/** Runs the model on rows of one length; returns rows × dim (dim 0: whatever the model gives). */
export async function runOrt(b: OrtBackend, rows: number[][], dim: number): Promise<Float32Array> {
  const { session, ort, sig } = b;
  const n = rows.length;
  const t = rows[0].length;
  const flat = sig.ids.seqFirst ? Array.from({ length: n * t }, (_, i) => rows[i % n][Math.floor(i / n)]) : rows.flat();
  const idsTensor =
    sig.ids.dtype === 'int64'
      ? new ort.Tensor('int64', BigInt64Array.from(flat, (v) => BigInt(v)), sig.ids.seqFirst ? [t, n] : [n, t])
      : new ort.Tensor('int32', Int32Array.from(flat), sig.ids.seqFirst ? [t, n] : [n, t]);
  const feeds: Record<string, import('onnxruntime-node').Tensor> = { [sig.ids.name]: idsTensor };
  if (sig.lengths) {
    feeds[sig.lengths.name] =
      sig.lengths.dtype === 'int64'
        ? new ort.Tensor('int64', BigInt64Array.from(rows, () => BigInt(t)), [n])
        : new ort.Tensor('int32', Int32Array.from(rows, () => t), [n]);
  }
  let res;
  try {
    res = await session.run(feeds);
  } catch (e) {
    throw new ModelError(`onnxruntime failed to run the model: ${(e as Error).message}`);
  }
  const y = res[sig.output];
  if (!y || y.type !== 'float32' || y.dims.length !== 2 || Number(y.dims[0]) !== n || (dim > 0 && Number(y.dims[1]) !== dim)) {
    throw new ModelError(`the model's output ${sig.output} is not [batch, dim] float32 (got [${y?.dims.join(', ')}] ${y?.type})`);
  }
  return y.data as Float32Array;
}

/** The row count of the table the ids index, when the ids feed a Gather on an initializer. */
export function findVocab(model: LoadedModel, sig: Signature): number | null {
  const inits = new Map((model.graph.initializer ?? []).map((t) => [t.name, t]));
  let idsName = sig.ids.name;
  for (const n of model.graph.node ?? []) {
    if (n.opType === 'Cast' && n.input?.[0] === idsName) idsName = n.output?.[0] ?? idsName;
    if (n.opType === 'Gather' && n.input?.[1] === idsName) {
      const t = inits.get(n.input?.[0]);
      if (t?.dims && t.dims.length === 2) return num(t.dims[0]);
    }
  }
  return null;
}
