/** Checks of the engine's per-call arguments (requests, users, exclusions, filters) and error stacks. */
import type { AttributeFilter, ItemId } from '../catalogue/catalogue.js';
import { InvalidArgumentError } from '../errors.js';
import { describe, kOption, uint32 } from '../validate.js';

/** Gives an error the stack of the call that made the request (errors come from other threads). */
export function withCallerStack(e: Error, stack: string): Error {
  const callerFrames = stack.split('\n').slice(1).join('\n');
  e.stack = `${e.name}: ${e.message}\n${callerFrames}`;
  return e;
}

export function checkUser(user: unknown): void {
  if (!(typeof user === 'string' || (typeof user === 'number' && Number.isSafeInteger(user)))) {
    throw new InvalidArgumentError(`userId must be a string or a safe integer, got ${describe(user)}`);
  }
}

export type Exclude = 'history' | 'none' | ReadonlyArray<ItemId>;

/** `exclude`: 'history' (default), 'none', or an array (or typed array) of ids. */
export function excludeOption(name: string, v: unknown): Exclude {
  if (v === undefined) return 'history';
  if (v === 'history' || v === 'none' || Array.isArray(v) || (ArrayBuffer.isView(v) && !(v instanceof DataView))) return v as Exclude;
  throw new InvalidArgumentError(`${name} must be 'history', 'none' or an array of ids, got ${describe(v)}`);
}

/** An attribute filter with every field checked (uint32), or undefined. */
export function filterOption(name: string, v: unknown): AttributeFilter | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new InvalidArgumentError(`${name} must be an object, got ${describe(v)}`);
  const f = v as AttributeFilter;
  const out: AttributeFilter = {};
  for (const key of ['allOf', 'anyOf', 'noneOf'] as const) {
    if (f[key] !== undefined) out[key] = uint32(`${name}.${key}`, f[key]);
  }
  return out;
}

/**
 * The options every recommend call takes (`recommend`'s request, `sessions.recommend`'s options):
 * k, exclude, filter (needs attributes) and signal, checked; `pending` is what the batcher needs.
 */
export function selectionOptions(
  name: string,
  o: { k?: unknown; exclude?: unknown; filter?: unknown; signal?: unknown },
  hasAttributes: boolean,
): { exclude: Exclude; pending: { k: number; key: string; filter?: AttributeFilter; signal?: AbortSignal } } {
  const k = kOption(`${name}.k`, o.k);
  const exclude = excludeOption(`${name}.exclude`, o.exclude);
  const filter = filterOption(`${name}.filter`, o.filter);
  if (filter && !hasAttributes) throw new InvalidArgumentError(`${name}.filter needs a catalogue built with attributes`);
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal)) {
    throw new InvalidArgumentError(`${name}.signal must be an AbortSignal, got ${describe(o.signal)}`);
  }
  return { exclude, pending: { k, key: filterKey(filter), filter, signal: o.signal as AbortSignal | undefined } };
}

/** Requests with equal filters can share a batch. */
export function filterKey(f: AttributeFilter | undefined): string {
  return f ? `${f.allOf ?? 0},${f.anyOf ?? 0},${f.noneOf ?? 0}` : '';
}
