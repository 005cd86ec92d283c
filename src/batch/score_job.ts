/**
 * `recscore score`: streams users' histories to their top-k items, in batches, in constant memory.
 * Input: a file, a FIFO or stdin, plain or gzip; output: a file (`.gz`: gzip) or stdout.
 *
 * With a file as output, a checkpoint beside it (`<out>.progress`, see checkpoint.ts) records
 * after every batch how far input and output have got, so `--resume` continues a stopped job
 * (killed, crashed, interrupted) with no line lost or duplicated: the output is cut back to the
 * last checkpoint (dropping any half-written line) and the input, read again from its start
 * (any spelling of its path, or stdin), must hold the same bytes up to the checkpoint.
 *
 * A bad line (unparseable, wrong types, unknown ids, an empty history, or one the encoder or the
 * scan refuses) is recorded in the errors file while --max-errors allows; beyond it the job stops
 * at that line (TooManyErrors) with everything before it written, and --resume starts at it.
 * An aborted `signal` ends the job after the current batch is written and checkpointed.
 */
import { rmSync } from 'node:fs';

import type { Catalogue } from '../catalogue/catalogue.js';
import type { Encoder } from '../encoder/encoder.js';
import { LIMITS } from '../limits.js';
import type { Level } from '../native/addon.js';
import { outputPath } from '../cli/paths.js';
import { UserError } from '../cli/user_error.js';
import { type Checkpoint, CheckpointFile, jobIdentity, readCheckpoint } from './checkpoint.js';
import { checkInput } from './input.js';
import { type OutRow, type RecordSink, recordSink } from './columnar_out.js';
import { type Entry, batchScorer, lineEntry } from './score_batch.js';
import { outputFormat, preload } from './formats.js';
import { type Sink, fileSink, isEmptyFile, sizeOf, stdoutSink } from './output.js';
import { type ProgressStream, progress } from './progress.js';
import type { Shard, ShardLine } from './shard.js';
import { fileFormat, inputLines } from './sources.js';
import { IdResolver, type Vocabulary } from './vocabulary.js';

export { modelIndices } from './records.js';

export interface ScoreOptions {
  encoder: Encoder;
  catalogue: Catalogue;
  /** A path, or '-' for stdin. */
  input: string;
  /** A path, or '-' for stdout. */
  out: string;
  /** Where bad lines are recorded (default `<out>.errors.jsonl` for a file output with --max-errors > 0). */
  errors?: string;
  k: number;
  excludeHistory: boolean;
  threads: number;
  /** CPU level of the scan (default: the best). */
  isa?: Level;
  resume: boolean;
  /** 0-based index of count. */
  shard: Shard;
  maxErrors: number;
  batch: number;
  /** What else must match for --resume: digests of the model, catalogue, vocabulary, options. */
  identity: string;
  vocabulary?: Vocabulary | null;
  /** An id nobody knows: a line error ('error', the default) or dropped from the history ('skip'). */
  unknown?: 'error' | 'skip';
  /** Where progress goes (stderr); a TTY gets a bar. */
  progress: ProgressStream;
  quiet?: boolean;
  /** Aborted (SIGINT, SIGTERM): stop after the current batch. */
  signal?: AbortSignal;
  /** The output's format (default: by its extension, else JSONL). */
  format?: string;
}

export interface ScoreSummary {
  scored: number;
  errors: number;
  /** The first line this run handled. */
  resumedFrom: number;
  /** The last input line handled (written, recorded as bad, or blank). */
  lastLine: number;
  complete: boolean;
  /** Why it ended early: the signal, or stdout's reader went away ('closed'). */
  stopped: 'signal' | 'closed' | null;
  /** The errors file, when one was written. */
  errorsFile: string | null;
}

/** More bad lines than --max-errors allows: the job stopped at `line`. */
export class TooManyErrors extends Error {
  constructor(
    message: string,
    readonly line: number,
  ) {
    super(message);
    this.name = 'TooManyErrors';
  }
}

/** Only whitespace (JSON's, and what String.prototype.trim removes), without allocating. */
function blank(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c !== 32 && c !== 9 && c !== 10 && c !== 13 && text[i].trim() !== '') return false;
  }
  return true;
}

const yieldToLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export async function score(o: ScoreOptions): Promise<ScoreSummary> {
  const { encoder, catalogue } = o;
  const inp = checkInput('--input', o.input);
  const toStdout = o.out === '-';
  const outFormat = outputFormat(o.out, o.format);
  const columnar = outFormat !== 'jsonl';
  if (columnar && o.resume) {
    throw new UserError(`--resume needs JSONL output: a ${outFormat === 'parquet' ? 'Parquet' : 'Arrow IPC'} output is finished once, at the end (run the job again without --resume)`);
  }
  if (o.shard.count > 1 && !inp.regular) {
    throw new UserError(`--shard ${o.shard.index}/${o.shard.count}: --input ${inp.path} is a stream, which one reader cannot split among shards: split it upstream (Spark partitions, split -n l/N), or give a file`);
  }
  if (!toStdout) outputPath('--out', o.out);
  if (toStdout && o.resume) throw new UserError('--resume needs --out FILE: a job written to stdout keeps no checkpoint');
  const errPath = o.errors ?? (o.maxErrors > 0 ? (toStdout ? null : `${o.out}.errors.jsonl`) : null);
  if (o.maxErrors > 0 && errPath === null) throw new UserError(`--max-errors ${o.maxErrors} with --out - needs --errors FILE (where the bad lines are recorded)`);
  if (errPath !== null) outputPath('--errors', errPath);
  const ids = new IdResolver(catalogue, o.vocabulary ?? null);
  const unknown = o.unknown ?? 'error';
  const identity = jobIdentity([o.identity, `shard ${o.shard.index}/${o.shard.count}`]);
  const ckPath = toStdout || columnar ? null : `${o.out}.progress`;
  let ck: Checkpoint = { identity, nextLine: 1, inputBytes: 0, inputCrc: 0, outBytes: 0, errorBytes: 0, scored: 0, errors: 0, complete: false };
  let seq = -1;
  // --resume on a job that never wrote anything starts it: a retried pod or script can always pass
  // it. A new job makes its checkpoint (first slot written and synced) before its output, so an
  // empty checkpoint with no output is a job killed between the two syscalls that make it.
  const fresh = o.resume && ckPath !== null && sizeOf(o.out) <= 0 && (sizeOf(ckPath) < 0 || isEmptyFile(ckPath));
  if (o.resume && ckPath && !fresh) {
    const prev = readCheckpoint(ckPath);
    if (prev.identity !== identity) {
      throw new UserError(`--resume: ${ckPath} was written for another model, catalogue, vocabulary, shard, k or option`);
    }
    ({ seq, ...ck } = prev);
    if (ck.complete) return { scored: ck.scored, errors: ck.errors, resumedFrom: ck.nextLine, lastLine: ck.nextLine - 1, complete: true, stopped: null, errorsFile: errPath };
    const outSize = sizeOf(o.out);
    // Missing is fine only before the first commit (killed between making the checkpoint and the output).
    if (outSize < 0 && ck.outBytes > 0) throw new UserError(`--resume: ${o.out} is missing`);
    const errSize = errPath === null ? 0 : Math.max(0, sizeOf(errPath));
    if (outSize < ck.outBytes || errSize < ck.errorBytes) {
      throw new UserError(`--resume: ${o.out} is shorter than ${ckPath} says: it was changed or lost since (start again without --resume)`);
    }
  } else if (!fresh && !toStdout && sizeOf(o.out) >= 0) {
    throw new UserError(`--out ${o.out} exists: pass --resume to continue that job, or remove it`);
  }
  const resuming = o.resume && ck.nextLine > 1;
  // Open the outputs, cut back to the checkpoint: no half-written line survives.
  // The format's library first: a missing one is reported before any file is made.
  await preload(outFormat, fileFormat(inp));
  // A new job's checkpoint first, its first slot synced before any output exists: a job killed at
  // any moment leaves no output, or a checkpoint --resume reads.
  const ckFile: CheckpointFile | null = ckPath ? new CheckpointFile(ckPath, seq, { ...ck, outBytes: 0, errorBytes: 0 }) : null;
  let out: Sink;
  try {
    out = toStdout ? stdoutSink() : fileSink('--out', o.out, o.resume && !fresh && sizeOf(o.out) >= 0 ? ck.outBytes : null, !columnar);
  } catch (e) {
    ckFile?.close();
    if (seq < 0 && ckPath) rmSync(ckPath, { force: true });
    throw e;
  }
  let errs: Sink | null = null;
  let records: RecordSink;
  try {
    records = await recordSink(outFormat, out, ids.vocabulary !== null || ids.stringIds);
    errs = errPath === null ? null : fileSink('--errors', errPath, o.resume && !fresh && sizeOf(errPath) >= 0 ? ck.errorBytes : null);
  } catch (e) {
    await out.close();
    await errs?.close();
    ckFile?.close();
    throw e;
  }
  const resumedFrom = ck.nextLine;
  // Commits run behind the job, one at a time, each for the latest state: the data is synced,
  // then the checkpoint that points past it is written and synced.
  let committing: Promise<void> = Promise.resolve();
  let queued: Checkpoint | null = null;
  let commitRunning = false;
  const save = (): void => {
    ck.outBytes = out.position();
    ck.errorBytes = errs ? errs.position() : 0;
    queued = { ...ck };
    if (commitRunning) return;
    commitRunning = true;
    committing = (async () => {
      try {
        while (queued) {
          const c: Checkpoint = queued;
          queued = null;
          await out.sync();
          await errs?.sync();
          await ckFile?.save(c);
        }
      } finally {
        commitRunning = false;
      }
    })();
  };

  // A new job's checkpoint exists from the start: any stop leaves a file --resume can read.
  if (seq < 0) save();

  const bar = progress(o.progress, { quiet: !!o.quiet, total: fileFormat(inp) === 'jsonl' && !inp.gzip ? inp.size : 0, from: ck.inputBytes, users: ck.scored });

  const scoreEntries = batchScorer({ encoder, catalogue, ids, k: o.k, excludeHistory: o.excludeHistory, threads: o.threads, isa: o.isa });

  // Batches are scored one after another on the native threads while this thread parses the
  // next one and writes the previous one: at most two are in flight.
  interface InFlight {
    entries: Entry[];
    result: Promise<Map<Entry, OutRow>>;
    end: { line: number; bytes: number; crc: number };
  }
  let computing: Promise<unknown> = Promise.resolve();
  const queue: InFlight[] = [];
  let batch: Entry[] = [];
  let pending = { line: ck.nextLine, bytes: ck.inputBytes, crc: ck.inputCrc };
  const dispatch = (): void => {
    const entries = batch;
    const result = computing.then(() => scoreEntries(entries));
    computing = result.catch(() => undefined);
    queue.push({ entries, result, end: pending });
    batch = [];
  };

  /** Writes the oldest batch up to its first bad line beyond --max-errors (returned), then checkpoints. */
  const land = async (): Promise<Entry | null> => {
    const f = queue.shift() as InFlight;
    const text = await f.result;
    const outRows: OutRow[] = [];
    let errText = '';
    let stop: Entry | null = null;
    for (const b of f.entries) {
      if (b.error !== undefined) {
        if (ck.errors >= o.maxErrors) {
          stop = b;
          break;
        }
        ck.errors++;
        errText += `${JSON.stringify({ line: b.line, error: b.error })}\n`;
      } else {
        outRows.push(text.get(b) as OutRow);
        ck.scored++;
      }
    }
    await records.write(outRows);
    if (errText) await errs?.write(errText);
    // Stopped: everything before the bad line is written; resume starts at it.
    ck.nextLine = stop ? stop.line : f.end.line;
    ck.inputBytes = stop ? stop.start : f.end.bytes;
    ck.inputCrc = stop ? stop.crcBefore : f.end.crc;
    save();
    bar.update(ck.inputBytes, ck.scored);
    return stop;
  };

  const aborted = new Promise<'abort'>((resolve) => {
    if (o.signal?.aborted) resolve('abort');
    o.signal?.addEventListener('abort', () => resolve('abort'), { once: true });
  });
  let stop: Entry | null = null;
  let stopped: ScoreSummary['stopped'] = null;
  let verified = !resuming;
  const mismatch = (): UserError =>
    new UserError(`--resume: the input's first ${ck.nextLine - 1} lines are not those the stopped job read (${ckPath}): give the same input, or start again without --resume`);
  const it = inputLines(inp, o.shard)[Symbol.asyncIterator]();
  let last = { end: 0, crc: 0, number: 0 };
  let badSeen = ck.errors;
  let failedEarly = false;
  try {
    for (;;) {
      const r = o.signal ? await Promise.race([it.next(), aborted]) : await it.next();
      if (r === 'abort') {
        stopped = 'signal';
        break;
      }
      if (r.done) break;
      const line: ShardLine = r.value;
      last = { end: line.end, crc: line.crc, number: line.number };
      if (!verified) {
        // Resuming: the lines before the checkpoint are read again, not scored, and must be the same bytes.
        if (line.number < ck.nextLine) continue;
        if (line.start !== ck.inputBytes || line.crcBefore !== ck.inputCrc) throw mismatch();
        verified = true;
      }
      if (line.last) {
        // A stream's line that does not end within the limit: nothing after it can be read.
        const entry: Entry = { line: line.number, start: line.start, crcBefore: line.crcBefore, error: `line ${line.number}: longer than ${LIMITS.maxLineBytes} bytes (--input is a stream, which cannot be read past it)` };
        batch.push(entry);
        dispatch();
        while (queue.length > 0 && !stop) stop = await land();
        stop ??= entry;
        break;
      }
      if (line.value !== undefined || line.tooLong || !blank(line.text)) {
        const entry = lineEntry(line, { ids, encoder, unknown, userError: (u) => records.userError(u) });
        if (entry.error !== undefined) badSeen++;
        batch.push(entry);
      }
      pending = { line: line.number + 1, bytes: line.end, crc: line.crc };
      // Lines of a read chunk come as microtasks: let the batch in flight move on (its encode
      // resolves to a callback that starts its scan) every few lines.
      if (queue.length > 0 && batch.length % 32 === 0) await yieldToLoop();
      if (badSeen > o.maxErrors) {
        // A bad line beyond what --max-errors allows: write everything before it now, and stop.
        dispatch();
        while (queue.length > 0 && !stop) stop = await land();
        if (stop) break;
      } else if (batch.length >= o.batch) {
        dispatch();
        if (queue.length > 1) stop = await land();
        if (stop) break;
      }
      if (out.closed) {
        stopped = 'closed';
        break;
      }
      if (o.signal?.aborted) {
        stopped = 'signal';
        break;
      }
    }
    if (!verified && !(last.end === ck.inputBytes && last.crc === ck.inputCrc && last.number + 1 === ck.nextLine)) throw mismatch();
    // The batch in hand and those in flight are finished and written (at the end, on a signal).
    if (!stop && !out.closed) {
      dispatch();
      while (queue.length > 0 && !stop && !out.closed) stop = await land();
    }
    if (out.closed && !stopped) stopped = 'closed';
    // A Parquet or Arrow file gets its footer however the job ended, short of a crash.
    if (!out.closed) {
      await records.finish();
      if (stop || stopped) save();
    }
    if (!stop && !stopped) {
      ck.complete = true;
      save();
    }
    await committing;
  } catch (e) {
    failedEarly = !o.resume && ck.nextLine === 1 && ck.scored === 0 && ck.errors === 0;
    throw e;
  } finally {
    bar.stop();
    void it.return?.(undefined);
    // Native work still running (a batch past a stop) ends before the files close.
    await computing;
    await committing.catch(() => undefined);
    await out.close();
    await errs?.close();
    ckFile?.close();
    // A new job that failed before its first line (an unreadable input) leaves nothing behind.
    if (failedEarly) for (const f of [toStdout ? null : o.out, errPath, ckPath]) if (f) rmSync(f, { force: true });
  }
  if (stop) {
    const where = toStdout ? 'written to stdout' : `in ${o.out}`;
    const allowed = o.maxErrors === 0 ? 'no bad lines are allowed' : `more than ${o.maxErrors} bad lines (--max-errors ${o.maxErrors}${errPath ? `, recorded in ${errPath}` : ''})`;
    throw new TooManyErrors(
      `${stop.error}\nstopped at line ${stop.line}: ${allowed}; ${ck.scored} users scored before it are ${where}${toStdout ? '' : '; fix the line and rerun with --resume, or allow bad lines with --max-errors N'}`,
      stop.line,
    );
  }
  return { scored: ck.scored, errors: ck.errors, resumedFrom, lastLine: ck.nextLine - 1, complete: ck.complete, stopped, errorsFile: errPath };
}
