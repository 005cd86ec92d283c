/**
 * `engine.sessions`: live per-user sessions of a ScoringEngine, kept in a SessionStore (this
 * process's memory, or Redis shared by several engine processes).
 *
 * - push(user, events): one atomic store update per call: the encoder steps the stored state over
 *   the new events on a worker (O(1) per event) and the recent items window grows. With a shared
 *   store, an update that raced another process's is recomputed from the newer record, so no
 *   event is lost.
 * - recommend(user, options): the stored state joins the engine's batches like any request (every
 *   recommend option, maxQueue, stats), answered from the state without re-encoding.
 * - The model rule: a record written with another model (after engine.update({ model })) is
 *   re-encoded from its recent items (at most historyLimit; items the new model does not know are
 *   left out) the next time it is used, and saved that way by the next push.
 *
 * Calls for one user in this process run in call order; Redis failures reject with
 * SessionStoreError (stateless recommend is not affected).
 */
import type { ItemId } from '../catalogue/catalogue.js';
import { InvalidArgumentError, SessionStoreError } from '../errors.js';
import { LIMITS } from '../limits.js';
import { PerUserQueue } from '../sessions/per_user_queue.js';
import type { SessionRecord, SessionStore } from '../sessions/store.js';
import { arrayLike, optionsObject } from '../validate.js';
import type { ScoringEngine } from './engine.js';
import type { Generation } from './generation.js';
import { type Exclude, checkUser, selectionOptions, withCallerStack } from './request.js';
import type { Recommendation } from './types.js';

/** sessions.recommend's options: those of engine.recommend but the history. */
export interface SessionRecommendOptions {
  k: number;
  exclude?: Exclude;
  filter?: { allOf?: number; anyOf?: number; noneOf?: number };
  signal?: AbortSignal;
}

export class EngineSessions {
  readonly #engine: ScoringEngine;
  readonly #store: SessionStore;
  readonly #queue = new PerUserQueue();
  #pending = new Set<Promise<unknown>>();

  /** @internal */
  constructor(engine: ScoringEngine, store: SessionStore) {
    this.#engine = engine;
    this.#store = store;
  }

  /** The store sessions live in. */
  get store(): SessionStore {
    return this.#store;
  }

  /** Live sessions in the store. */
  size(): Promise<number> {
    return this.#storeCall(() => this.#store.size());
  }

  /** Appends events (catalogue ids, oldest first) to a user's session, advancing its state. */
  push(user: ItemId, itemIds: ReadonlyArray<ItemId>): Promise<void> {
    const stack = new Error().stack ?? '';
    try {
      this.#engine._checkOpen();
      checkUser(user);
      const events = Array.from(arrayLike('itemIds', itemIds, 'an array of ids', LIMITS.maxHistory) as ArrayLike<ItemId>);
      this.#engine._gen().ids.toModelIds(events, 'itemIds'); // checked now; mapped again for the version that runs the step
      return this.#serial(user, stack, async () => {
        await this.#storeCall(() =>
          this.#store.update(user, async (cur) => {
            const gen = this.#engine._gen();
            const history = [...(cur?.history ?? []), ...events].slice(-this.#store.historyLimit);
            if (!gen.encoder.stateSize) return { state: null, history, model: gen.modelKey };
            let state = await this.#currentState(gen, cur);
            if (events.length > 0) state = await this.#step(gen, state, gen.ids.toModelIds(events, 'itemIds'));
            return { state, history, model: gen.modelKey };
          }),
        );
        this.#engine._counters().sessionEvents(events.length);
      });
    } catch (e) {
      return Promise.reject(withCallerStack(e as Error, stack));
    }
  }

  /**
   * Recommendations from the user's current state (after every push this process made before
   * this call). An unknown or expired user is a new session: the model's output for no events.
   * Takes every option engine.recommend does but the history.
   */
  recommend(user: ItemId, options: SessionRecommendOptions): Promise<Recommendation> {
    const stack = new Error().stack ?? '';
    try {
      this.#engine._checkOpen();
      checkUser(user);
      const opts = optionsObject('options', options);
      const sel = selectionOptions('options', opts, this.#engine._gen().catalogue.hasAttributes);
      return this.#serial(user, stack, async () => {
        const cur = await this.#storeCall(() => this.#store.get(user));
        const gen = this.#engine._gen();
        const history = (cur?.history ?? []).filter((id) => gen.catalogue.has(id));
        const exclRows = sel.exclude === 'history' ? gen.ids.rowsOf(history, 'history') : sel.exclude === 'none' ? [] : gen.ids.rowsOf(sel.exclude, 'options.exclude');
        let state: Float32Array | undefined;
        let modelIds: number[] = [];
        if (gen.encoder.stateSize) {
          state = await this.#currentState(gen, cur);
        } else {
          modelIds = this.#known(gen, cur?.history ?? []);
          if (modelIds.length === 0 && gen.encoder.backend === 'onnxruntime') {
            throw new InvalidArgumentError(`user ${JSON.stringify(user)} has no events: this model runs on onnxruntime, which cannot encode zero events`);
          }
        }
        const answer = await this.#engine._submit(gen, { modelIds, state, exclRows, ...sel.pending }, stack);
        this.#engine._counters().sessionAnswer();
        return answer;
      });
    } catch (e) {
      return Promise.reject(withCallerStack(e as Error, stack));
    }
  }

  /** Forgets a user's session; resolves to whether there was one. */
  delete(user: ItemId): Promise<boolean> {
    try {
      this.#engine._checkOpen();
      checkUser(user);
    } catch (e) {
      return Promise.reject(e);
    }
    return this.#serial(user, new Error().stack ?? '', () => this.#storeCall(() => this.#store.delete(user)));
  }

  /** @internal Waits for running session calls (close). */
  async _drain(): Promise<void> {
    while (this.#pending.size > 0) await Promise.allSettled([...this.#pending]);
  }

  /** @internal An in-process store's live sessions (stats), else null. */
  _localSize(): number | null {
    const s = this.#store as { count?: unknown };
    return typeof s.count === 'number' ? s.count : null;
  }

  /** @internal Writes the in-process store's snapshot (close). */
  async _snapshot(path: string, gen: Generation): Promise<void> {
    const s = this.#store as { snapshot?: (path: string, model: string, stateSize: number) => Promise<void> };
    if (typeof s.snapshot === 'function') await s.snapshot(path, gen.modelHash, gen.encoder.stateSize);
  }

  /** The record's state if this version's model made it; else its recent items replayed from the model's initial state. */
  async #currentState(gen: Generation, cur: SessionRecord | undefined): Promise<Float32Array> {
    if (cur?.state && cur.model === gen.modelKey && cur.state.length === gen.encoder.stateSize) return cur.state;
    return this.#step(gen, null, this.#known(gen, cur?.history ?? []));
  }

  /** The model's item indices of the ids it knows (a record may hold items of an older catalogue or model). */
  #known(gen: Generation, ids: ReadonlyArray<ItemId>): number[] {
    const out: number[] = [];
    for (const id of ids) {
      if (!gen.catalogue.has(id)) continue;
      try {
        out.push(...gen.ids.toModelIds([id], 'history'));
      } catch {
        // not in this model's vocabulary: left out
      }
    }
    return out;
  }

  #step(gen: Generation, state: Float32Array | null, events: number[]): Promise<Float32Array> {
    return gen.steps.step(state, events);
  }

  /** A store call whose failure is counted (SessionStoreError passes through as it is). */
  async #storeCall<T>(f: () => Promise<T>): Promise<T> {
    try {
      return await f();
    } catch (e) {
      if (e instanceof SessionStoreError) this.#engine._counters().storeError();
      throw e;
    }
  }

  /** Runs fn after every earlier call for the same user has settled (per-user ordering), tracked for close. */
  #serial<T>(user: ItemId, stack: string, fn: () => Promise<T>): Promise<T> {
    const q = this.#queue.run(user, fn).catch((e: unknown) => {
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
