/**
 * The bounds every entry point enforces (OutOfRangeError beyond them), the same for every
 * backend: they keep a hostile or buggy caller from asking for memory or threads that no real
 * workload needs. Native code keeps its own cheap guards; these are checked first, in TypeScript.
 */
export const LIMITS = {
  /** Users (rows) in one topK / encode / step / initialState call. */
  maxBatch: 1 << 20,
  /** k per user. */
  maxK: 1 << 20,
  /** Result entries in one call (users × min(k, catalogue size)). */
  maxResults: 1 << 28,
  /** Threads for any `threads` option. */
  maxThreads: 1024,
  /** Floats of recurrent state in one initialState / restoreState (1 GiB of float32). */
  maxStateFloats: 1 << 28,
  /** Events in one user's history (encode) or one step call. */
  maxHistory: 1 << 20,
  /** Total events in one encode call. */
  maxEvents: 1 << 28,
  /** Entries of any array-like argument (exclude lists, allow-lists, ids). */
  maxArrayLength: 2 ** 31 - 1,
  /** Catalogue rows (rows are int32 in the kernels). */
  maxItems: 2 ** 31 - 1,
  /** Bytes in one line of a JSONL input (CLI); longer lines are bad lines, skipped unread. */
  maxLineBytes: 1 << 27,
  /** Vector dimension. */
  maxDim: 1 << 16,
} as const;
