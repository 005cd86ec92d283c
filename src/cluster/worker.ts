/**
 * `startWorker`: a BullMQ worker that scores chunks. For each job it checks, in order: the
 * signature (with a secret), the arithmetic contract (another version: the job goes back to
 * the queue for a worker of its own version), that every path resolves inside the data roots,
 * and that the out dir's manifest is the one the job was submitted with. Then it scores the
 * chunk and commits `part-NNNNN`; a part that exists already is not written again (a job run
 * twice after a stall writes nothing twice). The worker that commits the last chunk writes _SUCCESS.
 *
 * Failures: bad data beyond --max-errors, paths outside the roots, bad signatures and a changed
 * input fail the chunk at once (UnrecoverableError); anything else is retried with backoff.
 */
import { existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { ConnectionOptions } from 'node:tls';

import { catalogueDigest, fileSha256 } from '../batch/checkpoint.js';
import { IdResolver, Vocabulary } from '../batch/vocabulary.js';
import { Catalogue } from '../catalogue/catalogue.js';
import type { Encoder } from '../encoder/encoder.js';
import { writeAtomically } from '../atomic_file.js';
import { loadPair } from '../cli/options.js';
import type { Level } from '../native/addon.js';
import { defaultThreads } from '../native/cpu_quota.js';
import { ChunkDataError, InputChangedError, scoreChunk } from './chunk.js';
import { ARITHMETIC_CONTRACT, MANIFEST, type Manifest, SUCCESS, partName, sha256 } from './manifest.js';
import { type RedisClient, bullmq, connected, redisClient } from './peers.js';
import { type ChunkPayload, DEFAULT_QUEUE, checkName, jobKeys } from './protocol.js';
import { JobRefusedError, checkEvictionPolicy, confine, resolveRoots, verify } from './safety.js';
import { SPLIT, mergeChunk, partialPath, readSplit, splitDigest, unionView } from './split.js';

export interface WorkerOptions {
  /** redis:// or rediss:// URL (user:password@ for ACL users). */
  redis: string;
  /** TLS options for rediss:// (a private CA: `{ ca }`). */
  tls?: ConnectionOptions;
  /** Directories the worker may read and write under; every path of a job must resolve inside one. */
  dataRoots: ReadonlyArray<string>;
  /** Chunks scored at once (default 1). */
  concurrency?: number;
  /** Native threads per chunk (default: the CPUs this process may use). */
  threads?: number;
  isa?: Level;
  /** The HMAC secret: unsigned or altered jobs are refused. */
  secret?: Buffer | null;
  /** BullMQ queue name (default recscore-cluster) and key prefix (default bull). */
  queue?: string;
  prefix?: string;
  /** A job whose lock is not renewed for this long is stalled and run again (default 30 000). */
  lockDurationMs?: number;
  /** How often stalled jobs are looked for (default: lockDurationMs). */
  stalledIntervalMs?: number;
  /** Model + catalogue pairs kept loaded between jobs (default 2; more are closed when idle). */
  maxLoaded?: number;
  /** Stalls before a chunk is failed (default 5). */
  maxStalledCount?: number;
  /** One line per event (default: none). */
  log?: (line: string) => void;
  /** @internal Tests: the arithmetic contract this worker claims. */
  contract?: number;
}

export interface ClusterWorker {
  /** Stops taking chunks, lets those under way finish and commit, then closes everything. */
  close(): Promise<void>;
  /** Chunks committed, skipped (already committed), failed and left to another contract by this worker; model + catalogue pairs loaded now. */
  readonly stats: { committed: number; skipped: number; failed: number; refused: number; loaded: number };
}

interface Loaded {
  encoder: Encoder;
  catalogue: Catalogue;
  vocabulary: Vocabulary | null;
  /** A split catalogue's part: ids resolved against every part, which stay open. */
  ids?: IdResolver;
  extra?: Catalogue[];
}

async function unload(l: Loaded | null): Promise<void> {
  await l?.encoder.close();
  await l?.catalogue.close();
  for (const c of l?.extra ?? []) await c.close();
}

export async function startWorker(o: WorkerOptions): Promise<ClusterWorker> {
  const roots = resolveRoots(o.dataRoots);
  const { Worker, UnrecoverableError, DelayedError } = bullmq();
  const queue = o.queue ?? DEFAULT_QUEUE;
  const prefix = o.prefix ?? 'bull';
  const contract = o.contract ?? ARITHMETIC_CONTRACT;
  const threads = o.threads ?? defaultThreads();
  const log = o.log ?? ((): void => undefined);
  const client: RedisClient = redisClient(o.redis, { forWorker: true, tls: o.tls });
  await connected(client, o.redis, (e) => log(`redis: ${e.message}`));
  try {
    await checkEvictionPolicy(client, o.redis);
  } catch (e) {
    client.disconnect();
    throw e;
  }
  const stats = { committed: 0, skipped: 0, failed: 0, refused: 0, loaded: 0 };
  // Model and catalogue pairs stay loaded for the jobs that follow (keyed by content); beyond
  // maxLoaded, those no chunk is using are closed, least recently used first.
  const loaded = new Map<string, { pair: Promise<Loaded>; users: number; used: number }>();
  const maxLoaded = o.maxLoaded ?? 2;
  const release = async (key: string): Promise<void> => {
    const e = loaded.get(key);
    if (e) {
      e.users--;
      e.used = Date.now();
    }
    const idle = [...loaded].filter(([, v]) => v.users === 0).sort((x, y) => x[1].used - y[1].used);
    for (let i = 0; i < idle.length && loaded.size > maxLoaded; i++) {
      const [k, v] = idle[i];
      loaded.delete(k);
      stats.loaded = loaded.size;
      await unload(await v.pair.catch(() => null));
    }
  };
  const acquire = (key: string, load: () => Promise<Loaded>): { key: string; pair: Promise<Loaded> } => {
    let e = loaded.get(key);
    if (!e) {
      const pair = load();
      e = { pair, users: 0, used: Date.now() };
      const entry = e;
      pair.catch(() => {
        if (loaded.get(key) === entry) loaded.delete(key);
        stats.loaded = loaded.size;
      });
      loaded.set(key, e);
      stats.loaded = loaded.size;
    }
    e.users++;
    return { key, pair: e.pair };
  };
  const checkModel = (p: ChunkPayload, m: Manifest, path: string): void => {
    if (fileSha256(path) !== m.model.sha256) throw new UnrecoverableError(`--model ${p.model} is not the model the job was submitted with (its SHA-256 differs)`);
  };
  const acquirePair = (p: ChunkPayload, m: Manifest, paths: { model: string; catalogue: string; vocabulary: string | null }): { key: string; pair: Promise<Loaded> } =>
    acquire(`${m.model.sha256} ${m.catalogue.digest} ${m.vocabulary?.sha256 ?? '-'}`, async () => {
      checkModel(p, m, paths.model);
      if (catalogueDigest(paths.catalogue) !== m.catalogue.digest) throw new UnrecoverableError(`--catalogue ${p.catalogue} is not the catalogue the job was submitted with`);
      const vocabulary = paths.vocabulary ? Vocabulary.load(paths.vocabulary, '--vocabulary') : null;
      const loadedPair = await loadPair(paths.model, paths.catalogue, threads, o.isa);
      return { ...loadedPair, vocabulary };
    });
  /** A split catalogue's part, with every other part open for id membership. */
  const acquirePart = (p: ChunkPayload, m: Manifest, model: string, files: string[], part: number, digest: string): { key: string; pair: Promise<Loaded> } =>
    acquire(`${m.model.sha256} ${m.catalogue.digest} part ${part}`, async () => {
      checkModel(p, m, model);
      if (catalogueDigest(files[part]) !== digest) throw new UnrecoverableError(`--catalogue ${p.catalogue}: part ${part} is not the one split.json describes`);
      const loadedPair = await loadPair(model, files[part], threads, o.isa);
      const extra = await Promise.all(files.filter((_, i) => i !== part).map((f) => Catalogue.open(f)));
      const ids = new IdResolver(unionView(loadedPair.catalogue, [loadedPair.catalogue, ...extra]), null);
      return { ...loadedPair, vocabulary: null, ids, extra };
    });

  const keysOf = (name: string): { meta: string; done: string } => jobKeys(prefix, queue, name);

  const processChunk = async (job: { id?: string; data: ChunkPayload; moveToDelayed(ts: number, token?: string): Promise<void> }, token?: string): Promise<string> => {
    const p = job.data;
    const where = `${p.name} chunk ${p.chunk?.index}`;
    try {
      if (o.secret) verify(p as unknown as Record<string, unknown>, o.secret);
      if (p.v !== 1) throw new JobRefusedError(`payload version ${String(p.v)} is not one this worker reads`);
      if (typeof p.name !== 'string' || !checkName(p.name) || typeof p.chunk?.index !== 'number' || typeof p.total !== 'number') throw new JobRefusedError('the job payload is malformed: refused');
      if (p.contract !== contract) {
        // Not ours to run: back to the queue for a worker of the job's contract version.
        log(`${where}: arithmetic contract ${p.contract}, this worker computes ${contract}: left for another worker`);
        stats.refused++;
        await job.moveToDelayed(Date.now() + 2000, token);
        throw new DelayedError();
      }
      const outDir = confine('--out-dir', p.outDir, roots);
      const paths = {
        input: confine('--input', p.input, roots),
        model: confine('--model', p.model, roots),
        catalogue: confine('--catalogue', p.catalogue, roots),
        vocabulary: p.vocabulary === null ? null : confine('--vocabulary', p.vocabulary, roots),
      };
      let text: string;
      try {
        text = readFileSync(confine('the manifest', join(outDir, MANIFEST), roots), 'utf8');
      } catch (e) {
        if (e instanceof JobRefusedError && !/ENOENT/.test(e.message)) throw e;
        throw new JobRefusedError(`${p.outDir} has no ${MANIFEST}: the job was not submitted there`);
      }
      if (sha256(text) !== p.manifest) throw new JobRefusedError(`${p.outDir}/${MANIFEST} belongs to another submission than this chunk's: refused`);
      const m = JSON.parse(text) as Manifest;
      const plan = m.chunks[p.chunk.index];
      if (!plan || JSON.stringify(plan) !== JSON.stringify(p.chunk) || m.chunks.length !== p.total || JSON.stringify(m.options) !== JSON.stringify(p.options)) {
        throw new JobRefusedError(`chunk ${p.chunk.index} does not match ${p.outDir}/${MANIFEST}: refused`);
      }
      let split: { files: string[]; part: number; offset: number; digest: string } | null = null;
      if (m.catalogue.parts !== undefined) {
        confine('the split manifest', join(paths.catalogue, SPLIT), roots);
        const sp = readSplit(paths.catalogue);
        if (!sp || splitDigest(sp.text) !== m.catalogue.digest) throw new JobRefusedError(`--catalogue ${p.catalogue} is not the split catalogue the job was submitted with`);
        const info = sp.manifest.parts[p.part ?? -1];
        if (!info) throw new JobRefusedError(`part ${String(p.part)} is not a part of ${p.catalogue}`);
        split = { files: sp.manifest.parts.map((x) => confine('--catalogue', join(paths.catalogue, x.file), roots)), part: p.part as number, offset: info.offset, digest: info.digest };
      }
      const total = m.chunks.length;
      const held = split ? acquirePart(p, m, paths.model, split.files, split.part, split.digest) : acquirePair(p, m, paths);
      let r: Awaited<ReturnType<typeof scoreChunk>>;
      const t0 = performance.now();
      try {
        const l = await held.pair;
        log(`${where}: started`);
        const partial = split ? { path: partialPath(outDir, plan.index, total, split.part), offset: split.offset } : undefined;
        r = split && existsSync(join(outDir, partName(plan.index, total))) ? { scored: 0, errors: 0, skipped: true } : await scoreChunk({ input: paths.input, outDir, chunk: plan, total, options: m.options, ...l, threads, isa: o.isa, partial });
        // A split job's part is the merge of its partials, made by whoever commits the last one.
        if (split && !(await mergeChunk({ outDir, chunk: plan, total, parts: split.files.length, k: m.options.k }))) {
          log(`${where} (part ${split.part}): partial committed`);
          return 'partial';
        }
      } finally {
        await release(held.key);
      }
      if (r.skipped) stats.skipped++;
      else stats.committed++;
      log(`${where}: ${r.skipped ? 'already committed' : `committed (${r.scored} users${r.errors ? `, ${r.errors} bad lines` : ''}, ${Math.round(performance.now() - t0)} ms)`}`);
      await markDone(p, outDir, m);
      return r.skipped ? 'skipped' : 'committed';
    } catch (e) {
      if (e instanceof DelayedError) throw e;
      stats.failed++;
      const msg = e instanceof Error ? e.message : String(e);
      log(`${where}: ${msg}`);
      if (e instanceof JobRefusedError || e instanceof ChunkDataError || e instanceof InputChangedError || e instanceof UnrecoverableError) {
        throw new UnrecoverableError(msg);
      }
      throw e;
    }
  };

  const markDone = async (p: ChunkPayload, outDir: string, m: Manifest): Promise<void> => {
    const k = keysOf(p.name);
    await client.sadd(k.done, String(p.chunk.index));
    if ((await client.scard(k.done)) < m.chunks.length) return;
    await writeSuccess(outDir, m);
  };

  const worker = new Worker(queue, processChunk as never, {
    connection: client,
    prefix,
    concurrency: o.concurrency ?? 1,
    lockDuration: o.lockDurationMs ?? 30_000,
    stalledInterval: o.stalledIntervalMs ?? o.lockDurationMs ?? 30_000,
    maxStalledCount: o.maxStalledCount ?? 5,
    autorun: true,
  });
  worker.on('error', (e: Error) => log(`worker: ${e.message}`));
  await worker.waitUntilReady();
  let closing: Promise<void> | null = null;
  return {
    stats,
    close(): Promise<void> {
      closing ??= (async () => {
        await worker.close();
        for (const e of loaded.values()) {
          await unload(await e.pair.catch(() => null));
        }
        client.disconnect();
      })();
      return closing;
    },
  };
}

/** Writes _SUCCESS once every part of the manifest is in `outDir` (returns whether it is there). */
export async function writeSuccess(outDir: string, m: Manifest): Promise<boolean> {
  const total = m.chunks.length;
  for (let i = 0; i < total; i++) if (!existsSync(join(outDir, partName(i, total)))) return false;
  // Temporary files of workers killed mid-chunk (their chunks were run again and committed).
  for (const f of readdirSync(outDir)) if (/^\.(part|errors)-\d+\..*\.tmp$/.test(f)) rmSync(join(outDir, f), { force: true });
  rmSync(join(outDir, '.partials'), { recursive: true, force: true });
  if (existsSync(join(outDir, SUCCESS))) return true;
  const text = `${JSON.stringify({ name: m.name, chunks: total, lines: m.input.lines, library: m.library, contract: m.contract })}\n`;
  await writeAtomically(join(outDir, SUCCESS), async (fh) => {
    await fh.writeFile(text);
  });
  return true;
}
