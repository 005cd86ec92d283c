/**
 * Shards: `--shard I/N` (I 0-based, as a Kubernetes Indexed Job's JOB_COMPLETION_INDEX; `auto/N`
 * reads it from there). Each shard is one contiguous run of input lines, so the shards' outputs
 * concatenated in index order are byte for byte the whole job's output.
 *
 * A plain regular file is split by bytes: shard I takes the lines that start in
 * [floor(I*S/N), floor((I+1)*S/N)) of its S bytes, and reads only those (plus a count of the
 * newlines before them, for line numbers). A gzip file is split by lines, counted in a first pass.
 * A stream (stdin, a FIFO) cannot be split by one reader among many: its pipeline splits it.
 */
import { UserError } from '../cli/user_error.js';
import { type Input, openInput } from './input.js';
import { type Line, linesOf } from './jsonl.js';

export interface Shard {
  index: number;
  count: number;
}

/** `I/N` or `auto/N` (I from JOB_COMPLETION_INDEX), 0 <= I < N. */
export function parseShard(v: string, env: NodeJS.ProcessEnv = process.env): Shard {
  const m = /^(\d+|auto)\/(\d+)$/.exec(v);
  const count = m ? Number(m[2]) : NaN;
  if (!m || !Number.isSafeInteger(count) || count < 1) throw new UserError(`--shard must be I/N or auto/N with 0 <= I < N, got ${v}`);
  if (m[1] === 'auto') {
    const raw = env.JOB_COMPLETION_INDEX;
    if (raw === undefined) throw new UserError(`--shard ${v}: JOB_COMPLETION_INDEX is not set (it is set in the pods of a Kubernetes Indexed Job)`);
    if (!/^\d+$/.test(raw) || Number(raw) >= count) throw new UserError(`--shard ${v}: JOB_COMPLETION_INDEX must be an integer in 0..${count - 1}, got ${JSON.stringify(raw)}`);
    return { index: Number(raw), count };
  }
  const index = Number(m[1]);
  if (!Number.isSafeInteger(index) || index >= count) throw new UserError(`--shard must be I/N or auto/N with 0 <= I < N, got ${v}`);
  return { index, count };
}

/** A line (or a Parquet/Arrow row: offsets are then row numbers). */
export interface ShardLine extends Line {
  /** A record already decoded (Parquet, Arrow): `text` is then unused. */
  value?: unknown;
}

async function countNewlines(inp: Input, end: number): Promise<number> {
  let n = 0;
  let seen = 0;
  for await (const chunk of await openInput(inp)) {
    const b = chunk as Buffer;
    const upto = Math.min(b.length, end - seen);
    for (let p = b.indexOf(10); p >= 0 && p < upto; p = b.indexOf(10, p + 1)) n++;
    seen += b.length;
    if (seen >= end) break;
  }
  return n;
}

async function countLines(inp: Input): Promise<number> {
  let n = 0;
  let last = 10;
  for await (const chunk of await openInput(inp)) {
    const b = chunk as Buffer;
    for (let p = b.indexOf(10); p >= 0; p = b.indexOf(10, p + 1)) n++;
    if (b.length > 0) last = b[b.length - 1];
  }
  return last === 10 ? n : n + 1;
}

/**
 * The lines of this shard, each with its start offset. `skipLongLines`: see LinesOptions (a
 * regular file can skip a line that is too long, a stream cannot read past it).
 */
export async function* shardLines(inp: Input, shard: Shard, o: { maxLineBytes?: number; stream?: AsyncIterable<Buffer> } = {}): AsyncGenerator<ShardLine> {
  const skipLongLines = inp.regular;
  if (shard.count === 1) {
    yield* linesOf(o.stream ?? (await openInput(inp)), { maxLineBytes: o.maxLineBytes, skipLongLines });
    return;
  }
  if (!inp.regular) {
    throw new UserError(`--shard ${shard.index}/${shard.count}: --input ${inp.path} is a stream, which one reader cannot split among shards: split it upstream (Spark partitions, split -n l/N), or give a file`);
  }
  if (!inp.gzip) {
    const from = Math.floor((shard.index * inp.size) / shard.count);
    const to = Math.floor(((shard.index + 1) * inp.size) / shard.count);
    if (from === to) return;
    // From the byte before `from`: the piece up to the first newline there belongs to the previous shard.
    const before = from > 0 ? await countNewlines(inp, from - 1) : 0;
    const src = linesOf(await openInput(inp, Math.max(0, from - 1)), { start: Math.max(0, from - 1), firstLine: before + 1, maxLineBytes: o.maxLineBytes, skipLongLines });
    let first = from > 0;
    for await (const l of src) {
      if (first) {
        first = false;
        continue;
      }
      if (l.start >= to) return;
      yield l;
    }
    return;
  }
  const total = await countLines(inp);
  const a = Math.floor((shard.index * total) / shard.count);
  const b = Math.floor(((shard.index + 1) * total) / shard.count);
  for await (const l of linesOf(await openInput(inp), { maxLineBytes: o.maxLineBytes, skipLongLines })) {
    if (l.number <= a) continue;
    if (l.number > b) return;
    yield l;
  }
}
