/**
 * The engine's batcher: requests wait in a queue (at most maxQueue), leave in batches of equal
 * filters (up to maxBatch, after at most maxDelayMs) while fewer than `threads` batches are in
 * flight, and are answered one by one; a signal aborts a queued request; a failed batch is
 * retried request by request so one bad request never fails the others.
 */
import type { AttributeFilter } from '../catalogue/catalogue.js';
import { AbortError, QueueFullError, reviveError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { Counters } from './counters.js';
import type { WorkerResult, WorkerTask } from './protocol.js';
import { withCallerStack } from './request.js';
import type { Recommendation } from './types.js';

/**
 * A request in the queue: checked, ids already mapped (model indices and catalogue rows). A live
 * session's request carries its state instead of a history (then modelIds is empty).
 */
export interface Pending {
  modelIds: number[];
  state?: Float32Array;
  exclRows: number[];
  k: number;
  key: string;
  filter?: AttributeFilter;
  resolve: (r: Recommendation) => void;
  reject: (e: Error) => void;
  stack: string;
  t0: number;
  done: boolean;
  signal?: AbortSignal;
  onAbort?: () => void;
}

export interface BatcherOptions {
  threads: number;
  maxBatch: number;
  maxDelayMs: number;
  maxQueue: number;
  counters: Counters;
  logger?: Logger;
  catalogueSize: number;
  run: (task: WorkerTask) => Promise<WorkerResult>;
  items: (res: { k: number; rows: Int32Array; scores: Float32Array }, u: number, k: number) => Recommendation;
}

export class Batcher {
  readonly #o: BatcherOptions;
  #queue: Pending[] = [];
  #inFlight = 0;
  #timer: NodeJS.Timeout | null = null;
  #idle: Array<() => void> = [];

  constructor(o: BatcherOptions) {
    this.#o = o;
  }

  get queued(): number {
    return this.#queue.length;
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  /** Queues a request (QueueFullError when maxQueue are waiting); settles when answered or aborted. */
  submit(p: Pending): Promise<Recommendation> {
    if (this.#queue.length >= this.#o.maxQueue) throw new QueueFullError(this.#o.maxQueue);
    return new Promise<Recommendation>((resolve, reject) => {
      p.resolve = resolve;
      p.reject = reject;
      if (p.signal) {
        p.onAbort = () => this.#abort(p);
        p.signal.addEventListener('abort', p.onAbort, { once: true });
      }
      this.#queue.push(p);
      this.#o.counters.queued(this.#queue.length);
      this.#schedule();
    });
  }

  /** Rejects every request still queued (close with a deadline); those in flight finish. */
  rejectQueued(e: Error): void {
    for (const p of this.#queue.splice(0)) this.#settle(p, null, withCallerStack(e, p.stack));
    this.#o.counters.queued(0);
    this.#maybeIdle();
  }

  /** Resolves when nothing is queued or in flight. */
  whenIdle(): Promise<void> {
    if (this.#queue.length === 0 && this.#inFlight === 0) return Promise.resolve();
    return new Promise<void>((resolve) => this.#idle.push(resolve));
  }

  #abort(p: Pending): void {
    if (p.done) return;
    const i = this.#queue.indexOf(p);
    if (i >= 0) this.#queue.splice(i, 1);
    this.#settle(p, null, withCallerStack(new AbortError(undefined, { cause: p.signal?.reason }), p.stack));
    this.#maybeIdle();
  }

  #settle(p: Pending, value: Recommendation | null, error: Error | null): void {
    if (p.done) return;
    p.done = true;
    if (p.signal && p.onAbort) p.signal.removeEventListener('abort', p.onAbort);
    if (error) {
      this.#o.counters.failed();
      p.reject(error);
    } else {
      this.#o.counters.completed(performance.now() - p.t0);
      p.resolve(value as Recommendation);
    }
  }

  #schedule(): void {
    if (this.#timer || this.#queue.length === 0 || this.#inFlight >= this.#o.threads) return;
    const wait = Math.max(0, this.#o.maxDelayMs - (performance.now() - this.#queue[0].t0));
    const fire = (): void => {
      this.#timer = null;
      this.#dispatch();
    };
    // Even with no delay, wait for the rest of this event-loop turn: requests made together
    // (a loop of recommend calls, recommendBatch) then share one batch.
    this.#timer = wait > 0 && this.#queue.length < this.#o.maxBatch ? setTimeout(fire, wait) : (setImmediate(fire) as unknown as NodeJS.Timeout);
  }

  #dispatch(): void {
    while (this.#queue.length > 0 && this.#inFlight < this.#o.threads) {
      const key = this.#queue[0].key;
      const batch: Pending[] = [];
      const rest: Pending[] = [];
      for (const p of this.#queue) {
        if (batch.length < this.#o.maxBatch && p.key === key) batch.push(p);
        else rest.push(p);
      }
      this.#queue = rest;
      this.#o.counters.queued(this.#queue.length);
      void this.#runBatch(batch);
    }
  }

  async #runBatch(batch: Pending[]): Promise<void> {
    this.#inFlight++;
    this.#o.counters.batch(batch.length);
    this.#o.logger?.debug?.({ size: batch.length, queued: this.#queue.length }, 'batch');
    const task = this.#task(batch, Math.min(this.#o.catalogueSize, Math.max(...batch.map((p) => p.k))));
    try {
      const res = await this.#o.run(task);
      if (!res.ok && batch.length > 1) {
        // One request's problem must not fail the others: answer them one by one.
        await Promise.all(batch.map((p) => this.#runOne(p)));
      } else if (!res.ok) {
        for (const p of batch) this.#settle(p, null, withCallerStack(reviveError(res.error), p.stack));
      } else if ('rows' in res) {
        this.#o.counters.worker(res.worker, batch.length);
        batch.forEach((p, u) => this.#settle(p, this.#o.items(res, u, p.k), null));
      }
    } catch (e) {
      for (const p of batch) this.#settle(p, null, withCallerStack(e as Error, p.stack));
    } finally {
      this.#inFlight--;
      this.#maybeIdle();
      this.#schedule();
    }
  }

  /** The worker task of a batch (requests with states pass them packed, in order). */
  #task(batch: Pending[], k: number): WorkerTask {
    const offsets = new Int32Array(batch.length + 1);
    batch.forEach((p, i) => (offsets[i + 1] = offsets[i] + p.exclRows.length));
    const task: WorkerTask = {
      op: 'recommend',
      histories: batch.map((p) => p.modelIds),
      k,
      exclOffsets: offsets,
      exclRows: Int32Array.from(batch.flatMap((p) => p.exclRows)),
      filter: batch[0].filter,
    };
    const withState = batch.flatMap((p, u) => (p.state ? [u] : []));
    if (withState.length > 0) {
      const size = (batch[withState[0]].state as Float32Array).length;
      const states = new Float32Array(withState.length * size);
      withState.forEach((u, i) => states.set(batch[u].state as Float32Array, i * size));
      task.states = states;
      task.stateUsers = Int32Array.from(withState);
    }
    return task;
  }

  async #runOne(p: Pending): Promise<void> {
    const task = this.#task([p], Math.min(this.#o.catalogueSize, p.k));
    try {
      const res = await this.#o.run(task);
      if (!res.ok) this.#settle(p, null, withCallerStack(reviveError(res.error), p.stack));
      else if ('rows' in res) {
        this.#o.counters.worker(res.worker, 1);
        this.#settle(p, this.#o.items(res, 0, p.k), null);
      }
    } catch (e) {
      this.#settle(p, null, withCallerStack(e as Error, p.stack));
    }
  }

  #maybeIdle(): void {
    if (this.#queue.length === 0 && this.#inFlight === 0) {
      for (const f of this.#idle.splice(0)) f();
    }
  }
}
