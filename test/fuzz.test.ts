/**
 * The fuzzing harness's short form (test/fuzz/README.md): 500 generated hostile inputs over the
 * four families (catalogue files, ONNX models, API arguments, CLI inputs), each in a child
 * process, against the build in dist/ (or RECSCORE_FUZZ_BUILD). Fails on any crash, hang, untyped
 * error, wrong answer or model accepted where onnxruntime refuses it, listing those cases with
 * the command that reproduces each. RECSCORE_FUZZ=0 skips it (for a CI that runs
 * `node test/fuzz/run.mjs` as a stage of its own).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { expect, test } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));
const build = process.env.RECSCORE_FUZZ_BUILD ?? 'dist';
const cases = Number(process.env.RECSCORE_FUZZ_CASES ?? 500);
const seed = process.env.RECSCORE_FUZZ_SEED ?? '1';

interface FuzzResult {
  family: string;
  i: number;
  outcome: string;
  kind?: string;
  detail?: string;
  repro: string;
}

test.skipIf(process.env.RECSCORE_FUZZ === '0')(`fuzz: ${cases} hostile inputs (seed ${seed}) give typed errors or correct answers`, () => {
  const dir = mkdtempSync(join(tmpdir(), 'recscore-fuzz-test-'));
  try {
    const json = join(dir, 'fuzz.json');
    const r = spawnSync(process.execPath, [join(root, 'test', 'fuzz', 'run.mjs'), '--cases', String(cases), '--seed', seed, '--build', build, '--json', json, '--quiet'], {
      cwd: root,
      encoding: 'utf8',
      timeout: 280_000,
      maxBuffer: 64 << 20,
    });
    if (r.error) throw r.error;
    // Exit 2/3: the harness could not run (no build, a bad argument): not a fuzz result.
    expect(r.status === 0 || r.status === 1, `run.mjs exited ${r.status}: ${r.stderr}`).toBe(true);
    const out = JSON.parse(readFileSync(json, 'utf8')) as { results: FuzzResult[] };
    const bad = out.results.filter((x) => ['untyped', 'crash', 'hang', 'wrong', 'ortRefused'].includes(x.outcome));
    const report = bad.map((x) => `${x.family} #${x.i} ${x.outcome}: ${x.detail ?? ''}\n    input: ${x.kind ?? '?'}\n    ${x.repro}`).join('\n');
    console.log(r.stdout);
    expect(out.results.length).toBe(cases);
    expect(bad, `failing cases:\n${report}`).toEqual([]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}, 300_000);
