/**
 * docs/pipelines.md: every block marked `# tested: NAME` is run here as written (shell blocks with
 * bash, the Kubernetes pod command with sh -c and JOB_COMPLETION_INDEX, the Spark commands as
 * rdd.pipe and mapInArrow would run them), with `recscore` on PATH, in a directory holding the
 * example model, a catalogue and the example users. Outputs are compared with the library's.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';

import { int64, list, tableFromArrays, tableFromIPC, tableToIPC, utf8 } from '@uwdata/flechette';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { cli, ex, expectedLines, model, parseUsers, root, run, usersPath } from './pipeline-helpers.js';

const doc = readFileSync(join(root, 'docs', 'pipelines.md'), 'utf8');
const dir = mkdtempSync(join(tmpdir(), 'recscore-docs-'));
const bin = join(dir, 'bin');
const usersText = readFileSync(usersPath, 'utf8');
const users = parseUsers(usersText);
let whole = '';
const env = (): NodeJS.ProcessEnv => ({ ...process.env, PATH: `${bin}:${process.env.PATH}`, RECSCORE_NATIVE: '' });

/** The text a `# tested: NAME` marker introduces: the rest of a shell block, or the next line. */
function tested(name: string): string {
  const lines = doc.split('\n');
  const at = lines.findIndex((l) => l.trim() === `# tested: ${name}`);
  expect(at, `docs/pipelines.md has no "# tested: ${name}"`).toBeGreaterThanOrEqual(0);
  const rest = lines.slice(at + 1);
  if (lines[at - 1].startsWith('```sh')) return rest.slice(0, rest.findIndex((l) => l.startsWith('```'))).join('\n');
  return rest[0].trim();
}

function bash(script: string, extra: NodeJS.ProcessEnv = {}, input?: string | Buffer): { status: number | null; stdout: Buffer; stderr: string } {
  const r = spawnSync('bash', ['-e', '-o', 'pipefail', '-c', script], { cwd: dir, env: { ...env(), ...extra }, input, timeout: 120_000, maxBuffer: 1 << 28 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr.toString() };
}

beforeAll(async () => {
  mkdirSync(bin);
  // `recscore` as an installed package's bin would be.
  writeFileSync(join(bin, 'recscore'), `#!/bin/sh\nexec "${process.execPath}" "${cli}" "$@"\n`);
  chmodSync(join(bin, 'recscore'), 0o755);
  copyFileSync(model, join(dir, 'model.onnx'));
  expect(run(['catalogue', 'build', '--vectors', join(ex, 'items.npy'), '--bias', join(ex, 'bias.npy'), '--out', join(dir, 'items.rsc')]).status).toBe(0);
  writeFileSync(join(dir, 'users.jsonl'), usersText);
  writeFileSync(join(dir, 'users.jsonl.gz'), gzipSync(usersText));
  whole = await expectedLines(join(dir, 'items.rsc'), users, 20);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('docs/pipelines.md, as written', () => {
  it('the shell pipeline: gzip in, gzip out', () => {
    const r = bash(tested('shell'));
    expect(r.status, r.stderr).toBe(0);
    expect(gunzipSync(readFileSync(join(dir, 'recs.jsonl.gz'))).toString()).toBe(whole);
    rmSync(join(dir, 'recs.jsonl.gz'));
  });

  it('| head -1: the first answer, and status 0 for the whole pipeline (pipefail)', () => {
    const r = bash(tested('head'));
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.toString()).toBe(whole.split('\n')[0] + '\n');
    expect(r.stderr).toBe('');
  });

  it('the Kubernetes Indexed Job: four pods, one retried, merged by cat', () => {
    const pod = tested('kubernetes');
    expect(pod).toMatch(/^- recscore score .* --shard auto\/4 --resume/);
    mkdirSync(join(dir, 'out'));
    const line = pod.slice(2);
    for (const index of [0, 1, 2, 3, 2]) {
      const r = spawnSync('sh', ['-c', line], { cwd: dir, env: { ...env(), JOB_COMPLETION_INDEX: String(index) }, encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
    }
    const merge = bash(tested('kubernetes-merge'));
    expect(merge.status, merge.stderr).toBe(0);
    expect(gunzipSync(readFileSync(join(dir, 'recs.jsonl.gz'))).toString()).toBe(whole);
  });

  it('Spark rdd.pipe: each partition through the command, the partitions concatenated', () => {
    const m = /^CMD = (".*")$/.exec(tested('spark-pipe'));
    expect(m).not.toBeNull();
    const cmd = JSON.parse(m?.[1] as string) as string;
    const lines = usersText.trim().split('\n');
    // As sc.textFile would: contiguous partitions (one of them empty).
    const parts = [lines.slice(0, 170), lines.slice(170, 171), [], lines.slice(171)];
    const out = parts.map((p) => {
      const r = spawnSync('sh', ['-c', cmd], { cwd: dir, env: env(), input: p.length ? p.join('\n') + '\n' : '', encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      return r.stdout;
    });
    expect(out.join('')).toBe(whole);
  });

  it('Spark mapInArrow: Arrow streams in and out of the command, per partition', () => {
    const m = /^CMD = (\[.*\])$/.exec(tested('spark-arrow'));
    expect(m).not.toBeNull();
    const [command, ...args] = JSON.parse(m?.[1] as string) as string[];
    expect(command).toBe('recscore');
    const parts = [users.slice(0, 200), users.slice(200), []];
    const rows = parts.map((p) => {
      // What pyarrow's stream writer sends (nothing at all for an empty partition).
      const input = p.length ? Buffer.from(tableToIPC(tableFromArrays({ user: p.map((u) => u.user), history: p.map((u) => u.history) }, { types: { user: utf8(), history: list(int64()) } }), { format: 'stream' }) as Uint8Array) : Buffer.alloc(0);
      const r = spawnSync(join(bin, 'recscore'), args, { cwd: dir, env: env(), input, maxBuffer: 1 << 28 });
      expect(r.status, r.stderr.toString()).toBe(0);
      const t = tableFromIPC(r.stdout, { useBigInt: false });
      expect(t.schema.fields.map((f) => f.name)).toEqual(['user', 'items', 'scores']);
      return t.toArray().map((row) => `${JSON.stringify({ user: row.user, items: Array.from(row.items as ArrayLike<number>), scores: Array.from(row.scores as ArrayLike<number>) })}\n`);
    });
    expect(rows[2]).toEqual([]);
    expect(rows.flat().join('')).toBe(whole);
  });
});
