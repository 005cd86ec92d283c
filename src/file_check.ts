/**
 * Files the library reads whole (models, snapshots): checked to be regular files before they
 * are read, so a FIFO or a device never blocks a caller, and Node's errors become FileErrors
 * that name the path and keep the original as `cause`.
 */
import { type Stats, closeSync, constants, fstatSync, openSync, statSync } from 'node:fs';
import { open, stat } from 'node:fs/promises';

import { FileError } from './errors.js';

const REASONS: Record<string, string> = {
  ENOENT: 'no such file',
  ENOTDIR: 'a component of the path is not a directory',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  ELOOP: 'too many symbolic links',
  ENAMETOOLONG: 'the path is too long',
  EISDIR: 'is a directory',
};

/** Node's error for `path` as a FileError (anything else is returned as it is). */
export function fileError(path: string, e: unknown): Error {
  if (e instanceof FileError) return e;
  const code = (e as { code?: unknown } | null)?.code;
  // errno codes (ENOENT, EISDIR, …) and Node's refusal of the path itself (a NUL byte in it).
  if (typeof code !== 'string' || !/^(E[A-Z0-9]+|ERR_INVALID_ARG_VALUE|ERR_INVALID_ARG_TYPE)$/.test(code)) {
    return e instanceof Error ? e : new Error(String(e));
  }
  return new FileError(path, `${REASONS[code] ?? (e as Error).message} (${code})`, { cause: e });
}

/** What a path is when it is not a regular file, for messages (`is a FIFO, not a regular file`). */
export function kind(s: Stats): string {
  if (s.isDirectory()) return 'a directory';
  if (s.isFIFO()) return 'a FIFO';
  if (s.isSocket()) return 'a socket';
  if (s.isCharacterDevice()) return 'a character device';
  if (s.isBlockDevice()) return 'a block device';
  return 'not a regular file';
}

function notRegular(path: string, s: Stats): FileError {
  return new FileError(path, `is ${kind(s)}, not a regular file`);
}

/** Resolves with the file's size when `path` is a readable regular file; else a FileError. */
export async function regularFile(path: string): Promise<number> {
  let s: Stats;
  try {
    s = await stat(path);
  } catch (e) {
    throw fileError(path, e);
  }
  if (!s.isFile()) throw notRegular(path, s);
  // Opening proves it readable; O_NONBLOCK so that a file swapped for a FIFO meanwhile cannot block.
  try {
    const fh = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
    try {
      s = await fh.stat();
    } finally {
      await fh.close();
    }
  } catch (e) {
    throw fileError(path, e);
  }
  if (!s.isFile()) throw notRegular(path, s);
  return s.size;
}

/** The synchronous form of regularFile. */
export function regularFileSync(path: string): number {
  let s: Stats;
  try {
    s = statSync(path);
    if (!s.isFile()) throw notRegular(path, s);
    const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
    try {
      s = fstatSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch (e) {
    throw fileError(path, e);
  }
  if (!s.isFile()) throw notRegular(path, s);
  return s.size;
}
