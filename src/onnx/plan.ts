/**
 * The encoder plan the importer lowers a graph to (what the native kernels run), and the error
 * that refuses a graph the native path cannot run exactly.
 */

/** The native path cannot run this graph (the message names the node and why); onnxruntime may. */
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

function sameArray(a: Float32Array | undefined, b: Float32Array | undefined): boolean {
  if (a === b) return true;
  if (!a || !b || a.length !== b.length) return false;
  // Bitwise, so that NaN payloads and signed zeros count as differences too.
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}

/** Whether two plans compute the same encoder (same structure, bit-identical weights). */
export function samePlan(a: EncoderPlan, b: EncoderPlan): boolean {
  const shape = (p: EncoderPlan): string =>
    JSON.stringify([
      p.vocab,
      p.embDim,
      p.outDim,
      p.usesLengths,
      p.output,
      p.layers.map((l) => [l.kind, l.reverse, l.input, l.hidden, l.clip, l.inputForget, l.linearBeforeReset, l.dirs.length]),
      p.head.map((h) => (h.kind === 'dense' ? [h.kind, h.in, h.out] : [h.kind])),
    ]);
  if (shape(a) !== shape(b) || !sameArray(a.embedding, b.embedding)) return false;
  const dirsSame = a.layers.every((l, i) =>
    l.dirs.every((d, j) => {
      const e = b.layers[i].dirs[j];
      return sameArray(d.w, e.w) && sameArray(d.r, e.r) && sameArray(d.biasX, e.biasX) && sameArray(d.rbh, e.rbh) && sameArray(d.peep, e.peep);
    }),
  );
  return dirsSame && a.head.every((h, i) => h.kind !== 'dense' || (sameArray(h.w, (b.head[i] as typeof h).w) && sameArray(h.b, (b.head[i] as typeof h).b)));
}
