/** Reading JSON Lines a line at a time, with byte offsets and a running CRC (for resuming and progress). */
import { createReadStream } from 'node:fs';
import { crc32 } from 'node:zlib';

import { LIMITS } from '../limits.js';

export interface Line {
  /** 1-based line number. */
  number: number;
  /** The line without its newline ('' when it is too long). */
  text: string;
  /** Byte offset of this line's first byte. */
  start: number;
  /** Byte offset just past this line (its newline included). */
  end: number;
  /** The running CRC-32 before this line. */
  crcBefore: number;
  /** CRC-32 of every byte read so far, this line's included (seeded with `crc`). */
  crc: number;
  /** The line is longer than the limit: its bytes were skipped, not kept. */
  tooLong?: boolean;
  /** With tooLong: reading stopped in this line (a stream, whose line may never end). */
  last?: boolean;
}

export interface LinesOptions {
  /** Byte offset to start at (it must begin line `firstLine`). */
  start?: number;
  firstLine?: number;
  maxLineBytes?: number;
  /** The running CRC-32 of the bytes before `start` (default 0). */
  crc?: number;
  /**
   * Skip a too-long line up to its newline and read on (a regular file, which ends); otherwise
   * stop reading at the limit (a stream such as /dev/zero may never send a newline).
   */
  skipLongLines?: boolean;
}

/**
 * Yields every line of a file (the last one may lack a newline), or those from byte `start`,
 * which must begin line number `firstLine`. Memory is bounded by the longest line kept: a line
 * longer than `maxLineBytes` is yielded with `tooLong` and no text.
 */
export function lines(path: string, o: LinesOptions = {}): AsyncGenerator<Line> {
  const start = o.start ?? 0;
  // No `start` unless resuming: a pipe or a device cannot seek. /dev/stdin is read from the
  // process's stdin, which may be a socket that the path cannot reopen.
  const stream =
    path === '/dev/stdin' && start === 0
      ? process.stdin
      : createReadStream(path, start > 0 ? { highWaterMark: 1 << 20, start } : { highWaterMark: 1 << 20 });
  return linesOf(stream, o);
}

/** The lines of a byte stream (already positioned at `o.start`, which only numbers offsets here). */
export async function* linesOf(stream: AsyncIterable<Buffer>, o: LinesOptions = {}): AsyncGenerator<Line> {
  const start = o.start ?? 0;
  const firstLine = o.firstLine ?? 1;
  const maxLineBytes = o.maxLineBytes ?? LIMITS.maxLineBytes;
  // The current line's bytes so far, as chunks (no copying until the line is complete).
  let parts: Buffer[] = [];
  let partBytes = 0;
  let skipping = false;
  let offset = start;
  let number = firstLine - 1;
  let crc = o.crc ?? 0;
  let crcBefore = crc;
  const line = (last: Buffer): Line => {
    number++;
    const start = offset;
    offset += partBytes + last.length;
    const tooLong = skipping || partBytes + last.length > maxLineBytes;
    for (const p of parts) crc = crc32(p, crc);
    crc = crc32(last, crc);
    let text = '';
    if (!tooLong) {
      const b = partBytes ? Buffer.concat([...parts, last]) : last;
      // Without its newline (and a CR before it), decoded once.
      let n = b.length;
      if (n > 0 && b[n - 1] === 10) n--;
      if (n > 0 && b[n - 1] === 13) n--;
      text = b.toString('utf8', 0, n);
    }
    parts = [];
    partBytes = 0;
    skipping = false;
    const before = crcBefore;
    crcBefore = crc;
    return tooLong ? { number, text, start, end: offset, crc, crcBefore: before, tooLong } : { number, text, start, end: offset, crc, crcBefore: before };
  };
  for await (const chunk of stream) {
    let pos = 0;
    for (;;) {
      const nl = chunk.indexOf(10, pos);
      if (nl < 0) break;
      yield line(chunk.subarray(pos, nl + 1));
      pos = nl + 1;
    }
    const rest = chunk.subarray(pos);
    if (rest.length > 0) {
      partBytes += rest.length;
      if (skipping || partBytes > maxLineBytes) {
        if (!o.skipLongLines) {
          // The stream is not read on: returning closes it.
          yield { number: number + 1, text: '', start: offset, end: offset, crc, crcBefore: crc, tooLong: true, last: true };
          return;
        }
        // The skipped bytes still count in the CRC (kept as they pass, not stored).
        for (const p of parts) crc = crc32(p, crc);
        crc = crc32(rest, crc);
        skipping = true;
        parts = [];
      } else {
        parts.push(rest);
      }
    }
  }
  if (partBytes > 0) yield line(Buffer.alloc(0));
}
