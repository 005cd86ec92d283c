/** `recscore score`: flags, the job's identity for --resume, signals, the summary line. */
import { type Command, Option } from 'commander';

import { catalogueDigest, fileSha256 } from '../batch/checkpoint.js';
import { outputFormat } from '../batch/formats.js';
import { score } from '../batch/score_job.js';
import { type Shard, parseShard } from '../batch/shard.js';
import { Vocabulary } from '../batch/vocabulary.js';
import { InvalidArgumentError } from '../errors.js';
import { LIMITS } from '../limits.js';
import type { Level } from '../native/addon.js';
import { defaultThreads } from '../native/cpu_quota.js';
import { isaOption, loadPair, nonNegative, positive } from './options.js';
import { flagError } from './paths.js';
import { UserError } from './user_error.js';

interface ScoreFlags {
  model: string;
  catalogue: string;
  input: string;
  out: string;
  errors?: string;
  k: number;
  excludeHistory: boolean;
  threads?: number;
  resume: boolean;
  shard?: string;
  maxErrors: number;
  batch: number;
  isa?: Level;
  vocabulary?: string;
  unknown: 'error' | 'skip';
  quiet: boolean;
  format?: string;
}

const SIGNALS = { SIGINT: 130, SIGTERM: 143 } as const;

export function loadVocabulary(path: string): Vocabulary {
  try {
    return Vocabulary.load(path, '--vocabulary');
  } catch (e) {
    if (e instanceof InvalidArgumentError) throw new UserError(e.message);
    throw flagError('--vocabulary', path, e);
  }
}

export function scoreCommand(p: Command): void {
  p.command('score')
    .description('score every user of an input ({"user", "history"}: JSONL, gzip, Parquet or Arrow IPC) to its top-k ({"user", "items", "scores"}); files or stdin/stdout')
    .requiredOption('--model <m.onnx>', 'the ONNX session encoder')
    .requiredOption('--catalogue <items.rsc>', 'the catalogue file')
    .requiredOption('--input <users.jsonl>', 'one {"user": id, "history": [item ids…]} per line; - for stdin; gzip is recognised by its first bytes')
    .requiredOption('--out <recs.jsonl>', 'output (.gz: gzip); - for stdout; <out>.progress (and <out>.errors.jsonl) go beside a file')
    .option('--errors <file>', 'where bad lines are recorded (default <out>.errors.jsonl; needed with --out - and --max-errors)')
    .addOption(new Option('--k <k>', 'items per user').argParser(positive('--k', LIMITS.maxK)).default(100))
    .option('--exclude-history', 'do not recommend items of the history (default)', true)
    .option('--no-exclude-history', 'allow items of the history')
    .addOption(new Option('--threads <n>', 'threads (default: the CPUs this process may use)').argParser(positive('--threads', LIMITS.maxThreads)))
    .addOption(isaOption())
    .option('--resume', 'continue a stopped job (from <out>.progress); the input is read again from its start and must begin with the same lines', false)
    .addOption(new Option('--shard <I/N>', 'score only the I-th of N contiguous parts of the input (0 <= I < N; auto/N: I from JOB_COMPLETION_INDEX)'))
    .addOption(new Option('--max-errors <n>', 'bad lines to skip (each recorded with its line number) before the job stops with status 1').argParser(nonNegative('--max-errors')).default(0))
    .addOption(new Option('--batch <n>', 'users per native batch (and per checkpoint)').argParser(positive('--batch', LIMITS.maxBatch)).default(256))
    .option('--vocabulary <file>', "item ids (SKUs), one per line: line i is the model's item i; histories and output use them")
    .addOption(new Option('--unknown <policy>', 'an id the vocabulary, catalogue or model does not know: a bad line (error) or dropped from the history (skip)').choices(['error', 'skip']).default('error'))
    .option('--format <format>', 'output format: jsonl, parquet, arrow (Arrow IPC file) or arrows (Arrow IPC stream); default: by the extension of --out (.parquet, .arrow, .arrows), else jsonl. Inputs are recognised by their first bytes')
    .option('--quiet', 'no progress and no summary on stderr', false)
    .action(async (o: ScoreFlags) => {
      // Checked before anything is loaded: a usage mistake costs nothing.
      const shard: Shard = o.shard === undefined ? { index: 0, count: 1 } : parseShard(o.shard);
      const format = outputFormat(o.out, o.format);
      const vocabulary = o.vocabulary === undefined ? null : loadVocabulary(o.vocabulary);
      if (o.out === '-' && o.resume) throw new UserError('--resume needs --out FILE: a job written to stdout keeps no checkpoint');
      const { encoder, catalogue } = await loadPair(o.model, o.catalogue, o.threads, o.isa);
      const identity = [
        `model ${fileSha256(o.model)}`,
        `catalogue ${catalogueDigest(o.catalogue)}`,
        `vocabulary ${vocabulary ? vocabulary.ids.join('\n') : '-'}`,
        `k ${o.k} exclude ${o.excludeHistory} unknown ${o.unknown} format ${format} gzip ${o.out.endsWith('.gz')}`,
      ].join('\n');
      const controller = new AbortController();
      let signal: keyof typeof SIGNALS | null = null;
      const onSignal = (name: keyof typeof SIGNALS) => (): void => {
        // A second signal does not wait for the batch.
        if (signal) process.exit(SIGNALS[name]);
        signal = name;
        controller.abort(name);
      };
      const handlers = Object.keys(SIGNALS).map((name) => [name, onSignal(name as keyof typeof SIGNALS)] as const);
      for (const [name, h] of handlers) process.on(name, h);
      try {
        const r = await score({
          identity,
          encoder,
          catalogue,
          input: o.input,
          out: o.out,
          errors: o.errors,
          k: o.k,
          excludeHistory: o.excludeHistory,
          threads: o.threads ?? defaultThreads(),
          isa: o.isa,
          resume: o.resume,
          shard,
          maxErrors: o.maxErrors,
          batch: o.batch,
          vocabulary,
          unknown: o.unknown,
          progress: process.stderr,
          quiet: o.quiet,
          signal: controller.signal,
          format,
        });
        if (r.stopped === 'signal' && signal) {
          process.stderr.write(`recscore: stopped after line ${r.lastLine}${o.out === '-' ? '' : '; rerun with --resume'}\n`);
          process.exitCode = SIGNALS[signal];
        } else if (r.stopped === null && !o.quiet) {
          const bad = r.errors ? `, ${r.errors} bad lines skipped (${r.errorsFile})` : '';
          process.stderr.write(`scored ${r.scored} users${bad}${o.resume ? ` (resumed at line ${r.resumedFrom})` : ''}\n`);
        }
      } finally {
        for (const [name, h] of handlers) process.off(name, h);
        if (o.input === '-' || o.input === '/dev/stdin') process.stdin.destroy();
        await encoder.close();
        await catalogue.close();
      }
    });
}
