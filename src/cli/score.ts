/**
 * `recscore score`: streams users' histories from a JSONL file to their top-k items, in
 * batches, in constant memory. A checkpoint file beside the output (`<out>.progress`) records
 * after every batch how far input and output have got, so `--resume` continues a killed job
 * with no line lost or duplicated: the output is cut back to the last checkpoint (dropping any
 * half-written line) and the input is read on from the line after it.
 */
import { closeSync, existsSync, fdatasyncSync, fstatSync, ftruncateSync, openSync, readFileSync, readSync, renameSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { crc32 } from 'node:zlib';

import { SingleBar } from 'cli-progress';

import type { Catalogue, ItemId } from '../catalogue.js';
import type { Encoder } from '../encoder.js';
import { lines } from './jsonl.js';
import { UserError } from './user_error.js';

export interface ScoreOptions {
  encoder: Encoder;
  catalogue: Catalogue;
  input: string;
  out: string;
  k: number;
  excludeHistory: boolean;
  threads: number;
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

interface Checkpoint {
  input: string;
  identity: string;
  excludeHistory: boolean;
  /** CRC-32 of the (up to) 64 KiB of input just before inputBytes: the part already read must not change. */
  inputTail: number;
  shard: string;
  k: number;
  nextLine: number; // first input line not yet handled
  inputBytes: number; // byte offset of nextLine
  outBytes: number;
  errorBytes: number;
  scored: number;
  errors: number;
  complete: boolean;
}

function parseUser(text: string, lineNo: number, catalogue: Catalogue): { user: ItemId; history: ItemId[] } {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new UserError(`line ${lineNo}: not JSON (${(e as Error).message})`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new UserError(`line ${lineNo}: expected an object with "user" and "history"`);
  const o = v as { user?: unknown; history?: unknown };
  if (!(typeof o.user === 'string' || (typeof o.user === 'number' && Number.isFinite(o.user)))) {
    throw new UserError(`line ${lineNo}: "user" must be a string or a number`);
  }
  if (!Array.isArray(o.history)) throw new UserError(`line ${lineNo}: "history" must be an array of item ids`);
  o.history.forEach((id, i) => {
    if (!((typeof id === 'string' || typeof id === 'number') && catalogue.has(id))) {
      throw new UserError(`line ${lineNo}: history[${i}] = ${JSON.stringify(id)} is not in the catalogue`);
    }
  });
  return { user: o.user, history: o.history as ItemId[] };
}

/** Catalogue ids -> the model's item indices (numeric ids are the indices). */
export function modelIndices(history: ItemId[], encoder: Encoder, lineNo: number): number[] {
  return history.map((id, i) => {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || (encoder.vocab !== null && id >= encoder.vocab)) {
      throw new UserError(`line ${lineNo}: history[${i}] = ${JSON.stringify(id)} is not an item of the model (0..${(encoder.vocab ?? 0) - 1})`);
    }
    return id;
  });
}

function tailCrc(path: string, end: number): number {
  const len = Math.min(end, 1 << 16);
  const buf = Buffer.alloc(len);
  const fd = openSync(path, 'r');
  try {
    readSync(fd, buf, 0, len, end - len);
  } finally {
    closeSync(fd);
  }
  return crc32(buf);
}

export async function score(o: ScoreOptions): Promise<ScoreSummary> {
  const { encoder, catalogue } = o;
  if (!existsSync(o.input)) throw new UserError(`--input ${o.input}: no such file`);
  const inputSize = statSync(o.input).size;
  const ckPath = `${o.out}.progress`;
  const errPath = `${o.out}.errors.jsonl`;
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
    if (!existsSync(ckPath)) throw new UserError(`--resume: no checkpoint ${ckPath} (start without --resume)`);
    const prev = JSON.parse(readFileSync(ckPath, 'utf8')) as Checkpoint;
    if (prev.shard !== shardText || prev.k !== o.k || prev.excludeHistory !== o.excludeHistory || prev.identity !== o.identity) {
      throw new UserError(`--resume: ${ckPath} was written for another model, catalogue, shard, k or history exclusion`);
    }
    // Lines from nextLine on may have been fixed; the lines already scored must be the same.
    if (prev.inputBytes > inputSize || tailCrc(o.input, prev.inputBytes) !== prev.inputTail) {
      throw new UserError(`--resume: the input's first ${prev.nextLine - 1} lines changed since ${ckPath} was written`);
    }
    ck = prev;
    if (ck.complete) return { scored: ck.scored, skipped: 0, errors: ck.errors, resumedFrom: ck.nextLine, complete: true };
  } else if (existsSync(o.out)) {
    throw new UserError(`--out ${o.out} exists: pass --resume to continue that job, or remove it`);
  }
  // Open the outputs and cut them back to the checkpoint: no half-written line survives.
  if (o.resume && !existsSync(o.out)) throw new UserError(`--resume: ${o.out} is missing`);
  const out = openSync(o.out, o.resume ? 'r+' : 'w');
  const errs = openSync(errPath, o.resume && existsSync(errPath) ? 'r+' : 'w');
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
    const tmp = `${ckPath}.tmp`;
    writeFileSync(tmp, JSON.stringify(ck));
    renameSync(tmp, ckPath);
  };

  const tty = !!o.progress.isTTY;
  const bar = tty ? new SingleBar({ format: 'scoring |{bar}| {percentage}% | {users} users | {rate} users/s | ETA {eta_formatted}', stream: o.progress as NodeJS.WriteStream }) : null;
  bar?.start(inputSize, ck.inputBytes, { users: ck.scored, rate: 0 });
  const t0 = performance.now();
  let lastReport = t0;
  let scoredNow = 0;
  const report = (bytes: number): void => {
    const rate = Math.round((scoredNow * 1000) / Math.max(1, performance.now() - t0));
    if (bar) bar.update(bytes, { users: ck.scored, rate });
    else if (performance.now() - lastReport > 5000) {
      lastReport = performance.now();
      o.progress.write(`scored ${ck.scored} users (${rate} users/s), ${((100 * bytes) / Math.max(1, inputSize)).toFixed(1)}% of the input\n`);
    }
  };

  let batch: Array<{ user: ItemId; history: ItemId[]; indices: number[] }> = [];
  let pendingLine = ck.nextLine;
  let pendingBytes = ck.inputBytes;

  const flush = async (): Promise<void> => {
    if (batch.length > 0) {
      const vectors = await encoder.encode(batch.map((b) => b.indices));
      const exclude = o.excludeHistory ? batch.map((b) => b.history.map((id) => catalogue.row(id))) : undefined;
      const res = await catalogue.topKAsync(vectors, { k: o.k, exclude, threads: o.threads });
      let text = '';
      batch.forEach((b, u) => {
        const items: ItemId[] = [];
        const scores: number[] = [];
        for (let i = 0; i < res.k; i++) {
          const row = res.rows[u * res.k + i];
          if (row < 0) break;
          items.push(catalogue.id(row));
          scores.push(res.scores[u * res.k + i]);
        }
        text += `${JSON.stringify({ user: b.user, items, scores })}\n`;
      });
      outPos += writeSync(out, text, outPos);
      ck.scored += batch.length;
      scoredNow += batch.length;
      batch = [];
    }
    ck.nextLine = pendingLine;
    ck.inputBytes = pendingBytes;
    ck.inputTail = tailCrc(o.input, pendingBytes);
    ck.outBytes = outPos;
    ck.errorBytes = errPos;
    saveCheckpoint();
  };

  let skipped = 0;
  let stopError: UserError | null = null;
  try {
    for await (const line of lines(o.input, ck.inputBytes, ck.nextLine)) {
      const mine = (line.number - 1) % o.shard.count === o.shard.index - 1;
      if (mine && line.text.trim() !== '') {
        try {
          const u = parseUser(line.text, line.number, catalogue);
          batch.push({ ...u, indices: modelIndices(u.history, encoder, line.number) });
        } catch (e) {
          if (!(e instanceof UserError)) throw e;
          if (ck.errors >= o.maxErrors) {
            // Stop here: everything before this line is written; resume starts at it.
            await flush();
            stopError = e;
            break;
          }
          ck.errors++;
          errPos += writeSync(errs, `${JSON.stringify({ line: line.number, error: e.message })}\n`, errPos);
        }
      } else if (!mine) {
        skipped++;
      }
      pendingLine = line.number + 1;
      pendingBytes = line.end;
      if (batch.length >= o.batch) {
        await flush();
        report(line.end);
      }
    }
    if (!stopError) {
      await flush();
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
