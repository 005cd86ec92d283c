/**
 * ScoringEngine: what a service embeds to answer "what next for this user". A Piscina pool of
 * workers, each holding the encoder and mapping the same catalogue; concurrent requests (and
 * live sessions' requests) are grouped into one native encode + one native top-k per batch
 * (dynamic batching); sessions advance their LSTM state event by event in a session store (in
 * this process, or shared through Redis). `update()` swaps the catalogue or the model under load;
 * `setAttributes()` changes attribute flags in shared memory.
 */
import type { Catalogue, ItemId } from '../catalogue/catalogue.js';
import { defaultThreads } from '../native/cpu_quota.js';
import type { Encoder } from '../encoder/encoder.js';
import { AbortError, ClosedError, InvalidArgumentError } from '../errors.js';
import { LIMITS } from '../limits.js';
import { resolveLevel } from '../native/addon.js';
import { arrayLike, describe, optionsObject, uint32 } from '../validate.js';
import { Counters } from './counters.js';
import { EngineSessions } from './engine_sessions.js';
import type { Pending } from './batcher.js';
import { Generation } from './generation.js';
import { type EngineSettings, engineSettings, makeMetrics } from './options.js';
import { selectionOptions, withCallerStack } from './request.js';
import { makeSessionStore } from './session_store.js';
import type { SessionStore } from '../sessions/store.js';
import type { EngineOptions, EngineStats, EngineUpdate, Logger, Recommendation, RecommendRequest } from './types.js';
import type { WorkerResult, WorkerTask } from './protocol.js';

export { EngineSessions } from './engine_sessions.js';
export type { EngineOptions, EngineStats, EngineUpdate, Logger, Recommendation, RecommendRequest } from './types.js';

export class ScoringEngine {
  /** Live sessions: push events, recommend from the current state. */
  readonly sessions: EngineSessions;
  #gen: Generation;
  readonly #settings: EngineSettings;
  readonly #opts: EngineOptions;
  readonly #isa: ReturnType<typeof resolveLevel>;
  readonly #logger?: Logger;
  readonly #counters: Counters;
  readonly #store: SessionStore;
  readonly #ownsStore: boolean;
  readonly #snapshot?: string;
  #updating: Promise<unknown> = Promise.resolve();
  #closed = false;

  private constructor(p: {
    gen: Generation;
    settings: EngineSettings;
    opts: EngineOptions;
    isa: ReturnType<typeof resolveLevel>;
    counters: Counters;
    store: SessionStore;
    ownsStore: boolean;
  }) {
    this.#gen = p.gen;
    this.#settings = p.settings;
    this.#opts = p.opts;
    this.#isa = p.isa;
    this.#logger = p.opts.logger;
    this.#counters = p.counters;
    this.#store = p.store;
    this.#ownsStore = p.ownsStore;
    this.#snapshot = p.settings.sessions?.snapshot;
    this.sessions = new EngineSessions(this, p.store);
  }

  static async create(opts: EngineOptions): Promise<ScoringEngine> {
    const t0 = performance.now();
    const settings = engineSettings(opts, defaultThreads());
    const isa = resolveLevel('options.isa', opts.isa);
    const metrics = opts.registry ? await makeMetrics(opts.registry) : null;
    const counters = new Counters(metrics);
    const gen = await Generation.create({ model: opts.model, catalogue: opts.catalogue, name: 'options.catalogue' }, opts, settings, counters, isa);
    try {
      const { store, owned } = await makeSessionStore(opts, settings, gen);
      const engine = new ScoringEngine({ gen, settings, opts, isa, counters, store, ownsStore: owned });
      counters.ready(performance.now() - t0, gen.readyMs);
      opts.logger?.info?.({ threads: settings.threads, readyMs: Math.round(performance.now() - t0), workersMs: Math.round(gen.readyMs) }, 'engine ready');
      return engine;
    } catch (e) {
      await gen.retire();
      throw e;
    }
  }

  /** The catalogue requests are answered from now (update() may swap it). */
  get catalogue(): Catalogue {
    return this.#gen.catalogue;
  }

  /** The model's encoder on the main thread (its metadata; update() may swap it). */
  get encoder(): Encoder {
    return this.#gen.encoder;
  }

  /** Top-k items for one user's history. Batched with concurrent requests. */
  recommend(req: RecommendRequest): Promise<Recommendation> {
    const stack = new Error().stack ?? '';
    try {
      this._checkOpen();
      if (typeof req !== 'object' || req === null || Array.isArray(req)) throw new InvalidArgumentError(`request must be an object, got ${describe(req)}`);
      const gen = this.#gen;
      const history = arrayLike('request.history', req.history, 'an array of ids', LIMITS.maxHistory) as ReadonlyArray<ItemId>;
      const modelIds = gen.ids.toModelIds(history, 'request.history');
      if (modelIds.length === 0 && gen.encoder.backend === 'onnxruntime') {
        throw new InvalidArgumentError('request.history is empty: this model runs on onnxruntime, which cannot encode zero events');
      }
      const sel = selectionOptions('request', req, gen.catalogue.hasAttributes);
      const exclRows = sel.exclude === 'history' ? gen.ids.rowsOf(history, 'request.history') : sel.exclude === 'none' ? [] : gen.ids.rowsOf(sel.exclude, 'request.exclude');
      return this._submit(gen, { modelIds, exclRows, ...sel.pending }, stack);
    } catch (e) {
      return Promise.reject(withCallerStack(e as Error, stack));
    }
  }

  /** Several requests at once (they are batched like concurrent calls). */
  recommendBatch(requests: ReadonlyArray<RecommendRequest>): Promise<Recommendation[]> {
    if (!Array.isArray(requests)) return Promise.reject(new InvalidArgumentError(`requests must be an array, got ${describe(requests)}`));
    return Promise.all(requests.map((r) => this.recommend(r)));
  }

  /**
   * Swaps in a new catalogue and/or model under load: the new files are opened and verified here,
   * once, the workers of the new version start and load them, then new requests go to it while
   * those already accepted finish on the old version, whose workers stop and files close after
   * its last answer (the returned promise resolves then). Updates run one at a time. Live
   * sessions made with another model are re-encoded from their recent items on their next use.
   */
  update(change: EngineUpdate): Promise<{ readyMs: number }> {
    const stack = new Error().stack ?? '';
    const run = async (): Promise<{ readyMs: number }> => {
      this._checkOpen();
      const c = optionsObject('change', change) as EngineUpdate;
      if (c.catalogue === undefined && c.model === undefined) throw new InvalidArgumentError('change must name a catalogue, a model or both');
      if (c.model !== undefined && typeof c.model !== 'string' && !(c.model instanceof Uint8Array)) {
        throw new InvalidArgumentError(`change.model must be a path or a Uint8Array, got ${describe(c.model)}`);
      }
      const old = this.#gen;
      const t0 = performance.now();
      const next = await Generation.create(
        {
          model: c.model ?? old.model,
          catalogue: c.catalogue ?? old.catalogue,
          name: 'change.catalogue',
          reuse: { catalogue: c.catalogue === undefined ? old : undefined, model: c.model === undefined ? old : undefined },
        },
        this.#opts,
        this.#settings,
        this.#counters,
        this.#isa,
      );
      if (this.#closed) {
        await next.retire();
        throw new ClosedError('engine');
      }
      next.adopt(old);
      this.#gen = next;
      this.#counters.swapped();
      this.#logger?.info?.({ catalogue: c.catalogue !== undefined, model: c.model !== undefined, readyMs: Math.round(performance.now() - t0) }, 'engine updated');
      await old.retire();
      return { readyMs: performance.now() - t0 };
    };
    const p = this.#updating.then(run, run);
    this.#updating = p.catch(() => undefined);
    return p.catch((e: unknown) => Promise.reject(withCallerStack(e as Error, stack)));
  }

  /**
   * Sets the attribute flags (uint32 each) of catalogue items, in place, in the memory every
   * worker reads: the next request sees them. `ids` and `bits` have one entry per item (or `bits`
   * is one number for all of them). The catalogue must have been built with attributes.
   */
  setAttributes(ids: ReadonlyArray<ItemId>, bits: number | ReadonlyArray<number>): void {
    this._checkOpen();
    const gen = this.#gen;
    const attrs = gen.catalogue._share().attributes;
    if (!attrs) throw new InvalidArgumentError('setAttributes needs a catalogue built with attributes');
    const rows = gen.ids.rowsOf(ids, 'ids');
    const values = typeof bits === 'number' ? null : arrayLike('bits', bits, 'an array of uint32');
    if (values && values.length !== rows.length) throw new InvalidArgumentError(`bits has ${values.length} entries for ${rows.length} ids`);
    const checked = rows.map((_, i) => uint32(values ? `bits[${i}]` : 'bits', values ? values[i] : bits));
    for (let i = 0; i < rows.length; i++) Atomics.store(attrs, rows[i], checked[i]);
  }

  stats(): EngineStats {
    const b = this.#gen.batcher;
    return this.#counters.stats({ queued: b.queued, inFlight: b.inFlight, sessions: this.#store.kind === 'memory' ? this.sessions._localSize() : null });
  }

  /**
   * Stops accepting calls (they reject with ClosedError), answers everything already accepted
   * (within `timeoutMs`, default unlimited: past it the rest is rejected with ClosedError), writes
   * the session snapshot when one is configured, and stops the workers.
   */
  async close(options?: { timeoutMs?: number }): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const o = options === undefined ? {} : optionsObject('options', options);
    const timeoutMs = o.timeoutMs;
    if (timeoutMs !== undefined && !(typeof timeoutMs === 'number' && timeoutMs >= 0)) {
      throw new InvalidArgumentError(`options.timeoutMs must be a non-negative number, got ${describe(timeoutMs)}`);
    }
    const drained = (async () => {
      await this.#updating;
      await this.sessions._drain();
      await this.#gen.batcher.whenIdle();
    })();
    if (timeoutMs !== undefined) {
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)));
      await Promise.race([drained, late]);
      clearTimeout(timer);
      this.#gen.batcher.rejectQueued(new ClosedError('engine'));
    } else {
      await drained;
    }
    try {
      if (this.#snapshot) await this.sessions._snapshot(this.#snapshot, this.#gen);
    } finally {
      // A snapshot that cannot be written still stops the workers and frees the files.
      await this.#gen.retire();
      if (this.#ownsStore) await this.#store.close();
    }
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** @internal The generation requests go to now. */
  _gen(): Generation {
    return this.#gen;
  }

  /** @internal The engine's counters (sessions count their calls). */
  _counters(): Counters {
    return this.#counters;
  }

  /** @internal Queues a checked request on a generation's batcher (QueueFullError past maxQueue). */
  _submit(gen: Generation, p: Omit<Pending, 'key' | 'resolve' | 'reject' | 'stack' | 't0' | 'done'> & { key: string }, stack: string): Promise<Recommendation> {
    if (p.signal?.aborted) throw new AbortError(undefined, { cause: p.signal.reason });
    const noop = (): void => undefined;
    return gen.batcher.submit({ ...p, resolve: noop, reject: noop, stack, t0: performance.now(), done: false });
  }

  /** @internal Runs one task on the current generation's pool. */
  _run(task: WorkerTask, transfer?: ArrayBuffer[]): Promise<WorkerResult> {
    return this.#gen.run(task, transfer);
  }

  /** @internal The pool's worker threads (tests terminate one to simulate a crash). */
  _threads(): ReadonlyArray<{ terminate(): Promise<number> }> {
    return this.#gen.threads();
  }

  /** @internal */
  _checkOpen(): void {
    if (this.#closed) throw new ClosedError('engine');
  }
}
