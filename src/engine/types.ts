/** The engine's public option, request and result types. */
import type { AttributeFilter, Catalogue, ItemId } from '../catalogue/catalogue.js';
import type { Level } from '../native/addon.js';
import type { SessionOptions } from '../sessions/memory_store.js';
import type { SessionStore } from '../sessions/store.js';

import type { Logger } from '../logger.js';

export type { Logger } from '../logger.js';

export interface EngineOptions {
  /** The ONNX session encoder: a path or its bytes. */
  model: string | Uint8Array;
  /** A catalogue file (memory-mapped in each worker) or a catalogue (shared, not copied). */
  catalogue: string | Catalogue;
  /** Worker threads (default: the CPUs this process may use, the cgroup quota in a container; at most LIMITS.maxThreads). */
  threads?: number;
  /** Most requests in one batch (default 64, at most LIMITS.maxBatch). */
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
   * Maps catalogue ids to the model's item indices when they differ, as `recscore score
   * --vocabulary` and `evaluate({ vocabulary })`: a file (line i is the id of model item i) or an
   * array (entry i), ids compared as strings; or a Map or a record from id to index. Without it
   * numeric ids are the indices.
   */
  vocabulary?: string | ReadonlyArray<ItemId> | ReadonlyMap<ItemId, number> | Readonly<Record<string, number>>;
  sessions?: SessionOptions & {
    /** Snapshot file of the in-process store: restored on create (when written for the same model), written on close. */
    snapshot?: string;
    /**
     * Where sessions live (default: a MemorySessionStore in this process with the options above).
     * A RedisSessionStore shares them between engine processes; the engine does not close a
     * store it was given.
     */
    store?: SessionStore;
  };
  /** CPU level of the workers' kernels (default 'auto': the best this CPU runs). */
  isa?: 'auto' | Level;
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

/** engine.update(): what to swap in (at least one). */
export interface EngineUpdate {
  /** A catalogue file (opened and verified once, here) or a Catalogue (not closed by the engine). */
  catalogue?: string | Catalogue;
  /** A model file or its bytes. */
  model?: string | Uint8Array;
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
  /** Per worker thread: batches and requests answered (this version's and earlier versions' workers). */
  workers: Array<{ thread: number; batches: number; requests: number }>;
  /** Live sessions in an in-process store; null for a shared store (await sessions.size()). */
  sessions: number | null;
  /** Events pushed to sessions, sessions.recommend answers, session calls the store failed. */
  sessionEvents: number;
  sessionAnswers: number;
  storeErrors: number;
  /** update() swaps done. */
  swaps: number;
  /** create() until ready (ms), and the part spent starting the workers (in parallel). */
  readyMs: number;
  workersReadyMs: number;
}
