/**
 * Encoder: turns users' recent behaviour (sequences of the model's item indices) into user
 * vectors with the session model a team trained and exported to ONNX. Graphs the importer can
 * lower run on the native LSTM/GRU kernels; anything else runs on onnxruntime-node, and the
 * encoder says which backend it uses and why.
 */

import { type FlatHistories, flattenHistories, itemIndex } from './input.js';
import { type OrtBackend, type OrtModule, type OrtSession, encodeOrt, findVocab, runOrt } from './ort.js';
import { EncoderState } from './state.js';
import {
  ClosedError,
  InvalidArgumentError,
  ModelError,
  PeerMissingError,
  UnsupportedModelError,
  fromNative,
} from '../errors.js';
import { LIMITS } from '../limits.js';
import { defaultThreads } from '../native/cpu_quota.js';
import { type Isa, native, resolveLevel } from '../native/addon.js';
import { type EncoderPlan, Unsupported, lower, signature } from '../onnx/lower.js';
import { type LoadedModel, loadModel } from '../onnx/model.js';
import { arrayLike, atMost, batchSize, describe, nonNegativeInt, optionsObject, threadsOption } from '../validate.js';

export { EncoderState } from './state.js';

export type EncoderBackend = 'native' | 'onnxruntime';

export interface EncoderLoadOptions {
  /** 'auto' (default): native when the graph can be lowered, else onnxruntime. */
  backend?: 'auto' | EncoderBackend;
  /** Threads for batched encoding (default: the CPUs this process may use, the cgroup quota in a container). */
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
  readonly #ort: OrtBackend | null;
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
    ort: OrtBackend | null;
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
   * when `backend: 'native'` is asked for a graph the native kernels cannot run. A path that is
   * missing, unreadable or not a regular file (a directory, a FIFO) rejects with FileError.
   */
  static async load(source: string | Uint8Array, options?: EncoderLoadOptions): Promise<Encoder> {
    if (typeof source !== 'string' && !(source instanceof Uint8Array)) {
      throw new InvalidArgumentError(`model must be a path or a Uint8Array, got ${describe(source)}`);
    }
    const opts = optionsObject('options', options);
    const backend = opts.backend ?? 'auto';
    if (!['auto', 'native', 'onnxruntime'].includes(backend)) {
      throw new InvalidArgumentError(`options.backend must be 'auto', 'native' or 'onnxruntime', got ${describe(backend)}`);
    }
    const threads = threadsOption('options.threads', opts.threads, defaultThreads());
    const isa: Isa = resolveLevel('options.isa', opts.isa);
    const foldBytes = opts.foldBytes === undefined ? DEFAULT_FOLD_BYTES : nonNegativeInt('options.foldBytes', opts.foldBytes);
    // FileError (unreadable), FormatError (not valid ONNX protobuf) or ModelError (no graph).
    const model: LoadedModel = loadModel(source);
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
          throw new ModelError(`${model.path ?? 'model bytes'}: declares ${sig.outDim} outputs but computes ${plan.outDim}`);
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
    let created: OrtSession | null = null;
    try {
      const so = { intraOpNumThreads: threads, graphOptimizationLevel: 'all' as const };
      session = typeof source === 'string' ? await ort.InferenceSession.create(source, so) : await ort.InferenceSession.create(source, so);
      created = session;
      // A fallback stands only if onnxruntime runs the model too (some invalid models load).
      if (reason !== REQUESTED) await runOrt({ session, ort, sig }, [[0]], sig.outDim ?? 0);
    } catch (e) {
      await created?.release().catch(() => undefined);
      const ortWhy = (e as Error).message;
      if (reason !== null && reason !== REQUESTED) {
        throw new ModelError(`${model.path ?? 'model bytes'}: the native encoder cannot run this model (${reason}), and neither can onnxruntime: ${ortWhy}`);
      }
      throw new ModelError(`${model.path ?? 'model bytes'}: onnxruntime cannot load it: ${ortWhy}`);
    }
    const vocab = findVocab(model, sig);
    const backendOrt: OrtBackend = { session, ort, sig };
    // The output width, when the model does not declare it: ask the model once.
    const dim = sig.outDim ?? (await runOrt(backendOrt, [[0]], 0)).length;
    return new Encoder({ backend: 'onnxruntime', fallbackReason: reason, dim, vocab, native: null, ort: backendOrt, threads, isa });
  }

  /** The CPU level its kernels run at (the `isa` option resolved). */
  get level(): Isa {
    return this.#isa;
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
    return this.#encodeFlat(flattenHistories(histories, this.vocab));
  }

  /** Synchronous encode for worker threads and batch code (native backend only). */
  encodeSync(histories: ReadonlyArray<ArrayLike<number>>): Float32Array {
    this.#check();
    if (!this.#native) throw new InvalidArgumentError('encodeSync needs the native backend; use encode()');
    const flat = flattenHistories(histories, this.vocab);
    try {
      return this.#native.encode({ ...flat, threads: this.#threads, isa: this.#isa });
    } catch (e) {
      throw fromNative(e);
    }
  }

  async #encodeFlat(flat: FlatHistories): Promise<Float32Array> {
    if (this.#native) {
      try {
        return await this.#native.encodeAsync({ ...flat, threads: this.#threads, isa: this.#isa });
      } catch (e) {
        throw fromNative(e);
      }
    }
    return encodeOrt(this.#ort as OrtBackend, this.dim, flat);
  }

  /** A state for `batch` users who have seen nothing yet (at most LIMITS.maxBatch). */
  initialState(batch: number): EncoderState {
    this.#check();
    if (typeof batch !== 'number' || !Number.isSafeInteger(batch) || batch < 0) {
      throw new InvalidArgumentError(`batch must be a non-negative integer, got ${describe(batch)}`);
    }
    // Refused before anything is allocated, on every backend.
    batchSize('batch', batch);
    batch += 0; // -0 is 0 users
    if (this.#native && this.#steppable) {
      atMost(`batch × stateSize (${this.#stateSize})`, batch * this.#stateSize, LIMITS.maxStateFloats);
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
    atMost('data.length', data.length, Math.min(LIMITS.maxStateFloats, LIMITS.maxBatch * this.#stateSize));
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
    for (const h of hist) atMost("a state's kept history (events)", h.length + 1, LIMITS.maxHistory);
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
    if (state.data && this.#native) {
      try {
        return this.#native.output({ state: state.data, isa: this.#isa });
      } catch (e) {
        throw fromNative(e);
      }
    }
    return this.#encodeFlat(flattenHistories(state.histories, this.vocab));
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
    const a = arrayLike('itemIds', itemIds, 'an array of item indices', LIMITS.maxBatch);
    if (a.length !== state.batch) {
      throw new InvalidArgumentError(`itemIds has ${a.length} entries for a state of ${state.batch} users`);
    }
    const ids = new Int32Array(a.length);
    for (let i = 0; i < a.length; i++) ids[i] = itemIndex(a[i], `itemIds[${i}]`, this.vocab);
    return ids;
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
