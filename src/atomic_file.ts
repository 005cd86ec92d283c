/** Writing a file so that readers see the old content or the new, never a partial one. */
import { type FileHandle, open as openFile, rename, unlink } from 'node:fs/promises';

/**
 * Writes through `write` into a temporary file beside `path`, syncs it, and renames it over
 * `path`. On failure the temporary file is removed and `path` is untouched.
 */
export async function writeAtomically(path: string, write: (fh: FileHandle) => Promise<void>): Promise<void> {
  const tmp = `${path}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  const fh = await openFile(tmp, 'w');
  try {
    await write(fh);
    await fh.sync();
  } catch (e) {
    await fh.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
  await fh.close();
  await rename(tmp, path);
}
