/**
 * Parquet and Arrow IPC inputs of `recscore score`: columns `user` (string or integer) and
 * `history` (list of integers or strings), one user per row. Rows are numbered from 1 like lines
 * (an error names "line N" for row N) and carry a running CRC-32 of their contents, so --resume
 * and shards work as on JSONL. Shards take contiguous runs of rows.
 */
import { readFileSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { crc32 } from 'node:zlib';

import { UserError } from '../cli/user_error.js';
import { loadArrow, loadHyparquet } from './formats.js';
import { type Input, openInput } from './input.js';
import type { Shard, ShardLine } from './shard.js';

/** A column value as JSON would give it: integers as numbers (bigints beyond 2^53 stay bigints: an error later). */
function plain(v: unknown): unknown {
  if (typeof v === 'bigint') return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  if (v === null || v === undefined || typeof v !== 'object') return v ?? null;
  if (ArrayBuffer.isView(v) || Array.isArray(v)) return Array.from(v as ArrayLike<unknown>, plain);
  const it = v as { toArray?: () => ArrayLike<unknown> };
  if (typeof it.toArray === 'function') return Array.from(it.toArray(), plain); // an Arrow vector
  return v;
}

const json = (v: unknown): string => JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? `${x}n` : x));

/** Rows (0-based `index` from `first`) as lines: numbered, with offsets in rows and the running CRC. */
function rowLine(user: unknown, history: unknown, index: number, crcBefore: number): ShardLine {
  const value = { user: plain(user), history: plain(history) };
  const crc = crc32(`${json(value)}\n`, crcBefore);
  return { number: index + 1, text: '', start: index, end: index + 1, crc, crcBefore, value };
}

function range(total: number, shard: Shard): [number, number] {
  return [Math.floor((shard.index * total) / shard.count), Math.floor(((shard.index + 1) * total) / shard.count)];
}

async function readAll(s: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of s) parts.push(c);
  return Buffer.concat(parts);
}

function missing(inp: Input, kind: string, names: string[]): UserError {
  return new UserError(`--input ${inp.path}: the ${kind} input needs the columns "user" and "history", it has ${names.map((n) => JSON.stringify(n)).join(', ') || 'none'}`);
}

/** The rows of a Parquet input (a stream is read whole first: Parquet's index is at its end). */
export async function* parquetLines(inp: Input, shard: Shard, stream?: Readable): AsyncGenerator<ShardLine> {
  const hp = await loadHyparquet();
  let file: import('hyparquet').AsyncBuffer;
  if (inp.regular) {
    file = await hp.asyncBufferFromFile(inp.path);
  } else {
    const b = await readAll(stream ?? (await openInput(inp)));
    file = b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
  }
  let metadata: import('hyparquet').FileMetaData;
  try {
    metadata = await hp.parquetMetadataAsync(file);
  } catch (e) {
    throw new UserError(`--input ${inp.path}: not a readable Parquet file (${(e as Error).message})`);
  }
  const names = hp.parquetSchema(metadata).children.map((c) => c.element.name);
  if (!names.includes('user') || !names.includes('history')) throw missing(inp, 'Parquet', names);
  const [a, b] = range(Number(metadata.num_rows), shard);
  let crc = 0;
  let groupStart = 0;
  // Row group by row group: memory holds one group's rows.
  for (const g of metadata.row_groups) {
    const groupEnd = groupStart + Number(g.num_rows);
    const from = Math.max(a, groupStart);
    const to = Math.min(b, groupEnd);
    if (from < to) {
      let rows: Array<Record<string, unknown>>;
      try {
        rows = (await hp.parquetReadObjects({ file, metadata, columns: ['user', 'history'], rowStart: from, rowEnd: to })) as Array<Record<string, unknown>>;
      } catch (e) {
        throw new UserError(`--input ${inp.path}: rows ${from + 1}..${to} cannot be read (${(e as Error).message})`);
      }
      for (let i = 0; i < rows.length; i++) {
        const line = rowLine(rows[i].user, rows[i].history, from + i, crc);
        crc = line.crc;
        yield line;
      }
    }
    groupStart = groupEnd;
    if (groupStart >= b) break;
  }
}

/** The rows of an Arrow IPC input, file or stream format (a file format input is read whole). */
export async function* arrowLines(inp: Input, shard: Shard, stream?: Readable): AsyncGenerator<ShardLine> {
  const arrow = await loadArrow();
  const open = async (s?: Readable): Promise<AsyncIterable<import('apache-arrow').RecordBatch>> => {
    try {
      if (inp.regular && inp.head.subarray(0, 6).toString('latin1') === 'ARROW1') return arrow.RecordBatchReader.from(readFileSync(inp.path));
      return await arrow.RecordBatchReader.from(s ?? (await openInput(inp)));
    } catch (e) {
      throw new UserError(`--input ${inp.path}: not a readable Arrow IPC file or stream (${(e as Error).message})`);
    }
  };
  let a = 0;
  let b = Number.MAX_SAFE_INTEGER;
  if (shard.count > 1) {
    let total = 0;
    for await (const batch of await open()) total += batch.numRows;
    [a, b] = range(total, shard);
  }
  let index = 0;
  let crc = 0;
  try {
    for await (const batch of await open(stream)) {
      const user = batch.getChild('user');
      const history = batch.getChild('history');
      if (!user || !history) throw missing(inp, 'Arrow', batch.schema.fields.map((f) => f.name));
      for (let i = 0; i < batch.numRows; i++, index++) {
        if (index < a) continue;
        if (index >= b) return;
        const line = rowLine(user.get(i), history.get(i), index, crc);
        crc = line.crc;
        yield line;
      }
    }
  } catch (e) {
    if (e instanceof UserError) throw e;
    throw new UserError(`--input ${inp.path}: not a readable Arrow IPC file or stream (${(e as Error).message})`);
  }
}
