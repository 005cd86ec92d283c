/** Shared by the pipeline tests: the real CLI in child processes, the library's answer as reference. */
import { type SpawnSyncReturns, spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

import { Catalogue, Encoder, type ItemId } from '../src/index.js';

export const root = new URL('..', import.meta.url).pathname;
export const cli = join(root, 'dist', 'cli.js');
export const ex = join(root, 'models', 'example');
export const model = join(ex, 'session_lstm.onnx');
export const usersPath = join(ex, 'users.jsonl');

export interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

export function run(args: string[], o: { input?: string | Buffer; env?: NodeJS.ProcessEnv; cwd?: string } = {}): Run {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 60_000, input: o.input, cwd: o.cwd, env: { ...process.env, RECSCORE_NATIVE: '', ...o.env }, maxBuffer: 1 << 28 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** As run, with stdout as bytes (Parquet, Arrow). */
export function runBytes(args: string[], o: { input?: string | Buffer; env?: NodeJS.ProcessEnv } = {}): { status: number | null; stdout: Buffer; stderr: string } {
  const r = spawnSync(process.execPath, [cli, ...args], { timeout: 60_000, input: o.input, env: { ...process.env, RECSCORE_NATIVE: '', ...o.env }, maxBuffer: 1 << 28 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr.toString() };
}

/** Runs a shell command line (bash, pipefail off) in `cwd`; `$RECSCORE` is the CLI. */
export function sh(line: string, cwd: string, env: NodeJS.ProcessEnv = {}): SpawnSyncReturns<string> {
  return spawnSync('bash', ['-c', line], { encoding: 'utf8', cwd, timeout: 120_000, env: { ...process.env, RECSCORE: `${process.execPath} ${cli}`, RECSCORE_NATIVE: '', ...env }, maxBuffer: 1 << 28 });
}

/** Status 2 and exactly one line on stderr (no stack). */
export function usageError(r: Run): string {
  if (r.status !== 2 || r.stderr.split('\n').length !== 2 || /\n\s+at /.test(r.stderr)) {
    throw new Error(`expected status 2 and one line, got ${r.status}: ${r.stderr}`);
  }
  return r.stderr;
}

export function listing(dir: string): string[] {
  return readdirSync(dir).sort();
}

/**
 * The library's output lines for parsed users: encode + topK with the history excluded, ids
 * through `outId`, the line format of `recscore score`.
 */
export async function expectedLines(
  catPath: string,
  users: Array<{ user: unknown; history: number[]; exclude?: number[] }>,
  k: number,
  outId: (id: ItemId) => unknown = (id) => id,
): Promise<string> {
  const cat = await Catalogue.open(catPath);
  const enc = await Encoder.load(model);
  try {
    const v = await enc.encode(users.map((p) => p.history));
    const res = cat.topK(v, { k, exclude: users.map((p) => p.exclude ?? p.history) });
    return users
      .map((p, u) => {
        const rows = Array.from(res.rows.subarray(u * res.k, (u + 1) * res.k)).filter((r) => r >= 0);
        return `${JSON.stringify({ user: p.user, items: rows.map((r) => outId(cat.id(r))), scores: rows.map((_, i) => res.scores[u * res.k + i]) })}\n`;
      })
      .join('');
  } finally {
    await enc.close();
    await cat.close();
  }
}

/** The example's users, parsed. */
export function parseUsers(text: string): Array<{ user: string; history: number[] }> {
  return text
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { user: string; history: number[] });
}
