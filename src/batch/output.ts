/**
 * Where the score job writes: a file (positional writes, synced before each checkpoint, cut back
 * to the last checkpoint on --resume) or stdout (`-`, writes wait for 'drain': a slow reader
 * holds the job back). A `.gz` file gets one gzip member per committed batch, so a file cut back
 * to a checkpoint is still a whole gzip stream (gzip, zcat, DuckDB and Python read members on).
 * A reader that goes away (EPIPE: `| head -1`) marks the sink closed; the job then ends quietly.
 */
import { closeSync, fdatasync, ftruncateSync, openSync, statSync, writeSync } from 'node:fs';
import { promisify } from 'node:util';
import { gzip as gzipCb } from 'node:zlib';

import { flagError } from '../cli/paths.js';

const gzip = promisify(gzipCb);
const fdatasyncAsync = promisify(fdatasync);

export interface Sink {
  /** Appends bytes (for a .gz file, one compressed member). */
  write(data: string | Uint8Array): Promise<void>;
  /** Bytes written so far. */
  position(): number;
  /** Makes what was written so far durable (a file: fdatasync, off the main thread). */
  sync(): Promise<void>;
  /** The reader went away (stdout only). */
  readonly closed: boolean;
  /** Waits for the writes under way, then closes. */
  close(): Promise<void>;
}

/** A file sink at `path`, truncated to `keep` bytes (null: a new file); `.gz` gzips when `text`. */
export function fileSink(flag: string, path: string, keep: number | null, text = true): Sink {
  let fd: number;
  try {
    fd = openSync(path, keep === null ? 'w' : 'r+');
  } catch (e) {
    throw flagError(flag, path, e);
  }
  let pos = keep ?? 0;
  if (keep !== null) ftruncateSync(fd, keep);
  const compress = text && path.endsWith('.gz');
  return {
    closed: false,
    async write(data: string | Uint8Array): Promise<void> {
      if (data.length === 0) return;
      const bytes = compress ? await gzip(data) : typeof data === 'string' ? Buffer.from(data) : data;
      let done = 0;
      while (done < bytes.length) done += writeSync(fd, bytes, done, bytes.length - done, pos + done);
      pos += bytes.length;
    },
    position: () => pos,
    // Off the main thread: the job scores and parses on while the disk catches up.
    sync: () => fdatasyncAsync(fd),
    async close(): Promise<void> {
      closeSync(fd);
    },
  };
}

/**
 * The size of what is at `path`, or -1 when nothing is. Only stat: opening a FIFO with no writer
 * would block the main thread forever (callers that read the file check that it is a regular one).
 */
export function sizeOf(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return -1;
  }
}

/** Whether `path` is a regular file of 0 bytes (stat only). */
export function isEmptyFile(path: string): boolean {
  try {
    const st = statSync(path);
    return st.isFile() && st.size === 0;
  } catch {
    return false;
  }
}

/** Writes to stdout with backpressure; EPIPE (the reader is gone) closes it quietly. */
export function stdoutSink(stream: NodeJS.WritableStream & { writableNeedDrain?: boolean } = process.stdout): Sink {
  let closed = false;
  let written = 0;
  let wake: (() => void) | null = null;
  stream.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE' || e.code === 'ERR_STREAM_DESTROYED') {
      closed = true;
      wake?.();
      return;
    }
    throw e;
  });
  return {
    get closed() {
      return closed;
    },
    async write(data: string | Uint8Array): Promise<void> {
      if (closed || data.length === 0) return;
      const bytes = typeof data === 'string' ? Buffer.from(data) : data;
      written += bytes.length;
      if (stream.write(bytes)) return;
      await new Promise<void>((resolve) => {
        wake = resolve;
        stream.once('drain', resolve);
      });
      wake = null;
    },
    position: () => written,
    sync: async () => undefined,
    async close(): Promise<void> {
      // process.stdout is never closed by the job: Node flushes it on exit.
    },
  };
}
