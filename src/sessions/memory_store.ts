/**
 * Live sessions: per user, the encoder's recurrent state (or, for models that cannot step, the
 * history itself) and the recent items for exclusion. Bounded by count (least recently used go
 * first) and idle time; snapshotted to a msgpackr file so that a restart loses nothing.
 *
 * MemorySessionStore is the SessionStore (store.ts) kept in this process; it reads the
 * snapshots of the synchronous store that came before it (format version 1).
 */
import { readFile } from 'node:fs/promises';

import { pack, unpack } from 'msgpackr';

import { writeAtomically } from '../atomic_file.js';
import type { ItemId } from '../catalogue/catalogue.js';
import { ClosedError, FileError, InvalidArgumentError } from '../errors.js';
import { fileError, regularFile } from '../file_check.js';
import { describe, optionalPositiveInt } from '../validate.js';
import { PerUserQueue } from './per_user_queue.js';
import { checkContents, checkUser, ttlOption } from './record_codec.js';
import type { SessionRecord, SessionStore as AsyncSessionStore, SessionUpdate } from './store.js';

export interface SessionOptions {
  /** Most sessions kept; the least recently used beyond it are dropped (default 1,000,000). */
  maxSessions?: number;
  /** Sessions idle longer than this are dropped (ms; default 24 h). */
  ttlMs?: number;
  /** Events kept per session for exclusion and for models that re-encode (default 200). */
  historyLimit?: number;
}

const FORMAT = 'recscore-sessions';
const VERSION = 1;
/** MemorySessionStore's snapshots: entries [user, state, history, lastSeen, version, model]. */
const VERSION_2 = 2;

/**
 * What is wrong with one snapshot entry ([user, state bytes | null, history, lastSeen], and
 * version and model in a version-2 file), or null. `stateSize` null: any state (another model's).
 */
function entryProblem(e: unknown, stateSize: number | null, length = 4): string | null {
  if (!Array.isArray(e) || e.length !== length) return length === 4 ? 'is not [user, state, history, lastSeen]' : 'is not [user, state, history, lastSeen, version, model]';
  const [u, bytes, history, lastSeen] = e as unknown[];
  if (!(typeof u === 'string' || (typeof u === 'number' && Number.isSafeInteger(u)))) return 'has a user that is not a string or a safe integer';
  if (bytes !== null && !(bytes instanceof Uint8Array)) return 'has a state that is not bytes';
  if (stateSize === null) {
    if (bytes instanceof Uint8Array && bytes.byteLength % 4 !== 0) return `has a state of ${bytes.byteLength} bytes (not float32s)`;
  } else {
    if (bytes instanceof Uint8Array && bytes.byteLength !== stateSize * 4) return `has a state of ${bytes.byteLength} bytes (expected ${stateSize * 4})`;
    if (bytes === null && stateSize > 0) return 'has no state';
  }
  if (!Array.isArray(history) || !history.every((id) => typeof id === 'string' || (typeof id === 'number' && Number.isSafeInteger(id)))) {
    return 'has a history that is not an array of ids';
  }
  if (typeof lastSeen !== 'number' || !Number.isFinite(lastSeen)) return 'has a lastSeen that is not a number';
  if (length === 6) {
    if (!(typeof e[4] === 'number' && Number.isSafeInteger(e[4]) && e[4] >= 1)) return 'has a version that is not a positive integer';
    if (typeof e[5] !== 'string') return 'has a model that is not a string';
  }
  return null;
}

function copyRecord(r: SessionRecord): SessionRecord {
  return { state: r.state ? r.state.slice() : null, history: r.history.slice(), version: r.version, lastSeen: r.lastSeen, model: r.model };
}

/**
 * The asynchronous session store kept in this process: at most `maxSessions` records (the least
 * recently used beyond it are dropped), each gone `ttlMs` after its last write. Updates of one
 * user run one after another, so concurrent updates lose nothing. Records are copied in and out:
 * what a caller holds never changes the store.
 */
export class MemorySessionStore implements AsyncSessionStore {
  readonly kind = 'memory';
  readonly maxSessions: number;
  readonly ttlMs: number;
  readonly historyLimit: number;
  #map = new Map<ItemId, SessionRecord>();
  #queue = new PerUserQueue();
  #closed = false;

  constructor(o: SessionOptions = {}) {
    if (o === null || typeof o !== 'object') throw new InvalidArgumentError(`options must be an object, got ${describe(o)}`);
    this.maxSessions = optionalPositiveInt('options.maxSessions', o.maxSessions, 1_000_000);
    this.ttlMs = ttlOption('options.ttlMs', o.ttlMs, 24 * 3600 * 1000);
    this.historyLimit = optionalPositiveInt('options.historyLimit', o.historyLimit, 200);
  }

  /** Records held now (expired ones not yet dropped included): a synchronous count for stats(). */
  get count(): number {
    return this.#map.size;
  }

  async get(user: ItemId): Promise<SessionRecord | undefined> {
    this.#check(user);
    const r = this.#live(user);
    return r && copyRecord(r);
  }

  update(user: ItemId, fn: SessionUpdate): Promise<SessionRecord | null> {
    try {
      this.#check(user);
      if (typeof fn !== 'function') throw new InvalidArgumentError(`fn must be a function, got ${describe(fn)}`);
    } catch (e) {
      return Promise.reject(e);
    }
    return this.#queue.run(user, async () => {
      if (this.#closed) throw new ClosedError('MemorySessionStore');
      const current = this.#live(user);
      const contents = await fn(current && copyRecord(current));
      if (this.#closed) throw new ClosedError('MemorySessionStore');
      if (contents === null) {
        this.#map.delete(user);
        return null;
      }
      const c = checkContents(contents, this.historyLimit);
      const record: SessionRecord = {
        state: c.state ? c.state.slice() : null,
        history: c.history.slice(),
        model: c.model,
        version: (current?.version ?? 0) + 1,
        lastSeen: Date.now(),
      };
      this.#set(user, record);
      return copyRecord(record);
    });
  }

  /** Forgets the user, after the updates of that user already asked for. */
  delete(user: ItemId): Promise<boolean> {
    try {
      this.#check(user);
    } catch (e) {
      return Promise.reject(e);
    }
    return this.#queue.run(user, async () => this.#live(user) !== undefined && this.#map.delete(user));
  }

  /** Live sessions (idle ones are dropped first). */
  async size(): Promise<number> {
    if (this.#closed) throw new ClosedError('MemorySessionStore');
    this.sweep();
    return this.#map.size;
  }

  /** Drops idle sessions; returns how many. */
  sweep(now = Date.now()): number {
    let n = 0;
    for (const [u, r] of this.#map) {
      if (now - r.lastSeen > this.ttlMs) {
        this.#map.delete(u);
        n++;
      }
    }
    return n;
  }

  async close(): Promise<void> {
    this.#closed = true;
  }

  /**
   * Writes every live session to `path` atomically (a version-2 snapshot: each record with its
   * version and model). `model` and `stateSize` identify the encoder, as restore() checks them.
   */
  async snapshot(path: string, model: string, stateSize: number): Promise<void> {
    this.sweep();
    const entries = [...this.#map].map(([u, r]) => [u, r.state ? new Uint8Array(r.state.buffer, r.state.byteOffset, r.state.byteLength) : null, r.history, r.lastSeen, r.version, r.model]);
    const bytes = pack({ format: FORMAT, version: VERSION_2, model, stateSize, entries });
    try {
      await writeAtomically(path, async (fh) => {
        await fh.write(bytes);
      });
    } catch (e) {
      throw fileError(path, e);
    }
  }

  /**
   * Loads a snapshot written for the same model and state size (this class's, or SessionStore's:
   * its records get version 1 and `model`). Returns why nothing was restored (no file yet,
   * another model, a corrupt file), or null when sessions were restored. A path that exists but
   * cannot be read, or is not a regular file, rejects with FileError. A record of another model
   * than the file's (a stale one) keeps its own state and model.
   */
  async restore(path: string, model: string, stateSize: number): Promise<string | null> {
    let raw: Buffer;
    try {
      await regularFile(path);
      raw = await readFile(path);
    } catch (e) {
      const err = fileError(path, e);
      if (err instanceof FileError && err.syscallCode === 'ENOENT') return `no snapshot at ${path} (ENOENT)`;
      throw err;
    }
    let d: { format?: string; version?: number; model?: string; stateSize?: number; entries?: unknown[] };
    try {
      d = unpack(raw) as typeof d;
    } catch (e) {
      return `snapshot ${path} is corrupt: ${(e as Error).message}`;
    }
    if (d === null || typeof d !== 'object' || d.format !== FORMAT || (d.version !== VERSION && d.version !== VERSION_2) || !Array.isArray(d.entries)) {
      return `${path} is not a session snapshot`;
    }
    if (d.model !== model || d.stateSize !== stateSize) return `snapshot ${path} was made by another model; sessions start empty`;
    const length = d.version === VERSION ? 4 : 6;
    const records: Array<[ItemId, SessionRecord]> = [];
    for (const [i, e] of (d.entries as unknown[]).entries()) {
      const own = length === 4 || (Array.isArray(e) && e[5] === model);
      const why = entryProblem(e, own ? stateSize : null, length);
      if (why) return `snapshot ${path} is corrupt: entry ${i} ${why}`;
      const [u, bytes, history, lastSeen, version, m] = e as [ItemId, Uint8Array | null, ItemId[], number, number?, string?];
      let state: Float32Array | null = null;
      if (bytes) {
        state = new Float32Array(bytes.byteLength / 4);
        new Uint8Array(state.buffer).set(bytes);
      }
      records.push([u, { state, history: history.slice(-this.historyLimit), lastSeen, version: version ?? 1, model: m ?? model }]);
    }
    for (const [u, r] of records) this.#set(u, r);
    return null;
  }

  #check(user: unknown): void {
    if (this.#closed) throw new ClosedError('MemorySessionStore');
    checkUser(user);
  }

  /** The user's record if live (marked most recently used), else undefined (an idle one is dropped). */
  #live(user: ItemId): SessionRecord | undefined {
    const r = this.#map.get(user);
    if (!r) return undefined;
    this.#map.delete(user);
    if (Date.now() - r.lastSeen > this.ttlMs) return undefined;
    this.#map.set(user, r);
    return r;
  }

  #set(user: ItemId, r: SessionRecord): void {
    this.#map.delete(user);
    this.#map.set(user, r);
    while (this.#map.size > this.maxSessions) this.#map.delete(this.#map.keys().next().value as ItemId);
  }
}
