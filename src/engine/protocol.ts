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

export type WorkerTask =
  | ({ op: 'recommend'; histories: number[][] } & Selection)
  | ({ op: 'recommendState'; state: Float32Array | null; histories: number[][] | null } & Selection)
  | { op: 'step'; state: Float32Array; events: number[] }
  | { op: 'crash' };

export type WorkerResult =
  | { ok: true; k: number; rows: Int32Array; scores: Float32Array }
  | { ok: true; state: Float32Array | null }
  | { ok: false; error: ErrorShape };
