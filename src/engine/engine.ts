/**
 * ScoringEngine: what a service embeds to answer "what next for this user". A Piscina pool of
 * workers, each holding the encoder and mapping the same catalogue; concurrent requests are
 * grouped into one native encode + one native top-k per batch (dynamic batching); live sessions
 * advance their LSTM state event by event.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

import { Piscina } from 'piscina';

import { type AttributeFilter, Catalogue, type ItemId } from '../catalogue.js';
import { Encoder } from '../encoder.js';
import {
  AbortError,
  ClosedError,
  InvalidArgumentError,
  ModelError,
  OutOfRangeError,
  QueueFullError,
  WorkerCrashError,
  reviveError,
} from '../errors.js';
import { packageRoot } from '../native.js';
import { arrayLike, describe, optionalPositiveInt, positiveInt } from '../validate.js';
import { type Session, type SessionOptions, SessionStore } from './sessions.js';
import type { WorkerInit, WorkerResult, WorkerTask } from './worker.js';

/** A pino-compatible logger (only these methods are used). */
export interface Logger {
  debug?(obj: object, msg?: string): void;
  info?(obj: object, msg?: string): void;
  warn?(obj: object, msg?: string): void;
  error?(obj: object, msg?: string): void;
}

export interface EngineOptions {
  /** The ONNX session encoder: a path or its bytes. */
  model: string | Uint8Array;
  /** A catalogue file (memory-mapped in each worker) or a catalogue (shared, not copied). */
  catalogue: string | Catalogue;
  /** Worker threads (default os.availableParallelism()). */
  threads?: number;
  /** Most requests in one batch (default 64). */
  maxBatch?: number;
  /**
   * How long a request may wait for others to join its batch while a worker is free (ms,
   * default 0: requests that arrive in the same event-loop turn are batched, and everything that
   * queues up while the workers are busy).
   */
  maxDelayMs?: number;
  /** Requests waiting beyond this are refused with QueueFullError (default 10,000). */
  maxQueue?: number;
  /**
   * Maps catalogue ids to the model's item indices when they differ: a Map, a record, or an
   * array whose position i holds the id of model item i. Without it numeric ids are the indices.
   */
  vocabulary?: ReadonlyMap<ItemId, number> | Readonly<Record<string, number>> | ReadonlyArray<ItemId>;
  sessions?: SessionOptions & {
    /** Snapshot file: restored on create (when written for the same model), written on close. */
    snapshot?: string;
  };
  /** Encoder backend in the workers (default 'auto'). */
  backend?: 'auto' | 'native' | 'onnxruntime';
  logger?: Logger;
  /** A prom-client Registry to register the engine's metrics in (never the global one). */
  registry?: unknown;
  /** @internal test hooks (a task that kills its worker). */
  testHooks?: boolean;
}

export interface RecommendRequest {
  /** The user's recent items (catalogue ids), oldest first. */
  history: ReadonlyArray<ItemId>;
  k: number;
  /** 'history' (default): not the history's items; 'none'; or these ids. */
  exclude?: 'history' | 'none' | ReadonlyArray<ItemId>;
  /** Attribute filter (needs a catalogue with attributes). */
  filter?: AttributeFilter;
  signal?: AbortSignal;
}

export interface Recommendation {
  items: Array<{ id: ItemId; score: number }>;
}

export interface EngineStats {
  queued: number;
  inFlight: number;
  completed: number;
  failed: number;
  batches: number;
  meanBatchSize: number;
  maxBatchSize: number;
  latencyMs: { p50: number; p99: number };
  sessions: number;
}

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

interface Metrics {
  requests: { inc(labels: object, v?: number): void };
  latency: { observe(v: number): void };
  batch: { observe(v: number): void };
  queue: { set(v: number): void };
}

const LATENCY_WINDOW = 2048;

function workerFile(): string {
  return pathToFileURL(join(packageRoot(), 'dist', 'engine-worker.js')).href;
}

function withCallerStack(e: Error, stack: string): Error {
  const callerFrames = stack.split('\n').slice(1).join('\n');
  e.stack = `${e.name}: ${e.message}\n${callerFrames}`;
  return e;
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
  readonly #toModel: (id: ItemId) => number | undefined;
  readonly #ownsCatalogue: boolean;
  readonly #logger?: Logger;
  readonly #metrics: Metrics | null;
  readonly #store: SessionStore;
  readonly #snapshot?: string;
  readonly #modelHash: string;
  #queue: Pending[] = [];
  #inFlight = 0;
  #timer: NodeJS.Timeout | null = null;
  #closed = false;
  #idle: Array<() => void> = [];
  #stats = { completed: 0, failed: 0, batches: 0, batched: 0, maxBatch: 0 };
  #latencies: number[] = [];

  private constructor(p: {
    catalogue: Catalogue;
    encoder: Encoder;
    pool: Piscina;
    threads: number;
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
    this.#threads = p.threads;
    this.#maxBatch = p.opts.maxBatch ?? 64;
    this.#maxDelayMs = p.opts.maxDelayMs ?? 0;
    this.#maxQueue = p.opts.maxQueue ?? 10_000;
    this.#toModel = p.toModel;
    this.#ownsCatalogue = p.ownsCatalogue;
    this.#logger = p.opts.logger;
    this.#metrics = p.metrics;
    this.#store = p.store;
    this.#snapshot = p.opts.sessions?.snapshot;
    this.#modelHash = p.modelHash;
    this.sessions = new EngineSessions(this, p.store);
  }

  static async create(opts: EngineOptions): Promise<ScoringEngine> {
    if (typeof opts !== 'object' || opts === null) throw new InvalidArgumentError(`options must be an object, got ${describe(opts)}`);
    const threads = optionalPositiveInt('options.threads', opts.threads, availableParallelism());
    optionalPositiveInt('options.maxBatch', opts.maxBatch, 64);
    optionalPositiveInt('options.maxQueue', opts.maxQueue, 10_000);
    if (opts.maxDelayMs !== undefined && !(typeof opts.maxDelayMs === 'number' && opts.maxDelayMs >= 0 && Number.isFinite(opts.maxDelayMs))) {
      throw new InvalidArgumentError(`options.maxDelayMs must be a non-negative number, got ${describe(opts.maxDelayMs)}`);
    }
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
      const modelBytes = typeof opts.model === 'string' ? readFileSync(opts.model) : opts.model;
      const modelHash = createHash('sha256').update(modelBytes).digest('hex');
      encoder = await Encoder.load(opts.model, { backend: opts.backend ?? 'auto', threads: 1 });
      if (encoder.dim !== catalogue.dim) {
        throw new ModelError(`the model's vectors have ${encoder.dim} dimensions, the catalogue's ${catalogue.dim}`);
      }
      return await ScoringEngine.#start(opts, threads, catalogue, ownsCatalogue, encoder, modelHash);
    } catch (e) {
      await encoder?.close();
      if (ownsCatalogue) await catalogue.close();
      throw e;
    }
  }

  static async #start(
    opts: EngineOptions,
    threads: number,
    catalogue: Catalogue,
    ownsCatalogue: boolean,
    encoder: Encoder,
    modelHash: string,
  ): Promise<ScoringEngine> {
    const toModel = vocabularyOf(opts.vocabulary, encoder.vocab);
    const store = new SessionStore(opts.sessions);
    if (opts.sessions?.snapshot) {
      const why = await store.restore(opts.sessions.snapshot, modelHash, encoder.stateSize);
      if (why) opts.logger?.info?.({ snapshot: opts.sessions.snapshot }, why);
      else opts.logger?.info?.({ snapshot: opts.sessions.snapshot, sessions: store.size }, 'sessions restored');
    }
    const init: WorkerInit = { model: opts.model, catalogue: catalogue._share(), backend: opts.backend, testHooks: opts.testHooks };
    const pool = new Piscina({
      filename: workerFile(),
      minThreads: threads,
      maxThreads: threads,
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
    return new ScoringEngine({ catalogue, encoder, pool, threads, opts, toModel, ownsCatalogue, metrics, store, modelHash });
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
        this.#metrics?.queue.set(this.#queue.length);
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
    const lat = [...this.#latencies].sort((a, b) => a - b);
    const q = (f: number): number => (lat.length ? lat[Math.min(lat.length - 1, Math.floor(f * lat.length))] : 0);
    return {
      queued: this.#queue.length,
      inFlight: this.#inFlight,
      completed: this.#stats.completed,
      failed: this.#stats.failed,
      batches: this.#stats.batches,
      meanBatchSize: this.#stats.batches ? this.#stats.batched / this.#stats.batches : 0,
      maxBatchSize: this.#stats.maxBatch,
      latencyMs: { p50: q(0.5), p99: q(0.99) },
      sessions: this.#store.size,
    };
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
    if (this.#snapshot) {
      await this.#store.snapshot(this.#snapshot, this.#modelHash, this.encoder.stateSize);
      this.#logger?.info?.({ snapshot: this.#snapshot, sessions: this.#store.size }, 'sessions saved');
    }
    await this.#pool.destroy();
    await this.encoder.close();
    if (this.#ownsCatalogue) await this.catalogue.close();
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
    return this.#mapIds(ids, name, (id, i) => {
      const m = this.#toModel(id);
      if (m === undefined) throw new OutOfRangeError(`${name}[${i}] = ${describe(id)} has no item index in the model`);
      return m;
    });
  }

  /** @internal The catalogue row of each id. */
  _rowsOf(ids: ReadonlyArray<ItemId>, name: string): number[] {
    return this.#mapIds(ids, name, (id) => this.catalogue.row(id));
  }

  #mapIds(ids: ReadonlyArray<ItemId>, name: string, f: (id: ItemId, i: number) => number): number[] {
    const a = arrayLike(name, ids);
    const out = new Array<number>(a.length);
    for (let i = 0; i < a.length; i++) {
      const id = a[i] as ItemId;
      if (!this.catalogue.has(id)) throw new OutOfRangeError(`${name}[${i}] = ${describe(id)} is not in the catalogue`);
      out[i] = f(id, i);
    }
    return out;
  }

  /** @internal Maps a worker's top-k rows to ids (k entries from row `u`). */
  _items(res: { k: number; rows: Int32Array; scores: Float32Array }, u: number, k: number): Recommendation {
    const items: Array<{ id: ItemId; score: number }> = [];
    for (let i = 0; i < Math.min(k, res.k); i++) {
      const row = res.rows[u * res.k + i];
      if (row < 0) break;
      items.push({ id: this.catalogue.id(row), score: res.scores[u * res.k + i] });
    }
    return { items };
  }

  /** @internal */
  _checkOpen(): void {
    if (this.#closed) throw new ClosedError('engine');
  }

  #prepare(req: RecommendRequest, stack: string): Pending {
    if (typeof req !== 'object' || req === null) throw new InvalidArgumentError(`request must be an object, got ${describe(req)}`);
    const k = positiveInt('request.k', req.k);
    const modelIds = this._toModelIds(req.history, 'request.history');
    if (modelIds.length === 0 && this.encoder.backend === 'onnxruntime') {
      throw new InvalidArgumentError('request.history is empty: this model runs on onnxruntime, which cannot encode zero events');
    }
    const exclude = req.exclude ?? 'history';
    let exclRows: number[];
    if (exclude === 'history') exclRows = this._rowsOf(req.history, 'request.history');
    else if (exclude === 'none') exclRows = [];
    else if (Array.isArray(exclude)) exclRows = this._rowsOf(exclude, 'request.exclude');
    else throw new InvalidArgumentError(`request.exclude must be 'history', 'none' or an array of ids, got ${describe(exclude)}`);
    if (req.filter !== undefined && (typeof req.filter !== 'object' || req.filter === null)) {
      throw new InvalidArgumentError(`request.filter must be an object, got ${describe(req.filter)}`);
    }
    if (req.filter && !this.catalogue.hasAttributes) throw new InvalidArgumentError('request.filter needs a catalogue built with attributes');
    if (req.signal !== undefined && !(req.signal instanceof AbortSignal)) {
      throw new InvalidArgumentError(`request.signal must be an AbortSignal, got ${describe(req.signal)}`);
    }
    const key = req.filter ? JSON.stringify([req.filter.allOf ?? 0, req.filter.anyOf ?? 0, req.filter.noneOf ?? 0]) : '';
    const noop = (): void => undefined;
    return { modelIds, exclRows, k, key, filter: req.filter, resolve: noop, reject: noop, stack, t0: performance.now(), done: false, signal: req.signal };
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
    const ms = performance.now() - p.t0;
    if (error) {
      this.#stats.failed++;
      this.#metrics?.requests.inc({ outcome: 'error' });
      p.reject(error);
    } else {
      this.#stats.completed++;
      this.#latencies.push(ms);
      if (this.#latencies.length > LATENCY_WINDOW) this.#latencies.splice(0, this.#latencies.length - LATENCY_WINDOW);
      this.#metrics?.requests.inc({ outcome: 'ok' });
      this.#metrics?.latency.observe(ms / 1000);
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
      this.#metrics?.queue.set(this.#queue.length);
      void this.#runBatch(batch);
    }
  }

  async #runBatch(batch: Pending[]): Promise<void> {
    this.#inFlight++;
    this.#stats.batches++;
    this.#stats.batched += batch.length;
    this.#stats.maxBatch = Math.max(this.#stats.maxBatch, batch.length);
    this.#metrics?.batch.observe(batch.length);
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

/** Per-user live sessions of an engine. */
export class EngineSessions {
  readonly #engine: ScoringEngine;
  readonly #store: SessionStore;
  #pending = new Set<Promise<unknown>>();

  /** @internal */
  constructor(engine: ScoringEngine, store: SessionStore) {
    this.#engine = engine;
    this.#store = store;
  }

  get size(): number {
    return this.#store.size;
  }

  /** Appends events (catalogue ids, oldest first) to a user's session, advancing its state. */
  push(user: ItemId, itemIds: ReadonlyArray<ItemId>): Promise<void> {
    const stack = new Error().stack ?? '';
    try {
      this.#engine._checkOpen();
      checkUser(user);
      const ids = this.#engine._toModelIds(itemIds, 'itemIds');
      const catIds = Array.from(arrayLike('itemIds', itemIds) as ArrayLike<ItemId>);
      return this.#track(
        this.#store.serial(user, async () => {
          const enc = this.#engine.encoder;
          const s: Session = this.#store.get(user) ?? { state: enc.stateSize ? new Float32Array(enc.stateSize) : null, history: [], lastSeen: 0 };
          let state = s.state;
          if (state && ids.length > 0) {
            const res = await this.#engine._run({ op: 'step', state: state as Float32Array, events: ids });
            if (!res.ok) throw reviveError(res.error);
            state = (res as { state: Float32Array }).state;
          }
          const history = [...s.history, ...catIds].slice(-this.#store.historyLimit);
          this.#store.set(user, { state, history, lastSeen: Date.now() });
        }),
        stack,
      );
    } catch (e) {
      return Promise.reject(withCallerStack(e as Error, stack));
    }
  }

  /**
   * Recommendations from the user's current state (after every push made before this call).
   * An unknown or expired user is a new session: the model's output for no events.
   */
  recommend(user: ItemId, opts: { k: number; exclude?: 'history' | 'none' | ReadonlyArray<ItemId> }): Promise<Recommendation> {
    const stack = new Error().stack ?? '';
    try {
      this.#engine._checkOpen();
      checkUser(user);
      const k = positiveInt('options.k', opts?.k);
      const exclude = opts.exclude ?? 'history';
      return this.#track(
        this.#store.serial(user, async () => {
          const enc = this.#engine.encoder;
          const s = this.#store.get(user);
          const history = s?.history ?? [];
          let excl: number[];
          if (exclude === 'history') excl = this.#engine._rowsOf(history.filter((id) => this.#engine.catalogue.has(id)), 'history');
          else if (exclude === 'none') excl = [];
          else excl = this.#engine._rowsOf(exclude, 'options.exclude');
          const state = s?.state ?? (enc.stateSize ? new Float32Array(enc.stateSize) : null);
          if (!state && history.length === 0 && enc.backend === 'onnxruntime') {
            throw new InvalidArgumentError(`user ${JSON.stringify(user)} has no events: this model runs on onnxruntime, which cannot encode zero events`);
          }
          const task: WorkerTask = {
            op: 'recommendState',
            state,
            histories: state ? null : [this.#engine._toModelIds(history, 'history')],
            k: Math.min(k, this.#engine.catalogue.size),
            exclOffsets: Int32Array.of(0, excl.length),
            exclRows: Int32Array.from(excl),
          };
          const res = await this.#engine._run(task);
          if (!res.ok) throw reviveError(res.error);
          return this.#engine._items(res as { k: number; rows: Int32Array; scores: Float32Array }, 0, k);
        }),
        stack,
      );
    } catch (e) {
      return Promise.reject(withCallerStack(e as Error, stack));
    }
  }

  /** Forgets a user's session. */
  delete(user: ItemId): boolean {
    return this.#store.delete(user);
  }

  /** @internal Waits for running session calls (close). */
  async _drain(): Promise<void> {
    while (this.#pending.size > 0) await Promise.allSettled([...this.#pending]);
  }

  #track<T>(p: Promise<T>, stack: string): Promise<T> {
    const q = p.catch((e: unknown) => {
      throw withCallerStack(e instanceof Error ? e : new Error(String(e)), stack);
    });
    this.#pending.add(q);
    const done = (): void => {
      this.#pending.delete(q);
    };
    q.then(done, done);
    return q;
  }
}

function checkUser(user: unknown): void {
  if (!(typeof user === 'string' || (typeof user === 'number' && Number.isSafeInteger(user)))) {
    throw new InvalidArgumentError(`userId must be a string or a safe integer, got ${describe(user)}`);
  }
}

function vocabularyOf(v: EngineOptions['vocabulary'], vocab: number | null): (id: ItemId) => number | undefined {
  const inRange = (m: number | undefined): number | undefined =>
    m !== undefined && Number.isInteger(m) && m >= 0 && (vocab === null || m < vocab) ? m : undefined;
  if (v === undefined) return (id) => (typeof id === 'number' ? inRange(id) : undefined);
  if (Array.isArray(v)) {
    const m = new Map<ItemId, number>();
    v.forEach((id, i) => m.set(id, i));
    return (id) => inRange(m.get(id));
  }
  if (v instanceof Map) return (id) => inRange(v.get(id));
  if (typeof v === 'object' && v !== null) {
    const rec = v as Readonly<Record<string, number>>;
    return (id) => inRange(Object.prototype.hasOwnProperty.call(rec, String(id)) ? rec[String(id)] : undefined);
  }
  throw new InvalidArgumentError(`options.vocabulary must be a Map, a record or an array, got ${describe(v)}`);
}

async function makeMetrics(registry: unknown): Promise<Metrics> {
  type PromModule = typeof import('prom-client');
  let prom: PromModule;
  try {
    const mod = (await import('prom-client')) as PromModule & { default?: PromModule };
    prom = mod.default ?? mod;
  } catch {
    throw new InvalidArgumentError('options.registry needs the prom-client package installed');
  }
  if (!(registry instanceof prom.Registry)) throw new InvalidArgumentError('options.registry must be a prom-client Registry');
  const registers = [registry];
  return {
    requests: new prom.Counter({ name: 'recscore_requests_total', help: 'Recommend requests answered', labelNames: ['outcome'], registers }),
    latency: new prom.Histogram({ name: 'recscore_request_seconds', help: 'Recommend latency', buckets: [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2], registers }),
    batch: new prom.Histogram({ name: 'recscore_batch_size', help: 'Requests per native batch', buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256], registers }),
    queue: new prom.Gauge({ name: 'recscore_queue_depth', help: 'Requests waiting for a worker', registers }),
  };
}
