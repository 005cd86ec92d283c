/**
 * Files the library reads (catalogues, which are mapped; .npy matrices, snapshots, CLI inputs):
 * opened without blocking and checked with fstat to be regular files, so a FIFO or a device never
 * blocks a caller, and Node's errors become FileErrors that name the path and keep the original
 * as `cause`.
 */
import { type Stats, closeSync, constants, fstatSync, openSync } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';

import { FileError, InvalidArgumentError } from './errors.js';
import { describe } from './validate.js';

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
function kind(s: Stats): string {
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

export interface RegularFile {
  fh: FileHandle;
  stat: Stats;
}

/** A path argument: a string without NUL bytes (Node would throw its own TypeError for one). */
export function pathArg(name: string, v: unknown): string {
  if (typeof v !== 'string') throw new InvalidArgumentError(`${name} must be a string, got ${describe(v)}`);
  if (v.includes('\0')) throw new InvalidArgumentError(`${name} must not contain NUL bytes, got ${describe(v)}`);
  return v;
}

/**
 * Opens `path` read-only when it is a regular file, and keeps it open (the caller closes `fh`):
 * the descriptor is opened without blocking (a FIFO would otherwise block the open itself), then
 * fstat'd, so the type and every size come from the very file that is read or mapped, not from
 * the path at another moment. Otherwise a FileError (`is a FIFO, not a regular file`, `no such
 * file (ENOENT)`, `permission denied (EACCES)`, …) with Node's error as `cause`.
 */
export async function openRegularFile(path: string): Promise<RegularFile> {
  let fh: FileHandle;
  try {
    fh = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    throw fileError(path, e);
  }
  try {
    const stat = await fh.stat();
    if (!stat.isFile()) throw notRegular(path, stat);
    return { fh, stat };
  } catch (e) {
    await fh.close().catch(() => undefined);
    throw fileError(path, e);
  }
}

/** Resolves with the file's size when `path` is a readable regular file; else a FileError. */
export async function regularFile(path: string): Promise<number> {
  const { fh, stat } = await openRegularFile(path);
  await fh.close();
  return stat.size;
}

/** The synchronous form of regularFile. */
export function regularFileSync(path: string): number {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    throw fileError(path, e);
  }
  try {
    const s = fstatSync(fd);
    if (!s.isFile()) throw notRegular(path, s);
    return s.size;
  } catch (e) {
    throw fileError(path, e);
  } finally {
    closeSync(fd);
  }
}

/** Reads exactly `length` bytes of `path` (open on `fh`) at `position` into a new Buffer (see readInto). */
export async function readExactly(fh: FileHandle, path: string, length: number, position: number, short: () => Error): Promise<Buffer> {
  const buf = Buffer.alloc(length);
  await readInto(fh, path, buf, position, short);
  return buf;
}

/**
 * Fills `target` from `path` (open on `fh`) at `position`. Fewer bytes (the file shrank
 * meanwhile) is `short()`'s error; an OS error is a FileError.
 */
export async function readInto(fh: FileHandle, path: string, target: Uint8Array, position: number, short: () => Error): Promise<void> {
  let done = 0;
  while (done < target.byteLength) {
    let bytesRead: number;
    try {
      ({ bytesRead } = await fh.read(target, done, target.byteLength - done, position + done));
    } catch (e) {
      throw fileError(path, e);
    }
    if (bytesRead === 0) throw short();
    done += bytesRead;
  }
}
