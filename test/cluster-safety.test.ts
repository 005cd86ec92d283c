/**
 * The cluster's operational safety and security, through the library (`recscore/cluster`'s
 * source) against a real redis-server: a Redis that may evict keys is refused; a job naming a
 * path outside the worker's data roots (directly or through a symlink) is refused once, with
 * nothing written there; with a secret, unsigned and altered jobs are refused; a chunk with more
 * bad lines than --max-errors fails once with its line numbers; a worker of another arithmetic
 * contract leaves the job to one of its own.
 */
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { join } from 'node:path';

import { Redis } from 'ioredis';
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { ClusterConfigError, type ClusterWorker, type SubmitOptions, startWorker, submitJob, waitForJob } from '../src/cluster/index.js';
import { cli, ex, model, run, usersPath } from './pipeline-helpers.js';
import { type RedisServer, redisServerPath, startRedis } from './redis-server.js';

const execFileAsync = promisify(execFile);
const why = redisServerPath() ? null : 'redis-server is not on PATH (.ci/run installs the Debian package)';
if (why) console.log(`skipping the cluster safety tests: ${why}`);

const dir = realpathSync(mkdtempSync(join(tmpdir(), 'recscore-cluster-safety-')));
const rootA = join(dir, 'a');
const rootB = join(dir, 'b');
const items = join(rootA, 'items.rsc');
const m = join(rootA, 'm.onnx');
const input = join(rootA, 'users.jsonl');
let redis: RedisServer;
let admin: Redis;
let expected: string;
const secret = Buffer.from('a secret of at least sixteen bytes');
const workers: ClusterWorker[] = [];

const job = (name: string, o: Partial<SubmitOptions> = {}): SubmitOptions => ({
  redis: redis.url(),
  queue: `q-${name}`,
  name,
  model: m,
  catalogue: items,
  input,
  outDir: join(rootA, name),
  k: 4,
  chunk: 10,
  backoffMs: 50,
  ...o,
});

async function worker(queue: string, o: { secret?: Buffer; contract?: number; maxLoaded?: number } = {}): Promise<ClusterWorker> {
  const w = await startWorker({ redis: redis.url(), queue, dataRoots: [rootA], threads: 1, ...o });
  workers.push(w);
  return w;
}

beforeAll(async () => {
  if (why) return;
  mkdirSync(rootA);
  mkdirSync(rootB);
  writeFileSync(m, readFileSync(model));
  const r = run(['catalogue', 'build', '--vectors', join(ex, 'items.npy'), '--out', items]);
  expect(r.status, r.stderr).toBe(0);
  writeFileSync(input, `${readFileSync(usersPath, 'utf8').trim().split('\n').slice(0, 30).join('\n')}\n`);
  const s = run(['score', '--model', m, '--catalogue', items, '--input', input, '--out', join(dir, 'single.jsonl'), '--k', '4', '--quiet']);
  expect(s.status, s.stderr).toBe(0);
  expected = readFileSync(join(dir, 'single.jsonl'), 'utf8');
  redis = await startRedis();
  admin = new Redis(redis.url());
}, 60_000);

afterAll(async () => {
  await Promise.all(workers.map((w) => w.close()));
  admin?.disconnect();
  await redis?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const joined = (outDir: string): string =>
  readdirSync(outDir)
    .filter((f) => f.startsWith('part-'))
    .sort()
    .map((f) => readFileSync(join(outDir, f), 'utf8'))
    .join('');

describe.skipIf(why)('cluster safety', () => {
  it('refuses a Redis whose maxmemory-policy is not noeviction, saying how to set it', async () => {
    await admin.config('SET', 'maxmemory-policy', 'allkeys-lru');
    try {
      const e = await startWorker({ redis: redis.url(), dataRoots: [rootA] }).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(ClusterConfigError);
      expect((e as Error).message).toMatch(/maxmemory-policy allkeys-lru.*CONFIG SET maxmemory-policy noeviction/);
      await expect(submitJob(job('evict'))).rejects.toThrow(/maxmemory-policy allkeys-lru/);
      const cli = run(['cluster', 'worker', '--redis', redis.url(), '--data-root', rootA]);
      expect(cli.status).toBe(2);
      expect(cli.stderr).toMatch(/^recscore: Redis at redis:\/\/127\.0\.0\.1:\d+\/? has maxmemory-policy allkeys-lru.*noeviction/);
    } finally {
      await admin.config('SET', 'maxmemory-policy', 'noeviction');
    }
  });

  it('refuses paths outside the data roots, also through a symlink, once and without writing there', async () => {
    await worker('q-outside');
    await submitJob(job('outside', { outDir: join(rootB, 'out'), queue: 'q-outside' }));
    const a = await waitForJob({ redis: redis.url(), queue: 'q-outside', name: 'outside', pollMs: 50 });
    expect(a.ok).toBe(false);
    expect(a.status.failed.length).toBe(3);
    for (const f of a.status.failed) {
      expect(f.attempts).toBe(1);
      expect(f.reason).toMatch(new RegExp(`--out-dir ${join(rootB, 'out')} resolves to .* outside this worker's --data-root .*: refused`));
    }
    expect(readdirSync(join(rootB, 'out'))).toEqual(['_manifest.json']);

    writeFileSync(join(rootB, 'secret.jsonl'), readFileSync(input));
    symlinkSync(join(rootB, 'secret.jsonl'), join(rootA, 'link.jsonl'));
    await worker('q-link');
    await submitJob(job('link', { input: join(rootA, 'link.jsonl'), queue: 'q-link' }));
    const b = await waitForJob({ redis: redis.url(), queue: 'q-link', name: 'link', pollMs: 50 });
    // A manifest swapped for a symlink to a file outside the roots: refused before it is read.
    await submitJob(job('manifest-link', { queue: 'q-mlink' }));
    const mPath = join(rootA, 'manifest-link', '_manifest.json');
    writeFileSync(join(rootB, 'manifest.json'), readFileSync(mPath));
    rmSync(mPath);
    symlinkSync(join(rootB, 'manifest.json'), mPath);
    await worker('q-mlink');
    const c = await waitForJob({ redis: redis.url(), queue: 'q-mlink', name: 'manifest-link', pollMs: 50 });
    expect(c.ok).toBe(false);
    expect(c.status.failed[0].reason).toMatch(/^the manifest .*_manifest\.json resolves to .*manifest\.json, outside this worker's --data-root .*: refused$/);

    expect(b.ok).toBe(false);
    // The manifest records the resolved input; the worker resolves it again and refuses it.
    expect(b.status.failed[0].reason).toMatch(/--input .*secret\.jsonl resolves to .* outside this worker's --data-root/);
    expect(readdirSync(join(rootA, 'link')).filter((f) => f.startsWith('part-'))).toEqual([]);
  });

  it('with a secret: refuses unsigned and altered jobs, runs signed ones', async () => {
    await submitJob(job('unsigned', { queue: 'q-sig' }));
    await submitJob(job('tampered', { queue: 'q-sig', secret }));
    // Altered in Redis before any worker takes it: another k.
    const q = new Queue('q-sig', { connection: { host: '127.0.0.1', port: redis.port } });
    for (const j of await q.getWaiting()) if (j.data.name === 'tampered') await j.updateData({ ...j.data, options: { ...j.data.options, k: 50 } });
    await q.close();
    await worker('q-sig', { secret });
    const u = await waitForJob({ redis: redis.url(), queue: 'q-sig', name: 'unsigned', pollMs: 50 });
    expect(u.ok).toBe(false);
    expect(u.status.failed[0].reason).toMatch(/not signed.*refused/);
    const t = await waitForJob({ redis: redis.url(), queue: 'q-sig', name: 'tampered', pollMs: 50 });
    expect(t.ok).toBe(false);
    expect(t.status.failed.map((f) => f.reason)).toEqual(Array(3).fill('the job’s signature does not match its payload (altered, or signed with another secret): refused'));
    expect(readdirSync(join(rootA, 'tampered')).filter((f) => f.startsWith('part-'))).toEqual([]);

    // The same job submitted again, signed: its failed chunks are enqueued again and run.
    const again = await submitJob(job('unsigned', { queue: 'q-sig', secret }));
    expect(again).toMatchObject({ total: 3, skipped: 0, enqueued: 3 });
    const u2 = await waitForJob({ redis: redis.url(), queue: 'q-sig', name: 'unsigned', pollMs: 50 });
    expect(u2.ok).toBe(true);
    expect(joined(join(rootA, 'unsigned'))).toBe(expected);

    await submitJob(job('signed', { queue: 'q-sig', secret }));
    const s = await waitForJob({ redis: redis.url(), queue: 'q-sig', name: 'signed', pollMs: 50 });
    expect(s.ok).toBe(true);
    expect(joined(join(rootA, 'signed'))).toBe(expected);
  });

  it('a chunk with more bad lines than --max-errors fails once, naming its lines; others commit', async () => {
    const lines = readFileSync(input, 'utf8').trim().split('\n');
    lines[3] = 'not json';
    lines[12] = '{"user": "x", "history": [999999]}';
    lines[14] = '{"user": "y"}';
    const bad = join(rootA, 'bad.jsonl');
    writeFileSync(bad, `${lines.join('\n')}\n`);
    await worker('q-bad');
    await submitJob(job('bad', { input: bad, queue: 'q-bad', maxErrors: 1, attempts: 5 }));
    const r = await waitForJob({ redis: redis.url(), queue: 'q-bad', name: 'bad', pollMs: 50 });
    expect(r.ok).toBe(false);
    expect(r.status.done).toBe(2);
    expect(r.status.failed).toHaveLength(1);
    const f = r.status.failed[0];
    expect(f).toMatchObject({ index: 1, lines: [11, 20], attempts: 1 });
    expect(f.reason).toMatch(/^chunk 1 \(lines 11-20\): 2 bad lines, more than --max-errors 1 allows: line 13: .*; line 15: /);
    // Chunk 0's one bad line is recorded beside its part.
    expect(readFileSync(join(rootA, 'bad', 'errors-00000.jsonl'), 'utf8')).toMatch(/^\{"line":4,"error":"line 4: not JSON/);

    // The command line: status 1 and one line per failed chunk.
    const r2 = await execFileAsync(process.execPath, [cli, 'cluster', 'submit', '--redis', redis.url(), '--queue', 'q-bad', '--name', 'bad-cli', '--model', m, '--catalogue', items, '--input', bad, '--out-dir', join(rootA, 'bad-cli'), '--k', '4', '--chunk', '10', '--max-errors', '1', '--wait']).then(
      () => ({ code: 0, stderr: '' }),
      (e: { code: number; stderr: string }) => e,
    );
    expect(r2.code).toBe(1);
    expect(r2.stderr).toMatch(/^recscore: chunk 1 \(lines 11-20\) failed after 1 attempt: chunk 1 \(lines 11-20\): 2 bad lines, more than --max-errors 1 allows: line 13: .*; line 15: .*\nrecscore: job bad-cli: 1 chunk failed; fix the cause and submit again: committed chunks are kept \(the same input, model, catalogue and options; a changed one needs another --out-dir\)\n$/m);
  });

  it('a worker of another arithmetic contract leaves the job to a worker of its own', async () => {
    const other = await worker('q-contract', { contract: 999 });
    await submitJob(job('contract', { queue: 'q-contract', chunk: 100 }));
    await new Promise((r) => setTimeout(r, 1500));
    expect(other.stats.refused).toBeGreaterThan(0);
    expect(other.stats.committed).toBe(0);
    expect(readdirSync(join(rootA, 'contract')).filter((f) => f.startsWith('part-'))).toEqual([]);
    await worker('q-contract');
    const r = await waitForJob({ redis: redis.url(), queue: 'q-contract', name: 'contract', pollMs: 50 });
    expect(r.ok).toBe(true);
    expect(other.stats.committed).toBe(0);
    expect(joined(join(rootA, 'contract'))).toBe(expected);
  }, 20_000);

  it('keeps at most maxLoaded model + catalogue pairs loaded between jobs', async () => {
    // The same items with an int8 scan copy: another catalogue file, the same exact results.
    const int8 = join(rootA, 'items-int8.rsc');
    const b = run(['catalogue', 'build', '--vectors', join(ex, 'items.npy'), '--precision', 'int8', '--out', int8]);
    expect(b.status, b.stderr).toBe(0);
    const w = await worker('q-lru', { maxLoaded: 1 });
    await submitJob(job('lru-f32', { queue: 'q-lru' }));
    expect((await waitForJob({ redis: redis.url(), queue: 'q-lru', name: 'lru-f32', pollMs: 50 })).ok).toBe(true);
    expect(w.stats.loaded).toBe(1);
    await submitJob(job('lru-int8', { queue: 'q-lru', catalogue: int8 }));
    expect((await waitForJob({ redis: redis.url(), queue: 'q-lru', name: 'lru-int8', pollMs: 50 })).ok).toBe(true);
    expect(w.stats.loaded).toBe(1);
    expect(joined(join(rootA, 'lru-int8'))).toBe(expected);
  });

  it('refuses a malformed payload once (a name that is not a job name, no chunk)', async () => {
    await worker('q-malformed');
    const q = new Queue('q-malformed', { connection: { host: '127.0.0.1', port: redis.port } });
    try {
      const j = await q.add('x', { v: 1, name: '../../x', contract: 1 }, { attempts: 3 });
      let state = '';
      for (let i = 0; i < 200 && state !== 'failed'; i++) {
        await new Promise((r) => setTimeout(r, 25));
        state = await j.getState();
      }
      const f = await q.getJob(j.id as string);
      expect(f?.failedReason).toBe('the job payload is malformed: refused');
      expect(f?.attemptsMade).toBe(1);
    } finally {
      await q.close();
    }
  });
});
