/**
 * The engine's Piscina worker: loads the encoder and the catalogue once (the catalogue's matrix
 * is memory-mapped from its file or shared with the main thread, never copied), then answers
 * batches. Errors come back as plain shapes so the main thread can rebuild their classes.
 */
import { Catalogue, type SharedCatalogue } from '../catalogue.js';
import { Encoder } from '../encoder.js';
import { type ErrorShape, errorShape } from '../errors.js';
import type { Level } from '../native.js';

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

let ready: Promise<{ encoder: Encoder; catalogue: Catalogue; init: WorkerInit }> | null = null;

async function setup(init: WorkerInit): Promise<{ encoder: Encoder; catalogue: Catalogue; init: WorkerInit }> {
  // One thread per worker: the pool is the parallelism.
  const encoder = await Encoder.load(init.model, { backend: init.backend ?? 'auto', threads: 1, isa: init.isa });
  const catalogue = await Catalogue._fromShared(init.catalogue);
  return { encoder, catalogue, init };
}

/**
 * The users' vectors. The native backend runs on this worker's thread (encodeSync): never on the
 * libuv pool, which the whole process shares; onnxruntime's backend is asynchronous only.
 */
async function vectorsOf(encoder: Encoder, task: WorkerTask): Promise<Float32Array> {
  const encode = (h: number[][]): Float32Array | Promise<Float32Array> =>
    encoder.backend === 'native' ? encoder.encodeSync(h) : encoder.encode(h);
  if (task.op === 'recommend') return encode(task.histories);
  if (task.op === 'recommendState') {
    if (task.state) return encoder.output(encoder.restoreState(task.state));
    return encode(task.histories as number[][]);
  }
  throw new Error('not a scoring task');
}

export default async function run(task: WorkerTask): Promise<WorkerResult> {
  try {
    const { workerData } = await import('node:worker_threads');
    ready ??= setup(workerData as WorkerInit);
    const { encoder, catalogue, init } = await ready;
    if (task.op === 'crash') {
      if (!init.testHooks) throw new Error('unknown task');
      process.exit(3); // simulates a worker dying mid-batch (tests only)
    }
    if (task.op === 'step') {
      // One user's new events, in order, from its stored state (O(1) per event).
      const st = encoder.restoreState(task.state);
      for (const id of task.events) encoder.stepSync(st, [id]);
      return { ok: true, state: st.toFloat32Array() };
    }
    const vectors = await vectorsOf(encoder, task);
    const users = task.op === 'recommend' ? task.histories.length : vectors.length / encoder.dim;
    const exclude = task.exclOffsets && task.exclRows ? splitRows(task.exclOffsets, task.exclRows, users) : undefined;
    const res = catalogue.topK(vectors, { k: task.k, exclude, allow: task.allow, filter: task.filter, threads: 1, isa: init.isa });
    return { ok: true, ...res };
  } catch (e) {
    return { ok: false, error: errorShape(e) };
  }
}

function splitRows(offsets: Int32Array, rows: Int32Array, users: number): Int32Array[] {
  return Array.from({ length: users }, (_, u) => rows.subarray(offsets[u], offsets[u + 1]));
}
