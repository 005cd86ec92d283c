/** The engine's counters and latency window (stats()), mirrored into prom-client metrics. */
import type { Metrics } from './options.js';
import type { EngineStats } from './types.js';

const LATENCY_WINDOW = 2048;

export class Counters {
  readonly #metrics: Metrics | null;
  #completed = 0;
  #failed = 0;
  #batches = 0;
  #batched = 0;
  #maxBatch = 0;
  #latencies: number[] = [];
  #workers = new Map<number, { batches: number; requests: number }>();
  #swaps = 0;
  #readyMs = 0;
  #workersReadyMs = 0;
  #sessionEvents = 0;
  #sessionAnswers = 0;
  #storeErrors = 0;

  constructor(metrics: Metrics | null) {
    this.#metrics = metrics;
  }

  queued(n: number): void {
    this.#metrics?.queue.set(n);
  }

  batch(size: number): void {
    this.#batches++;
    this.#batched += size;
    this.#maxBatch = Math.max(this.#maxBatch, size);
    this.#metrics?.batch.observe(size);
  }

  /** A worker (thread id) answered a batch of `requests`. */
  worker(thread: number, requests: number): void {
    const w = this.#workers.get(thread) ?? { batches: 0, requests: 0 };
    w.batches++;
    w.requests += requests;
    this.#workers.set(thread, w);
  }

  failed(): void {
    this.#failed++;
    this.#metrics?.requests.inc({ outcome: 'error' });
  }

  completed(ms: number): void {
    this.#completed++;
    this.#latencies.push(ms);
    if (this.#latencies.length > LATENCY_WINDOW) this.#latencies.splice(0, this.#latencies.length - LATENCY_WINDOW);
    this.#metrics?.requests.inc({ outcome: 'ok' });
    this.#metrics?.latency.observe(ms / 1000);
  }

  ready(totalMs: number, workersMs: number): void {
    this.#readyMs = totalMs;
    this.#workersReadyMs = workersMs;
  }

  swapped(): void {
    this.#swaps++;
    this.#metrics?.swaps.inc();
  }

  sessionEvents(n: number): void {
    this.#sessionEvents += n;
    this.#metrics?.sessionEvents.inc(n);
  }

  sessionAnswer(): void {
    this.#sessionAnswers++;
    this.#metrics?.sessionAnswers.inc();
  }

  storeError(): void {
    this.#storeErrors++;
    this.#metrics?.storeErrors.inc();
  }

  stats(now: { queued: number; inFlight: number; sessions: number | null }): EngineStats {
    const lat = [...this.#latencies].sort((a, b) => a - b);
    const q = (f: number): number => (lat.length ? lat[Math.min(lat.length - 1, Math.floor(f * lat.length))] : 0);
    return {
      queued: now.queued,
      inFlight: now.inFlight,
      completed: this.#completed,
      failed: this.#failed,
      batches: this.#batches,
      meanBatchSize: this.#batches ? this.#batched / this.#batches : 0,
      maxBatchSize: this.#maxBatch,
      latencyMs: { p50: q(0.5), p99: q(0.99) },
      workers: [...this.#workers].map(([thread, w]) => ({ thread, ...w })),
      sessions: now.sessions,
      sessionEvents: this.#sessionEvents,
      sessionAnswers: this.#sessionAnswers,
      storeErrors: this.#storeErrors,
      swaps: this.#swaps,
      readyMs: this.#readyMs,
      workersReadyMs: this.#workersReadyMs,
    };
  }
}
