/**
 * The session store interface: where a ScoringEngine keeps each user's live session (the
 * encoder's recurrent state and the recent items used for exclusion). Stores are asynchronous so
 * that a shared one (RedisSessionStore) can serve several engine processes; MemorySessionStore
 * keeps them in this process.
 */
import type { ItemId } from '../catalogue/catalogue.js';

/** One user's session as a store keeps it. */
export interface SessionRecord {
  /** The encoder's recurrent state (stateSize floats) for models that step, else null. */
  state: Float32Array | null;
  /** The user's recent events as catalogue ids, oldest first: at most the store's historyLimit. */
  history: ItemId[];
  /** Incremented by every write of this user's record (1 after the first). */
  version: number;
  /** When it was last written (ms since the epoch). */
  lastSeen: number;
  /**
   * The model that produced `state` (ScoringEngine: a fingerprint of the model file and its state
   * size). A record of another model is stale: the engine re-encodes it from `history`.
   */
  model: string;
}

/** What an update writes: the record's contents (the store sets version and lastSeen). */
export type SessionContents = Pick<SessionRecord, 'state' | 'history' | 'model'>;

/**
 * An update's step: from the current record (undefined when there is none, or it expired) to the
 * new contents, or null to delete the record. It may run more than once (optimistic
 * concurrency: when another writer changed the record meanwhile, the store calls it again on the
 * newer record), so it must depend on nothing but its argument.
 */
export type SessionUpdate = (current: SessionRecord | undefined) => Promise<SessionContents | null> | SessionContents | null;

export interface SessionStore {
  /** 'memory', 'redis', or another store's name (logs and stats). */
  readonly kind: string;
  /** Events kept per session (the history window; at least 200 by default). */
  readonly historyLimit: number;
  /** Sessions idle longer than this are gone (ms). */
  readonly ttlMs: number;
  /** The user's record, or undefined (none, or expired). */
  get(user: ItemId): Promise<SessionRecord | undefined>;
  /**
   * Atomic read-modify-write of one user's record: no concurrent update of the same user, from
   * this process or another sharing the store, is lost. Resolves to the record written (null when
   * fn deleted it). Rejects with SessionStoreError when the store fails; nothing is written then.
   */
  update(user: ItemId, fn: SessionUpdate): Promise<SessionRecord | null>;
  /** Forgets the user; resolves to whether there was a record. */
  delete(user: ItemId): Promise<boolean>;
  /** Live sessions: exact for the memory store; the number of keys under the prefix for Redis. */
  size(): Promise<number>;
  /** Releases the store's resources (connections, timers). Idempotent. */
  close(): Promise<void>;
}
