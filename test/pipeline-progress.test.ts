/**
 * Progress on stderr: a bar with users/s and an ETA on a terminal (a pseudo-terminal from
 * script(1)), one summary line otherwise, nothing with --quiet.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { cli, ex, model, run, usersPath } from './pipeline-helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'recscore-progress-'));
const items = join(dir, 'items.rsc');
const input = join(dir, 'many.jsonl');
const hasScript = spawnSync('script', ['--version'], { encoding: 'utf8' }).status === 0;
if (!hasScript) console.log('pipeline-progress: script(1) is not installed: the terminal bar is not tested here');

beforeAll(() => {
  expect(run(['catalogue', 'build', '--vectors', join(ex, 'items.npy'), '--out', items]).status).toBe(0);
  writeFileSync(input, readFileSync(usersPath, 'utf8').repeat(10));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const score = (out: string, extra: string[] = []): string[] => ['score', '--model', model, '--catalogue', items, '--k', '5', '--batch', '64', '--threads', '1', '--out', out, ...extra];

/** Runs the CLI on a pseudo-terminal; returns what the terminal showed (stdout and stderr). */
function onTerminal(args: string[], stdinFile?: string): { status: number | null; screen: string } {
  const line = [process.execPath, cli, ...args].map((a) => `'${a}'`).join(' ') + (stdinFile ? ` < '${stdinFile}'` : '');
  const r = spawnSync('script', ['-qec', line, '/dev/null'], { encoding: 'utf8', env: { ...process.env, RECSCORE_NATIVE: '' }, timeout: 60_000 });
  return { status: r.status, screen: r.stdout.replace(/\r/g, '\n') };
}

describe('progress', () => {
  it.skipIf(!hasScript)('on a terminal: a bar with percent, users, users/s and ETA, ending at 100%', () => {
    const r = onTerminal(score(join(dir, 'tty.jsonl'), ['--input', input]));
    expect(r.status, r.screen).toBe(0);
    expect(r.screen).toMatch(/scoring \|[=-]+\| \d+% \| \d+ users \| \d+ users\/s \| ETA /);
    expect(r.screen).toMatch(/\| 100% \| 5000 users \|/);
    expect(r.screen).toContain('scored 5000 users\n');
  });

  it.skipIf(!hasScript)('on a terminal, from a stream of unknown length: users and users/s, no percent or ETA', () => {
    const r = onTerminal(score(join(dir, 'tty-stdin.jsonl'), ['--input', '-']), input);
    expect(r.status, r.screen).toBe(0);
    expect(r.screen).toMatch(/scoring \| 5000 users \| \d+ users\/s/);
    expect(r.screen).not.toMatch(/ETA|%/);
  });

  it.skipIf(!hasScript)('--quiet on a terminal: nothing at all', () => {
    const r = onTerminal(score(join(dir, 'tty-quiet.jsonl'), ['--input', input, '--quiet']));
    expect(r.status).toBe(0);
    expect(r.screen).toBe('');
  });

  it('not a terminal: one summary line; --quiet: nothing', () => {
    const r = run(score(join(dir, 'plain.jsonl'), ['--input', input]));
    expect(r.stderr).toBe('scored 5000 users\n');
    const q = run(score(join(dir, 'quiet.jsonl'), ['--input', input, '--quiet']));
    expect(q.status).toBe(0);
    expect(q.stderr).toBe('');
  });
});
