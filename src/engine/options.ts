/** Checking ScoringEngine.create's options, the vocabulary map and the prom-client metrics. */
import type { ItemId } from '../catalogue/catalogue.js';
import { InvalidArgumentError } from '../errors.js';
import { loggerOption } from '../logger.js';
import { LIMITS } from '../limits.js';
import { atMost, describe, optionalPositiveInt, optionsObject, threadsOption } from '../validate.js';
import { Vocabulary } from '../batch/vocabulary.js';
import type { SessionOptions } from '../sessions/memory_store.js';
import type { SessionStore } from '../sessions/store.js';
import type { EngineOptions } from './types.js';

/** The checked numbers of EngineOptions, defaults filled in. */
export interface EngineSettings {
  threads: number;
  maxBatch: number;
  maxDelayMs: number;
  maxQueue: number;
  sessions: (Required<SessionOptions> & { snapshot?: string; store?: SessionStore }) | undefined;
}

/** setTimeout's largest delay. */
const MAX_DELAY_MS = 2 ** 31 - 1;

/** Checks everything about `opts` that needs no file; throws InvalidArgumentError / OutOfRangeError. */
export function engineSettings(opts: EngineOptions, defaultThreads: number): EngineSettings {
  if (typeof opts !== 'object' || opts === null || Array.isArray(opts)) {
    throw new InvalidArgumentError(`options must be an object, got ${describe(opts)}`);
  }
  if (typeof opts.model !== 'string' && !(opts.model instanceof Uint8Array)) {
    throw new InvalidArgumentError(`options.model must be a path or a Uint8Array, got ${describe(opts.model)}`);
  }
  const threads = threadsOption('options.threads', opts.threads, defaultThreads);
  const maxBatch = atMost('options.maxBatch', optionalPositiveInt('options.maxBatch', opts.maxBatch, 64), LIMITS.maxBatch);
  const maxQueue = optionalPositiveInt('options.maxQueue', opts.maxQueue, 10_000);
  const d = opts.maxDelayMs;
  if (d !== undefined && !(typeof d === 'number' && d >= 0 && Number.isFinite(d))) {
    throw new InvalidArgumentError(`options.maxDelayMs must be a non-negative number, got ${describe(d)}`);
  }
  const maxDelayMs = atMost('options.maxDelayMs', d ?? 0, MAX_DELAY_MS);
  const v = opts.vocabulary;
  if (v !== undefined && !(typeof v === 'string' || Array.isArray(v) || v instanceof Map || (typeof v === 'object' && v !== null))) {
    throw new InvalidArgumentError(`options.vocabulary must be a file path, an array, a Map or a record, got ${describe(v)}`);
  }
  loggerOption('options.logger', opts.logger);
  return { threads, maxBatch, maxDelayMs, maxQueue, sessions: sessionSettings(opts.sessions) };
}

function sessionSettings(o: EngineOptions['sessions']): EngineSettings['sessions'] {
  if (o === undefined) return undefined;
  const s = optionsObject('options.sessions', o);
  const ttl = s.ttlMs;
  if (ttl !== undefined && !(typeof ttl === 'number' && ttl > 0 && !Number.isNaN(ttl))) {
    throw new InvalidArgumentError(`options.sessions.ttlMs must be a positive number, got ${describe(ttl)}`);
  }
  if (s.snapshot !== undefined && (typeof s.snapshot !== 'string' || s.snapshot === '')) {
    throw new InvalidArgumentError(`options.sessions.snapshot must be a file path, got ${describe(s.snapshot)}`);
  }
  const store = s.store as SessionStore | undefined;
  if (store !== undefined && !isStore(store)) {
    throw new InvalidArgumentError(`options.sessions.store must be a SessionStore (get, update, delete, size, close), got ${describe(store)}`);
  }
  if (store && s.snapshot !== undefined) throw new InvalidArgumentError('options.sessions.snapshot is for the in-process store: a given store keeps its own sessions');
  return {
    maxSessions: optionalPositiveInt('options.sessions.maxSessions', s.maxSessions, 1_000_000),
    ttlMs: ttl ?? 24 * 3600 * 1000,
    historyLimit: atMost('options.sessions.historyLimit', optionalPositiveInt('options.sessions.historyLimit', s.historyLimit, 200), LIMITS.maxHistory),
    snapshot: s.snapshot,
    store,
  };
}

function isStore(s: unknown): s is SessionStore {
  const o = s as Record<string, unknown> | null;
  return typeof o === 'object' && o !== null && ['get', 'update', 'delete', 'size', 'close'].every((m) => typeof o[m] === 'function');
}

/** Catalogue id -> the model's item index (undefined: none), from options.vocabulary. */
export function vocabularyOf(v: EngineOptions['vocabulary'], vocab: number | null): (id: ItemId) => number | undefined {
  const inRange = (m: number | undefined): number | undefined =>
    typeof m === 'number' && Number.isInteger(m) && m >= 0 && (vocab === null || m < vocab) ? m : undefined;
  if (v === undefined) return (id) => (typeof id === 'number' ? inRange(id) : undefined);
  // A file (line i is the model's item i) or an array (entry i): as `recscore score --vocabulary`
  // and evaluate({ vocabulary }), ids compared as strings.
  if (typeof v === 'string' || Array.isArray(v)) {
    const voc = typeof v === 'string' ? Vocabulary.load(v, 'options.vocabulary') : Vocabulary.from(v as ReadonlyArray<string | number>, 'options.vocabulary');
    return (id) => inRange(voc.index(id));
  }
  if (v instanceof Map) return (id) => inRange(v.get(id));
  if (typeof v === 'object' && v !== null) {
    const rec = v as Readonly<Record<string, number>>;
    return (id) => inRange(Object.prototype.hasOwnProperty.call(rec, String(id)) ? rec[String(id)] : undefined);
  }
  throw new InvalidArgumentError(`options.vocabulary must be a Map, a record or an array, got ${describe(v)}`);
}

export interface Metrics {
  requests: { inc(labels: object, v?: number): void };
  latency: { observe(v: number): void };
  batch: { observe(v: number): void };
  queue: { set(v: number): void };
  sessionEvents: { inc(v?: number): void };
  sessionAnswers: { inc(v?: number): void };
  storeErrors: { inc(v?: number): void };
  swaps: { inc(v?: number): void };
}

export async function makeMetrics(registry: unknown): Promise<Metrics> {
  type PromModule = typeof import('prom-client');
  let prom: PromModule;
  try {
    const mod = (await import('prom-client')) as PromModule & { default?: PromModule };
    prom = mod.default ?? mod;
  } catch {
    throw new InvalidArgumentError('options.registry needs the prom-client package installed');
  }
  if (!(registry instanceof prom.Registry)) throw new InvalidArgumentError('options.registry must be a prom-client Registry');
  const registers = [registry];
  return {
    requests: new prom.Counter({ name: 'recscore_requests_total', help: 'Recommend requests answered', labelNames: ['outcome'], registers }),
    latency: new prom.Histogram({ name: 'recscore_request_seconds', help: 'Recommend latency', buckets: [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2], registers }),
    batch: new prom.Histogram({ name: 'recscore_batch_size', help: 'Requests per native batch', buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256], registers }),
    queue: new prom.Gauge({ name: 'recscore_queue_depth', help: 'Requests waiting for a worker', registers }),
    sessionEvents: new prom.Counter({ name: 'recscore_session_events_total', help: 'Events pushed to live sessions', registers }),
    sessionAnswers: new prom.Counter({ name: 'recscore_session_answers_total', help: 'sessions.recommend answers', registers }),
    storeErrors: new prom.Counter({ name: 'recscore_session_store_errors_total', help: 'Session calls failed by the session store', registers }),
    swaps: new prom.Counter({ name: 'recscore_swaps_total', help: 'Catalogue or model updates swapped in', registers }),
  };
}
