export { Catalogue } from './catalogue/catalogue.js';
export type {
  AttributeFilter,
  CatalogueOptions,
  ItemId,
  NpyOptions,
  OpenOptions,
  TopKOptions,
  TopKResult,
} from './catalogue/catalogue.js';
export { Encoder, EncoderState } from './encoder/encoder.js';
export { evaluate, metricsFromRanks, TIE_POLICY } from './eval/evaluate.js';
export type { EvalMetrics, EvalSession } from './eval/evaluate.js';
export { EngineSessions, ScoringEngine } from './engine/engine.js';
export type { EngineOptions, EngineStats, EngineUpdate, Recommendation, RecommendRequest } from './engine/engine.js';
export type { SessionRecommendOptions } from './engine/engine_sessions.js';
export type { Logger } from './logger.js';
export type { SessionOptions } from './sessions/memory_store.js';
export { MemorySessionStore } from './sessions/memory_store.js';
export { RedisSessionStore } from './sessions/redis_store.js';
export type { RedisClientLike, RedisSessionStoreOptions } from './sessions/redis_store.js';
export type { SessionContents, SessionRecord, SessionStore, SessionUpdate } from './sessions/store.js';
export type { EncoderBackend, EncoderLoadOptions } from './encoder/encoder.js';
export {
  AbortError,
  ClosedError,
  FileError,
  FormatError,
  InvalidArgumentError,
  ModelError,
  NativeError,
  NativeLoadError,
  PeerMissingError,
  OutOfRangeError,
  QueueFullError,
  SessionStoreError,
  UnsupportedModelError,
  WorkerCrashError,
} from './errors.js';
export type { ErrorCode } from './errors.js';
export type { CpuFeatures, Isa, Level } from './native/addon.js';
export { VERSION } from './version.js';

import { InvalidArgumentError } from './errors.js';
import { type CpuFeatures, type Level, native } from './native/addon.js';
import { describe } from './validate.js';

/** What this CPU runs: its levels (lowest first), the default level and its features. */
export function nativeInfo(): {
  levels: Level[];
  level: Level;
  features: CpuFeatures;
  /** @deprecated levels */
  isas: Level[];
  /** @deprecated level */
  bestIsa: Level;
} {
  const n = native();
  return { levels: [...n.levels], level: n.level, features: { ...n.features }, isas: [...n.levels], bestIsa: n.level };
}

/**
 * Lets idle kernel threads spin for up to `microseconds` (0..100000) before they sleep, trading
 * CPU for latency between back-to-back calls, as onnxruntime's `allow_spinning`. The default is
 * 0: idle threads sleep at once, so an idle process uses no CPU. Process-wide; the environment
 * variable RECSCORE_SPIN_US sets it at start.
 */
export function setThreadSpin(microseconds: number): void {
  if (!Number.isInteger(microseconds) || microseconds < 0 || microseconds > 100_000) {
    throw new InvalidArgumentError(`microseconds must be an integer in 0..100000, got ${describe(microseconds)}`);
  }
  native().setSpin(microseconds);
}
