/**
 * Opening a file that must be a regular file (catalogues, which are mapped; .npy matrices) and
 * keeping it open: the descriptor is opened without blocking (a FIFO would otherwise block the
 * open itself), then fstat'd, so the type and every size come from the very file that is read
 * and mapped, not from the path at another moment.
 */
import { type Stats, constants } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';

import { FileError, InvalidArgumentError } from './errors.js';
import { fileError, kind } from './file_check.js';
import { describe } from './validate.js';

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
 * Opens `path` read-only when it is a regular file; otherwise a FileError (`is a FIFO, not a
 * regular file`, `no such file (ENOENT)`, `permission denied (EACCES)`, …) with Node's error as
 * `cause`. The caller closes `fh`.
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
    if (!stat.isFile()) throw new FileError(path, `is ${kind(stat)}, not a regular file`);
    return { fh, stat };
  } catch (e) {
    await fh.close().catch(() => undefined);
    throw fileError(path, e);
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
