/**
 * Session pushes, batched: concurrent pushes (of different users) queue here and leave in one
 * worker task that steps every user's state at once (one native step per event position, all the
 * users with an event at that position together), while fewer than `threads` such tasks are in
 * flight. A push of one event to each of 256 users is one native call, not 256 round trips.
 */
import { reviveError } from '../errors.js';
import type { WorkerResult, WorkerTask } from './protocol.js';

interface StepRequest {
  state: Float32Array | null;
  events: number[];
  resolve: (s: Float32Array) => void;
  reject: (e: Error) => void;
}

export class StepBatcher {
  readonly #run: (task: WorkerTask) => Promise<WorkerResult>;
  readonly #threads: number;
  readonly #stateSize: number;
  readonly #maxBatch: number;
  #queue: StepRequest[] = [];
  #inFlight = 0;
  #scheduled = false;
  #idle: Array<() => void> = [];

  constructor(o: { run: (task: WorkerTask) => Promise<WorkerResult>; threads: number; stateSize: number; maxBatch?: number }) {
    this.#run = o.run;
    this.#threads = o.threads;
    this.#stateSize = o.stateSize;
    this.#maxBatch = o.maxBatch ?? 256;
  }

  /** The state after `events` (the model's item indices, in order) from `state` (null: the model's initial state). */
  step(state: Float32Array | null, events: number[]): Promise<Float32Array> {
    return new Promise<Float32Array>((resolve, reject) => {
      this.#queue.push({ state, events, resolve, reject });
      this.#schedule();
    });
  }

  /** Resolves when nothing is queued or in flight. */
  whenIdle(): Promise<void> {
    if (this.#queue.length === 0 && this.#inFlight === 0) return Promise.resolve();
    return new Promise<void>((resolve) => this.#idle.push(resolve));
  }

  #schedule(): void {
    if (this.#scheduled || this.#queue.length === 0 || this.#inFlight >= this.#threads) return;
    this.#scheduled = true;
    // The rest of this event-loop turn first: pushes made together share one task.
    setImmediate(() => {
      this.#scheduled = false;
      while (this.#queue.length > 0 && this.#inFlight < this.#threads) void this.#dispatch(this.#queue.splice(0, this.#maxBatch));
    });
  }

  async #dispatch(batch: StepRequest[]): Promise<void> {
    this.#inFlight++;
    const S = this.#stateSize;
    const states = new Float32Array(batch.length * S);
    const fresh = new Uint8Array(batch.length);
    batch.forEach((r, i) => (r.state ? states.set(r.state, i * S) : (fresh[i] = 1)));
    try {
      const res = await this.#run({ op: 'steps', states, fresh, events: batch.map((r) => r.events) });
      if (!res.ok) throw reviveError(res.error);
      const out = (res as { states: Float32Array }).states;
      batch.forEach((r, i) => r.resolve(out.slice(i * S, (i + 1) * S)));
    } catch (e) {
      for (const r of batch) r.reject(e as Error);
    } finally {
      this.#inFlight--;
      if (this.#queue.length === 0 && this.#inFlight === 0) for (const f of this.#idle.splice(0)) f();
      this.#schedule();
    }
  }
}
