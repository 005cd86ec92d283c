/**
 * ScoringEngine: what a service embeds to answer "what next for this user". A Piscina pool of
 * workers, each holding the encoder and mapping the same catalogue; concurrent requests are
 * grouped into one native encode + one native top-k per batch (dynamic batching); live sessions
 * advance their LSTM state event by event.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

import { Piscina } from 'piscina';

import { type AttributeFilter, Catalogue, type ItemId } from '../catalogue/catalogue.js';
import { defaultThreads } from '../native/cpu_quota.js';
import { Encoder } from '../encoder/encoder.js';
import { AbortError, ClosedError, InvalidArgumentError, ModelError, QueueFullError, WorkerCrashError, reviveError } from '../errors.js';
import { fileError } from '../file_check.js';
import { LIMITS } from '../limits.js';
import { packageRoot, resolveLevel } from '../native/addon.js';
import { arrayLike, describe, kOption } from '../validate.js';
import { Counters } from './counters.js';
import { EngineSessions } from './engine_sessions.js';
import { IdMap } from './ids.js';
import { type EngineSettings, type Metrics, engineSettings, makeMetrics, vocabularyOf } from './options.js';
import { excludeOption, filterKey, filterOption, withCallerStack } from './request.js';
import { SessionStore } from '../sessions/memory_store.js';
import type { EngineOptions, EngineStats, Logger, Recommendation, RecommendRequest } from './types.js';
import type { WorkerInit, WorkerResult, WorkerTask } from './worker.js';

export { EngineSessions } from './engine_sessions.js';
export type { EngineOptions, EngineStats, Logger, Recommendation, RecommendRequest } from './types.js';

interface Pending {
  modelIds: number[];
  exclRows: number[];
  k: number;
  key: string;
  filter?: AttributeFilter;
  resolve: (r: Recommendation) => void;
  reject: (e: Error) => void;
  stack: string;
  t0: number;
  done: boolean;
  signal?: AbortSignal;
  onAbort?: () => void;
}

function workerFile(): string {
  return pathToFileURL(join(packageRoot(), 'dist', 'engine-worker.js')).href;
}

export class ScoringEngine {
  readonly catalogue: Catalogue;
  readonly encoder: Encoder;
  /** Live sessions: push events, recommend from the current state. */
  readonly sessions: EngineSessions;
  readonly #pool: Piscina;
  readonly #threads: number;
  readonly #maxBatch: number;
  readonly #maxDelayMs: number;
  readonly #maxQueue: number;
  readonly #ids: IdMap;
  readonly #ownsCatalogue: boolean;
  readonly #logger?: Logger;
  readonly #counters: Counters;
  readonly #store: SessionStore;
  readonly #snapshot?: string;
  readonly #modelHash: string;
  #queue: Pending[] = [];
  #inFlight = 0;
  #timer: NodeJS.Timeout | null = null;
  #closed = false;
  #idle: Array<() => void> = [];

  private constructor(p: {
    catalogue: Catalogue;
    encoder: Encoder;
    pool: Piscina;
    settings: EngineSettings;
    opts: EngineOptions;
    toModel: (id: ItemId) => number | undefined;
    ownsCatalogue: boolean;
    metrics: Metrics | null;
    store: SessionStore;
    modelHash: string;
  }) {
    this.catalogue = p.catalogue;
    this.encoder = p.encoder;
    this.#pool = p.pool;
    this.#threads = p.settings.threads;
    this.#maxBatch = p.settings.maxBatch;
    this.#maxDelayMs = p.settings.maxDelayMs;
    this.#maxQueue = p.settings.maxQueue;
    this.#ids = new IdMap(p.catalogue, p.toModel);
    this.#ownsCatalogue = p.ownsCatalogue;
    this.#logger = p.opts.logger;
    this.#counters = new Counters(p.metrics);
    this.#store = p.store;
    this.#snapshot = p.settings.sessions?.snapshot;
    this.#modelHash = p.modelHash;
    this.sessions = new EngineSessions(this, p.store);
  }

  static async create(opts: EngineOptions): Promise<ScoringEngine> {
    const settings = engineSettings(opts, defaultThreads());
    const isa = resolveLevel('options.isa', opts.isa);
    let catalogue: Catalogue;
    let ownsCatalogue = false;
    if (typeof opts.catalogue === 'string') {
      catalogue = await Catalogue.open(opts.catalogue);
      ownsCatalogue = true;
    } else if (opts.catalogue instanceof Catalogue) {
      catalogue = opts.catalogue;
    } else {
      throw new InvalidArgumentError(`options.catalogue must be a path or a Catalogue, got ${describe(opts.catalogue)}`);
    }
    let encoder: Encoder | null = null;
    try {
      // Loaded first: Encoder.load checks that a path is a regular file before anything reads it.
      encoder = await Encoder.load(opts.model, { backend: opts.backend ?? 'auto', threads: 1, isa });
      const modelBytes = typeof opts.model === 'string' ? await readFile(opts.model).catch((e: unknown) => Promise.reject(fileError(opts.model as string, e))) : opts.model;
      const modelHash = createHash('sha256').update(modelBytes).digest('hex');
      if (encoder.dim !== catalogue.dim) {
        throw new ModelError(`the model's vectors have ${encoder.dim} dimensions, the catalogue's ${catalogue.dim}`);
      }
      return await ScoringEngine.#start(opts, settings, catalogue, ownsCatalogue, encoder, modelHash);
    } catch (e) {
      await encoder?.close();
      if (ownsCatalogue) await catalogue.close();
      throw e;
    }
  }

  static async #start(
    opts: EngineOptions,
    settings: EngineSettings,
    catalogue: Catalogue,
    ownsCatalogue: boolean,
    encoder: Encoder,
    modelHash: string,
  ): Promise<ScoringEngine> {
    const toModel = vocabularyOf(opts.vocabulary, encoder.vocab);
    const store = new SessionStore(settings.sessions);
    const snapshot = settings.sessions?.snapshot;
    if (snapshot) {
      const why = await store.restore(snapshot, modelHash, encoder.stateSize);
      if (why) opts.logger?.info?.({ snapshot }, why);
      else opts.logger?.info?.({ snapshot, sessions: store.size }, 'sessions restored');
    }
    const init: WorkerInit = { model: opts.model, catalogue: catalogue._share(), backend: opts.backend, isa: encoder.level, testHooks: opts.testHooks };
    const pool = new Piscina({
      filename: workerFile(),
      minThreads: settings.threads,
      maxThreads: settings.threads,
      idleTimeout: Number.POSITIVE_INFINITY,
      concurrentTasksPerWorker: 1,
      workerData: init,
    });
    let metrics: Metrics | null = null;
    try {
      metrics = opts.registry ? await makeMetrics(opts.registry) : null;
    } catch (e) {
      await pool.destroy();
      throw e;
    }
    return new ScoringEngine({ catalogue, encoder, pool, settings, opts, toModel, ownsCatalogue, metrics, store, modelHash });
  }

  /** Top-k items for one user's history. Batched with concurrent requests. */
  recommend(req: RecommendRequest): Promise<Recommendation> {
    const stack = new Error().stack ?? '';
    try {
      if (this.#closed) throw new ClosedError('engine');
      const p = this.#prepare(req, stack);
      if (req.signal?.aborted) throw new AbortError(undefined, { cause: req.signal.reason });
      if (this.#queue.length >= this.#maxQueue) throw new QueueFullError(this.#maxQueue);
      return new Promise<Recommendation>((resolve, reject) => {
        p.resolve = resolve;
        p.reject = reject;
        if (req.signal) {
          p.onAbort = () => this.#abort(p);
          req.signal.addEventListener('abort', p.onAbort, { once: true });
        }
        this.#queue.push(p);
        this.#counters.queued(this.#queue.length);
        this.#schedule();
      });
    } catch (e) {
      return Promise.reject(withCallerStack(e as Error, stack));
    }
  }

  /** Several requests at once (they are batched like concurrent calls). */
  recommendBatch(requests: ReadonlyArray<RecommendRequest>): Promise<Recommendation[]> {
    if (!Array.isArray(requests)) return Promise.reject(new InvalidArgumentError(`requests must be an array, got ${describe(requests)}`));
    return Promise.all(requests.map((r) => this.recommend(r)));
  }

  stats(): EngineStats {
    return this.#counters.stats({ queued: this.#queue.length, inFlight: this.#inFlight, sessions: this.#store.size });
  }

  /**
   * Stops accepting calls (they reject with ClosedError), answers everything already accepted,
   * writes the session snapshot when one is configured, and stops the workers.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.sessions._drain();
    if (this.#queue.length > 0 || this.#inFlight > 0) {
      await new Promise<void>((resolve) => this.#idle.push(resolve));
    }
    try {
      if (this.#snapshot) {
        await this.#store.snapshot(this.#snapshot, this.#modelHash, this.encoder.stateSize);
        this.#logger?.info?.({ snapshot: this.#snapshot, sessions: this.#store.size }, 'sessions saved');
      }
    } finally {
      // A snapshot that cannot be written still stops the workers and frees the files.
      await this.#pool.destroy();
      await this.encoder.close();
      if (this.#ownsCatalogue) await this.catalogue.close();
    }
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** @internal Runs one task on the pool, turning worker deaths into WorkerCrashError. */
  async _run(task: WorkerTask, transfer?: ArrayBuffer[]): Promise<WorkerResult> {
    try {
      return (await this.#pool.run(task, transfer ? { transferList: transfer } : undefined)) as WorkerResult;
    } catch (e) {
      throw new WorkerCrashError(`a worker stopped while answering: ${(e as Error).message}`, { cause: e });
    }
  }

  /** @internal The pool's worker threads (tests terminate one to simulate a crash). */
  _threads(): ReadonlyArray<{ terminate(): Promise<number> }> {
    return this.#pool.threads as unknown as ReadonlyArray<{ terminate(): Promise<number> }>;
  }

  /** @internal The model's item index of each id (catalogue ids; errors name the position). */
  _toModelIds(ids: ReadonlyArray<ItemId>, name: string): number[] {
    return this.#ids.toModelIds(ids, name);
  }

  /** @internal The catalogue row of each id. */
  _rowsOf(ids: ReadonlyArray<ItemId>, name: string): number[] {
    return this.#ids.rowsOf(ids, name);
  }

  /** @internal Maps a worker's top-k rows to ids (k entries from row `u`). */
  _items(res: { k: number; rows: Int32Array; scores: Float32Array }, u: number, k: number): Recommendation {
    return this.#ids.items(res, u, k);
  }

  /** @internal */
  _checkOpen(): void {
    if (this.#closed) throw new ClosedError('engine');
  }

  #prepare(req: RecommendRequest, stack: string): Pending {
    if (typeof req !== 'object' || req === null || Array.isArray(req)) throw new InvalidArgumentError(`request must be an object, got ${describe(req)}`);
    const k = kOption('request.k', req.k);
    const history = arrayLike('request.history', req.history, 'an array of ids', LIMITS.maxHistory) as ReadonlyArray<ItemId>;
    const modelIds = this._toModelIds(history, 'request.history');
    if (modelIds.length === 0 && this.encoder.backend === 'onnxruntime') {
      throw new InvalidArgumentError('request.history is empty: this model runs on onnxruntime, which cannot encode zero events');
    }
    const exclude = excludeOption('request.exclude', req.exclude);
    let exclRows: number[];
    if (exclude === 'history') exclRows = this._rowsOf(history, 'request.history');
    else if (exclude === 'none') exclRows = [];
    else exclRows = this._rowsOf(exclude, 'request.exclude');
    const filter = filterOption('request.filter', req.filter);
    if (filter && !this.catalogue.hasAttributes) throw new InvalidArgumentError('request.filter needs a catalogue built with attributes');
    if (req.signal !== undefined && !(req.signal instanceof AbortSignal)) {
      throw new InvalidArgumentError(`request.signal must be an AbortSignal, got ${describe(req.signal)}`);
    }
    const noop = (): void => undefined;
    return { modelIds, exclRows, k, key: filterKey(filter), filter, resolve: noop, reject: noop, stack, t0: performance.now(), done: false, signal: req.signal };
  }

  #abort(p: Pending): void {
    if (p.done) return;
    const i = this.#queue.indexOf(p);
    if (i >= 0) this.#queue.splice(i, 1);
    this.#settle(p, null, withCallerStack(new AbortError(undefined, { cause: p.signal?.reason }), p.stack));
    this.#maybeIdle();
  }

  #settle(p: Pending, value: Recommendation | null, error: Error | null): void {
    if (p.done) return;
    p.done = true;
    if (p.signal && p.onAbort) p.signal.removeEventListener('abort', p.onAbort);
    if (error) {
      this.#counters.failed();
      p.reject(error);
    } else {
      this.#counters.completed(performance.now() - p.t0);
      p.resolve(value as Recommendation);
    }
  }

  #schedule(): void {
    if (this.#timer || this.#queue.length === 0 || this.#inFlight >= this.#threads) return;
    const wait = Math.max(0, this.#maxDelayMs - (performance.now() - this.#queue[0].t0));
    const fire = (): void => {
      this.#timer = null;
      this.#dispatch();
    };
    // Even with no delay, wait for the rest of this event-loop turn: requests made together
    // (a loop of recommend calls, recommendBatch) then share one batch.
    this.#timer = wait > 0 && this.#queue.length < this.#maxBatch ? setTimeout(fire, wait) : (setImmediate(fire) as unknown as NodeJS.Timeout);
  }

  #dispatch(): void {
    while (this.#queue.length > 0 && this.#inFlight < this.#threads) {
      const key = this.#queue[0].key;
      const batch: Pending[] = [];
      const rest: Pending[] = [];
      for (const p of this.#queue) {
        if (batch.length < this.#maxBatch && p.key === key) batch.push(p);
        else rest.push(p);
      }
      this.#queue = rest;
      this.#counters.queued(this.#queue.length);
      void this.#runBatch(batch);
    }
  }

  async #runBatch(batch: Pending[]): Promise<void> {
    this.#inFlight++;
    this.#counters.batch(batch.length);
    this.#logger?.debug?.({ size: batch.length, queued: this.#queue.length }, 'batch');
    const k = Math.min(this.catalogue.size, Math.max(...batch.map((p) => p.k)));
    const offsets = new Int32Array(batch.length + 1);
    batch.forEach((p, i) => (offsets[i + 1] = offsets[i] + p.exclRows.length));
    const rows = Int32Array.from(batch.flatMap((p) => p.exclRows));
    const task: WorkerTask = {
      op: 'recommend',
      histories: batch.map((p) => p.modelIds),
      k,
      exclOffsets: offsets,
      exclRows: rows,
      filter: batch[0].filter,
    };
    try {
      const res = await this._run(task);
      if (!res.ok && batch.length > 1) {
        // One request's problem must not fail the others: answer them one by one.
        await Promise.all(batch.map((p) => this.#runOne(p)));
      } else if (!res.ok) {
        for (const p of batch) this.#settle(p, null, withCallerStack(reviveError(res.error), p.stack));
      } else if ('rows' in res) {
        batch.forEach((p, u) => this.#settle(p, this._items(res, u, p.k), null));
      }
    } catch (e) {
      for (const p of batch) this.#settle(p, null, withCallerStack(e as Error, p.stack));
    } finally {
      this.#inFlight--;
      this.#maybeIdle();
      this.#schedule();
    }
  }

  async #runOne(p: Pending): Promise<void> {
    const task: WorkerTask = {
      op: 'recommend',
      histories: [p.modelIds],
      k: Math.min(this.catalogue.size, p.k),
      exclOffsets: Int32Array.of(0, p.exclRows.length),
      exclRows: Int32Array.from(p.exclRows),
      filter: p.filter,
    };
    try {
      const res = await this._run(task);
      if (!res.ok) this.#settle(p, null, withCallerStack(reviveError(res.error), p.stack));
      else if ('rows' in res) this.#settle(p, this._items(res, 0, p.k), null);
    } catch (e) {
      this.#settle(p, null, withCallerStack(e as Error, p.stack));
    }
  }

  #maybeIdle(): void {
    if (this.#queue.length === 0 && this.#inFlight === 0) {
      for (const f of this.#idle.splice(0)) f();
    }
  }
}
