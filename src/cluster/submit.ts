/**
 * `submitJob`: plans the chunks of an input, writes (or re-checks) the job's manifest in the out
 * dir and enqueues every chunk whose part is not committed yet. `jobStatus` and `waitForJob`
 * report progress from Redis (chunks done, failures with reasons, live workers, ETA); waitForJob
 * writes _SUCCESS once every part is committed.
 */
import { existsSync, mkdirSync, readdirSync, realpathSync, statSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import type { ConnectionOptions } from 'node:tls';

import { writeAtomically } from '../atomic_file.js';
import { checkInput } from '../batch/input.js';
import { fileFormat } from '../batch/sources.js';
import { InvalidArgumentError } from '../errors.js';
import { LIMITS } from '../limits.js';
import { MANIFEST, type Manifest, SUCCESS, identityOf, makeManifest, manifestText, partName, readManifest, sha256 } from './manifest.js';
import { redactUrl } from '../redact_url.js';
import { type RedisClient, bullmq, connected, redisClient } from './peers.js';
import { type ChunkPayload, DEFAULT_QUEUE, checkName, chunkJobId, jobKeys } from './protocol.js';
import { ClusterConfigError, checkEvictionPolicy, sign } from './safety.js';
import { SPLIT, readSplit, splitDigest } from './split.js';

export interface ConnectOptions {
  /** redis:// or rediss:// URL (user:password@ for an ACL user). */
  redis: string;
  /** TLS options for rediss:// (a private CA: `{ ca }`). */
  tls?: ConnectionOptions;
  queue?: string;
  prefix?: string;
}

export interface SubmitOptions extends ConnectOptions {
  name: string;
  model: string;
  catalogue: string;
  /** A plain JSONL file (chunks are byte ranges of it). */
  input: string;
  outDir: string;
  k: number;
  /** Lines per chunk (default 10 000). */
  chunk?: number;
  excludeHistory?: boolean;
  unknown?: 'error' | 'skip';
  /** Bad lines each chunk may skip (default 0). */
  maxErrors?: number;
  batch?: number;
  vocabulary?: string | null;
  /** Signs every chunk job (workers started with the same secret check it). */
  secret?: Buffer | null;
  /** Tries per chunk for failures other than bad data (default 3), the first retry after backoffMs (doubling). */
  attempts?: number;
  backoffMs?: number;
}

export interface Submitted {
  name: string;
  outDir: string;
  total: number;
  /** Chunks already committed (not enqueued again). */
  skipped: number;
  enqueued: number;
  manifest: Manifest;
}

const abs = (p: string): string => (isAbsolute(p) ? p : resolve(p));

type BullQueue = import('bullmq').Queue;

async function connect(o: ConnectOptions): Promise<{ client: RedisClient; queue: BullQueue; close(): Promise<void> }> {
  const { Queue } = bullmq();
  const client = redisClient(o.redis, { tls: o.tls });
  await connected(client, o.redis);
  try {
    await checkEvictionPolicy(client, o.redis);
  } catch (e) {
    client.disconnect();
    throw e;
  }
  const queue = new Queue(o.queue ?? DEFAULT_QUEUE, { connection: client, prefix: o.prefix ?? 'bull' });
  return {
    client,
    queue,
    async close() {
      await queue.close();
      client.disconnect();
    },
  };
}

/** Which part files of the manifest are in the out dir. */
function committedParts(outDir: string, total: number): Set<number> {
  const have = new Set(readdirSync(outDir));
  const done = new Set<number>();
  for (let i = 0; i < total; i++) if (have.has(partName(i, total))) done.add(i);
  return done;
}

export async function submitJob(o: SubmitOptions): Promise<Submitted> {
  if (!checkName(o.name)) throw new InvalidArgumentError(`--name must be letters, digits, '.', '_' or '-' (at most 100), got ${JSON.stringify(o.name)}`);
  if (!Number.isSafeInteger(o.k) || o.k < 1 || o.k > LIMITS.maxK) throw new InvalidArgumentError(`--k must be an integer in 1..${LIMITS.maxK}, got ${o.k}`);
  const chunk = o.chunk ?? 10_000;
  if (!Number.isSafeInteger(chunk) || chunk < 1) throw new InvalidArgumentError(`--chunk must be a positive integer, got ${chunk}`);
  const inp = checkInput('--input', o.input);
  if (!inp.regular || inp.gzip || fileFormat(inp) !== 'jsonl') {
    throw new InvalidArgumentError(`--input ${o.input}: a cluster job reads a plain JSONL file (its chunks are byte ranges); decompress or convert it first (recscore score reads gzip, Parquet and Arrow)`);
  }
  const outDir = abs(o.outDir);
  mkdirSync(outDir, { recursive: true });
  // A directory: a catalogue split by `cluster split-catalogue` (every chunk scored against every part).
  const split = statSync(o.catalogue).isDirectory() ? readSplit(o.catalogue) : null;
  if (statSync(o.catalogue).isDirectory() && !split) throw new InvalidArgumentError(`--catalogue ${o.catalogue}: a directory, but without ${SPLIT} (made by recscore cluster split-catalogue)`);
  if (split && o.vocabulary) throw new InvalidArgumentError('--vocabulary with a split catalogue is not supported yet');
  const manifest = await makeManifest({
    split: split ? { digest: splitDigest(split.text), parts: split.manifest.parts.length } : null,
    name: o.name,
    input: realpathSync(o.input),
    model: realpathSync(o.model),
    catalogue: realpathSync(o.catalogue),
    vocabulary: o.vocabulary ? realpathSync(o.vocabulary) : null,
    options: { k: o.k, excludeHistory: o.excludeHistory ?? true, unknown: o.unknown ?? 'error', maxErrors: o.maxErrors ?? 0, batch: o.batch ?? 256, chunk },
  });
  const mPath = join(outDir, MANIFEST);
  const prev = readManifest(mPath);
  let text = manifestText(manifest);
  const total = manifest.chunks.length;
  if (prev) {
    if (identityOf(prev.manifest) !== identityOf(manifest)) {
      throw new ClusterConfigError(`--out-dir ${o.outDir} holds the output of another job (${MANIFEST}: a different input, model, catalogue, vocabulary, option or contract version): use another out dir, or empty it`);
    }
    text = prev.text;
  } else {
    if (readdirSync(outDir).some((f) => f.startsWith('part-'))) throw new ClusterConfigError(`--out-dir ${o.outDir} holds parts but no ${MANIFEST}: use an empty directory`);
    await writeAtomically(mPath, async (fh) => {
      await fh.writeFile(text);
    });
  }
  const m = prev ? prev.manifest : manifest;
  const mHash = sha256(text);
  const done = committedParts(outDir, total);
  const c = await connect(o);
  try {
    const keys = jobKeys(o.prefix ?? 'bull', o.queue ?? DEFAULT_QUEUE, o.name);
    await c.client
      .multi()
      .del(keys.done)
      .hset(keys.meta, { total: String(total), outDir, manifest: mHash, submitted: String(Date.now()), lines: String(m.input.lines) })
      .exec();
    if (done.size > 0) await c.client.sadd(keys.done, ...[...done].map(String));
    const jobs: Array<{ name: string; data: ChunkPayload; opts: Record<string, unknown> }> = [];
    for (const ch of m.chunks) {
      if (done.has(ch.index)) continue;
      for (const part of m.catalogue.parts === undefined ? [undefined] : Array.from({ length: m.catalogue.parts }, (_, p) => p)) {
        const id = `${chunkJobId(o.name, mHash, ch.index)}${part === undefined ? '' : `.p${part}`}`;
        const old = await c.queue.getJob(id);
        if (old) {
          const state = await old.getState();
          // A chunk that failed for good (or finished with its part since lost) runs again.
          if (state === 'failed' || state === 'completed') await old.remove();
          else continue;
        }
        const payload: ChunkPayload = {
          v: 1,
          name: o.name,
          // This submission's paths (the content behind them is the manifest's: checked above).
          input: manifest.input.path,
          model: manifest.model.path,
          catalogue: manifest.catalogue.path,
          vocabulary: manifest.vocabulary?.path ?? null,
          outDir,
          manifest: mHash,
          contract: m.contract,
          library: m.library,
          options: m.options,
          chunk: ch,
          total,
        };
        if (part !== undefined) payload.part = part;
        if (o.secret) payload.sig = sign(payload as unknown as Record<string, unknown>, o.secret);
        jobs.push({
          name: `${o.name}/${ch.index}${part === undefined ? '' : `/${part}`}`,
          data: payload,
          opts: { jobId: id, attempts: o.attempts ?? 3, backoff: { type: 'exponential', delay: o.backoffMs ?? 1000 }, removeOnComplete: true, removeOnFail: false },
        });
      }
    }
    for (let i = 0; i < jobs.length; i += 1000) await c.queue.addBulk(jobs.slice(i, i + 1000) as never);
    if (jobs.length === 0 && done.size === total) await writeSuccessFile(outDir, m);
    return { name: o.name, outDir, total, skipped: done.size, enqueued: jobs.length, manifest: m };
  } finally {
    await c.close();
  }
}

async function writeSuccessFile(outDir: string, m: Manifest): Promise<void> {
  const { writeSuccess } = await import('./worker.js');
  await writeSuccess(outDir, m);
}

export interface ChunkFailure {
  index: number;
  /** Input lines of the chunk. */
  lines: [number, number];
  reason: string;
  attempts: number;
}

export interface JobStatus {
  name: string;
  total: number;
  done: number;
  failed: ChunkFailure[];
  /** Chunks waiting, delayed (retry backoff) or running, in the whole queue. */
  queued: number;
  active: number;
  workers: number;
  /** Seconds to go at the rate since submission (null before the first chunk). */
  etaSeconds: number | null;
  outDir: string;
}

export async function jobStatus(o: ConnectOptions & { name: string }): Promise<JobStatus> {
  const c = await connect(o);
  try {
    return await statusWith(c.client, c.queue, o);
  } finally {
    await c.close();
  }
}

async function statusWith(client: RedisClient, queue: BullQueue, o: ConnectOptions & { name: string }): Promise<JobStatus> {
  const keys = jobKeys(o.prefix ?? 'bull', o.queue ?? DEFAULT_QUEUE, o.name);
  const meta = await client.hgetall(keys.meta);
  if (!meta.total) throw new ClusterConfigError(`no job named ${o.name} on this Redis (queue ${o.queue ?? DEFAULT_QUEUE})`);
  const total = Number(meta.total);
  const done = await client.scard(keys.done);
  const prefix = `${o.name}.${meta.manifest.slice(0, 16)}.`;
  const failed: ChunkFailure[] = [];
  const doneSet = new Set(await client.smembers(keys.done));
  for (const j of await queue.getFailed(0, -1)) {
    if (!j.id?.startsWith(prefix)) continue;
    const d = j.data as ChunkPayload;
    // A split job fails per (chunk, part): one entry per chunk.
    if (doneSet.has(String(d.chunk.index)) || failed.some((f) => f.index === d.chunk.index)) continue;
    failed.push({ index: d.chunk.index, lines: [d.chunk.firstLine, d.chunk.firstLine + d.chunk.lines - 1], reason: j.failedReason, attempts: j.attemptsMade });
  }
  failed.sort((a, b) => a.index - b.index);
  const counts = await queue.getJobCounts('waiting', 'delayed', 'active', 'prioritized');
  const workers = (await queue.getWorkers()).length;
  const elapsed = (Date.now() - Number(meta.submitted)) / 1000;
  const etaSeconds = done > 0 && done < total ? Math.round(((total - done) * elapsed) / done) : done === total ? 0 : null;
  return { name: o.name, total, done, failed, queued: (counts.waiting ?? 0) + (counts.delayed ?? 0) + (counts.prioritized ?? 0), active: counts.active ?? 0, workers, etaSeconds, outDir: meta.outDir };
}

export interface WaitOptions extends ConnectOptions {
  name: string;
  /** Called after every poll. */
  onProgress?: (s: JobStatus) => void;
  pollMs?: number;
  /** How long Redis may be unreachable before waitForJob gives up (default 60 000). */
  redisTimeoutMs?: number;
}

/**
 * Waits until every chunk is committed (then _SUCCESS is written: ok) or every chunk not
 * committed has failed for good (not ok, with the failures).
 */
export async function waitForJob(o: WaitOptions): Promise<{ ok: boolean; status: JobStatus }> {
  const c = await connect(o);
  try {
    let seen = false;
    let down: number | null = null;
    for (;;) {
      let s: JobStatus;
      try {
        s = await statusWith(c.client, c.queue, o);
        down = null;
      } catch (e) {
        if (e instanceof ClusterConfigError) {
          if (!seen) throw e;
          throw new ClusterConfigError(
            `Redis at ${redactUrl(o.redis)} no longer has job ${o.name} (restarted without persistence, or flushed): its queued chunks are lost; submit it again (committed parts are kept)`,
          );
        }
        // Redis unreachable for a while: ioredis reconnects; give up after redisTimeoutMs.
        down ??= Date.now();
        if (Date.now() - down > (o.redisTimeoutMs ?? 60_000)) throw new ClusterConfigError(`lost Redis at ${redactUrl(o.redis)}: ${(e as Error).message}`);
        await new Promise((r) => setTimeout(r, o.pollMs ?? 500));
        continue;
      }
      seen = true;
      o.onProgress?.(s);
      if (s.done >= s.total) {
        const m = readManifest(join(s.outDir, MANIFEST));
        if (m && existsSync(s.outDir)) {
          const { writeSuccess } = await import('./worker.js');
          if (await writeSuccess(s.outDir, m.manifest)) return { ok: true, status: s };
        }
        if (existsSync(join(s.outDir, SUCCESS))) return { ok: true, status: s };
      }
      if (s.failed.length > 0 && s.done + s.failed.length >= s.total) return { ok: false, status: s };
      await new Promise((r) => setTimeout(r, o.pollMs ?? 500));
    }
  } finally {
    await c.close();
  }
}
