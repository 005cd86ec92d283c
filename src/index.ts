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
export type { Isa } from './native.js';
export { VERSION } from './version.js';

import { native } from './native.js';

/** What the native addon was built with and what this CPU runs. */
export function nativeInfo(): { isas: string[]; bestIsa: string } {
  const n = native();
  return { isas: [...n.isas], bestIsa: n.bestIsa };
}
