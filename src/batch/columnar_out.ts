/**
 * What the score job writes, by format: JSONL lines, Parquet row groups or Arrow IPC record
 * batches (file or stream), each over a byte sink (a file or stdout). Columns: `user` (integers
 * when the first user is an integer, else strings), `items` (list of integers, or of strings for
 * SKU ids) and `scores` (list of float32).
 *
 * Parquet and Arrow files end in a footer written once, at the end (`finish`), also when the job
 * stops early (a signal, too many bad lines): the file then holds the users scored so far.
 */
import type { ItemId } from '../catalogue/catalogue.js';
import { type Arrow, type OutputFormat, loadArrow, loadHyparquetWriter } from './formats.js';
import type { Sink } from './output.js';

export interface OutRow {
  user: ItemId;
  items: ItemId[];
  scores: number[];
}

export interface RecordSink {
  /** Why this user cannot go in the output's user column (null: it can). */
  userError(user: ItemId): string | null;
  write(rows: OutRow[]): Promise<void>;
  /** Writes what is buffered and the format's end (footer, end-of-stream). */
  finish(): Promise<void>;
  readonly bytes: Sink;
}

/** JSONL: one JSON object per line, written as it comes. */
function jsonlSink(bytes: Sink): RecordSink {
  return {
    bytes,
    userError: () => null,
    async write(rows) {
      let text = '';
      for (const r of rows) text += `${JSON.stringify(r)}\n`;
      await bytes.write(text);
    },
    async finish() {},
  };
}

/** The user column's type, fixed by the first user: integers, or strings (numbers written as text). */
function userColumn(): { error(user: ItemId): string | null; readonly integer: boolean } {
  let integer: boolean | null = null;
  return {
    get integer() {
      return integer === true;
    },
    error(user) {
      const isInt = typeof user === 'number' && Number.isSafeInteger(user);
      if (integer === null) integer = isInt;
      return integer && !isInt ? `"user" = ${JSON.stringify(user)} is not an integer, as this output's user column is (set by the first user)` : null;
    },
  };
}

async function parquetSink(bytes: Sink, stringItems: boolean): Promise<RecordSink> {
  const hw = await loadHyparquetWriter();
  const users = userColumn();
  const ROWS = 16_384; // per row group
  let buffered: OutRow[] = [];
  let pw: InstanceType<typeof hw.ParquetWriter> | null = null;
  const out = new hw.ByteWriter();
  const pending: Uint8Array[] = [];
  // Called by the writer after each row group; bytes go to the sink at the next drain.
  const flush = (): void => {
    if (out.index > 0) pending.push(new Uint8Array(out.buffer, 0, out.index).slice());
    out.index = 0;
  };
  (out as unknown as { flush: () => void }).flush = flush;
  const drain = async (): Promise<void> => {
    for (const b of pending.splice(0)) await bytes.write(b);
  };
  const list = (name: string, type: 'INT64' | 'FLOAT' | 'BYTE_ARRAY', utf8 = false): import('hyparquet').SchemaElement[] => [
    { name, repetition_type: 'REQUIRED', converted_type: 'LIST', num_children: 1 },
    { name: 'list', repetition_type: 'REPEATED', num_children: 1 },
    { name: 'element', type, repetition_type: 'REQUIRED', ...(utf8 ? { converted_type: 'UTF8' as const } : {}) },
  ];
  const group = async (): Promise<void> => {
    if (buffered.length === 0 && pw) return;
    if (!pw) {
      const schema: import('hyparquet').SchemaElement[] = [
        { name: 'root', num_children: 3 },
        users.integer ? { name: 'user', type: 'INT64', repetition_type: 'REQUIRED' } : { name: 'user', type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'REQUIRED' },
        ...(stringItems ? list('items', 'BYTE_ARRAY', true) : list('items', 'INT64')),
        ...list('scores', 'FLOAT'),
      ];
      // No min/max statistics (nobody filters on these lists); scores are plain floats (a dictionary of distinct floats does not pay).
      pw = new hw.ParquetWriter({ writer: out, schema, createdBy: 'recscore', statistics: false });
    }
    if (buffered.length > 0) {
      const rows = buffered;
      buffered = [];
      await pw.write({
        columnData: [
          { name: 'user', data: rows.map((r) => (users.integer ? BigInt(r.user) : String(r.user))) },
          { name: 'items', data: rows.map((r) => (stringItems ? r.items.map(String) : r.items.map((i) => BigInt(i)))) },
          { name: 'scores', data: rows.map((r) => r.scores), encoding: 'PLAIN' },
        ],
        rowGroupSize: rows.length,
      });
    }
    await drain();
  };
  return {
    bytes,
    userError: (u) => users.error(u),
    async write(rows) {
      buffered.push(...rows);
      if (buffered.length >= ROWS) await group();
    },
    async finish() {
      await group();
      pw?.finish();
      flush();
      await drain();
    },
  };
}

async function arrowSink(bytes: Sink, stringItems: boolean, file: boolean): Promise<RecordSink> {
  const arrow: Arrow = await loadArrow();
  const users = userColumn();
  const { Field, List, Int64, Utf8, Float32, Schema, Struct, RecordBatch, makeData, vectorFromArray } = arrow;
  let writer: import('apache-arrow').RecordBatchWriter | null = null;
  let schema: import('apache-arrow').Schema | null = null;
  const pending: Uint8Array[] = [];
  const start = (): void => {
    const userType = users.integer ? new Int64() : new Utf8();
    schema = new Schema([
      new Field('user', userType, false),
      new Field('items', new List(new Field('item', stringItems ? new Utf8() : new Int64(), false)), false),
      new Field('scores', new List(new Field('item', new Float32(), false)), false),
    ]);
    writer = file ? new arrow.RecordBatchFileWriter() : new arrow.RecordBatchStreamWriter();
    // The writer's byte queue, drained after each batch into the sink (which applies backpressure).
    (writer as unknown as { _sink: { write(b: Uint8Array): void } })._sink.write = (b: Uint8Array) => void pending.push(b);
  };
  const drain = async (): Promise<void> => {
    for (const b of pending.splice(0)) await bytes.write(b);
  };
  const batch = async (rows: OutRow[]): Promise<void> => {
    if (!writer) start();
    const s = schema as import('apache-arrow').Schema;
    const cols = [
      vectorFromArray(rows.map((r) => (users.integer ? BigInt(r.user) : String(r.user))), s.fields[0].type),
      vectorFromArray(rows.map((r) => (stringItems ? r.items.map(String) : r.items.map((i) => BigInt(i)))), s.fields[1].type),
      vectorFromArray(rows.map((r) => r.scores), s.fields[2].type),
    ];
    const data = makeData({ type: new Struct(s.fields), length: rows.length, nullCount: 0, children: cols.map((c) => c.data[0]) });
    writer?.write(new RecordBatch(s, data));
    await drain();
  };
  return {
    bytes,
    userError: (u) => users.error(u),
    async write(rows) {
      if (rows.length > 0) await batch(rows);
    },
    async finish() {
      if (!writer) {
        // No user at all: the schema and one empty batch, so that a reader sees a valid, empty input.
        users.error('');
        await batch([]);
      }
      writer?.finish();
      await drain();
    },
  };
}

/** The record sink of `format` over `bytes`; `stringItems`: item ids are strings (SKUs). */
export async function recordSink(format: OutputFormat, bytes: Sink, stringItems: boolean): Promise<RecordSink> {
  if (format === 'parquet') return parquetSink(bytes, stringItems);
  if (format === 'arrow' || format === 'arrows') return arrowSink(bytes, stringItems, format === 'arrow');
  return jsonlSink(bytes);
}
