/** Writing a file so that readers see the old content or the new, never a partial one. */
import { type FileHandle, open as openFile, rename, unlink } from 'node:fs/promises';

import { fileError } from './file_check.js';

/**
 * Writes through `write` into a temporary file beside `path`, syncs it, and renames it over
 * `path`. On failure the temporary file is removed and `path` is untouched. The OS's refusals
 * (a missing directory, a directory at `path`, no permission, a full disk) are FileErrors naming
 * `path`, with Node's error as `cause`; errors thrown by `write` pass through unchanged.
 */
export async function writeAtomically(path: string, write: (fh: FileHandle) => Promise<void>): Promise<void> {
  const tmp = `${path}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  let fh: FileHandle;
  try {
    fh = await openFile(tmp, 'w');
  } catch (e) {
    throw fileError(path, e);
  }
  try {
    await write(fh);
    await fh.sync();
    await fh.close();
    await rename(tmp, path);
  } catch (e) {
    await fh.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
    throw fileError(path, e);
  }
}
