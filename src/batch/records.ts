/**
 * Parsing the lines of `score` and `eval` inputs. Anything a line can hold (null, deep nesting,
 * wrong types, unknown ids) is a UserError that starts with `line N:`, so the job can count it
 * against --max-errors or stop on it; messages describe values without serialising them.
 */
import type { Catalogue, ItemId } from '../catalogue/catalogue.js';
import type { Encoder } from '../encoder/encoder.js';
import { LIMITS } from '../limits.js';
import { describe } from '../validate.js';
import { UserError } from '../cli/user_error.js';
import type { IdResolver, Vocabulary } from './vocabulary.js';

function parse(text: string, lineNo: number): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    // Also a RangeError ("Maximum call stack size exceeded") for absurd nesting on some engines.
    throw new UserError(`line ${lineNo}: not JSON (${e instanceof Error ? e.message : String(e)})`);
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** One catalogue id: a string or an integer that the catalogue holds. */
function catalogueId(id: unknown, where: string, lineNo: number, catalogue: Catalogue): ItemId {
  if (!(typeof id === 'string' || (typeof id === 'number' && Number.isSafeInteger(id)))) {
    throw new UserError(`line ${lineNo}: ${where} must be a catalogue id (a string or an integer), got ${describe(id)}`);
  }
  if (!catalogue.has(id)) throw new UserError(`line ${lineNo}: ${where} = ${describe(id)} is not in the catalogue`);
  return id;
}

function history(v: unknown, lineNo: number, catalogue: Catalogue): ItemId[] {
  if (!Array.isArray(v)) throw new UserError(`line ${lineNo}: "history" must be an array of item ids, got ${describe(v)}`);
  if (v.length > LIMITS.maxHistory) throw new UserError(`line ${lineNo}: history.length must be at most ${LIMITS.maxHistory}, got ${v.length}`);
  return v.map((id, i) => catalogueId(id, `history[${i}]`, lineNo, catalogue));
}

/** A `score` line: {"user": string | number, "history": [ids…]}. */
export function parseUser(text: string, lineNo: number, catalogue: Catalogue): { user: ItemId; history: ItemId[] } {
  const v = parse(text, lineNo);
  if (!isObject(v)) throw new UserError(`line ${lineNo}: expected an object with "user" and "history", got ${describe(v)}`);
  const user = v.user;
  if (!(typeof user === 'string' || (typeof user === 'number' && Number.isFinite(user)))) {
    throw new UserError(`line ${lineNo}: "user" must be a string or a number, got ${describe(user)}`);
  }
  return { user, history: history(v.history, lineNo, catalogue) };
}

/** An `eval` line: {"history": [ids…], "next": id}. */
export function parseSession(text: string, lineNo: number, catalogue: Catalogue): { history: ItemId[]; next: ItemId } {
  const v = parse(text, lineNo);
  if (!isObject(v) || !Array.isArray(v.history) || !(typeof v.next === 'string' || typeof v.next === 'number')) {
    throw new UserError(`line ${lineNo}: expected {"history": [...], "next": id}`);
  }
  const h = history(v.history, lineNo, catalogue);
  return { history: h, next: catalogueId(v.next, 'next', lineNo, catalogue) };
}

/** Catalogue ids -> the model's item indices (numeric ids are the indices). */
export function modelIndices(history: ReadonlyArray<ItemId>, encoder: Encoder, lineNo: number): number[] {
  if (history.length === 0 && encoder.backend === 'onnxruntime') {
    throw new UserError(`line ${lineNo}: history is empty: this model runs on onnxruntime, which cannot encode zero events`);
  }
  return history.map((id, i) => {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || (encoder.vocab !== null && id >= encoder.vocab)) {
      throw new UserError(`line ${lineNo}: history[${i}] = ${describe(id)} is not an item of the model (0..${(encoder.vocab ?? 0x80000000) - 1})`);
    }
    return id;
  });
}

/** A score record, parsed from a JSONL line or read from a Parquet/Arrow row: ids type-checked only. */
export function userRecord(v: unknown, lineNo: number): { user: ItemId; history: ItemId[] } {
  if (!isObject(v)) throw new UserError(`line ${lineNo}: expected an object with "user" and "history", got ${describe(v)}`);
  const user = v.user;
  if (!(typeof user === 'string' || (typeof user === 'number' && Number.isFinite(user)))) {
    throw new UserError(`line ${lineNo}: "user" must be a string or a number, got ${describe(user)}`);
  }
  const h = v.history;
  if (!Array.isArray(h)) throw new UserError(`line ${lineNo}: "history" must be an array of item ids, got ${describe(h)}`);
  if (h.length > LIMITS.maxHistory) throw new UserError(`line ${lineNo}: history.length must be at most ${LIMITS.maxHistory}, got ${h.length}`);
  for (let i = 0; i < h.length; i++) {
    const id: unknown = h[i];
    if (!(typeof id === 'string' || (typeof id === 'number' && Number.isSafeInteger(id)))) {
      throw new UserError(`line ${lineNo}: history[${i}] must be a catalogue id (a string or an integer), got ${describe(id)}`);
    }
  }
  return { user, history: h as ItemId[] };
}

/** A JSONL `score` line as a record. */
export function parseUserLine(text: string, lineNo: number): { user: ItemId; history: ItemId[] } {
  return userRecord(parse(text, lineNo), lineNo);
}

/**
 * A history's model indices and the catalogue rows to exclude. An id the vocabulary (or, without
 * one, the catalogue or the model) does not know is a line error, or dropped with `skip`; a
 * history left empty is a line error.
 */
export function resolveHistory(
  history: ReadonlyArray<ItemId>,
  lineNo: number,
  ids: IdResolver,
  encoder: Encoder,
  unknown: 'error' | 'skip',
): { indices: number[]; rows: number[] } {
  const indices: number[] = [];
  const rows: number[] = [];
  const modelSize = encoder.vocab ?? 0x80000000;
  for (let i = 0; i < history.length; i++) {
    const id = history[i];
    let problem: string | null = null;
    let index = -1;
    let row = -1;
    if (ids.vocabulary) {
      const v = ids.vocabulary.index(id);
      if (v === undefined) problem = `history[${i}] = ${describe(id)} is not in the vocabulary`;
      else if (v >= modelSize) problem = `history[${i}] = ${describe(id)} is item ${v} of the vocabulary, but the model has items 0..${modelSize - 1}`;
      else {
        index = v;
        const c = ids.catalogueId(id, v);
        if (c !== undefined) row = ids.catalogue.row(c);
      }
    } else if (!ids.catalogue.has(id)) {
      problem = `history[${i}] = ${describe(id)} is not in the catalogue`;
    } else if (typeof id !== 'number' || id < 0 || id >= modelSize) {
      problem = `history[${i}] = ${describe(id)} is not an item of the model (0..${modelSize - 1})`;
    } else {
      index = id;
      row = ids.catalogue.row(id);
    }
    if (problem !== null) {
      if (unknown === 'skip') continue;
      throw new UserError(`line ${lineNo}: ${problem}`);
    }
    indices.push(index);
    if (row >= 0) rows.push(row);
  }
  if (indices.length === 0) {
    throw new UserError(`line ${lineNo}: history is empty${history.length > 0 ? ` (its ${history.length} ids are all unknown, skipped by --unknown skip)` : ''}`);
  }
  return { indices, rows };
}

/** An `eval` line whose ids are vocabulary ids (SKUs): each must be in the vocabulary and the model. */
export function sessionInVocabulary(text: string, lineNo: number, vocabulary: Vocabulary, encoder: Encoder): { history: ItemId[]; next: ItemId } {
  const v = parse(text, lineNo);
  if (!isObject(v) || !Array.isArray(v.history)) throw new UserError(`line ${lineNo}: expected {"history": [...], "next": id}`);
  const ids: unknown[] = [...(v.history as unknown[]), v.next];
  const modelSize = encoder.vocab ?? 0x80000000;
  ids.forEach((id, i) => {
    const where = i < ids.length - 1 ? `history[${i}]` : 'next';
    if (!(typeof id === 'string' || (typeof id === 'number' && Number.isSafeInteger(id)))) {
      throw new UserError(`line ${lineNo}: ${where} must be an item id (a string or an integer), got ${describe(id)}`);
    }
    const index = vocabulary.index(id);
    if (index === undefined) throw new UserError(`line ${lineNo}: ${where} = ${describe(id)} is not in the vocabulary`);
    if (index >= modelSize) throw new UserError(`line ${lineNo}: ${where} = ${describe(id)} is item ${index} of the vocabulary, but the model has items 0..${modelSize - 1}`);
  });
  return { history: v.history as ItemId[], next: v.next as ItemId };
}
