/** `engine.sessions`: live per-user sessions of a ScoringEngine. */
import type { ItemId } from '../catalogue/catalogue.js';
import { InvalidArgumentError, reviveError } from '../errors.js';
import { LIMITS } from '../limits.js';
import { arrayLike, kOption, optionsObject } from '../validate.js';
import type { ScoringEngine } from './engine.js';
import { type Exclude, checkUser, excludeOption, withCallerStack } from './request.js';
import type { Session, SessionStore } from '../sessions/memory_store.js';
import type { Recommendation } from './types.js';
import type { WorkerTask } from './protocol.js';

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
      const catIds = Array.from(arrayLike('itemIds', itemIds, 'an array of ids', LIMITS.maxHistory) as ArrayLike<ItemId>);
      const ids = this.#engine._toModelIds(catIds, 'itemIds');
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
  recommend(user: ItemId, options: { k: number; exclude?: Exclude }): Promise<Recommendation> {
    const stack = new Error().stack ?? '';
    try {
      this.#engine._checkOpen();
      checkUser(user);
      const opts = optionsObject('options', options);
      const k = kOption('options.k', opts.k);
      const exclude = excludeOption('options.exclude', opts.exclude);
      const fixed = exclude === 'history' || exclude === 'none' ? null : this.#engine._rowsOf(exclude, 'options.exclude');
      return this.#track(
        this.#store.serial(user, async () => {
          const enc = this.#engine.encoder;
          const s = this.#store.get(user);
          const history = s?.history ?? [];
          let excl: number[];
          if (exclude === 'history') excl = this.#engine._rowsOf(history.filter((id) => this.#engine.catalogue.has(id)), 'history');
          else excl = fixed ?? [];
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
