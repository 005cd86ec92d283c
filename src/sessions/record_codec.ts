/**
 * The binary form of a session record, as RedisSessionStore keeps it (one Redis string per user).
 *
 *   offset  size  field
 *   0       4     magic "RSR" and the layout version (1)
 *   4       8     version (float64 LE; a safe integer)
 *   12      8     write tag (random bytes, new on every write: the compare-and-set compares
 *                 version and tag, so a record deleted and written again is not mistaken for
 *                 the one an update read)
 *   20      8     lastSeen (float64 LE, ms since the epoch)
 *   28      4     state length in floats (uint32 LE; 0xffffffff when the state is null)
 *   32      4     model length in bytes (uint32 LE)
 *   36      …     model (UTF-8), then the state (float32 LE), then the history (msgpackr array)
 */
import { randomBytes } from 'node:crypto';

import { pack, unpack } from 'msgpackr';

import type { ItemId } from '../catalogue/catalogue.js';
import { InvalidArgumentError } from '../errors.js';
import { describe } from '../validate.js';
import type { SessionContents, SessionRecord } from './store.js';

const MAGIC = [0x52, 0x53, 0x52, 0x01]; // "RSR" + layout 1
const HEADER = 36;
const NO_STATE = 0xffffffff;
/** Bytes [CAS_START, CAS_END] (inclusive, as GETRANGE takes them) are what a compare-and-set compares. */
export const CAS_START = 4;
export const CAS_END = 19;
const LITTLE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** A value that is not a session record in this layout. */
export class RecordFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RecordFormatError';
  }
}

/** A fresh 8-byte write tag. */
export function newTag(): Buffer {
  return randomBytes(8);
}

/** The bytes a compare-and-set expects for this encoded record (version and tag). */
export function casBytes(encoded: Uint8Array): Buffer {
  return Buffer.from(encoded.buffer, encoded.byteOffset + CAS_START, CAS_END - CAS_START + 1);
}

/** Encodes a record; `tag` is the write's tag (newTag()). */
export function encodeRecord(r: SessionRecord, tag: Uint8Array): Buffer {
  if (tag.byteLength !== 8) throw new RangeError('a write tag is 8 bytes');
  const model = Buffer.from(r.model, 'utf8');
  const history = pack(r.history);
  const stateBytes = r.state ? r.state.byteLength : 0;
  const out = Buffer.allocUnsafe(HEADER + model.byteLength + stateBytes + history.byteLength);
  out.set(MAGIC, 0);
  out.writeDoubleLE(r.version, 4);
  out.set(tag, 12);
  out.writeDoubleLE(r.lastSeen, 20);
  out.writeUInt32LE(r.state ? r.state.length : NO_STATE, 28);
  out.writeUInt32LE(model.byteLength, 32);
  let at = HEADER;
  out.set(model, at);
  at += model.byteLength;
  if (r.state) {
    const src = new Uint8Array(r.state.buffer, r.state.byteOffset, stateBytes);
    if (LITTLE) out.set(src, at);
    else for (let i = 0; i < r.state.length; i++) out.writeFloatLE(r.state[i], at + 4 * i);
    at += stateBytes;
  }
  out.set(history, at);
  return out;
}

/** Decodes a record; throws RecordFormatError for anything that is not one. */
export function decodeRecord(b: Uint8Array): SessionRecord {
  const buf = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  if (buf.byteLength < HEADER) throw new RecordFormatError(`a session record is at least ${HEADER} bytes, got ${buf.byteLength}`);
  for (let i = 0; i < 4; i++) if (buf[i] !== MAGIC[i]) throw new RecordFormatError('not a recscore session record (bad magic)');
  const version = buf.readDoubleLE(4);
  const lastSeen = buf.readDoubleLE(20);
  const n = buf.readUInt32LE(28);
  const modelLen = buf.readUInt32LE(32);
  if (!Number.isSafeInteger(version) || version < 1) throw new RecordFormatError(`bad version ${version}`);
  if (!Number.isFinite(lastSeen)) throw new RecordFormatError('bad lastSeen');
  const stateBytes = n === NO_STATE ? 0 : n * 4;
  let at = HEADER;
  if (at + modelLen + stateBytes > buf.byteLength) throw new RecordFormatError('truncated record');
  const model = buf.toString('utf8', at, at + modelLen);
  at += modelLen;
  let state: Float32Array | null = null;
  if (n !== NO_STATE) {
    state = new Float32Array(n);
    const dst = new Uint8Array(state.buffer);
    if (LITTLE) dst.set(buf.subarray(at, at + stateBytes));
    else for (let i = 0; i < n; i++) state[i] = buf.readFloatLE(at + 4 * i);
    at += stateBytes;
  }
  let history: unknown;
  try {
    history = unpack(buf.subarray(at));
  } catch (e) {
    throw new RecordFormatError(`bad history: ${(e as Error).message}`);
  }
  if (!Array.isArray(history) || !history.every((id) => typeof id === 'string' || (typeof id === 'number' && Number.isSafeInteger(id)))) {
    throw new RecordFormatError('the history is not an array of ids');
  }
  return { state, history: history as ItemId[], version, lastSeen, model };
}

// Shared by the stores: checks of users and contents, and the per-user ordering of updates.

/** A `ttlMs` option: a positive number of ms (Infinity: no expiry), `fallback` when undefined. */
export function ttlOption(name: string, v: unknown, fallback: number): number {
  if (v === undefined) return fallback;
  if (typeof v !== 'number' || !(v > 0)) throw new InvalidArgumentError(`${name} must be a positive number of ms, got ${describe(v)}`);
  return v;
}

/** A user id: a string or a safe integer (as the engine takes them). */
export function checkUser(user: unknown): asserts user is ItemId {
  if (!(typeof user === 'string' || (typeof user === 'number' && Number.isSafeInteger(user)))) {
    throw new InvalidArgumentError(`user must be a string or a safe integer, got ${describe(user)}`);
  }
}

/** What an update's fn returned, checked, with the history cut to its last `historyLimit` ids. */
export function checkContents(c: unknown, historyLimit: number): SessionContents {
  if (c === null || typeof c !== 'object') throw new InvalidArgumentError(`an update must return { state, history, model } or null, got ${describe(c)}`);
  const { state, history, model } = c as Record<string, unknown>;
  if (state !== null && !(state instanceof Float32Array)) throw new InvalidArgumentError(`an update's state must be a Float32Array or null, got ${describe(state)}`);
  if (!Array.isArray(history)) throw new InvalidArgumentError(`an update's history must be an array of ids, got ${describe(history)}`);
  for (const id of history) {
    if (!(typeof id === 'string' || (typeof id === 'number' && Number.isSafeInteger(id)))) {
      throw new InvalidArgumentError(`an update's history must hold strings and safe integers, got ${describe(id)}`);
    }
  }
  if (typeof model !== 'string') throw new InvalidArgumentError(`an update's model must be a string, got ${describe(model)}`);
  return { state, history: history.length > historyLimit ? history.slice(-historyLimit) : history, model };
}
