/**
 * `recscore cluster` with real processes: a real redis-server, three `cluster worker` processes,
 * one SIGKILLed while it holds a chunk (BullMQ's stalled-job recovery runs that chunk again on
 * another worker). The parts concatenated in name order are byte for byte what single-process
 * `recscore score` writes for the same input; re-submitting the finished job runs nothing again.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { cli, ex, model, run, usersPath } from './pipeline-helpers.js';
import { type RedisServer, redisServerPath, startRedis } from './redis-server.js';

const why = redisServerPath() ? null : 'redis-server is not on PATH (.ci/run installs the Debian package)';
if (why) console.log(`skipping the cluster process tests: ${why}`);

const dir = realpathSync(mkdtempSync(join(tmpdir(), 'recscore-cluster-')));
const data = join(dir, 'data');
const items = join(data, 'items.rsc');
const input = join(data, 'users.jsonl');
const outDir = join(data, 'out');
let redis: RedisServer;
let expected: Buffer;
const children: ChildProcess[] = [];

interface Proc {
  child: ChildProcess;
  log: () => string;
  exited: Promise<number | null>;
  /** Resolves with the first stderr line matching `re`. */
  line(re: RegExp): Promise<RegExpExecArray>;
}

function start(args: string[]): Proc {
  const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, RECSCORE_NATIVE: '' } });
  children.push(child);
  let text = '';
  const waiters: Array<{ re: RegExp; resolve: (m: RegExpExecArray) => void }> = [];
  const onData = (d: Buffer): void => {
    text += d.toString();
    for (const w of [...waiters]) {
      const m = w.re.exec(text);
      if (m) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(m);
      }
    }
  };
  child.stderr?.on('data', onData);
  child.stdout?.on('data', onData);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    log: () => text,
    exited,
    line: (re) =>
      new Promise((resolve, reject) => {
        const m = re.exec(text);
        if (m) return resolve(m);
        waiters.push({ re, resolve });
        void exited.then((code) => reject(new Error(`exited (${code}) before ${re}: ${text}`)));
      }),
  };
}

const worker = (...extra: string[]): Proc => start(['cluster', 'worker', '--redis', redis.url(), '--data-root', data, '--threads', '1', '--lock-ms', '1500', ...extra]);
const submitArgs = (name = 'nightly', out = outDir): string[] => ['cluster', 'submit', '--redis', redis.url(), '--name', name, '--model', join(data, 'm.onnx'), '--catalogue', items, '--input', input, '--out-dir', out, '--k', '7', '--chunk', '2500', '--wait'];
const parts = (out = outDir): string[] => readdirSync(out).filter((f) => f.startsWith('part-')).sort();
const nine = Array.from({ length: 9 }, (_, i) => `part-${String(i).padStart(5, '0')}`);

beforeAll(async () => {
  if (why) return;
  mkdirSync(data);
  writeFileSync(join(data, 'm.onnx'), readFileSync(model));
  const r = run(['catalogue', 'build', '--vectors', join(ex, 'items.npy'), '--out', items]);
  expect(r.status, r.stderr).toBe(0);
  // 20 000 users in 20 001 lines (9 chunks), with a blank line, a CRLF line and no newline at the end.
  const users = readFileSync(usersPath, 'utf8').trim().split('\n');
  const lines: string[] = [];
  for (let copy = 0; copy < 40; copy++) for (const u of users) lines.push(u.replace('"user": "', `"user": "c${copy}-`));
  lines.splice(3001, 0, '');
  lines[7000] += '\r';
  writeFileSync(input, lines.join('\n'));
  const single = run(['score', '--model', join(data, 'm.onnx'), '--catalogue', items, '--input', input, '--out', join(dir, 'single.jsonl'), '--k', '7', '--quiet']);
  expect(single.status, single.stderr).toBe(0);
  expected = readFileSync(join(dir, 'single.jsonl'));
  redis = await startRedis();
}, 60_000);

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await redis?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(why)('three worker processes, one SIGKILLed mid-chunk', () => {
  it('commits every chunk once: the parts are single-process score byte for byte; re-submission runs nothing', async () => {
    // The third scores two chunks at once (one model and catalogue shared by both).
    const workers = [worker(), worker(), worker('--concurrency', '2')];
    await Promise.all(workers.map((w) => w.line(/: ready\n/)));
    const victim = workers[0];
    const submit = start(submitArgs());
    // The victim is stopped the moment it starts a chunk (before it can finish it), then killed.
    const m = await victim.line(/nightly chunk (\d+): started\n/);
    victim.child.kill('SIGSTOP');
    const held = Number(m[1]);
    const heldPart = join(outDir, `part-${String(held).padStart(5, '0')}`);
    const midChunk = !existsSync(heldPart);
    victim.child.kill('SIGKILL');
    await victim.exited;
    // Stopping a process takes a moment: a chunk committed before it would not test recovery.
    expect(midChunk, `the victim committed chunk ${held} before SIGSTOP took effect`).toBe(true);

    expect(await submit.exited, submit.log()).toBe(0);
    expect(submit.log()).toContain('nightly: done');
    expect(parts()).toEqual(nine);
    const joined = Buffer.concat(parts().map((f) => readFileSync(join(outDir, f))));
    expect(joined.equals(expected)).toBe(true);
    expect(existsSync(join(outDir, '_SUCCESS'))).toBe(true);
    // No temporary file is left (the victim's was cleared when the job finished).
    expect(readdirSync(outDir).filter((f) => f.endsWith('.tmp'))).toEqual([]);

    // The held chunk was run again by a survivor; every chunk was committed, none by the victim.
    const survivors = workers.slice(1).map((w) => w.log()).join('');
    expect(victim.log()).not.toMatch(new RegExp(`chunk ${held}: committed`));
    expect(survivors).toMatch(new RegExp(`nightly chunk ${held}: committed`));
    for (let i = 0; i < 9; i++) expect(`${survivors}${victim.log()}`).toMatch(new RegExp(`nightly chunk ${i}: committed`));

    // Re-submission of the finished job: nothing enqueued, nothing rewritten, no worker starts a chunk.
    const before = parts().map((f) => statSync(join(outDir, f)).mtimeMs);
    const startedBefore = (survivors.match(/: started/g) ?? []).length;
    const again = start(submitArgs());
    expect(await again.exited, again.log()).toBe(0);
    expect(again.log()).toContain('9 chunks, 9 already committed, 0 enqueued');
    expect(parts().map((f) => statSync(join(outDir, f)).mtimeMs)).toEqual(before);
    expect((workers.slice(1).map((w) => w.log()).join('').match(/: started/g) ?? []).length).toBe(startedBefore);

    const status = run(['cluster', 'status', '--redis', redis.url(), '--name', 'nightly', '--json']);
    expect(status.status, status.stderr).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({ name: 'nightly', total: 9, done: 9, failed: [] });

    // SIGTERM: the survivors drain and exit 0.
    for (const w of workers.slice(1)) w.child.kill('SIGTERM');
    expect(await Promise.all(workers.slice(1).map((w) => w.exited))).toEqual([0, 0]);
  }, 60_000);

  it('Redis restarted (without persistence) mid-job: --wait fails with a clear message; submitting again completes, nothing committed twice', async () => {
    const out = join(data, 'out-restart');
    const w = worker();
    await w.line(/: ready\n/);
    const submit = start(submitArgs('restart', out));
    await w.line(/restart chunk 1: committed/);
    await redis.kill();
    await redis.restart();
    expect(await submit.exited, submit.log()).toBe(2);
    expect(submit.log()).toMatch(/recscore: Redis at redis:\/\/127\.0\.0\.1:\d+\/? no longer has job restart \(restarted without persistence, or flushed\): its queued chunks are lost; submit it again \(committed parts are kept\)\n$/);
    const kept = parts(out).map((f) => [f, statSync(join(out, f)).mtimeMs] as const);
    expect(kept.length).toBeGreaterThanOrEqual(2);

    const again = start(submitArgs('restart', out));
    expect(await again.exited, again.log()).toBe(0);
    expect(again.log()).toMatch(new RegExp(`9 chunks, ${kept.length} already committed, ${9 - kept.length} enqueued`));
    expect(parts(out)).toEqual(nine);
    expect(Buffer.concat(parts(out).map((f) => readFileSync(join(out, f)))).equals(expected)).toBe(true);
    for (const [f, t] of kept) expect(statSync(join(out, f)).mtimeMs, f).toBe(t);
    // One worker, one chunk at a time: each chunk committed exactly once (a re-run finds its part).
    for (let i = 0; i < 9; i++) expect(w.log().match(new RegExp(`restart chunk ${i}: committed`, 'g')), `chunk ${i}`).toHaveLength(1);
    w.child.kill('SIGTERM');
    expect(await w.exited).toBe(0);
  }, 60_000);

  it('over TLS (rediss://, --redis-ca) as an ACL user: worker, submit --wait and status; the password is in no output', async () => {
    const user = { name: 'scorer', password: 'S3cret-pa55word-never-shown' };
    const tlsRedis = await startRedis({ tls: true, user });
    try {
      const ca = join(dir, 'ca.pem');
      writeFileSync(ca, tlsRedis.ca as string);
      const url = tlsRedis.url(user);
      const out = join(data, 'out-tls');
      const w = start(['cluster', 'worker', '--redis', url, '--redis-ca', ca, '--data-root', data, '--threads', '1']);
      await w.line(/: ready\n/);
      const submit = start(['cluster', 'submit', '--redis', url, '--redis-ca', ca, '--name', 'tls', '--model', join(data, 'm.onnx'), '--catalogue', items, '--input', input, '--out-dir', out, '--k', '7', '--chunk', '5000', '--wait']);
      expect(await submit.exited, submit.log()).toBe(0);
      expect(Buffer.concat(parts(out).map((f) => readFileSync(join(out, f)))).equals(expected)).toBe(true);
      const status = run(['cluster', 'status', '--redis', url, '--redis-ca', ca, '--name', 'tls']);
      expect(status.status, status.stderr).toBe(0);
      expect(status.stdout).toMatch(/^chunks {4}5\/5 committed$/m);
      // Without the CA the certificate is not trusted: one line, no password.
      const untrusted = run(['cluster', 'status', '--redis', url, '--name', 'tls']);
      expect(untrusted.status).toBe(2);
      expect(untrusted.stderr).toBe(`recscore: cannot use Redis at rediss://scorer:***@localhost:${tlsRedis.port}: self-signed certificate\n`);
      w.child.kill('SIGTERM');
      expect(await w.exited).toBe(0);
      for (const text of [w.log(), submit.log(), status.stdout, status.stderr, untrusted.stderr]) expect(text).not.toContain(user.password);
    } finally {
      await tlsRedis.stop();
    }
  }, 60_000);

  it('a catalogue split in 3 parts: every chunk scored against every part by two workers, merged exactly', async () => {
    const splitDir = join(data, 'split');
    const sp = run(['cluster', 'split-catalogue', items, '--parts', '3', '--out-dir', splitDir]);
    expect(sp.status, sp.stderr).toBe(0);
    expect(sp.stdout).toBe(`wrote ${splitDir}: 3 parts of 666, 667, 667 items\n`);
    const out = join(data, 'out-split');
    const ws = [worker(), worker()];
    await Promise.all(ws.map((w) => w.line(/: ready\n/)));
    const submit = start(['cluster', 'submit', '--redis', redis.url(), '--name', 'split', '--model', join(data, 'm.onnx'), '--catalogue', splitDir, '--input', input, '--out-dir', out, '--k', '7', '--chunk', '5000', '--wait']);
    expect(await submit.exited, submit.log()).toBe(0);
    expect(submit.log()).toContain('split: 5 chunks, 0 already committed, 15 enqueued');
    expect(parts(out)).toEqual(nine.slice(0, 5));
    expect(Buffer.concat(parts(out).map((f) => readFileSync(join(out, f)))).equals(expected)).toBe(true);
    // The partials are gone once the job is done.
    expect(readdirSync(out).sort()).toEqual(['_SUCCESS', '_manifest.json', ...nine.slice(0, 5)]);

    // With a bias and an int8 scan copy, 4 parts, and bad lines within --max-errors: the same parts and errors.
    const itb = join(data, 'itb.rsc');
    expect(run(['catalogue', 'build', '--vectors', join(ex, 'items.npy'), '--bias', join(ex, 'bias.npy'), '--precision', 'int8', '--out', itb]).status).toBe(0);
    expect(run(['catalogue', 'split', itb, '--parts', '4', '--out-dir', join(data, 'split-b')]).status).toBe(0);
    const lines = readFileSync(input, 'utf8').split('\n').slice(0, 900);
    lines.splice(300, 0, 'not json', '{"user": "z", "history": [99999]}');
    const badIn = join(data, 'bad.jsonl');
    writeFileSync(badIn, `${lines.join('\n')}\n`);
    const single = run(['score', '--model', join(data, 'm.onnx'), '--catalogue', itb, '--input', badIn, '--out', join(dir, 'bad-single.jsonl'), '--k', '9', '--max-errors', '2', '--quiet']);
    expect(single.status, single.stderr).toBe(0);
    const outB = join(data, 'out-split-b');
    const b = start(['cluster', 'submit', '--redis', redis.url(), '--name', 'split-b', '--model', join(data, 'm.onnx'), '--catalogue', join(data, 'split-b'), '--input', badIn, '--out-dir', outB, '--k', '9', '--chunk', '200', '--max-errors', '2', '--wait']);
    expect(await b.exited, b.log()).toBe(0);
    expect(Buffer.concat(parts(outB).map((f) => readFileSync(join(outB, f)))).equals(readFileSync(join(dir, 'bad-single.jsonl')))).toBe(true);
    expect(readFileSync(join(outB, 'errors-00001.jsonl'), 'utf8')).toBe(readFileSync(join(dir, 'bad-single.jsonl.errors.jsonl'), 'utf8'));
    for (const w of ws) w.child.kill('SIGTERM');
    expect(await Promise.all(ws.map((w) => w.exited))).toEqual([0, 0]);
  }, 60_000);
});
