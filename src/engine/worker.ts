/**
 * The engine's Piscina worker: loads the encoder and the catalogue once (the catalogue's matrix
 * is memory-mapped from its file or shared with the main thread, never copied), then answers
 * batches. Errors come back as plain shapes so the main thread can rebuild their classes.
 */
import { Catalogue } from '../catalogue/catalogue.js';
import { Encoder } from '../encoder/encoder.js';
import { errorShape } from '../errors.js';
import { rankOnWorker } from '../pipeline.js';
import type { WorkerInit, WorkerResult, WorkerTask } from './protocol.js';

export type { WorkerInit, WorkerResult, WorkerTask } from './protocol.js';

let ready: Promise<{ encoder: Encoder; catalogue: Catalogue; init: WorkerInit }> | null = null;

async function setup(init: WorkerInit): Promise<{ encoder: Encoder; catalogue: Catalogue; init: WorkerInit }> {
  // One thread per worker: the pool is the parallelism.
  const encoder = await Encoder.load(init.model, { backend: init.backend ?? 'auto', threads: 1, isa: init.isa });
  const catalogue = await Catalogue._fromShared(init.catalogue);
  return { encoder, catalogue, init };
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
    if (task.op !== 'recommend' && task.op !== 'recommendState') throw new Error('unknown task');
    const exclusions = (users: number): Int32Array[] | undefined =>
      task.exclOffsets && task.exclRows ? splitRows(task.exclOffsets, task.exclRows, users) : undefined;
    const selection = { k: task.k, allow: task.allow, filter: task.filter, threads: 1, isa: init.isa };
    if (task.op === 'recommendState' && task.state) {
      // A live session: its state holds the history already, so only the output is computed.
      const vectors = await encoder.output(encoder.restoreState(task.state));
      return { ok: true, ...catalogue.topK(vectors, { ...selection, exclude: exclusions(vectors.length / encoder.dim) }) };
    }
    const histories = task.histories as number[][];
    return { ok: true, ...(await rankOnWorker(encoder, catalogue, { ...selection, histories, exclude: exclusions(histories.length) })) };
  } catch (e) {
    return { ok: false, error: errorShape(e) };
  }
}

function splitRows(offsets: Int32Array, rows: Int32Array, users: number): Int32Array[] {
  return Array.from({ length: users }, (_, u) => rows.subarray(offsets[u], offsets[u + 1]));
}
