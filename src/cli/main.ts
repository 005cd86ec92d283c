#!/usr/bin/env node
/**
 * The `recscore` command line: demo, catalogue build/inspect, batch scoring, evaluation, bench.
 * User mistakes (bad flags, missing or unusable files, malformed lines) and every error the
 * library raises for its input print one clear message and exit with status 2; anything else
 * is a bug and prints its stack (status 1).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';

import { Command, InvalidArgumentError as CommanderArgError, Option } from 'commander';

import { Catalogue } from '../catalogue/catalogue.js';
import { defaultThreads } from '../native/cpu_quota.js';
import { Encoder } from '../encoder/encoder.js';
import { LIMITS } from '../limits.js';
import { type Level, allLevels, packageRoot, resolveLevel } from '../native/addon.js';
import { VERSION } from '../version.js';
import { buildCatalogue, inspectCatalogue, upgradeCatalogue } from './catalogue_cmd.js';
import { demo } from './demo.js';
import { type EvalSession, evaluate } from '../eval/evaluate.js';
import { failure } from './failure.js';
import { lines } from '../batch/jsonl.js';
import { regularInput, streamInput } from './paths.js';
import { modelIndices, parseSession } from '../batch/records.js';
import { score } from '../batch/score_job.js';
import { UserError } from './user_error.js';

function positive(name: string, max: number = Number.MAX_SAFE_INTEGER) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n <= 0) throw new CommanderArgError(`${name} must be a positive integer, got ${v}`);
    if (n > max) throw new CommanderArgError(`${name} must be at most ${max}, got ${v}`);
    return n;
  };
}

function nonNegative(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n < 0) throw new CommanderArgError(`${name} must be a non-negative integer, got ${v}`);
    return n;
  };
}

function shard(v: string): { index: number; count: number } {
  const m = /^(\d+)\/(\d+)$/.exec(v);
  const index = m ? Number(m[1]) : NaN;
  const count = m ? Number(m[2]) : NaN;
  if (!m || count < 1 || index < 1 || index > count) throw new CommanderArgError(`--shard must be i/n with 1 <= i <= n, got ${v}`);
  return { index, count };
}

/** --isa: a CPU level this machine runs (every level gives the same results; for benchmarks and pinning). */
function isaOption(): Option {
  let known = '';
  try {
    known = `: ${allLevels().join(', ')}`;
  } catch {
    // the addon does not load: --help still works, and --isa reports why when used
  }
  return new Option('--isa <level>', `CPU level of the kernels${known} (default: the best this CPU runs)`).argParser((v: string) => {
    try {
      return resolveLevel('--isa', v);
    } catch (e) {
      throw new CommanderArgError((e as Error).message);
    }
  });
}

async function loadPair(model: string, catalogue: string, threads?: number, isa?: Level): Promise<{ encoder: Encoder; catalogue: Catalogue }> {
  regularInput('--model', model);
  regularInput('--catalogue', catalogue);
  // A version-1 file's one-line repack notice goes to stderr (stdout may be the data).
  const cat = await Catalogue.open(catalogue, { logger: { info: (_o, msg) => void process.stderr.write(`recscore: ${msg}\n`) } });
  let encoder: Encoder;
  try {
    encoder = await Encoder.load(model, { threads, isa });
  } catch (e) {
    await cat.close();
    throw e;
  }
  if (encoder.dim !== cat.dim) {
    throw new UserError(`the model's vectors have ${encoder.dim} dimensions but the catalogue's have ${cat.dim}: they do not belong together`);
  }
  return { encoder, catalogue: cat };
}

export function program(): Command {
  const p = new Command('recscore').description('Exact top-k recommendation scoring with LSTM session encoders').version(VERSION);
  // Set before the subcommands are made: they copy these settings when created.
  p.exitOverride();
  p.configureOutput({ writeErr: (s) => process.stderr.write(s) });

  p.command('demo')
    .description('the whole pipeline on the bundled example model, then the scoring kernel at scale')
    .addOption(new Option('--scale-items <n>', 'items in the scale test (0 to skip)').argParser(nonNegative('--scale-items')).default(1_000_000))
    .action(async (o: { scaleItems: number }) => {
      await demo({ scaleItems: o.scaleItems, out: (s) => console.log(s) });
    });

  const cat = p.command('catalogue').description('build, inspect or upgrade catalogue files');
  cat
    .command('build')
    .description('build a catalogue file from a float32 .npy matrix (items × dim)')
    .requiredOption('--vectors <file.npy>', 'item vectors, float32, C order, shape (N, d)')
    .option('--ids <file.txt>', 'one id per line (all integers: numeric ids; otherwise strings); default: row numbers')
    .option('--bias <file.npy>', 'per-item bias, float32, shape (N,)')
    .option('--attributes <file.txt>', 'per-item attribute bits (uint32), one per line')
    .option('--precision <p>', 'f32, or also a compact scan copy: int8, int4 or bf16 (results stay exact)', 'f32')
    .requiredOption('--out <file.rsc>', 'the catalogue file to write')
    .action(async (o: { vectors: string; ids?: string; bias?: string; attributes?: string; precision: string; out: string }) => {
      const r = await buildCatalogue(o);
      console.log(`wrote ${o.out}: ${r.size} items × ${r.dim} dims`);
    });
  cat
    .command('inspect <file>')
    .description('print a catalogue file’s header and check its matrix checksum')
    .option('--json', 'print JSON')
    .action(async (file: string, o: { json?: boolean }) => {
      const info = await inspectCatalogue(file);
      if (o.json) console.log(JSON.stringify(info, null, 2));
      else for (const [k, v] of Object.entries(info)) console.log(`${k.padEnd(11)} ${Array.isArray(v) ? v.join(', ') : String(v)}`);
    });

  cat
    .command('upgrade <in> <out>')
    .description('rewrite a catalogue file in the current format (version 1 files are repacked on every open until upgraded)')
    .action(async (input: string, out: string) => {
      const r = await upgradeCatalogue(input, out);
      console.log(`wrote ${out}: ${r.size} items, format version ${r.from} -> ${r.to}`);
    });

  p.command('score')
    .description('score every user of a JSONL file ({"user", "history"}) to JSONL ({"user", "items", "scores"})')
    .requiredOption('--model <m.onnx>', 'the ONNX session encoder')
    .requiredOption('--catalogue <items.rsc>', 'the catalogue file')
    .requiredOption('--input <users.jsonl>', 'one {"user": id, "history": [item ids…]} per line')
    .requiredOption('--out <recs.jsonl>', 'output; <out>.progress and <out>.errors.jsonl go beside it')
    .addOption(new Option('--k <k>', 'items per user').argParser(positive('--k', LIMITS.maxK)).default(100))
    .option('--exclude-history', 'do not recommend items of the history (default)', true)
    .option('--no-exclude-history', 'allow items of the history')
    .addOption(new Option('--threads <n>', 'threads (default: the CPUs this process may use)').argParser(positive('--threads', LIMITS.maxThreads)))
    .addOption(isaOption())
    .option('--resume', 'continue a job that was stopped (from <out>.progress)', false)
    .addOption(new Option('--shard <i/n>', 'score only input lines i, i+n, i+2n, … (1-based)').argParser(shard))
    .addOption(new Option('--max-errors <n>', 'bad lines to skip (recorded in <out>.errors.jsonl) before stopping').argParser(nonNegative('--max-errors')).default(0))
    .addOption(new Option('--batch <n>', 'users per native batch').argParser(positive('--batch', LIMITS.maxBatch)).default(256))
    .action(async (o: { model: string; catalogue: string; input: string; out: string; k: number; excludeHistory: boolean; threads?: number; resume: boolean; shard?: { index: number; count: number }; maxErrors: number; batch: number; isa?: Level }) => {
      const { encoder, catalogue } = await loadPair(o.model, o.catalogue, o.threads, o.isa);
      const identity = [o.model, o.catalogue].map((f) => `${f}:${statSync(f).size}:${statSync(f).mtimeMs}`).join('|');
      const r = await score({
        identity,
        encoder,
        catalogue,
        input: o.input,
        out: o.out,
        k: o.k,
        excludeHistory: o.excludeHistory,
        threads: o.threads ?? defaultThreads(),
        isa: o.isa,
        resume: o.resume,
        shard: o.shard ?? { index: 1, count: 1 },
        maxErrors: o.maxErrors,
        batch: o.batch,
        progress: process.stderr,
      });
      process.stderr.write(`scored ${r.scored} users${r.errors ? `, ${r.errors} bad lines skipped (${o.out}.errors.jsonl)` : ''}${o.resume ? ` (resumed at line ${r.resumedFrom})` : ''}\n`);
      await encoder.close();
      await catalogue.close();
    });

  p.command('eval')
    .description('next-item evaluation of a model on JSONL sessions ({"history": [...], "next": id})')
    .requiredOption('--model <m.onnx>', 'the ONNX session encoder')
    .requiredOption('--catalogue <items.rsc>', 'the catalogue file')
    .requiredOption('--input <sessions.jsonl>', 'one {"history": [item ids…], "next": item id} per line')
    .addOption(new Option('--k <k>', 'cut-off').argParser(positive('--k', LIMITS.maxK)).default(20))
    .option('--no-exclude-history', 'allow the history’s items in the ranking')
    .addOption(new Option('--threads <n>', 'threads').argParser(positive('--threads', LIMITS.maxThreads)))
    .addOption(isaOption())
    .option('--json', 'print JSON')
    .action(async (o: { model: string; catalogue: string; input: string; k: number; excludeHistory: boolean; threads?: number; json?: boolean; isa?: Level }) => {
      streamInput('--input', o.input);
      const { encoder, catalogue } = await loadPair(o.model, o.catalogue, o.threads, o.isa);
      async function* sessions(): AsyncGenerator<EvalSession> {
        for await (const line of lines(o.input)) {
          if (line.tooLong) throw new UserError(`line ${line.number}: longer than ${LIMITS.maxLineBytes} bytes`);
          if (line.text.trim() === '') continue;
          const s = parseSession(line.text, line.number, catalogue);
          modelIndices(s.history, encoder, line.number);
          yield s;
        }
      }
      const m = await evaluate({ encoder, catalogue, sessions: sessions(), k: o.k, excludeHistory: o.excludeHistory, threads: o.threads, isa: o.isa });
      if (o.json) {
        console.log(JSON.stringify(m, null, 2));
      } else {
        const k = o.k;
        console.log(`sessions      ${m.sessions}`);
        console.log(`Recall@${k}     ${m.recall.toFixed(4)}  (= HitRate@${k})`);
        console.log(`MRR@${k}        ${m.mrr.toFixed(4)}`);
        console.log(`NDCG@${k}       ${m.ndcg.toFixed(4)}`);
        console.log(`Precision@${k}  ${m.precision.toFixed(4)}`);
        console.log(`coverage      ${(100 * m.coverage).toFixed(2)}% of the catalogue`);
        console.log(`novelty       ${m.novelty.toFixed(3)} bits`);
        console.log(`history       ${m.excludeHistory ? 'excluded' : 'allowed'}; ties: ${m.tiePolicy}`);
      }
      await encoder.close();
      await catalogue.close();
    });

  p.command('bench')
    .description('run the benchmark suites (needs a clone with the dev dependencies); prints tables, writes JSON')
    .allowUnknownOption(true)
    .argument('[args...]', 'passed to bench/run.mjs, e.g. --quick')
    .action((args: string[]) => {
      const script = join(packageRoot(), 'bench', 'run.mjs');
      if (!existsSync(script)) throw new UserError(`${script} is not part of this installation: run it from a clone of recscore`);
      const r = spawnSync(process.execPath, [script, ...args], { stdio: 'inherit' });
      process.exitCode = r.status ?? 1;
    });
  return p;
}

export async function main(argv: string[]): Promise<number> {
  const p = program();
  try {
    await p.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e) {
    const f = failure(e);
    if (f.text) process.stderr.write(f.text);
    return f.status;
  }
}

main(process.argv).then((code) => {
  process.exitCode = code;
});
