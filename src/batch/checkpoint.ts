/**
 * The `score` job's checkpoint (`<out>.progress`): how far input, output and error file have
 * got, written after the data it points past is on disk. A checkpoint that is not one (not
 * JSON, wrong fields, not a regular file) is refused with one fixed message.
 */
import { closeSync, existsSync, openSync, readFileSync, readSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { crc32 } from 'node:zlib';

import { UserError } from '../cli/user_error.js';

export interface Checkpoint {
  input: string;
  identity: string;
  excludeHistory: boolean;
  /** CRC-32 of the (up to) 64 KiB of input just before inputBytes: the part already read must not change. */
  inputTail: number;
  shard: string;
  k: number;
  nextLine: number; // first input line not yet handled
  inputBytes: number; // byte offset of nextLine
  outBytes: number;
  errorBytes: number;
  scored: number;
  errors: number;
  complete: boolean;
}

const FIELDS: Record<keyof Checkpoint, 'string' | 'boolean' | 'count' | 'positive'> = {
  input: 'string',
  identity: 'string',
  excludeHistory: 'boolean',
  inputTail: 'count',
  shard: 'string',
  k: 'positive',
  nextLine: 'positive',
  inputBytes: 'count',
  outBytes: 'count',
  errorBytes: 'count',
  scored: 'count',
  errors: 'count',
  complete: 'boolean',
};

function valid(v: unknown): v is Checkpoint {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const o = v as Record<string, unknown>;
  return Object.entries(FIELDS).every(([key, kind]) => {
    const x = o[key];
    if (kind === 'string' || kind === 'boolean') return typeof x === kind;
    return typeof x === 'number' && Number.isSafeInteger(x) && x >= (kind === 'positive' ? 1 : 0);
  });
}

/** Reads the checkpoint at `path`; a missing one and an unreadable one are UserErrors. */
export function readCheckpoint(path: string): Checkpoint {
  if (!existsSync(path)) throw new UserError(`--resume: no checkpoint ${path} (start without --resume)`);
  const unreadable = new UserError(`checkpoint ${path} is unreadable: delete it or run without --resume`);
  let v: unknown;
  try {
    // Never read a FIFO or a device: it could block forever.
    if (!statSync(path).isFile()) throw unreadable;
    v = JSON.parse(readFileSync(path, 'utf8'));
  } catch {
    throw unreadable;
  }
  if (!valid(v)) throw unreadable;
  return v;
}

/** Writes the checkpoint atomically (a temporary file renamed over it). */
export function writeCheckpoint(path: string, ck: Checkpoint): void {
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, JSON.stringify(ck));
  renameSync(tmp, path);
}

/** CRC-32 of the (up to) 64 KiB of `path` before byte `end` (a regular file). */
export function tailCrc(path: string, end: number): number {
  const len = Math.min(end, 1 << 16);
  const buf = Buffer.alloc(len);
  const fd = openSync(path, 'r');
  try {
    let got = 0;
    while (got < len) {
      const n = readSync(fd, buf, got, len - got, end - len + got);
      if (n === 0) break;
      got += n;
    }
  } finally {
    closeSync(fd);
  }
  return crc32(buf);
}
