/** The score job's input as lines (JSONL) or rows (Parquet, Arrow IPC), by the input's first bytes. */
import type { Readable } from 'node:stream';

import { arrowLines, parquetLines } from './columnar_in.js';
import { type InputFormat, sniff } from './formats.js';
import { type Input, openInput } from './input.js';
import { type Shard, type ShardLine, shardLines } from './shard.js';

/** The format of a regular file, known before it is opened (streams: see inputLines). */
export function fileFormat(inp: Input): InputFormat | null {
  return inp.regular ? (inp.gzip ? 'jsonl' : sniff(inp.head)) : null;
}

export async function* inputLines(inp: Input, shard: Shard): AsyncGenerator<ShardLine> {
  let stream: Readable | undefined;
  if (!inp.regular) stream = await openInput(inp);
  const format = inp.gzip ? 'jsonl' : sniff(inp.head);
  if (format === 'parquet') yield* parquetLines(inp, shard, stream);
  else if (format === 'arrow') yield* arrowLines(inp, shard, stream);
  else yield* shardLines(inp, shard, { stream });
}
