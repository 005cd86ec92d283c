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

import { Catalogue, type ItemId } from '../catalogue/catalogue.js';
import { defaultThreads } from '../native/cpu_quota.js';
import { Encoder } from '../encoder/encoder.js';
import { AbortError, ClosedError, InvalidArgumentError, ModelError, WorkerCrashError } from '../errors.js';
import { fileError } from '../file_check.js';
import { LIMITS } from '../limits.js';
import { packageRoot, resolveLevel } from '../native/addon.js';
import { arrayLike, describe, kOption } from '../validate.js';
import { Counters } from './counters.js';
import { EngineSessions } from './engine_sessions.js';
import { Batcher, type Pending } from './batcher.js';
import { IdMap } from './ids.js';
import { type EngineSettings, type Metrics, engineSettings, makeMetrics, vocabularyOf } from './options.js';
import { excludeOption, filterKey, filterOption, withCallerStack } from './request.js';
import { SessionStore } from '../sessions/memory_store.js';
import type { EngineOptions, EngineStats, Logger, Recommendation, RecommendRequest } from './types.js';
import type { WorkerInit, WorkerResult, WorkerTask } from './protocol.js';

export { EngineSessions } from './engine_sessions.js';
export type { EngineOptions, EngineStats, Logger, Recommendation, RecommendRequest } from './types.js';

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
  readonly #ids: IdMap;
  readonly #ownsCatalogue: boolean;
  readonly #logger?: Logger;
  readonly #counters: Counters;
  readonly #store: SessionStore;
  readonly #snapshot?: string;
  readonly #modelHash: string;
  readonly #batcher: Batcher;
  #closed = false;

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
    this.#ids = new IdMap(p.catalogue, p.toModel);
    this.#ownsCatalogue = p.ownsCatalogue;
    this.#logger = p.opts.logger;
    this.#counters = new Counters(p.metrics);
    this.#store = p.store;
    this.#snapshot = p.settings.sessions?.snapshot;
    this.#modelHash = p.modelHash;
    this.sessions = new EngineSessions(this, p.store);
    this.#batcher = new Batcher({
      ...p.settings,
      counters: this.#counters,
      logger: this.#logger,
      catalogueSize: p.catalogue.size,
      run: (task) => this._run(task),
      items: (res, u, k) => this._items(res, u, k),
    });
  }

  static async create(opts: EngineOptions): Promise<ScoringEngine> {
    const settings = engineSettings(opts, defaultThreads());
    const isa = resolveLevel('options.isa', opts.isa);
    let catalogue: Catalogue;
    let ownsCatalogue = false;
    if (typeof opts.catalogue === 'string') {
      catalogue = await Catalogue.open(opts.catalogue, { logger: opts.logger });
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
      return this.#batcher.submit(p);
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
    return this.#counters.stats({ queued: this.#batcher.queued, inFlight: this.#batcher.inFlight, sessions: this.#store.size });
  }

  /**
   * Stops accepting calls (they reject with ClosedError), answers everything already accepted,
   * writes the session snapshot when one is configured, and stops the workers.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.sessions._drain();
    await this.#batcher.whenIdle();
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

}
