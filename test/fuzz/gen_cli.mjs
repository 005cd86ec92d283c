/**
 * Family d: the `recscore` command line. Each case runs the CLI (a child process of this worker,
 * killed after CLI_TIMEOUT_MS) on random JSONL input for `score` or `eval` (valid lines mixed
 * with null lines, wrong types, huge numbers, nesting a million levels deep, invalid UTF-8, BOMs,
 * CRLF), on hostile flags, on directories, FIFOs (with and without a writer), missing and
 * special files as paths, or stops a `score` job (bad line, SIGKILL, SIGINT, SIGTERM) and resumes
 * it from an intact or corrupted `.progress` checkpoint.
 * Oracle (docs/pipelines.md): exit 0 with the right output (checked line by line against the
 * library in this process: encoder + catalogue, or `evaluate`); exit 1 with `recscore: …` and no
 * stack at the first bad line beyond --max-errors, with the users before it written; exit 2 with
 * a message for a usage mistake or an unusable input (a line named by its number must be the
 * right bad line). Another exit 1, a stack or "internal error" is an untyped error; a signal or
 * another exit code a crash; the timeout a hang.
 *
 * This module holds the environment and picks a case; running the CLI is in gen_cli_exec.mjs,
 * the JSONL lines and the `score` oracle in gen_cli_jsonl.mjs, and the cases in gen_cli_score.mjs,
 * gen_cli_paths.mjs and gen_cli_build.mjs.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { Wrong, errText } from './common.mjs';
import { caseArgs, caseBuild } from './gen_cli_build.mjs';
import { casePaths, caseResume } from './gen_cli_paths.mjs';
import { caseEval, caseScore } from './gen_cli_score.mjs';
import { Rng } from './prng.mjs';

export async function setup(ctx) {
  const { Catalogue, Encoder } = ctx.lib;
  const dir = join(ctx.tmp, 'env');
  mkdirSync(dir, { recursive: true });
  const rng = new Rng('cli-setup');
  const small = { model: join(ctx.root, 'models', 'fixtures', 'lstm1_bf_ylast_tanh.onnx'), catalogue: join(dir, 'small.rsc') };
  const example = { model: join(ctx.root, 'models', 'example', 'session_lstm.onnx'), catalogue: join(dir, 'example.rsc') };
  const c1 = Catalogue.fromVectors(Float32Array.from({ length: 40 * 6 }, () => rng.normal()), { dim: 6, bias: Float32Array.from({ length: 40 }, () => rng.normal() * 0.1) });
  await c1.save(small.catalogue);
  await c1.close();
  const c2 = await Catalogue.fromNpy(join(ctx.root, 'models', 'example', 'items.npy'), { precision: 'int8' });
  await c2.save(example.catalogue);
  await c2.close();
  for (const pair of [small, example]) {
    pair.encoder = await Encoder.load(pair.model, { threads: 1 });
    pair.cat = await Catalogue.open(pair.catalogue);
    pair.vocab = pair.encoder.vocab;
  }
  const files = { dir: join(dir, 'a-directory'), fifo: join(dir, 'fifo'), garbage: join(dir, 'garbage.bin'), empty: join(dir, 'empty.bin') };
  mkdirSync(files.dir);
  execFileSync('mkfifo', [files.fifo]);
  writeFileSync(files.garbage, rng.bytes(5000));
  writeFileSync(files.empty, '');
  return { small, example, files };
}

export async function teardown(ctx) {
  for (const p of [ctx.shared.small, ctx.shared.example]) {
    await p.encoder.close().catch(() => {});
    await p.cat.close().catch(() => {});
  }
}

export async function run(ctx, rng) {
  const kind = rng.weighted([
    [2, 'build'],
    [8, 'score'],
    [3, 'scoreFlags'],
    [4, 'eval'],
    [4, 'paths'],
    [3, 'resume'],
    [2, 'args'],
  ]);
  try {
    if (kind === 'build') return await caseBuild(ctx, rng);
    if (kind === 'score') return await caseScore(ctx, rng, false);
    if (kind === 'scoreFlags') return await caseScore(ctx, rng, true);
    if (kind === 'eval') return await caseEval(ctx, rng);
    if (kind === 'paths') return await casePaths(ctx, rng);
    if (kind === 'resume') return await caseResume(ctx, rng);
    return await caseArgs(ctx, rng);
  } catch (e) {
    if (e instanceof Wrong) return { outcome: 'wrong', detail: e.message };
    return { outcome: 'untyped', detail: `harness: ${errText(e)}` };
  }
}
