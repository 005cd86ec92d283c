/**
 * The messages between the engine's main thread and its workers, in one module both sides
 * import: what a worker is started with, the tasks it runs and what it answers. Ids never cross:
 * histories travel as the model's item indices, exclusions and allow-lists as catalogue rows.
 */
import type { SharedCatalogue } from '../catalogue/catalogue.js';
import type { ErrorShape } from '../errors.js';
import type { Level } from '../native/addon.js';

export interface WorkerInit {
  model: string | Uint8Array;
  catalogue: SharedCatalogue;
  backend?: 'auto' | 'native' | 'onnxruntime';
  isa?: Level;
  testHooks?: boolean;
}

export interface Selection {
  k: number;
  exclOffsets?: Int32Array;
  exclRows?: Int32Array;
  allow?: Int32Array;
  filter?: { allOf?: number; anyOf?: number; noneOf?: number };
}

/**
 * A batch: user u is encoded from histories[u], or, when u is listed in stateUsers, taken from its
 * live session's state (states holds those users' states, stateSize floats each, in stateUsers'
 * order; their histories entries are empty).
 */
export type WorkerTask =
  | ({ op: 'recommend'; histories: number[][]; states?: Float32Array; stateUsers?: Int32Array } & Selection)
  /** Several users' states (stateSize floats each; fresh[u]: the model's initial state instead), each stepped over its events. */
  | { op: 'steps'; states: Float32Array; fresh: Uint8Array; events: number[][] }
  | { op: 'ready' }
  | { op: 'crash' };

/** `worker`: the answering worker's thread id (stats count per worker). */
export type WorkerResult =
  | { ok: true; worker: number; k: number; rows: Int32Array; scores: Float32Array }
  | { ok: true; worker: number; states: Float32Array }
  | { ok: true; worker: number; ready: true }
  | { ok: false; error: ErrorShape };
