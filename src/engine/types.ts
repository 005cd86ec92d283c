/** The engine's public option, request and result types. */
import type { AttributeFilter, Catalogue, ItemId } from '../catalogue/catalogue.js';
import type { Level } from '../native/addon.js';
import type { SessionOptions } from '../sessions/memory_store.js';

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
   * Maps catalogue ids to the model's item indices when they differ: a Map, a record, or an
   * array whose position i holds the id of model item i. Without it numeric ids are the indices.
   */
  vocabulary?: ReadonlyMap<ItemId, number> | Readonly<Record<string, number>> | ReadonlyArray<ItemId>;
  sessions?: SessionOptions & {
    /** Snapshot file: restored on create (when written for the same model), written on close. */
    snapshot?: string;
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
