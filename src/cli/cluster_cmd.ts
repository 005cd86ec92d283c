/** `recscore cluster worker|submit|status`: distributed scoring on BullMQ (docs/distributed.md). */
import { readFileSync } from 'node:fs';

import { type Command, Option } from 'commander';

import { LIMITS } from '../limits.js';
import type { Level } from '../native/addon.js';
import { isaOption, nonNegative, positive } from './options.js';
import { flagError } from './paths.js';

interface Common {
  redis: string;
  redisCa?: string;
  queue: string;
  prefix: string;
}

/** TLS options from --redis-ca. */
function tls(o: Common): { ca: string } | undefined {
  if (o.redisCa === undefined) return undefined;
  try {
    return { ca: readFileSync(o.redisCa, 'utf8') };
  } catch (e) {
    throw flagError('--redis-ca', o.redisCa, e);
  }
}

const collect = (v: string, prev: string[] = []): string[] => [...prev, v];

function common(c: Command): Command {
  return c
    .requiredOption('--redis <url>', 'redis:// or rediss:// URL (user:password@ for an ACL user); or RECSCORE_REDIS_URL', process.env.RECSCORE_REDIS_URL)
    .option('--redis-ca <file>', 'PEM CA certificate(s) for a rediss:// server with a private CA')
    .option('--queue <name>', 'BullMQ queue', 'recscore-cluster')
    .option('--prefix <p>', 'BullMQ key prefix', 'bull');
}

function fmtEta(s: number | null): string {
  if (s === null) return '?';
  if (s < 90) return `${s}s`;
  return s < 5400 ? `${Math.round(s / 60)}m` : `${(s / 3600).toFixed(1)}h`;
}

export function clusterCommand(p: Command): void {
  const cl = p.command('cluster').description('distributed scoring: chunks of an input scored by workers through BullMQ on Redis (docs/distributed.md)');

  common(cl.command('worker').description('score chunks from the queue until SIGTERM (which lets the chunks under way commit)'))
    .requiredOption('--data-root <dir>', 'a directory jobs may read and write under (repeatable); paths outside every root are refused', collect)
    .addOption(new Option('--concurrency <n>', 'chunks at once').argParser(positive('--concurrency', 256)).default(1))
    .addOption(new Option('--threads <n>', 'native threads per chunk').argParser(positive('--threads', LIMITS.maxThreads)))
    .addOption(isaOption())
    .option('--secret-file <file>', 'HMAC secret: jobs not signed with it are refused')
    .addOption(new Option('--lock-ms <ms>', 'a chunk whose worker stops renewing its lock this long is run again').argParser(positive('--lock-ms')).default(30_000))
    .option('--quiet', 'no line per chunk on stderr', false)
    .action(async (o: Common & { dataRoot: string[]; concurrency: number; threads?: number; isa?: Level; secretFile?: string; lockMs: number; quiet: boolean }) => {
      const { startWorker, readSecret } = await import('../cluster/index.js');
      const w = await startWorker({
        redis: o.redis,
        tls: tls(o),
        queue: o.queue,
        prefix: o.prefix,
        dataRoots: o.dataRoot,
        concurrency: o.concurrency,
        threads: o.threads,
        isa: o.isa,
        secret: o.secretFile ? readSecret(o.secretFile) : null,
        lockDurationMs: o.lockMs,
        log: o.quiet ? undefined : (l) => void process.stderr.write(`recscore worker ${process.pid}: ${l}\n`),
      });
      if (!o.quiet) process.stderr.write(`recscore worker ${process.pid}: ready\n`);
      await new Promise<void>((resolve) => {
        const stop = (): void => {
          process.off('SIGTERM', stop);
          process.off('SIGINT', stop);
          // A second signal does not wait for the chunks under way (they run again elsewhere).
          process.once('SIGTERM', () => process.exit(143));
          process.once('SIGINT', () => process.exit(130));
          if (!o.quiet) process.stderr.write(`recscore worker ${process.pid}: draining\n`);
          resolve();
        };
        process.on('SIGTERM', stop);
        process.on('SIGINT', stop);
      });
      await w.close();
      if (!o.quiet) process.stderr.write(`recscore worker ${process.pid}: stopped (${w.stats.committed} chunks committed)\n`);
    });

  common(cl.command('submit').description('plan an input into chunks and enqueue those not committed yet; --wait: until the job ends'))
    .requiredOption('--name <name>', 'the job name (letters, digits, . _ -)')
    .requiredOption('--model <m.onnx>', 'the ONNX session encoder (a path every worker sees)')
    .requiredOption('--catalogue <items.rsc>', 'the catalogue file')
    .requiredOption('--input <users.jsonl>', 'a plain JSONL file of {"user", "history"} lines')
    .requiredOption('--out-dir <dir>', 'where part-NNNNN files, the manifest and _SUCCESS go')
    .addOption(new Option('--k <k>', 'items per user').argParser(positive('--k', LIMITS.maxK)).default(100))
    .addOption(new Option('--chunk <lines>', 'input lines (users) per chunk').argParser(positive('--chunk')).default(10_000))
    .option('--no-exclude-history', 'allow items of the history')
    .addOption(new Option('--unknown <policy>', 'an unknown id: a bad line (error) or dropped (skip)').choices(['error', 'skip']).default('error'))
    .addOption(new Option('--max-errors <n>', 'bad lines each chunk may skip (recorded in errors-NNNNN.jsonl)').argParser(nonNegative('--max-errors')).default(0))
    .addOption(new Option('--batch <n>', 'users per native batch').argParser(positive('--batch', LIMITS.maxBatch)).default(256))
    .option('--vocabulary <file>', 'item ids (SKUs), one per line')
    .addOption(new Option('--attempts <n>', 'tries per chunk (bad data fails at once)').argParser(positive('--attempts', 100)).default(3))
    .option('--secret-file <file>', 'sign every chunk job with this HMAC secret')
    .option('--wait', 'show progress until every chunk is committed (status 0) or a chunk failed for good (status 1)', false)
    .action(
      async (
        o: Common & { name: string; model: string; catalogue: string; input: string; outDir: string; k: number; chunk: number; excludeHistory: boolean; unknown: 'error' | 'skip'; maxErrors: number; batch: number; vocabulary?: string; attempts: number; secretFile?: string; wait: boolean },
      ) => {
        const { submitJob, waitForJob, readSecret } = await import('../cluster/index.js');
        const r = await submitJob({ ...o, tls: tls(o), secret: o.secretFile ? readSecret(o.secretFile) : null });
        process.stderr.write(`recscore: job ${r.name}: ${r.total} chunks, ${r.skipped} already committed, ${r.enqueued} enqueued\n`);
        if (!o.wait) return;
        let last = '';
        const w = await waitForJob({
          ...o,
          tls: tls(o),
          onProgress: (s) => {
            const line = `recscore: job ${s.name}: ${s.done}/${s.total} chunks committed, ${s.active} running, ${s.failed.length} failed, ${s.workers} workers, ETA ${fmtEta(s.etaSeconds)}`;
            if (line !== last) process.stderr.write(`${line}\n`);
            last = line;
          },
        });
        if (w.ok) {
          process.stderr.write(`recscore: job ${r.name}: done, ${r.outDir}/_SUCCESS written\n`);
          return;
        }
        for (const f of w.status.failed) process.stderr.write(`recscore: chunk ${f.index} (lines ${f.lines[0]}-${f.lines[1]}) failed after ${f.attempts} attempt${f.attempts === 1 ? '' : 's'}: ${f.reason}\n`);
        process.stderr.write(`recscore: job ${r.name}: ${w.status.failed.length} chunk${w.status.failed.length === 1 ? '' : 's'} failed; fix the cause and submit again: committed chunks are kept (the same input, model, catalogue and options; a changed one needs another --out-dir)\n`);
        process.exitCode = 1;
      },
    );

  splitCatalogueCommand(cl.command('split-catalogue <file>'));

  common(cl.command('status').description('chunks done/total, failures with reasons, live workers, ETA'))
    .requiredOption('--name <name>', 'the job name')
    .option('--json', 'print JSON')
    .action(async (o: Common & { name: string; json?: boolean }) => {
      const { jobStatus } = await import('../cluster/index.js');
      const s = await jobStatus({ ...o, tls: tls(o) });
      if (o.json) {
        console.log(JSON.stringify(s, null, 2));
        return;
      }
      console.log(`job       ${s.name}`);
      console.log(`chunks    ${s.done}/${s.total} committed${s.done === s.total ? '' : `, ETA ${fmtEta(s.etaSeconds)}`}`);
      console.log(`queue     ${s.queued} queued, ${s.active} running (whole queue)`);
      console.log(`workers   ${s.workers}`);
      console.log(`out dir   ${s.outDir}`);
      for (const f of s.failed) console.log(`failed    chunk ${f.index} (lines ${f.lines[0]}-${f.lines[1]}), ${f.attempts} attempts: ${f.reason}`);
    });
}

/** `recscore catalogue split` (and `cluster split-catalogue`): its options and action on `cmd`. */
export function splitCatalogueCommand(cmd: Command): Command {
  return cmd
    .description('split a catalogue by rows into P catalogue files keeping their ids (and split.json): a cluster job on the directory scores every chunk against every part and merges the top-k exactly')
    .addOption(new Option('--parts <p>', 'parts').argParser(positive('--parts', 4096)).makeOptionMandatory())
    .requiredOption('--out-dir <dir>', 'where part-P.rsc and split.json go')
    .action(async (file: string, o: { parts: number; outDir: string }) => {
      const { splitCatalogue } = await import('../cluster/split.js');
      const m = await splitCatalogue({ catalogue: file, parts: o.parts, outDir: o.outDir });
      console.log(`wrote ${o.outDir}: ${m.parts.length} parts of ${m.parts.map((p) => p.rows).join(', ')} items`);
    });
}
