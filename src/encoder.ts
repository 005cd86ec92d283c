/**
 * Encoder: turns users' recent behaviour (sequences of the model's item indices) into user
 * vectors with the session model a team trained and exported to ONNX. Graphs the importer can
 * lower run on the native LSTM/GRU kernels; anything else runs on onnxruntime-node, and the
 * encoder says which backend it uses and why.
 */
import { availableParallelism } from 'node:os';

import {
  ClosedError,
  InvalidArgumentError,
  ModelError,
  OutOfRangeError,
  PeerMissingError,
  UnsupportedModelError,
  fromNative,
} from './errors.js';
import { type Isa, native } from './native.js';
import { type EncoderPlan, type Signature, Unsupported, lower, signature } from './onnx/lower.js';
import { type LoadedModel, loadModel, num } from './onnx/model.js';
import { arrayLike, describe, optionalPositiveInt } from './validate.js';

export type EncoderBackend = 'native' | 'onnxruntime';

export interface EncoderLoadOptions {
  /** 'auto' (default): native when the graph can be lowered, else onnxruntime. */
  backend?: 'auto' | EncoderBackend;
  /** Threads for batched encoding (default os.availableParallelism()). */
  threads?: number;
  /** Native kernel ISA (default: the best this CPU runs). */
  isa?: 'auto' | Isa;
  /**
   * Largest table, in bytes, into which the embedding and the first layer's input projection are
   * folded (one lookup per event instead of a matrix product). Default 256 MiB; 0 disables.
   */
  foldBytes?: number;
}

interface NativeEncoderHandle {
  encode(a: { ids: Int32Array; offsets: Int32Array; threads: number; isa: Isa }): Float32Array;
  encodeAsync(a: { ids: Int32Array; offsets: Int32Array; threads: number; isa: Isa }): Promise<Float32Array>;
  step(a: { state: Float32Array; ids: Int32Array; isa: Isa }): Float32Array;
  stepAsync(a: { state: Float32Array; ids: Int32Array; isa: Isa }): Promise<Float32Array>;
  output(a: { state: Float32Array; isa: Isa }): Float32Array;
  readonly info: { outDim: number; stateSize: number; unidirectional: boolean; folded: boolean; vocab: number };
}

type OrtModule = typeof import('onnxruntime-node');
type OrtSession = import('onnxruntime-node').InferenceSession;

/**
 * The per-user state `step` advances: the recurrent states of every layer (native backend), or
 * the history so far (onnxruntime backend, where a step re-encodes it). Belongs to the encoder
 * that made it.
 */
export class EncoderState {
  /** @internal */ readonly owner: Encoder;
  /** @internal */ readonly data: Float32Array | null;
  /** @internal */ readonly histories: number[][] | null;
  readonly batch: number;
  /** @internal The last step queued on this state: steps on one state run one after another. */
  tail: Promise<unknown> = Promise.resolve();
  /** @internal Asynchronous steps queued or running on this state. */
  inflight = 0;

  /** @internal */
  constructor(owner: Encoder, batch: number, data: Float32Array | null, histories: number[][] | null) {
    this.owner = owner;
    this.batch = batch;
    this.data = data;
    this.histories = histories;
  }

  /**
   * A copy of the recurrent state (batch × stateSize floats: every layer's h, then c for LSTM),
   * to persist live sessions; `encoder.restoreState` takes it back. Null on the onnxruntime
   * backend, whose state is the history itself.
   */
  toFloat32Array(): Float32Array | null {
    return this.data ? this.data.slice() : null;
  }
}

const DEFAULT_FOLD_BYTES = 256 << 20;

export class Encoder {
  readonly backend: EncoderBackend;
  /** Why the encoder does not run natively (null when it does). */
  readonly fallbackReason: string | null;
  /** Output dimension. */
  readonly dim: number;
  /** Number of items the model knows (ids are 0..vocab-1), when the model reveals it. */
  readonly vocab: number | null;
  readonly #native: NativeEncoderHandle | null;
  readonly #ort: { session: OrtSession; ort: OrtModule; sig: Signature } | null;
  readonly #threads: number;
  readonly #isa: Isa;
  readonly #stateSize: number;
  readonly #steppable: boolean;
  #closed = false;

  private constructor(p: {
    backend: EncoderBackend;
    fallbackReason: string | null;
    dim: number;
    vocab: number | null;
    native: NativeEncoderHandle | null;
    ort: { session: OrtSession; ort: OrtModule; sig: Signature } | null;
    threads: number;
    isa: Isa;
  }) {
    this.backend = p.backend;
    this.fallbackReason = p.fallbackReason;
    this.dim = p.dim;
    this.vocab = p.vocab;
    this.#native = p.native;
    this.#ort = p.ort;
    this.#threads = p.threads;
    this.#isa = p.isa;
    this.#stateSize = p.native ? p.native.info.stateSize : 0;
    this.#steppable = p.native ? p.native.info.unidirectional : true;
  }

  /**
   * Loads an ONNX session model from a path (external-data files beside it are read) or bytes.
   * Rejects with ModelError for files that are not such a model, and with UnsupportedModelError
   * when `backend: 'native'` is asked for a graph the native kernels cannot run.
   */
  static async load(source: string | Uint8Array, opts: EncoderLoadOptions = {}): Promise<Encoder> {
    if (typeof source !== 'string' && !(source instanceof Uint8Array)) {
      throw new InvalidArgumentError(`model must be a path or a Uint8Array, got ${describe(source)}`);
    }
    const backend = opts.backend ?? 'auto';
    if (!['auto', 'native', 'onnxruntime'].includes(backend)) {
      throw new InvalidArgumentError(`options.backend must be 'auto', 'native' or 'onnxruntime', got ${describe(backend)}`);
    }
    const threads = optionalPositiveInt('options.threads', opts.threads, availableParallelism());
    const isaOpt = opts.isa ?? 'auto';
    if (!['auto', 'avx2', 'scalar'].includes(isaOpt)) {
      throw new InvalidArgumentError(`options.isa must be 'auto', 'avx2' or 'scalar', got ${describe(isaOpt)}`);
    }
    const isa: Isa = isaOpt === 'auto' ? native().bestIsa : isaOpt;
    const foldBytes = opts.foldBytes ?? DEFAULT_FOLD_BYTES;
    if (typeof foldBytes !== 'number' || !Number.isSafeInteger(foldBytes) || foldBytes < 0) {
      throw new InvalidArgumentError(`options.foldBytes must be a non-negative integer, got ${describe(foldBytes)}`);
    }
    let model: LoadedModel;
    try {
      model = loadModel(source);
    } catch (e) {
      if (e instanceof ModelError) throw e;
      throw new ModelError(`${typeof source === 'string' ? source : 'model bytes'}: ${(e as Error).message}`);
    }
    const sig = signature(model);

    let reason: string | null = null;
    if (backend !== 'onnxruntime') {
      let plan: EncoderPlan | null = null;
      try {
        plan = lower(model, sig);
      } catch (e) {
        if (!(e instanceof Unsupported)) throw e;
        reason = e.message;
        if (backend === 'native') throw new UnsupportedModelError(`the native backend cannot run this model: ${reason}`);
      }
      if (plan) {
        if (sig.outDim !== null && sig.outDim !== plan.outDim) {
          throw new ModelError(`${model.path ?? 'model'}: declares ${sig.outDim} outputs but computes ${plan.outDim}`);
        }
        let handle: NativeEncoderHandle;
        try {
          handle = new (native() as unknown as { NativeEncoder: new (p: object) => NativeEncoderHandle }).NativeEncoder({
            ...plan,
            foldBytes,
            threads,
          });
        } catch (e) {
          throw fromNative(e);
        }
        return new Encoder({ backend: 'native', fallbackReason: null, dim: plan.outDim, vocab: plan.vocab, native: handle, ort: null, threads, isa });
      }
    } else {
      reason = REQUESTED;
    }
    const ort = await loadOnnxruntime(model.path ?? 'model bytes', reason ?? REQUESTED);
    let session: OrtSession;
    try {
      const so = { intraOpNumThreads: threads, graphOptimizationLevel: 'all' as const };
      session = typeof source === 'string' ? await ort.InferenceSession.create(source, so) : await ort.InferenceSession.create(source, so);
    } catch (e) {
      throw new ModelError(`${model.path ?? 'model'}: onnxruntime cannot load it: ${(e as Error).message}`);
    }
    const vocab = findVocab(model, sig);
    const enc0 = new Encoder({ backend: 'onnxruntime', fallbackReason: reason, dim: sig.outDim ?? 0, vocab, native: null, ort: { session, ort, sig }, threads, isa });
    if (sig.outDim !== null) return enc0;
    // The output width is not declared: ask the model once.
    const probe = await enc0.#runOrt([[0]]);
    return new Encoder({ backend: 'onnxruntime', fallbackReason: reason, dim: probe.length, vocab, native: null, ort: { session, ort, sig }, threads, isa });
  }

  /** Whether `step` is O(1) per event (native backend, unidirectional model). */
  get incremental(): boolean {
    return this.#native !== null && this.#steppable;
  }

  /**
   * Encodes each history (the model's item indices, oldest first) to a user vector: B × dim,
   * row-major. Row i equals the model run on history i alone, whatever the other rows hold.
   * An empty history gives the model's output for the zero state (native backend; the
   * onnxruntime backend rejects it, since the graph cannot run on zero steps).
   */
  async encode(histories: ReadonlyArray<ArrayLike<number>>): Promise<Float32Array> {
    this.#check();
    const flat = this.#flatten(histories);
    if (this.#native) {
      try {
        return await this.#native.encodeAsync({ ...flat, threads: this.#threads, isa: this.#isa });
      } catch (e) {
        throw fromNative(e);
      }
    }
    return this.#encodeOrt(histories);
  }

  /** Synchronous encode for worker threads and batch code (native backend only). */
  encodeSync(histories: ReadonlyArray<ArrayLike<number>>): Float32Array {
    this.#check();
    if (!this.#native) throw new InvalidArgumentError('encodeSync needs the native backend; use encode()');
    const flat = this.#flatten(histories);
    try {
      return this.#native.encode({ ...flat, threads: this.#threads, isa: this.#isa });
    } catch (e) {
      throw fromNative(e);
    }
  }

  /** A state for `batch` users who have seen nothing yet. */
  initialState(batch: number): EncoderState {
    this.#check();
    if (typeof batch !== 'number' || !Number.isSafeInteger(batch) || batch < 0) {
      throw new InvalidArgumentError(`batch must be a non-negative integer, got ${describe(batch)}`);
    }
    if (this.#native && this.#steppable) {
      if (batch * this.#stateSize > 2 ** 31) throw new OutOfRangeError(`a state for ${batch} users is too large`);
      return new EncoderState(this, batch, new Float32Array(batch * this.#stateSize), null);
    }
    return new EncoderState(this, batch, null, Array.from({ length: batch }, () => []));
  }

  /** Floats of recurrent state per user (0 when `step` re-encodes histories). */
  get stateSize(): number {
    return this.#native && this.#steppable ? this.#stateSize : 0;
  }

  /** A state from `state.toFloat32Array()` of an encoder of the same model. */
  restoreState(data: Float32Array): EncoderState {
    this.#check();
    if (!(data instanceof Float32Array)) throw new InvalidArgumentError(`data must be a Float32Array, got ${describe(data)}`);
    if (!this.#native || !this.#steppable) throw new InvalidArgumentError('restoreState needs the native backend and a unidirectional model');
    if (data.length % this.#stateSize !== 0) {
      throw new InvalidArgumentError(`data.length (${data.length}) is not a multiple of the state size (${this.#stateSize})`);
    }
    for (let i = 0; i < data.length; i++) {
      if (!Number.isFinite(data[i])) throw new InvalidArgumentError(`data[${i}] is not finite`);
    }
    return new EncoderState(this, data.length / this.#stateSize, data.slice(), null);
  }

  /**
   * Advances each user's state by one event (itemIds[i] for user i) and returns their new
   * vectors (batch × dim). O(1) in the history length on the native backend for unidirectional
   * models; otherwise the kept history is re-encoded. The state changes only on success.
   */
  step(state: EncoderState, itemIds: ArrayLike<number>): Promise<Float32Array> {
    let ids: Int32Array;
    try {
      this.#check();
      ids = this.#stepIds(state, itemIds);
    } catch (e) {
      return Promise.reject(e);
    }
    // Steps on one state are applied in call order, each after the previous one has landed.
    state.inflight++;
    const run = state.tail
      .then(
        () => this.#step(state, ids),
        () => this.#step(state, ids),
      )
      .finally(() => {
        state.inflight--;
      });
    state.tail = run.catch(() => undefined);
    return run;
  }

  async #step(state: EncoderState, ids: Int32Array): Promise<Float32Array> {
    if (state.data && this.#native) {
      try {
        return await this.#native.stepAsync({ state: state.data, ids, isa: this.#isa });
      } catch (e) {
        throw fromNative(e);
      }
    }
    const hist = state.histories as number[][];
    const next = hist.map((h, i) => [...h, ids[i]]);
    const out = await this.encode(next);
    for (let i = 0; i < hist.length; i++) hist[i].push(ids[i]);
    return out;
  }

  /** Synchronous step (native backend, unidirectional model). */
  stepSync(state: EncoderState, itemIds: ArrayLike<number>): Float32Array {
    this.#check();
    const ids = this.#stepIds(state, itemIds);
    if (!state.data || !this.#native) throw new InvalidArgumentError('stepSync needs the native backend and a unidirectional model');
    if (state.inflight > 0) throw new InvalidArgumentError('an asynchronous step on this state has not finished yet');
    try {
      return this.#native.step({ state: state.data, ids, isa: this.#isa });
    } catch (e) {
      throw fromNative(e);
    }
  }

  /** The users' current vectors, without advancing the state. */
  async output(state: EncoderState): Promise<Float32Array> {
    this.#check();
    this.#ownState(state);
    if (state.data && this.#native) return this.#native.output({ state: state.data, isa: this.#isa });
    return this.encode(state.histories as number[][]);
  }

  /** Releases the model; later calls throw ClosedError. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#ort?.session.release();
  }

  #check(): void {
    if (this.#closed) throw new ClosedError('encoder');
  }

  #ownState(state: EncoderState): void {
    if (!(state instanceof EncoderState) || state.owner !== this) {
      throw new InvalidArgumentError('state was not made by this encoder (use encoder.initialState)');
    }
  }

  #stepIds(state: EncoderState, itemIds: ArrayLike<number>): Int32Array {
    this.#ownState(state);
    const a = arrayLike('itemIds', itemIds);
    if (a.length !== state.batch) {
      throw new InvalidArgumentError(`itemIds has ${a.length} entries for a state of ${state.batch} users`);
    }
    const ids = new Int32Array(a.length);
    for (let i = 0; i < a.length; i++) ids[i] = this.#id(a[i], `itemIds[${i}]`);
    return ids;
  }

  #id(v: unknown, name: string): number {
    if (typeof v !== 'number' || !Number.isInteger(v)) {
      throw new InvalidArgumentError(`${name} must be an integer item index, got ${describe(v)}`);
    }
    const max = this.vocab ?? 0x7fffffff;
    if (v < 0 || v >= max) {
      throw new OutOfRangeError(`${name} = ${v} is not an item index of the model (0..${max - 1})`);
    }
    return v;
  }

  #flatten(histories: ReadonlyArray<ArrayLike<number>>): { ids: Int32Array; offsets: Int32Array } {
    if (!Array.isArray(histories)) {
      throw new InvalidArgumentError(`histories must be an array of item-index arrays, got ${describe(histories)}`);
    }
    const offsets = new Int32Array(histories.length + 1);
    let total = 0;
    for (let u = 0; u < histories.length; u++) {
      total += arrayLike(`histories[${u}]`, histories[u]).length;
      if (total > 0x7fffffff) throw new OutOfRangeError('histories hold more than 2^31-1 events in total');
      offsets[u + 1] = total;
    }
    const ids = new Int32Array(total);
    for (let u = 0; u < histories.length; u++) {
      const h = histories[u];
      for (let p = 0; p < h.length; p++) ids[offsets[u] + p] = this.#id(h[p], `histories[${u}][${p}]`);
    }
    return { ids, offsets };
  }

  async #encodeOrt(histories: ReadonlyArray<ArrayLike<number>>): Promise<Float32Array> {
    const out = new Float32Array(histories.length * this.dim);
    // Rows of equal length run together: no padding, so each equals the row run alone.
    const byLength = new Map<number, number[]>();
    histories.forEach((h, u) => {
      if (h.length === 0) {
        throw new InvalidArgumentError(`histories[${u}] is empty: the onnxruntime backend cannot run a model on zero events`);
      }
      const rows = byLength.get(h.length) ?? [];
      rows.push(u);
      byLength.set(h.length, rows);
    });
    for (const rows of byLength.values()) {
      const res = await this.#runOrt(rows.map((u) => Array.from(histories[u])));
      rows.forEach((u, i) => out.set(res.subarray(i * this.dim, (i + 1) * this.dim), u * this.dim));
    }
    return out;
  }

  /** Runs the model on rows of one length; returns rows × dim. */
  async #runOrt(rows: number[][]): Promise<Float32Array> {
    const { session, ort, sig } = this.#ort as { session: OrtSession; ort: OrtModule; sig: Signature };
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
    if (!y || y.type !== 'float32' || y.dims.length !== 2 || Number(y.dims[0]) !== n) {
      throw new ModelError(`the model's output ${sig.output} is not [batch, dim] float32 (got [${y?.dims.join(', ')}] ${y?.type})`);
    }
    return y.data as Float32Array;
  }
}

const REQUESTED = 'the onnxruntime backend was requested';

/**
 * onnxruntime-node is an optional peer dependency: imported only when a model needs it, with a
 * PeerMissingError that says why and what to install when it is absent.
 */
async function loadOnnxruntime(where: string, reason: string): Promise<OrtModule> {
  let mod: OrtModule & { default?: OrtModule };
  try {
    mod = (await import('onnxruntime-node')) as OrtModule & { default?: OrtModule };
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code !== 'ERR_MODULE_NOT_FOUND' && code !== 'MODULE_NOT_FOUND') {
      throw new ModelError(`${where}: onnxruntime-node is installed but failed to load: ${(e as Error).message}`);
    }
    const why = reason === REQUESTED ? "options.backend is 'onnxruntime'" : `the native encoder cannot run this model: ${reason}`;
    throw new PeerMissingError(
      'onnxruntime-node',
      `${where}: ${why}; the onnxruntime backend needs the optional peer dependency onnxruntime-node, ` +
        'which is not installed: npm install onnxruntime-node',
      { cause: e },
    );
  }
  // CommonJS package: its API hangs off the default export when imported from ESM.
  return mod.default ?? mod;
}

/** The row count of the table the ids index, when the ids feed a Gather on an initializer. */
function findVocab(model: LoadedModel, sig: Signature): number | null {
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
