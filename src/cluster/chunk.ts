/**
 * Scoring one chunk (a byte range of consecutive input lines) into `part-NNNNN`, with the score
 * job's own pieces (line parsing, id resolution, the batch scorer, the JSONL record writer), so
 * the parts concatenated in name order are the bytes `recscore score` writes for the whole input.
 *
 * The part is written under a temporary name, synced, and renamed: it is whole or absent. Bad
 * lines within --max-errors go to `errors-NNNNN.jsonl` (committed before the part); one more
 * fails the chunk with a ChunkDataError naming the lines.
 */
import { closeSync, createReadStream, existsSync, fsyncSync, mkdirSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

import type { Catalogue } from '../catalogue/catalogue.js';
import type { Encoder } from '../encoder/encoder.js';
import { recordSink, type OutRow } from '../batch/columnar_out.js';
import { linesOf } from '../batch/jsonl.js';
import { fileSink } from '../batch/output.js';
import { type Entry, batchScorer, lineEntry } from '../batch/score_batch.js';
import { IdResolver, type Vocabulary } from '../batch/vocabulary.js';
import type { Level } from '../native/addon.js';
import { type ChunkPlan, type JobOptions, partName } from './manifest.js';

/** The chunk's lines hold more bad lines than --max-errors allows: retrying cannot help. */
export class ChunkDataError extends Error {
  constructor(
    message: string,
    readonly lines: number[],
  ) {
    super(message);
    this.name = 'ChunkDataError';
  }
}

/** The input is not what the manifest describes (changed since submission). */
export class InputChangedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InputChangedError';
  }
}

export interface ChunkJob {
  input: string;
  outDir: string;
  chunk: ChunkPlan;
  total: number;
  options: JobOptions;
  encoder: Encoder;
  catalogue: Catalogue;
  vocabulary: Vocabulary | null;
  threads: number;
  isa?: Level;
  /** How history ids resolve (default: against `catalogue`); a split job's part resolves against all parts. */
  ids?: IdResolver;
  /**
   * A split catalogue's part: write the chunk's partial top-k to `path` instead of its part, each
   * line {u, i, s, r} with global rows (row + offset), bad lines inline ({line, error}).
   */
  partial?: { path: string; offset: number };
}

function blank(text: string): boolean {
  return text.trim() === '';
}

function syncFile(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function syncDir(dir: string): void {
  try {
    syncFile(dir);
  } catch {
    // Some filesystems cannot sync a directory: the rename is still atomic.
  }
}

/** Scores the chunk and commits its part (a no-op when the part exists). Returns users scored and bad lines. */
export async function scoreChunk(j: ChunkJob): Promise<{ scored: number; errors: number; skipped: boolean }> {
  const part = j.partial ? j.partial.path : join(j.outDir, partName(j.chunk.index, j.total));
  if (existsSync(part)) return { scored: 0, errors: 0, skipped: true };
  const o = j.options;
  const ids = j.ids ?? new IdResolver(j.catalogue, j.vocabulary);
  const scoreEntries = batchScorer({ encoder: j.encoder, catalogue: j.catalogue, ids, k: o.k, excludeHistory: o.excludeHistory, threads: j.threads, isa: j.isa });
  // Hidden (a leading dot): a `part-*` glob never sees a half-written part a killed worker left.
  const tmp = j.partial ? `${part}.${process.pid}.tmp` : join(j.outDir, `.${partName(j.chunk.index, j.total)}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`);
  if (j.partial) mkdirSync(dirname(part), { recursive: true });
  const sink = fileSink('--out-dir', tmp, null);
  const records = await recordSink('jsonl', sink, ids.vocabulary !== null || ids.stringIds);
  const c = j.chunk;
  let scored = 0;
  const bad: Array<{ line: number; error: string }> = [];
  let crc = c.crcBefore;
  let lines = 0;
  const tooMany = (): ChunkDataError => {
    const nums = bad.map((b) => b.line);
    return new ChunkDataError(
      `chunk ${c.index} (lines ${c.firstLine}-${c.firstLine + c.lines - 1}): ${bad.length} bad lines, more than --max-errors ${o.maxErrors} allows: ${bad
        .slice(0, 10)
        .map((b) => b.error)
        .join('; ')}${bad.length > 10 ? '; …' : ''}`,
      nums,
    );
  };
  let committed = false;
  let sinkOpen = true;
  let badSeen = 0;
  let computing: Promise<unknown> = Promise.resolve();
  try {
    let batch: Entry[] = [];
    // As in the score job: batches are scored one after another on the native threads while
    // this thread parses the next one; at most two are in flight, written in input order.
    const queue: Array<{ entries: Entry[]; result: Promise<Map<Entry, OutRow>> }> = [];
    const land = async (): Promise<void> => {
      const f = queue.shift() as { entries: Entry[]; result: Promise<Map<Entry, OutRow>> };
      const rows = await f.result;
      const out: OutRow[] = [];
      let text = '';
      for (const e of f.entries) {
        if (e.error !== undefined) {
          bad.push({ line: e.line, error: e.error });
          if (bad.length > o.maxErrors) throw tooMany();
          if (j.partial) text += `${JSON.stringify({ line: e.line, error: e.error })}\n`;
        } else {
          const r = rows.get(e) as OutRow;
          if (j.partial) {
            const off = j.partial.offset;
            text += `${JSON.stringify({ u: r.user, i: r.items, s: r.scores, r: r.items.map((id) => j.catalogue.row(id) + off) })}\n`;
          } else out.push(r);
          scored++;
        }
      }
      if (j.partial) await sink.write(text);
      else await records.write(out);
    };
    const dispatch = (): void => {
      const entries = batch;
      batch = [];
      const result = computing.then(() => scoreEntries(entries));
      computing = result.catch(() => undefined);
      queue.push({ entries, result });
    };
    const flush = async (all: boolean): Promise<void> => {
      dispatch();
      while (queue.length > (all ? 0 : 1)) await land();
    };
    const stream = c.end > c.start ? createReadStream(j.input, { start: c.start, end: c.end - 1, highWaterMark: 1 << 20 }) : [];
    for await (const line of linesOf(stream as AsyncIterable<Buffer>, { start: c.start, firstLine: c.firstLine, crc: c.crcBefore, skipLongLines: true })) {
      lines++;
      crc = line.crc;
      if (!line.tooLong && blank(line.text)) continue;
      const entry = lineEntry(line, { ids, encoder: j.encoder, unknown: o.unknown });
      if (entry.error !== undefined) badSeen++;
      batch.push(entry);
      // A bad line beyond the limit: score what is before it (the scorer may find more) and fail.
      if (badSeen > o.maxErrors) await flush(true);
      else if (batch.length >= o.batch) await flush(false);
      // Lines of a read chunk come as microtasks: let the batch in flight move on now and then.
      if (queue.length > 0 && batch.length % 32 === 0) await new Promise<void>((r) => setImmediate(r));
    }
    await flush(true);
    if (lines !== c.lines || crc !== c.crcAfter) {
      throw new InputChangedError(`chunk ${c.index}: the input ${j.input} is not the file that was submitted (its lines ${c.firstLine}-${c.firstLine + c.lines - 1} differ): submit the job again`);
    }
    await records.finish();
    await sink.sync();
    sinkOpen = false;
    await sink.close();
    if (bad.length > 0 && !j.partial) {
      const errPath = join(j.outDir, `${partName(c.index, j.total, 'errors-')}.jsonl`);
      const errTmp = join(j.outDir, `.${partName(c.index, j.total, 'errors-')}.${process.pid}.tmp`);
      const es = fileSink('--out-dir', errTmp, null);
      await es.write(bad.map((b) => `${JSON.stringify(b)}\n`).join(''));
      await es.sync();
      await es.close();
      renameSync(errTmp, errPath);
    }
    renameSync(tmp, part);
    committed = true;
    syncDir(j.outDir);
  } finally {
    // Native work still running (a batch past a failure) ends before the file closes.
    await computing;
    if (!committed) {
      if (sinkOpen) await sink.close().catch(() => undefined);
      try {
        unlinkSync(tmp);
      } catch {
        // already gone
      }
    }
  }
  return { scored, errors: bad.length, skipped: false };
}

/** Writes `text` to `path` through a hidden temporary file beside it (synced, renamed): whole or absent. */
export function commitText(path: string, text: string): void {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`);
  const fd = openSync(tmp, 'wx');
  try {
    const b = Buffer.from(text);
    let done = 0;
    while (done < b.length) done += writeSync(fd, b, done, b.length - done);
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    unlinkSync(tmp);
    throw e;
  }
  closeSync(fd);
  renameSync(tmp, path);
  syncDir(dirname(path));
}
