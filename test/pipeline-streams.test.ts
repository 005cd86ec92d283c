/**
 * `recscore score` in pipelines: stdin and stdout, gzip both ways, backpressure from a slow
 * reader back to the input, a reader that goes away (`| head -1`), the errors file with --out -.
 * The real CLI runs in child processes; the reference is the library's encode + topK.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { cli, ex, expectedLines, listing, model, parseUsers, run, sh, usageError, usersPath } from './pipeline-helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'recscore-streams-'));
const items = join(dir, 'items.rsc');
const usersText = readFileSync(usersPath, 'utf8');
const base = () => ['score', '--model', model, '--catalogue', items, '--k', '5'];
let whole = '';

beforeAll(async () => {
  const r = run(['catalogue', 'build', '--vectors', join(ex, 'items.npy'), '--bias', join(ex, 'bias.npy'), '--out', items]);
  expect(r.status, r.stderr).toBe(0);
  whole = await expectedLines(items, parseUsers(usersText), 5);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('stdin and stdout', () => {
  it('--input - --out -: the same bytes as the library; stdout holds only data, the summary is on stderr', () => {
    const r = run([...base(), '--input', '-', '--out', '-'], { input: usersText });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toBe(whole);
    expect(r.stderr).toBe('scored 500 users\n');
    // No checkpoint or errors file anywhere: nothing was written beside a file.
    expect(listing(dir)).toEqual(['items.rsc']);
    const quiet = run([...base(), '--input', '-', '--out', '-', '--quiet'], { input: usersText });
    expect(quiet.stdout).toBe(whole);
    expect(quiet.stderr).toBe('');
  });

  it('gzip input is recognised by its first bytes (file or stdin, whatever its name); .gz output is gzip', () => {
    const gz = gzipSync(Buffer.from(usersText));
    writeFileSync(join(dir, 'users-gz.jsonl'), gz); // no .gz in the name
    const fromFile = run([...base(), '--input', join(dir, 'users-gz.jsonl'), '--out', '-']);
    expect(fromFile.status, fromFile.stderr).toBe(0);
    expect(fromFile.stdout).toBe(whole);
    const fromStdin = run([...base(), '--input', '-', '--out', '-'], { input: gz });
    expect(fromStdin.stdout).toBe(whole);
    const out = join(dir, 'recs.jsonl.gz');
    expect(run([...base(), '--input', '-', '--out', out, '--batch', '64'], { input: gz }).status).toBe(0);
    // gzip(1), an independent reader, accepts the file (one member per committed batch) and gives the same bytes.
    const g = spawnSync('gzip', ['-dc', out], { encoding: 'utf8' });
    expect(g.status, g.stderr).toBe(0);
    expect(g.stdout).toBe(whole);
    expect(gunzipSync(readFileSync(out)).toString()).toBe(whole);
    rmSync(out);
    rmSync(`${out}.progress`);
    rmSync(join(dir, 'users-gz.jsonl'));
  });

  it('a corrupt gzip input is one line, status 2', () => {
    const gz = gzipSync(Buffer.from(usersText));
    const broken = Buffer.concat([gz.subarray(0, 200), Buffer.alloc(100, 7)]);
    const r = run([...base(), '--input', '-', '--out', '-'], { input: broken });
    expect(usageError(r)).toMatch(/^recscore: --input -: not a valid gzip stream/);
  });

  it('a reader that goes away (| head -1) ends the job quietly with status 0', () => {
    const big = join(dir, 'big.jsonl');
    writeFileSync(big, usersText.repeat(40));
    const r = sh(`$RECSCORE score --model ${model} --catalogue ${items} --k 5 --input big.jsonl --out - | head -1; echo "status=\${PIPESTATUS[0]}" >&2`, dir);
    expect(r.stdout).toBe(whole.split('\n')[0] + '\n');
    expect(r.stderr).toBe('status=0\n');
    rmSync(big);
  });

  it('backpressure: while stdout is not read, stdin is not drained; then every line arrives, in order', async () => {
    const copies = 200; // 100,000 users, ~30 MB of input: far more than the pipes' buffers
    const child = spawn(process.execPath, [cli, ...base(), '--input', '-', '--out', '-', '--batch', '64'], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, RECSCORE_NATIVE: '' } });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout.pause();
    const chunk = Buffer.from(usersText);
    let written = 0;
    let stalled = false;
    // Write until the child stops taking input for a second (a stall, not a measured time).
    for (let i = 0; i < copies; i++) {
      written++;
      if (!child.stdin.write(chunk)) {
        const drained = await Promise.race([new Promise((r) => child.stdin.once('drain', () => r(true))), new Promise((r) => setTimeout(() => r(false), 1500))]);
        if (!drained) {
          stalled = true;
          break;
        }
      }
    }
    expect(stalled).toBe(true);
    expect(written).toBeLessThan(copies);
    const outChunks: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => outChunks.push(d));
    child.stdout.resume();
    for (let i = written; i < copies; i++) {
      if (!child.stdin.write(chunk)) await new Promise((r) => child.stdin.once('drain', r));
    }
    child.stdin.end();
    const status = await new Promise<number | null>((r) => child.once('close', r));
    expect(status, stderr).toBe(0);
    const out = Buffer.concat(outChunks).toString();
    expect(out.length).toBe(whole.length * copies);
    expect(out.slice(0, whole.length)).toBe(whole);
    expect(out.slice(-whole.length)).toBe(whole);
  }, 120_000);

  it('--out - records bad lines only with --errors FILE', () => {
    const input = `${usersText.split('\n')[0]}\nnot json\n${usersText.split('\n')[1]}\n`;
    expect(usageError(run([...base(), '--input', '-', '--out', '-', '--max-errors', '1'], { input }))).toBe(
      'recscore: --max-errors 1 with --out - needs --errors FILE (where the bad lines are recorded)\n',
    );
    const errors = join(dir, 'bad.jsonl');
    const r = run([...base(), '--input', '-', '--out', '-', '--max-errors', '1', '--errors', errors], { input });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toBe(whole.split('\n').slice(0, 2).join('\n') + '\n');
    expect(r.stderr).toBe(`scored 2 users, 1 bad lines skipped (${errors})\n`);
    expect(JSON.parse(readFileSync(errors, 'utf8'))).toEqual({ line: 2, error: expect.stringMatching(/^line 2: not JSON \(/) as unknown });
    rmSync(errors);
    expect(usageError(run([...base(), '--input', '-', '--out', '-', '--resume'], { input }))).toBe('recscore: --resume needs --out FILE: a job written to stdout keeps no checkpoint\n');
  });
});
