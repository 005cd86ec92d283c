export { Catalogue } from './catalogue.js';
export type {
  AttributeFilter,
  CatalogueOptions,
  ItemId,
  NpyOptions,
  OpenOptions,
  TopKOptions,
  TopKResult,
} from './catalogue.js';
export { Encoder, EncoderState } from './encoder.js';
export { evaluate, metricsFromRanks, TIE_POLICY } from './cli/evaluate.js';
export type { EvalMetrics, EvalSession } from './cli/evaluate.js';
export { EngineSessions, ScoringEngine } from './engine/engine.js';
export type { EngineOptions, EngineStats, Logger, Recommendation, RecommendRequest } from './engine/engine.js';
export type { SessionOptions } from './engine/sessions.js';
export type { EncoderBackend, EncoderLoadOptions } from './encoder.js';
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
  UnsupportedModelError,
  WorkerCrashError,
} from './errors.js';
export type { ErrorCode } from './errors.js';
export type { CpuFeatures, Isa, Level } from './native.js';
export { VERSION } from './version.js';

import { type CpuFeatures, type Level, native } from './native.js';

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
