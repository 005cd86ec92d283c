/**
 * Error classes with a stable `code`. Argument problems are TypeErrors or RangeErrors, so code
 * that checks `instanceof TypeError` keeps working; all of them also carry `code` for routing.
 */

export type ErrorCode =
  | 'ERR_RECSCORE_INVALID_ARGUMENT'
  | 'ERR_RECSCORE_OUT_OF_RANGE'
  | 'ERR_RECSCORE_FORMAT'
  | 'ERR_RECSCORE_FILE'
  | 'ERR_RECSCORE_MODEL'
  | 'ERR_RECSCORE_UNSUPPORTED_MODEL'
  | 'ERR_RECSCORE_NATIVE_LOAD'
  | 'ERR_PEER_MISSING'
  | 'ERR_RECSCORE_NATIVE'
  | 'ERR_CLOSED'
  | 'ERR_QUEUE_FULL'
  | 'ERR_WORKER_CRASHED'
  | 'ERR_SESSION_STORE'
  | 'ABORT_ERR';

/** A value has the wrong type or shape (`options.k must be a positive integer, got 1.5`). */
export class InvalidArgumentError extends TypeError {
  readonly code = 'ERR_RECSCORE_INVALID_ARGUMENT' as const;
  constructor(message: string) {
    super(message);
    this.name = 'InvalidArgumentError';
  }
}

/** A value has the right type but is outside what is allowed (ids, rows, sizes). */
export class OutOfRangeError extends RangeError {
  readonly code = 'ERR_RECSCORE_OUT_OF_RANGE' as const;
  constructor(message: string) {
    super(message);
    this.name = 'OutOfRangeError';
  }
}

/** A file is not a valid recscore catalogue / .npy file: wrong magic, truncated, corrupt. */
export class FormatError extends Error {
  readonly code = 'ERR_RECSCORE_FORMAT' as const;
  readonly path: string;
  constructor(path: string, message: string, options?: { cause?: unknown }) {
    super(`${path}: ${message}`, options);
    this.name = 'FormatError';
    this.path = path;
  }
}

/**
 * A file could not be used: missing, a directory, a FIFO or device where a regular file must be
 * mapped, unreadable. `path` is the file, `syscallCode` Node's code (ENOENT, EISDIR, …) when the
 * OS refused, and `cause` the original error.
 */
export class FileError extends Error {
  readonly code = 'ERR_RECSCORE_FILE' as const;
  readonly path: string;
  readonly syscallCode: string | null;
  constructor(path: string, message: string, options?: { cause?: unknown }) {
    super(`${path}: ${message}`, options);
    this.name = 'FileError';
    this.path = path;
    const c = (options?.cause as { code?: unknown } | undefined)?.code;
    this.syscallCode = typeof c === 'string' ? c : null;
  }
}

/** A model file is not a usable encoder: not ONNX, truncated, wrong input dtype or output shape. */
export class ModelError extends Error {
  readonly code = 'ERR_RECSCORE_MODEL' as const;
  constructor(message: string) {
    super(message);
    this.name = 'ModelError';
  }
}

/** `backend: 'native'` was asked for a model the native kernels cannot run; says why. */
export class UnsupportedModelError extends Error {
  readonly code = 'ERR_RECSCORE_UNSUPPORTED_MODEL' as const;
  constructor(message: string) {
    super(message);
    this.name = 'UnsupportedModelError';
  }
}

/** The native addon could not be loaded; the message lists every place that was tried. */
export class NativeLoadError extends Error {
  readonly code = 'ERR_RECSCORE_NATIVE_LOAD' as const;
  readonly tried: readonly string[];
  constructor(message: string, tried: readonly string[]) {
    super(message);
    this.name = 'NativeLoadError';
    this.tried = tried;
  }
}

/**
 * An optional peer dependency is needed for this call but not installed (today: onnxruntime-node,
 * for models the native encoder cannot run). `peer` names the package to install.
 */
export class PeerMissingError extends Error {
  readonly code = 'ERR_PEER_MISSING' as const;
  readonly peer: string;
  constructor(peer: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PeerMissingError';
    this.peer = peer;
  }
}

/** The object was closed; it accepts no more calls. */
export class ClosedError extends Error {
  readonly code = 'ERR_CLOSED' as const;
  constructor(what: string) {
    super(`${what} is closed`);
    this.name = 'ClosedError';
  }
}

/** The engine's queue holds `maxQueue` requests already: back off and retry. */
export class QueueFullError extends Error {
  readonly code = 'ERR_QUEUE_FULL' as const;
  constructor(limit: number) {
    super(`the engine's queue is full (${limit} requests waiting)`);
    this.name = 'QueueFullError';
  }
}

/**
 * A session store failed (Redis unreachable, a timeout, a reply that is not a session): the
 * session call did not happen, or happened entirely (a store never writes half a record).
 * Stateless calls are not affected. `cause` holds the client's error.
 */
export class SessionStoreError extends Error {
  readonly code = 'ERR_SESSION_STORE' as const;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SessionStoreError';
  }
}

/** The worker running this request died; it has been replaced and other requests go on. */
export class WorkerCrashError extends Error {
  readonly code = 'ERR_WORKER_CRASHED' as const;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'WorkerCrashError';
  }
}

/** The request's AbortSignal fired before it was answered. */
export class AbortError extends Error {
  readonly code = 'ABORT_ERR' as const;
  constructor(message = 'the request was aborted', options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'AbortError';
  }
}

/** Any other failure reported by native code (an OS error, an internal invariant). */
export class NativeError extends Error {
  readonly code = 'ERR_RECSCORE_NATIVE' as const;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'NativeError';
  }
}

/** Re-types an error thrown by the addon (which carries a binding-level `code`). */
export function fromNative(e: unknown): Error {
  if (!(e instanceof Error)) return new NativeError(String(e));
  const code = (e as { code?: unknown }).code;
  if (code === 'ERR_INVALID_ARG') return new InvalidArgumentError(e.message);
  if (code === 'ERR_OUT_OF_RANGE') return new OutOfRangeError(e.message);
  if (code === 'ERR_SYSTEM' || code === 'ERR_NATIVE') return new NativeError(e.message, { cause: e });
  return e;
}

/** A plain description of an error that can cross a thread boundary. */
export interface ErrorShape {
  name: string;
  code?: string;
  message: string;
}

export function errorShape(e: unknown): ErrorShape {
  if (e instanceof Error) return { name: e.name, code: (e as { code?: string }).code, message: e.message };
  return { name: 'Error', message: String(e) };
}

/** Rebuilds an error of the same class and code from its shape (other threads' errors). */
export function reviveError(s: ErrorShape): Error {
  switch (s.name) {
    case 'InvalidArgumentError':
      return new InvalidArgumentError(s.message);
    case 'OutOfRangeError':
      return new OutOfRangeError(s.message);
    case 'ModelError':
      return new ModelError(s.message);
    case 'FormatError':
      return Object.assign(new FormatError('', ''), { message: s.message });
    case 'FileError':
      return Object.assign(new FileError('', ''), { message: s.message });
    case 'UnsupportedModelError':
      return new UnsupportedModelError(s.message);
    case 'PeerMissingError':
      return new PeerMissingError('onnxruntime-node', s.message);
    case 'ClosedError':
      return Object.assign(new ClosedError('x'), { message: s.message });
    case 'NativeError':
      return new NativeError(s.message);
    case 'TypeError':
      return Object.assign(new TypeError(s.message), s.code ? { code: s.code } : {});
    case 'RangeError':
      return Object.assign(new RangeError(s.message), s.code ? { code: s.code } : {});
    default:
      return Object.assign(new Error(s.message), { name: s.name }, s.code ? { code: s.code } : {});
  }
}
