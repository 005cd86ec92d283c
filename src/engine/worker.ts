/**
 * The engine's Piscina worker: loads the encoder and the catalogue once (the catalogue's matrix
 * is memory-mapped from its file or shared with the main thread, never copied), then answers
 * batches. Errors come back as plain shapes so the main thread can rebuild their classes.
 */
import { threadId, workerData } from 'node:worker_threads';

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
    ready ??= setup(workerData as WorkerInit);
    const { encoder, catalogue, init } = await ready;
    if (task.op === 'ready') return { ok: true, worker: threadId, ready: true };
    if (task.op === 'crash') {
      if (!init.testHooks) throw new Error('unknown task');
      process.exit(3); // simulates a worker dying mid-batch (tests only)
    }
    if (task.op === 'steps') return { ok: true, worker: threadId, states: stepMany(encoder, task.states, task.fresh, task.events) };
    if (task.op !== 'recommend') throw new Error('unknown task');
    const users = task.histories.length;
    const exclude = task.exclOffsets && task.exclRows ? splitRows(task.exclOffsets, task.exclRows, users) : undefined;
    const selection = { k: task.k, allow: task.allow, filter: task.filter, threads: 1, isa: init.isa, exclude };
    if (!task.stateUsers || task.stateUsers.length === 0) {
      return { ok: true, worker: threadId, ...(await rankOnWorker(encoder, catalogue, { ...selection, histories: task.histories })) };
    }
    // Live sessions among the users: their states hold their histories already, so only the
    // output is computed for them; the others are encoded; one top-k for all.
    const dim = encoder.dim;
    const vectors = new Float32Array(users * dim);
    const fromState = new Uint8Array(users);
    for (const u of task.stateUsers) fromState[u] = 1;
    const encoded: number[] = [];
    for (let u = 0; u < users; u++) if (!fromState[u]) encoded.push(u);
    if (encoded.length > 0) {
      const v = encoder.encodeSync(encoded.map((u) => task.histories[u]));
      encoded.forEach((u, i) => vectors.set(v.subarray(i * dim, (i + 1) * dim), u * dim));
    }
    const sv = await encoder.output(encoder.restoreState(task.states as Float32Array));
    task.stateUsers.forEach((u, i) => vectors.set(sv.subarray(i * dim, (i + 1) * dim), u * dim));
    return { ok: true, worker: threadId, ...catalogue.topK(vectors, selection) };
  } catch (e) {
    return { ok: false, error: errorShape(e) };
  }
}

/**
 * Users' states stepped over their events: at event position r, every user with an r-th event
 * steps together (one native call), the others wait; a user's steps stay in order.
 */
function stepMany(encoder: Encoder, states: Float32Array, fresh: Uint8Array, events: number[][]): Float32Array {
  const S = encoder.stateSize;
  const init = encoder.initialState(1).toFloat32Array() as Float32Array;
  fresh.forEach((f, u) => f && states.set(init, u * S));
  const rounds = Math.max(0, ...events.map((e) => e.length));
  for (let r = 0; r < rounds; r++) {
    const users = events.flatMap((e, u) => (e.length > r ? [u] : []));
    const packed = new Float32Array(users.length * S);
    users.forEach((u, i) => packed.set(states.subarray(u * S, (u + 1) * S), i * S));
    const st = encoder.restoreState(packed);
    encoder.stepSync(st, users.map((u) => events[u][r])); // advances st in place
    const out = st.toFloat32Array() as Float32Array;
    users.forEach((u, i) => states.set(out.subarray(i * S, (i + 1) * S), u * S));
  }
  return states;
}

function splitRows(offsets: Int32Array, rows: Int32Array, users: number): Int32Array[] {
  return Array.from({ length: users }, (_, u) => rows.subarray(offsets[u], offsets[u + 1]));
}
