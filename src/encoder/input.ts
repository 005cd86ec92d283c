/**
 * Checking what the encoder is given: histories of the model's item indices, bounded by
 * LIMITS (users per call, events per history, events per call) the same for every backend.
 */
import { InvalidArgumentError, OutOfRangeError } from '../errors.js';
import { LIMITS } from '../limits.js';
import { arrayLike, atMost, batchSize, describe } from '../validate.js';

/** Histories as one flat run of ids with per-user offsets (offsets[u]..offsets[u+1]). */
export interface FlatHistories {
  ids: Int32Array;
  offsets: Int32Array;
}

/** Checks one item index against the model's vocabulary (null: only int32 range). */
export function itemIndex(v: unknown, name: string, vocab: number | null): number {
  if (typeof v !== 'number' || !Number.isInteger(v)) {
    throw new InvalidArgumentError(`${name} must be an integer item index, got ${describe(v)}`);
  }
  const max = vocab ?? 0x7fffffff;
  if (v < 0 || v >= max) {
    throw new OutOfRangeError(`${name} = ${v} is not an item index of the model (0..${max - 1})`);
  }
  return v;
}

/** Validates `histories` (an array of arrays / typed arrays of item indices) and flattens it. */
export function flattenHistories(histories: unknown, vocab: number | null): FlatHistories {
  if (!Array.isArray(histories)) {
    throw new InvalidArgumentError(`histories must be an array of item-index arrays, got ${describe(histories)}`);
  }
  batchSize('histories.length', histories.length);
  const rows: Array<ArrayLike<unknown>> = new Array(histories.length);
  const offsets = new Int32Array(histories.length + 1);
  let total = 0;
  for (let u = 0; u < histories.length; u++) {
    const h = arrayLike(`histories[${u}]`, histories[u], 'an array of item indices', LIMITS.maxHistory);
    rows[u] = h;
    total += h.length;
    offsets[u + 1] = total;
  }
  atMost('the events in histories (in total)', total, LIMITS.maxEvents);
  const ids = new Int32Array(total);
  for (let u = 0; u < rows.length; u++) {
    const h = rows[u];
    const at = offsets[u];
    // A history's length was read once, above: the copy never runs past it.
    for (let p = 0; p < offsets[u + 1] - at; p++) ids[at + p] = itemIndex(h[p], `histories[${u}][${p}]`, vocab);
  }
  return { ids, offsets };
}
