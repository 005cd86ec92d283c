/**
 * `recscore score`: streams users' histories from a JSONL file to their top-k items, in
 * batches, in constant memory. A checkpoint file beside the output (`<out>.progress`) records
 * after every batch how far input and output have got, so `--resume` continues a killed job
 * with no line lost or duplicated: the output is cut back to the last checkpoint (dropping any
 * half-written line) and the input is read on from the line after it.
 *
 * A bad line (unparseable, wrong types, unknown ids, or one the encoder or the scan refuses) is
 * skipped and recorded while --max-errors allows; otherwise the job stops at that line with
 * everything before it written, and --resume starts again at it.
 */
import { closeSync, existsSync, fdatasyncSync, fstatSync, ftruncateSync, openSync, writeSync } from 'node:fs';

import { SingleBar } from 'cli-progress';

import type { Catalogue, ItemId } from '../catalogue/catalogue.js';
import type { Encoder } from '../encoder/encoder.js';
import { InvalidArgumentError, ModelError, OutOfRangeError } from '../errors.js';
import { LIMITS } from '../limits.js';
import { itemsOf, rank, rowsOf } from '../pipeline.js';
import type { Level } from '../native/addon.js';
import { type Checkpoint, readCheckpoint, tailCrc, writeCheckpoint } from './checkpoint.js';
import { lines } from './jsonl.js';
import { flagError, outputPath, streamInput } from '../cli/paths.js';
import { modelIndices, parseUser } from './records.js';
import { UserError } from '../cli/user_error.js';

export { modelIndices } from './records.js';

export interface ScoreOptions {
  encoder: Encoder;
  catalogue: Catalogue;
  input: string;
  out: string;
  k: number;
  excludeHistory: boolean;
  threads: number;
  /** CPU level of the scan (default: the best). */
  isa?: Level;
  resume: boolean;
  shard: { index: number; count: number }; // index 1..count
  maxErrors: number;
  batch: number;
  /** What else must match for --resume: the model and catalogue files (path, size, mtime). */
  identity: string;
  /** Where progress goes (stderr); a TTY gets a bar, anything else a line every few seconds. */
  progress: NodeJS.WriteStream | { isTTY?: boolean; write(s: string): boolean };
}

export interface ScoreSummary {
  scored: number;
  skipped: number;
  errors: number;
  resumedFrom: number;
  complete: boolean;
}

/** One input line of this shard: a user to score, or why the line is bad. */
interface Entry {
  line: number;
  /** Byte offsets of the line (start: where a resume that stops at it begins). */
  start: number;
  user?: ItemId;
  history?: ItemId[];
  indices?: number[];
  error?: string;
}

/** Errors the library raises for what a line holds (as opposed to files, bugs, the machine). */
function isDataError(e: unknown): e is Error {
  return e instanceof InvalidArgumentError || e instanceof OutOfRangeError || e instanceof ModelError;
}

export async function score(o: ScoreOptions): Promise<ScoreSummary> {
  const { encoder, catalogue } = o;
  const seekable = streamInput('--input', o.input);
  outputPath('--out', o.out);
  const inputSize = seekable ? fstatSizeOf(o.input) : 0;
  const ckPath = `${o.out}.progress`;
  const errPath = `${o.out}.errors.jsonl`;
  outputPath('--out', errPath);
  const shardText = `${o.shard.index}/${o.shard.count}`;
  let ck: Checkpoint = {
    input: o.input,
    identity: o.identity,
    excludeHistory: o.excludeHistory,
    inputTail: 0,
    shard: shardText,
    k: o.k,
    nextLine: 1,
    inputBytes: 0,
    outBytes: 0,
    errorBytes: 0,
    scored: 0,
    errors: 0,
    complete: false,
  };
  if (o.resume) {
    const prev = readCheckpoint(ckPath);
    if (prev.shard !== shardText || prev.k !== o.k || prev.excludeHistory !== o.excludeHistory || prev.identity !== o.identity) {
      throw new UserError(`--resume: ${ckPath} was written for another model, catalogue, shard, k or history exclusion`);
    }
    if (!seekable && prev.inputBytes > 0 && !prev.complete) {
      throw new UserError(`--resume: --input ${o.input} is not a regular file (a pipe or a device), so it cannot be read on from line ${prev.nextLine}`);
    }
    // Lines from nextLine on may have been fixed; the lines already scored must be the same.
    if (seekable && (prev.inputBytes > inputSize || tailCrc(o.input, prev.inputBytes) !== prev.inputTail)) {
      throw new UserError(`--resume: the input's first ${prev.nextLine - 1} lines changed since ${ckPath} was written`);
    }
    ck = prev;
    if (ck.complete) return { scored: ck.scored, skipped: 0, errors: ck.errors, resumedFrom: ck.nextLine, complete: true };
  } else if (existsSync(o.out)) {
    throw new UserError(`--out ${o.out} exists: pass --resume to continue that job, or remove it`);
  }
  // Open the outputs and cut them back to the checkpoint: no half-written line survives.
  if (o.resume && !existsSync(o.out)) throw new UserError(`--resume: ${o.out} is missing`);
  let out: number;
  try {
    out = openSync(o.out, o.resume ? 'r+' : 'w');
  } catch (e) {
    throw flagError('--out', o.out, e);
  }
  let errs: number;
  try {
    errs = openSync(errPath, o.resume && existsSync(errPath) ? 'r+' : 'w');
  } catch (e) {
    closeSync(out);
    throw flagError('--out', errPath, e);
  }
  if (fstatSync(out).size < ck.outBytes || fstatSync(errs).size < ck.errorBytes) {
    closeSync(out);
    closeSync(errs);
    throw new UserError(`--resume: ${o.out} is shorter than ${ckPath} says: it was changed or lost since (start again without --resume)`);
  }
  ftruncateSync(out, ck.outBytes);
  ftruncateSync(errs, ck.errorBytes);
  let outPos = ck.outBytes;
  let errPos = ck.errorBytes;
  const resumedFrom = ck.nextLine;

  const saveCheckpoint = (): void => {
    // The data first, then the checkpoint that points past it: a checkpoint never names bytes
    // that could be lost (even to a power cut).
    fdatasyncSync(out);
    fdatasyncSync(errs);
    writeCheckpoint(ckPath, ck);
  };

  const tty = !!o.progress.isTTY;
  const bar = tty && seekable ? new SingleBar({ format: 'scoring |{bar}| {percentage}% | {users} users | {rate} users/s | ETA {eta_formatted}', stream: o.progress as NodeJS.WriteStream }) : null;
  bar?.start(inputSize, ck.inputBytes, { users: ck.scored, rate: 0 });
  const t0 = performance.now();
  let lastReport = t0;
  let scoredNow = 0;
  const report = (bytes: number): void => {
    const rate = Math.round((scoredNow * 1000) / Math.max(1, performance.now() - t0));
    if (bar) bar.update(bytes, { users: ck.scored, rate });
    else if (performance.now() - lastReport > 5000) {
      lastReport = performance.now();
      const share = seekable ? `, ${((100 * bytes) / Math.max(1, inputSize)).toFixed(1)}% of the input` : '';
      o.progress.write(`scored ${ck.scored} users (${rate} users/s)${share}\n`);
    }
  };

  /** Top-k lines for users; throws what the encoder or the scan throws. */
  const scoreUsers = async (users: Entry[]): Promise<string[]> => {
    const exclude = o.excludeHistory ? users.map((b) => rowsOf(catalogue, b.history as ItemId[])) : undefined;
    const res = await rank(encoder, catalogue, { histories: users.map((b) => b.indices as number[]), k: o.k, exclude, threads: o.threads, isa: o.isa });
    return users.map((b, u) => {
      const { items, scores } = itemsOf(catalogue, res, u);
      return `${JSON.stringify({ user: b.user, items, scores })}\n`;
    });
  };

  /** Scores the users of `entries`; a batch the library refuses is retried user by user, so each bad line is found. */
  const scoreEntries = async (entries: Entry[]): Promise<Map<Entry, string>> => {
    const users = entries.filter((b) => b.error === undefined);
    const text = new Map<Entry, string>();
    if (users.length === 0) return text;
    try {
      (await scoreUsers(users)).forEach((t, u) => text.set(users[u], t));
    } catch (e) {
      if (!isDataError(e)) throw e;
      for (const b of users) {
        try {
          text.set(b, (await scoreUsers([b]))[0]);
        } catch (e1) {
          if (!isDataError(e1)) throw e1;
          b.error = `line ${b.line}: ${e1.message.replace(/^histories\[0\]/, 'history')}`;
        }
      }
    }
    return text;
  };

  let batch: Entry[] = [];
  let pendingLine = ck.nextLine;
  let pendingBytes = ck.inputBytes;

  /** Writes the batch up to its first bad line beyond --max-errors (returned), then checkpoints. */
  const flush = async (): Promise<UserError | null> => {
    const text = await scoreEntries(batch);
    let outText = '';
    let errText = '';
    let stop: Entry | null = null;
    for (const b of batch) {
      if (b.error !== undefined) {
        if (ck.errors >= o.maxErrors) {
          stop = b;
          break;
        }
        ck.errors++;
        errText += `${JSON.stringify({ line: b.line, error: b.error })}\n`;
      } else {
        outText += text.get(b);
        ck.scored++;
        scoredNow++;
      }
    }
    if (outText) outPos += writeSync(out, outText, outPos);
    if (errText) errPos += writeSync(errs, errText, errPos);
    // Stopped: everything before the bad line is written; resume starts at it.
    ck.nextLine = stop ? stop.line : pendingLine;
    ck.inputBytes = stop ? stop.start : pendingBytes;
    ck.inputTail = seekable ? tailCrc(o.input, ck.inputBytes) : 0;
    ck.outBytes = outPos;
    ck.errorBytes = errPos;
    saveCheckpoint();
    batch = [];
    return stop ? new UserError(stop.error as string) : null;
  };

  let skipped = 0;
  let stopError: UserError | null = null;
  try {
    let start = ck.inputBytes;
    let badInBatch = 0;
    for await (const line of lines(o.input, { start: ck.inputBytes, firstLine: ck.nextLine, skipLongLines: seekable })) {
      if (line.last) {
        // A stream's line that does not end within the limit: nothing after it can be read.
        stopError = (await flush()) ?? new UserError(`line ${line.number}: longer than ${LIMITS.maxLineBytes} bytes (--input is a stream, which cannot be read past it)`);
        break;
      }
      const mine = (line.number - 1) % o.shard.count === o.shard.index - 1;
      if (mine && (line.tooLong || line.text.trim() !== '')) {
        const entry: Entry = { line: line.number, start };
        try {
          if (line.tooLong) throw new UserError(`line ${line.number}: longer than ${LIMITS.maxLineBytes} bytes`);
          const u = parseUser(line.text, line.number, catalogue);
          Object.assign(entry, u, { indices: modelIndices(u.history, encoder, line.number) });
        } catch (e) {
          if (!(e instanceof UserError)) throw e;
          entry.error = e.message;
          badInBatch++;
        }
        batch.push(entry);
      } else if (!mine) {
        skipped++;
      }
      pendingLine = line.number + 1;
      pendingBytes = line.end;
      start = line.end;
      // Flush when the batch is full, or at once when a bad line is beyond what --max-errors allows.
      if (batch.length >= o.batch || ck.errors + badInBatch > o.maxErrors) {
        badInBatch = 0;
        stopError = await flush();
        if (stopError) break;
        report(line.end);
      }
    }
    if (!stopError) stopError = await flush();
    if (!stopError) {
      ck.complete = true;
      saveCheckpoint();
      bar?.update(inputSize, { users: ck.scored });
    }
  } finally {
    bar?.stop();
    closeSync(out);
    closeSync(errs);
  }
  if (stopError) {
    throw new UserError(`${stopError.message}\n(${ck.scored} users scored before it are in ${o.out}; fix the line and run again with --resume, or allow bad lines with --max-errors N)`);
  }
  return { scored: ck.scored, skipped, errors: ck.errors, resumedFrom, complete: true };
}

function fstatSizeOf(path: string): number {
  const fd = openSync(path, 'r');
  try {
    return fstatSync(fd).size;
  } finally {
    closeSync(fd);
  }
}
