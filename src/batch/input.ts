/**
 * The score job's input: a regular file, a FIFO or a device, or stdin (`-`), plain or gzip
 * (recognised by its first two bytes, 1f 8b, whatever the name). Bytes are read as streams, so
 * memory stays bounded and a slow consumer holds the reader back (backpressure).
 */
import { closeSync, createReadStream, fstatSync, openSync, readSync } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream';
import { createGunzip } from 'node:zlib';

import { flagError, streamInput } from '../cli/paths.js';
import { UserError } from '../cli/user_error.js';

export interface Input {
  /** As given on the command line ('-' for stdin). */
  path: string;
  stdin: boolean;
  /** A regular file (it has a size; it can be read twice, e.g. to resume a sharded job). */
  regular: boolean;
  /** Bytes on disk (regular files). */
  size: number;
  /** Gzip-compressed (regular files: known up front; streams: found when opened). */
  gzip: boolean;
  /** The first (up to) 8 bytes (regular files: known up front; streams: once opened). */
  head: Buffer;
}

function isGzip(b: Buffer): boolean {
  return b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b;
}

/** Checks `--input` (a usage error names the flag and the path) and sniffs gzip in a regular file. */
export function checkInput(flag: string, path: string): Input {
  if (path === '-' || path === '/dev/stdin') return { path, stdin: true, regular: false, size: 0, gzip: false, head: Buffer.alloc(0) };
  const regular = streamInput(flag, path);
  if (!regular) return { path, stdin: false, regular, size: 0, gzip: false, head: Buffer.alloc(0) };
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    throw flagError(flag, path, e);
  }
  try {
    const head = Buffer.alloc(8);
    const n = readSync(fd, head, 0, 8, 0);
    return { path, stdin: false, regular, size: fstatSync(fd).size, gzip: isGzip(head.subarray(0, n)), head: head.subarray(0, n) };
  } finally {
    closeSync(fd);
  }
}

/** The first `n` bytes of a stream, put back so that reading starts from them again. */
async function peek(stream: Readable, n: number): Promise<Buffer> {
  const got: Buffer[] = [];
  let bytes = 0;
  while (bytes < n) {
    const chunk = stream.read() as Buffer | null;
    if (chunk !== null) {
      got.push(chunk);
      bytes += chunk.length;
      continue;
    }
    if (stream.readableEnded) break;
    const ended = await new Promise<boolean>((resolve, reject) => {
      const done = (end: boolean) => () => {
        stream.off('readable', onReadable);
        stream.off('end', onEnd);
        stream.off('error', onError);
        resolve(end);
      };
      const onReadable = done(false);
      const onEnd = done(true);
      const onError = (e: Error): void => {
        stream.off('readable', onReadable);
        stream.off('end', onEnd);
        reject(e);
      };
      stream.once('readable', onReadable);
      stream.once('end', onEnd);
      stream.once('error', onError);
    });
    if (ended) break;
  }
  const head = Buffer.concat(got);
  if (head.length > 0) stream.unshift(head);
  return head;
}

/**
 * The input's (decompressed) bytes from byte `start` (only a plain regular file starts past 0).
 * Gzip is decompressed through zlib in a stream pipeline: errors of either end reach the reader.
 */
export async function openInput(inp: Input, start = 0): Promise<Readable> {
  const raw: Readable = inp.stdin ? process.stdin : createReadStream(inp.path, start > 0 ? { highWaterMark: 1 << 20, start } : { highWaterMark: 1 << 20 });
  if (start > 0 && (inp.gzip || !inp.regular)) throw new Error(`openInput: cannot start a stream or a gzip file at byte ${start}`);
  if (!inp.regular) inp.head = (await peek(raw, 8)).subarray(0, 8);
  const gzip = inp.regular ? inp.gzip : isGzip(inp.head);
  inp.gzip = gzip;
  if (!gzip) return raw;
  const gunzip = createGunzip({ chunkSize: 1 << 20 });
  const out = pipeline(raw, gunzip, () => undefined) as unknown as Readable;
  // A corrupt gzip stream is a fault of the input, not of recscore.
  return wrapErrors(out, inp.path);
}

function wrapErrors(s: Readable, path: string): Readable {
  const it = async function* (): AsyncGenerator<Buffer> {
    try {
      for await (const chunk of s) yield chunk as Buffer;
    } catch (e) {
      const code = (e as { code?: string }).code ?? '';
      if (code.startsWith('Z_')) throw new UserError(`--input ${path === '-' ? '-' : path}: not a valid gzip stream (${(e as Error).message})`);
      throw e;
    }
  };
  return Readable.from(it(), { objectMode: false });
}
