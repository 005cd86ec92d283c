/**
 * Live sessions: per user, the encoder's recurrent state (or, for models that cannot step, the
 * history itself) and the recent items for exclusion. Bounded by count (least recently used go
 * first) and idle time; snapshotted to a msgpackr file so that a restart loses nothing.
 */
import { readFile } from 'node:fs/promises';

import { pack, unpack } from 'msgpackr';

import { writeAtomically } from '../atomic_file.js';
import type { ItemId } from '../catalogue/catalogue.js';
import { FileError } from '../errors.js';
import { fileError, regularFile } from '../file_check.js';

export interface Session {
  /** Recurrent state (1 × stateSize) for incremental models, else null. */
  state: Float32Array | null;
  /** The user's events as catalogue ids, oldest first: the last `historyLimit` of them. */
  history: ItemId[];
  lastSeen: number;
}

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

export class SessionStore {
  readonly maxSessions: number;
  readonly ttlMs: number;
  readonly historyLimit: number;
  #map = new Map<ItemId, Session>();
  #tails = new Map<ItemId, Promise<unknown>>();

  constructor(o: SessionOptions = {}) {
    this.maxSessions = o.maxSessions ?? 1_000_000;
    this.ttlMs = o.ttlMs ?? 24 * 3600 * 1000;
    this.historyLimit = o.historyLimit ?? 200;
  }

  get size(): number {
    return this.#map.size;
  }

  /** The session, if live; marks it most recently used. */
  get(user: ItemId, now = Date.now()): Session | undefined {
    const s = this.#map.get(user);
    if (!s) return undefined;
    if (now - s.lastSeen > this.ttlMs) {
      this.#map.delete(user);
      return undefined;
    }
    this.#map.delete(user);
    this.#map.set(user, s);
    return s;
  }

  set(user: ItemId, s: Session): void {
    this.#map.delete(user);
    this.#map.set(user, s);
    while (this.#map.size > this.maxSessions) {
      const oldest = this.#map.keys().next().value as ItemId;
      this.#map.delete(oldest);
    }
  }

  delete(user: ItemId): boolean {
    return this.#map.delete(user);
  }

  /** Runs fn after every earlier call for the same user has settled (per-user ordering). */
  serial<T>(user: ItemId, fn: () => Promise<T>): Promise<T> {
    const prev = this.#tails.get(user) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const tail = next.then(
      () => undefined,
      () => undefined,
    );
    this.#tails.set(user, tail);
    void tail.then(() => {
      if (this.#tails.get(user) === tail) this.#tails.delete(user);
    });
    return next;
  }

  /** Drops idle sessions; returns how many. */
  sweep(now = Date.now()): number {
    let n = 0;
    for (const [u, s] of this.#map) {
      if (now - s.lastSeen > this.ttlMs) {
        this.#map.delete(u);
        n++;
      }
    }
    return n;
  }

  /** Writes every live session to `path` atomically. `model` identifies the encoder. */
  async snapshot(path: string, model: string, stateSize: number): Promise<void> {
    const entries = [...this.#map].map(([u, s]) => [u, s.state ? new Uint8Array(s.state.buffer, s.state.byteOffset, s.state.byteLength) : null, s.history, s.lastSeen]);
    const bytes = pack({ format: FORMAT, version: VERSION, model, stateSize, entries });
    try {
      await writeAtomically(path, async (fh) => {
        await fh.write(bytes);
      });
    } catch (e) {
      throw fileError(path, e);
    }
  }

  /**
   * Loads a snapshot written for the same model. Returns why nothing was restored (no file yet,
   * another model, a corrupt file), or null when sessions were restored. A path that exists but
   * cannot be read, or is not a regular file (a directory, a FIFO), rejects with FileError.
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
    if (d.format !== FORMAT || d.version !== VERSION || !Array.isArray(d.entries)) return `${path} is not a session snapshot`;
    // A state only means something to the model that made it: another model starts afresh.
    if (d.model !== model || d.stateSize !== stateSize) return `snapshot ${path} was made by another model; sessions start empty`;
    // Every entry is checked before any is kept: a corrupt file restores nothing.
    const sessions: Array<[ItemId, Session]> = [];
    for (const [i, e] of (d.entries as unknown[]).entries()) {
      const why = entryProblem(e, stateSize);
      if (why) return `snapshot ${path} is corrupt: entry ${i} ${why}`;
      const [u, bytes, history, lastSeen] = e as [ItemId, Uint8Array | null, ItemId[], number];
      let state: Float32Array | null = null;
      if (bytes) {
        state = new Float32Array(stateSize);
        new Uint8Array(state.buffer).set(bytes);
      }
      sessions.push([u, { state, history: history.slice(-this.historyLimit), lastSeen }]);
    }
    for (const [u, s] of sessions) this.set(u, s);
    return null;
  }
}

/** What is wrong with one snapshot entry ([user, state bytes | null, history, lastSeen]), or null. */
function entryProblem(e: unknown, stateSize: number): string | null {
  if (!Array.isArray(e) || e.length !== 4) return 'is not [user, state, history, lastSeen]';
  const [u, bytes, history, lastSeen] = e as unknown[];
  if (!(typeof u === 'string' || (typeof u === 'number' && Number.isSafeInteger(u)))) return 'has a user that is not a string or a safe integer';
  if (bytes !== null && !(bytes instanceof Uint8Array)) return 'has a state that is not bytes';
  if (bytes instanceof Uint8Array && bytes.byteLength !== stateSize * 4) return `has a state of ${bytes.byteLength} bytes (expected ${stateSize * 4})`;
  if (bytes === null && stateSize > 0) return 'has no state';
  if (!Array.isArray(history) || !history.every((id) => typeof id === 'string' || (typeof id === 'number' && Number.isSafeInteger(id)))) {
    return 'has a history that is not an array of ids';
  }
  if (typeof lastSeen !== 'number' || !Number.isFinite(lastSeen)) return 'has a lastSeen that is not a number';
  return null;
}
