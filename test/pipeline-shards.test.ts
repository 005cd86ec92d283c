/**
 * `--shard I/N` (0-based, as JOB_COMPLETION_INDEX) and `--shard auto/N`: every shard is a
 * contiguous part of the input, so the shards' outputs concatenated in index order are byte for
 * byte the whole job's output, for plain and gzip files, awkward line layouts and any N.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { ex, model, run, usersPath } from './pipeline-helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'recscore-shards-'));
const items = join(dir, 'items.rsc');
const users = readFileSync(usersPath, 'utf8').trim().split('\n');

beforeAll(() => {
  const r = run(['catalogue', 'build', '--vectors', join(ex, 'items.npy'), '--out', items]);
  expect(r.status, r.stderr).toBe(0);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function scoreTo(input: string, out: string, extra: string[] = [], env: NodeJS.ProcessEnv = {}): string {
  const r = run(['score', '--model', model, '--catalogue', items, '--input', input, '--out', out, '--k', '3', '--quiet', '--max-errors', '100', ...extra], { env });
  expect(r.status, r.stderr).toBe(0);
  return readFileSync(out, 'utf8');
}

describe('shards concatenated are the whole job, byte for byte', () => {
  // Blank lines, CRLF endings, a bad line, a long line and a last line without a newline.
  const layout = [users[0], '', users[1] + '\r', 'not json', ...users.slice(2, 40), `{"user": "long", "history": [${Array.from({ length: 3000 }, (_, i) => i % 2000).join(', ')}]}`, '', ...users.slice(40, 90)].join('\n');

  it.each([
    ['plain', false],
    ['gzip', true],
  ])('%s input, N = 1, 2, 3, 7, and more shards than lines', (kind, gz) => {
    const check = (text: string, name: string, ns: number[], errorLine: number | null): void => {
      const input = join(dir, gz ? `${name}.jsonl.gz` : `${name}.jsonl`);
      writeFileSync(input, gz ? gzipSync(text) : text);
      const whole = scoreTo(input, join(dir, `${name}-${kind}-whole.jsonl`));
      expect(whole.trim().split('\n')).toHaveLength(name === 'tiny' ? 3 : 91);
      const wholeErrors = readFileSync(join(dir, `${name}-${kind}-whole.jsonl.errors.jsonl`), 'utf8');
      if (errorLine !== null) expect(JSON.parse(wholeErrors)).toMatchObject({ line: errorLine });
      for (const n of ns) {
        const parts: string[] = [];
        const errors: string[] = [];
        for (let i = 0; i < n; i++) {
          const out = join(dir, `${name}-${kind}-${n}-${i}.jsonl`);
          parts.push(scoreTo(input, out, ['--shard', `${i}/${n}`]));
          errors.push(readFileSync(`${out}.errors.jsonl`, 'utf8'));
        }
        expect(parts.join(''), `N = ${n}`).toBe(whole);
        // Line numbers are the input's, whichever shard met the line.
        expect(errors.join('')).toBe(wholeErrors);
        if (name === 'tiny') expect(parts.filter((p) => p === '')).toHaveLength(n - 3);
      }
    };
    check(layout, 'layout', [1, 2, 3, 7], 4);
    // 3 lines, 8 shards: most are empty, the three lines land once each.
    check(users.slice(0, 3).join('\n'), 'tiny', [8], null);
  });

  it('auto/N takes I from JOB_COMPLETION_INDEX, as a Kubernetes Indexed Job pod would', () => {
    const input = join(dir, 'k8s.jsonl');
    writeFileSync(input, users.join('\n') + '\n');
    const whole = scoreTo(input, join(dir, 'k8s-whole.jsonl'));
    const parts = [0, 1, 2, 3].map((i) => scoreTo(input, join(dir, `k8s-${i}.jsonl`), ['--shard', 'auto/4'], { JOB_COMPLETION_INDEX: String(i) }));
    expect(parts.join('')).toBe(whole);
    // The same as the explicit index.
    expect(scoreTo(input, join(dir, 'k8s-explicit-2.jsonl'), ['--shard', '2/4'])).toBe(parts[2]);
  });
});
