/** Reading JSON Lines files a line at a time, with byte offsets (for resuming and progress). */
import { createReadStream } from 'node:fs';

export interface Line {
  /** 1-based line number. */
  number: number;
  text: string;
  /** Byte offset just past this line (its newline included). */
  end: number;
}

/**
 * Yields every line of a file (the last one may lack a newline), or those from byte `start`,
 * which must begin line number `firstLine`. Constant memory.
 */
export async function* lines(path: string, start = 0, firstLine = 1): AsyncGenerator<Line> {
  const stream = createReadStream(path, { highWaterMark: 1 << 20, start });
  let carry: Buffer = Buffer.alloc(0);
  let offset = start;
  let number = firstLine - 1;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    let buf = carry.length ? Buffer.concat([carry, chunk]) : chunk;
    let start = 0;
    for (;;) {
      const nl = buf.indexOf(10, start);
      if (nl < 0) break;
      number++;
      offset += nl + 1 - start;
      yield { number, text: buf.toString('utf8', start, nl).replace(/\r$/, ''), end: offset };
      start = nl + 1;
    }
    carry = buf.subarray(start);
    buf = carry;
  }
  if (carry.length > 0) {
    number++;
    offset += carry.length;
    yield { number, text: carry.toString('utf8').replace(/\r$/, ''), end: offset };
  }
}
