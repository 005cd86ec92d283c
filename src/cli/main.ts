#!/usr/bin/env node
/**
 * The `recscore` command line: demo, catalogue build/inspect, batch scoring, evaluation, bench.
 * User mistakes (bad flags, missing or unusable files, malformed lines) and every error the
 * library raises for its input print one clear message and exit with status 2; anything else
 * is a bug and prints its stack (status 1).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

import { Command, Option } from 'commander';

import { LIMITS } from '../limits.js';
import { type Level, packageRoot } from '../native/addon.js';
import { VERSION } from '../version.js';
import { buildCatalogue, inspectCatalogue, upgradeCatalogue } from './catalogue_cmd.js';
import { clusterCommand, splitCatalogueCommand } from './cluster_cmd.js';
import { demo } from './demo.js';
import { type EvalSession, evaluate } from '../eval/evaluate.js';
import { failure } from './failure.js';
import { checkInput, openInput } from '../batch/input.js';
import { linesOf } from '../batch/jsonl.js';
import { isaOption, loadPair, nonNegative, positive } from './options.js';
import { modelIndices, parseSession, sessionInVocabulary } from '../batch/records.js';
import { loadVocabulary, scoreCommand } from './score_cmd.js';
import { UserError } from './user_error.js';

export function program(): Command {
  const p = new Command('recscore').description('Exact top-k recommendation scoring with LSTM session encoders').version(VERSION);
  // Set before the subcommands are made: they copy these settings when created.
  p.exitOverride();
  p.configureOutput({
    writeErr: (s) => process.stderr.write(s),
    // commander's own errors (unknown option, missing value) as one `recscore:` line.
    outputError: (s, write) => write(`recscore: ${s.replace(/^error: /, '').replace(/\n(?=.)/g, ' ')}`),
  });

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
    .option('--precision <p>', 'f32, or also a compact scan copy: int8 or bf16 (results stay exact)', 'f32')
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

  splitCatalogueCommand(cat.command('split <file>'));

  scoreCommand(p);
  clusterCommand(p);

  p.command('eval')
    .description('next-item evaluation of a model on JSONL sessions ({"history": [...], "next": id})')
    .requiredOption('--model <m.onnx>', 'the ONNX session encoder')
    .requiredOption('--catalogue <items.rsc>', 'the catalogue file')
    .requiredOption('--input <sessions.jsonl>', 'one {"history": [item ids…], "next": item id} per line; - for stdin; gzip is recognised')
    .addOption(new Option('--k <k>', 'cut-off').argParser(positive('--k', LIMITS.maxK)).default(20))
    .option('--no-exclude-history', 'allow the history’s items in the ranking')
    .addOption(new Option('--threads <n>', 'threads').argParser(positive('--threads', LIMITS.maxThreads)))
    .addOption(isaOption())
    .option('--vocabulary <file>', "item ids (SKUs), one per line: line i is the model's item i; histories and next use them")
    .option('--json', 'print JSON')
    .action(async (o: { model: string; catalogue: string; input: string; k: number; excludeHistory: boolean; threads?: number; json?: boolean; isa?: Level; vocabulary?: string }) => {
      const inp = checkInput('--input', o.input);
      const vocabulary = o.vocabulary === undefined ? null : loadVocabulary(o.vocabulary);
      const { encoder, catalogue } = await loadPair(o.model, o.catalogue, o.threads, o.isa);
      async function* sessions(): AsyncGenerator<EvalSession> {
        for await (const line of linesOf(await openInput(inp))) {
          if (line.tooLong) throw new UserError(`line ${line.number}: longer than ${LIMITS.maxLineBytes} bytes`);
          if (line.text.trim() === '') continue;
          if (vocabulary) {
            yield sessionInVocabulary(line.text, line.number, vocabulary, encoder);
            continue;
          }
          const s = parseSession(line.text, line.number, catalogue);
          modelIndices(s.history, encoder, line.number);
          yield s;
        }
      }
      const m = await evaluate({ encoder, catalogue, sessions: sessions(), k: o.k, excludeHistory: o.excludeHistory, threads: o.threads, isa: o.isa, vocabulary: vocabulary?.ids });
      if (m.sessions === 0) {
        await encoder.close();
        await catalogue.close();
        throw new UserError(`no sessions in ${o.input}`);
      }
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
