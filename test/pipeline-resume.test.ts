/**
 * --resume and signals: a job is identified by its content (input bytes, model, catalogue,
 * options), not by how paths are spelled; it continues after SIGKILL (even mid-write: the output
 * is cut back to the last committed batch), SIGINT and SIGTERM (the batch in hand is finished and
 * committed, status 130/143). No temporary file is left in any case: each scenario ends with a
 * listing of the directory.
 */
import { spawn, spawnSync } from 'node:child_process';
import { appendFileSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { readCheckpoint } from '../src/batch/checkpoint.js';
import { cli, ex, listing, model, run, usersPath } from './pipeline-helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'recscore-resume-'));
const work = join(dir, 'work');
const items = join(dir, 'items.rsc');
const users = readFileSync(usersPath, 'utf8').trim().split('\n');
// 20,000 users: long enough to stop in the middle, in batches of 32.
const manyText = Array.from({ length: 40 }, (_, rep) => users.map((l) => l.replace(/"user": "u/, `"user": "r${rep}-u`))).flat().join('\n') + '\n';
let whole = '';

const args = (input: string, out: string, extra: string[] = []): string[] => ['score', '--model', model, '--catalogue', items, '--input', input, '--out', out, '--k', '10', '--batch', '32', '--threads', '1', ...extra];

beforeAll(() => {
  const r = run(['catalogue', 'build', '--vectors', join(ex, 'items.npy'), '--bias', join(ex, 'bias.npy'), '--out', items]);
  expect(r.status, r.stderr).toBe(0);
  writeFileSync(join(dir, 'many.jsonl'), manyText);
  const w = run(args(join(dir, 'many.jsonl'), '-'));
  expect(w.status, w.stderr).toBe(0);
  whole = w.stdout;
  expect(whole.split('\n')).toHaveLength(20001);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/**
 * Starts the CLI in `cwd` and sends `signal` once its checkpoint is past `afterLine`; resolves
 * with its status, signal and stderr. `stdin`: bytes piped in.
 */
async function stopAt(argv: string[], cwd: string, progressFile: string, afterLine: number, signal: NodeJS.Signals, stdin?: string): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> {
  const child = spawn(process.execPath, [cli, ...argv], { cwd, stdio: [stdin === undefined ? 'ignore' : 'pipe', 'ignore', 'pipe'], env: { ...process.env, RECSCORE_NATIVE: '' } });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  // The child stops reading when it stops: the rest of stdin meets EPIPE, as a pipeline's writer would.
  child.stdin?.on('error', () => undefined);
  if (stdin !== undefined) child.stdin?.end(stdin);
  let sent = false;
  const poll = setInterval(() => {
    try {
      if (!sent && readCheckpoint(progressFile).nextLine > afterLine) {
        sent = true;
        child.kill(signal);
      }
    } catch {
      // not written yet
    }
  }, 1);
  const [code, sig] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.once('close', (c, s) => resolve([c, s])));
  clearInterval(poll);
  expect(sent, `the job ended before line ${afterLine}: ${stderr}`).toBe(true);
  return { code, signal: sig, stderr };
}

describe('--resume identifies a job by content', () => {
  it('after SIGKILLs, resumed with the input spelled x, ./x, absolute, and as a copy elsewhere: exactly the whole output', async () => {
    rmSync(work, { recursive: true, force: true });
    mkdirSync(work);
    copyFileSync(join(dir, 'many.jsonl'), join(work, 'x.jsonl'));
    const progress = join(work, 'out.jsonl.progress');
    const k1 = await stopAt(args('x.jsonl', 'out.jsonl'), work, progress, 3000, 'SIGKILL');
    expect(k1.signal).toBe('SIGKILL');
    // A half-written line after the last commit, as a kill in the middle of a write leaves.
    appendFileSync(join(work, 'out.jsonl'), '{"user":"r9-u0001","items":[12,');
    const k2 = await stopAt(args('./x.jsonl', 'out.jsonl', ['--resume']), work, progress, 8000, 'SIGKILL');
    expect(k2.signal).toBe('SIGKILL');
    copyFileSync(join(work, 'x.jsonl'), join(dir, 'copy-of-x.jsonl'));
    const k3 = await stopAt(args(join(work, 'x.jsonl'), join(work, 'out.jsonl'), ['--resume']), dir, progress, 12000, 'SIGKILL');
    expect(k3.signal).toBe('SIGKILL');
    const at = readCheckpoint(progress).nextLine;
    const r = run(args(join(dir, 'copy-of-x.jsonl'), 'out.jsonl', ['--resume']), { cwd: work });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toBe(`scored 20000 users (resumed at line ${at})\n`);
    expect(readFileSync(join(work, 'out.jsonl'), 'utf8')).toBe(whole);
    expect(listing(work)).toEqual(['out.jsonl', 'out.jsonl.progress', 'x.jsonl']);
    rmSync(join(dir, 'copy-of-x.jsonl'));
  });

  it('refuses another input, model, catalogue or option with one line, and accepts a copy of the catalogue', async () => {
    rmSync(work, { recursive: true, force: true });
    mkdirSync(work);
    writeFileSync(join(work, 'x.jsonl'), manyText);
    const progress = join(work, 'out.jsonl.progress');
    await stopAt(args('x.jsonl', 'out.jsonl'), work, progress, 2000, 'SIGKILL');
    const ck = readCheckpoint(progress);
    // One changed byte before the checkpoint: another input.
    const changed = manyText.replace('"r0-u0005"', '"r0-u0006"');
    writeFileSync(join(work, 'y.jsonl'), changed);
    const other = run(args('y.jsonl', 'out.jsonl', ['--resume']), { cwd: work });
    expect(other.status).toBe(2);
    expect(other.stderr).toBe(`recscore: --resume: the input's first ${ck.nextLine - 1} lines are not those the stopped job read (out.jsonl.progress): give the same input, or start again without --resume\n`);
    const k5 = run(args('x.jsonl', 'out.jsonl', ['--resume', '--k', '5']), { cwd: work });
    expect(k5.stderr).toBe('recscore: --resume: out.jsonl.progress was written for another model, catalogue, vocabulary, shard, k or option\n');
    const otherCat = join(work, 'other.rsc');
    expect(run(['catalogue', 'build', '--vectors', join(ex, 'items.npy'), '--out', otherCat]).status).toBe(0); // no bias: other contents
    const cat = run(['score', '--model', model, '--catalogue', otherCat, '--input', 'x.jsonl', '--out', 'out.jsonl', '--k', '10', '--resume'], { cwd: work });
    expect(cat.stderr).toBe('recscore: --resume: out.jsonl.progress was written for another model, catalogue, vocabulary, shard, k or option\n');
    rmSync(otherCat);
    // The checkpoint is untouched by the refusals: the same job still resumes, from a copied catalogue.
    copyFileSync(items, join(work, 'items-copy.rsc'));
    const ok = run(['score', '--model', model, '--catalogue', 'items-copy.rsc', '--input', '-', '--out', 'out.jsonl', '--k', '10', '--batch', '32', '--resume'], { cwd: work, input: manyText });
    expect(ok.status, ok.stderr).toBe(0);
    expect(readFileSync(join(work, 'out.jsonl'), 'utf8')).toBe(whole);
    rmSync(join(work, 'items-copy.rsc'));
    expect(listing(work)).toEqual(['out.jsonl', 'out.jsonl.progress', 'x.jsonl', 'y.jsonl']);
  });
});

describe('signals', () => {
  it.each([
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const)('%s finishes the batch, commits it, prints "stopped after line L; rerun with --resume" and exits %i', async (signal, status) => {
    rmSync(work, { recursive: true, force: true });
    mkdirSync(work);
    writeFileSync(join(work, 'x.jsonl'), manyText);
    const progress = join(work, 'out.jsonl.progress');
    const r = await stopAt(args('x.jsonl', 'out.jsonl'), work, progress, 1500, signal);
    expect(r.code).toBe(status);
    const m = /^recscore: stopped after line (\d+); rerun with --resume\n$/.exec(r.stderr);
    expect(m, r.stderr).not.toBeNull();
    const last = Number(m?.[1]);
    const ck = readCheckpoint(progress);
    expect(ck.nextLine).toBe(last + 1);
    expect(ck.complete).toBe(false);
    // Exactly the first L users' lines, whole: the batch in hand was finished, not dropped.
    const lines = whole.split('\n');
    expect(readFileSync(join(work, 'out.jsonl'), 'utf8')).toBe(lines.slice(0, last).join('\n') + '\n');
    expect(listing(work)).toEqual(['out.jsonl', 'out.jsonl.progress', 'x.jsonl']);
    const again = run(args('x.jsonl', 'out.jsonl', ['--resume']), { cwd: work });
    expect(again.status, again.stderr).toBe(0);
    expect(readFileSync(join(work, 'out.jsonl'), 'utf8')).toBe(whole);
    expect(listing(work)).toEqual(['out.jsonl', 'out.jsonl.progress', 'x.jsonl']);
  });

  it('stdin input and gzip output: SIGTERM, then the same bytes piped again resume the job', async () => {
    rmSync(work, { recursive: true, force: true });
    mkdirSync(work);
    const progress = join(work, 'out.jsonl.gz.progress');
    const r = await stopAt(args('-', 'out.jsonl.gz'), work, progress, 4000, 'SIGTERM', manyText);
    expect(r.code).toBe(143);
    const killed = await stopAt(args('-', 'out.jsonl.gz', ['--resume']), work, progress, 9000, 'SIGKILL', manyText);
    expect(killed.signal).toBe('SIGKILL');
    appendFileSync(join(work, 'out.jsonl.gz'), Buffer.from([0x1f, 0x8b, 8, 0, 1, 2])); // a member cut short
    const again = run(args('-', 'out.jsonl.gz', ['--resume']), { cwd: work, input: manyText });
    expect(again.status, again.stderr).toBe(0);
    expect(gunzipSync(readFileSync(join(work, 'out.jsonl.gz'))).toString()).toBe(whole);
    expect(listing(work)).toEqual(['out.jsonl.gz', 'out.jsonl.gz.progress']);
  });

  it('a job SIGKILLed as soon as its checkpoint exists (before its first commit) resumes to the whole output', async () => {
    for (let attempt = 0; attempt < 3; attempt++) {
      rmSync(work, { recursive: true, force: true });
      mkdirSync(work);
      writeFileSync(join(work, 'x.jsonl'), manyText);
      const progress = join(work, 'out.jsonl.progress');
      const child = spawn(process.execPath, [cli, ...args('x.jsonl', 'out.jsonl')], { cwd: work, stdio: 'ignore' });
      const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
      // Killed the moment the checkpoint file appears (before the job's first commit).
      while (!existsSync(progress) && child.exitCode === null) await new Promise((r) => setImmediate(r));
      child.kill('SIGKILL');
      await exited;
      // Killed between the checkpoint's creation and its first slot: there is no output yet.
      if (readFileSync(progress).length === 0) expect(existsSync(join(work, 'out.jsonl'))).toBe(false);
      const r = run(args('x.jsonl', 'out.jsonl', ['--resume']), { cwd: work });
      expect(r.status, r.stderr).toBe(0);
      expect(readFileSync(join(work, 'out.jsonl'), 'utf8')).toBe(whole);
      expect(listing(work)).toEqual(['out.jsonl', 'out.jsonl.progress', 'x.jsonl']);
    }
  });

  it('a checkpoint that is a FIFO is refused at once (exit 2), not opened', () => {
    rmSync(work, { recursive: true, force: true });
    mkdirSync(work);
    writeFileSync(join(work, 'x.jsonl'), manyText);
    writeFileSync(join(work, 'out.jsonl'), '');
    expect(spawnSync('mkfifo', [join(work, 'out.jsonl.progress')]).status).toBe(0);
    const r = run(args('x.jsonl', 'out.jsonl', ['--resume']), { cwd: work }); // run() kills after 60 s: a hang fails
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr.trim()).toBe(`recscore: checkpoint out.jsonl.progress is unreadable: delete it or run without --resume`);
  });
});
