/** The logger option: a pino-compatible logger, of which only these methods are used. */
import { InvalidArgumentError } from './errors.js';
import { describe, optionsObject } from './validate.js';

/** A pino-compatible logger (only these methods are used). */
export interface Logger {
  debug?(obj: object, msg?: string): void;
  info?(obj: object, msg?: string): void;
  warn?(obj: object, msg?: string): void;
  error?(obj: object, msg?: string): void;
}

/** Checks an optional `logger` option (every method given must be a function). */
export function loggerOption(name: string, v: unknown): Logger | undefined {
  if (v === undefined) return undefined;
  const log = optionsObject(name, v as object) as Record<string, unknown>;
  for (const level of ['debug', 'info', 'warn', 'error'] as const) {
    if (log[level] !== undefined && typeof log[level] !== 'function') {
      throw new InvalidArgumentError(`${name}.${level} must be a function, got ${describe(log[level])}`);
    }
  }
  return log as Logger;
}
