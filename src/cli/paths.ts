/** The command line's checks of the paths it is given: one line naming the flag and the path. */
import { statSync } from 'node:fs';
import { dirname } from 'node:path';

import { FileError } from '../errors.js';
import { fileError, regularFileSync } from '../file_check.js';
import { UserError } from './user_error.js';

/** A FileError (or Node's error for `path`) as a UserError that starts with the flag. */
export function flagError(flag: string, path: string, e: unknown): unknown {
  const f = fileError(path, e);
  return f instanceof FileError ? new UserError(`${flag} ${f.message}`) : f;
}

/** A file that is read whole or mapped (model, catalogue, .npy, ids): a readable regular file. */
export function regularInput(flag: string, path: string): void {
  try {
    regularFileSync(path);
  } catch (e) {
    throw flagError(flag, path, e);
  }
}

/**
 * An input read as a stream (`--input`): a regular file, a FIFO or a device such as /dev/stdin;
 * not missing, not a directory. Returns whether it is a regular file (seekable: progress in
 * percent, --resume).
 */
export function streamInput(flag: string, path: string): boolean {
  try {
    const s = statSync(path);
    if (s.isDirectory()) throw new FileError(path, 'is a directory, not a file');
    return s.isFile();
  } catch (e) {
    throw flagError(flag, path, e);
  }
}

/** An output path: missing or a regular file, in a directory that exists. */
export function outputPath(flag: string, path: string): void {
  let s;
  try {
    s = statSync(path);
  } catch {
    const dir = dirname(path);
    let d;
    try {
      d = statSync(dir);
    } catch (e) {
      throw new UserError(`${flag} ${path}: cannot use the directory ${dir} (${(e as { code?: string }).code ?? 'unreachable'})`);
    }
    if (!d.isDirectory()) throw new UserError(`${flag} ${path}: ${dir} is not a directory`);
    return;
  }
  if (!s.isFile()) throw new UserError(`${flag} ${path}: is ${s.isDirectory() ? 'a directory' : 'not a regular file'}`);
}
