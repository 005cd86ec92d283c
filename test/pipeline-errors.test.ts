/**
 * Exit statuses and messages of `recscore score` / `eval`: usage mistakes and unusable inputs are
 * status 2 with one line naming the argument and its value; bad lines are counted by --max-errors
 * (each recorded with its line number and reason) and beyond it the job stops with status 1 and
 * a summary; eval on an empty input is status 2.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { Catalogue } from '../src/index.js';
import { randomMatrix } from './helpers.js';
import { ex, expectedLines, listing, model, parseUsers, run, usageError, usersPath } from './pipeline-helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'recscore-errors-'));
const items = join(dir, 'items.rsc');
const wide = join(dir, 'wide.rsc'); // 2,100 items: ids 2000.. are outside the model's 0..1999
const users = readFileSync(usersPath, 'utf8').trim().split('\n');

beforeAll(async () => {
  const r = run(['catalogue', 'build', '--vectors', join(ex, 'items.npy'), '--bias', join(ex, 'bias.npy'), '--out', items]);
  expect(r.status, r.stderr).toBe(0);
  const cat = Catalogue.fromVectors(randomMatrix(2100, 32, 5), { dim: 32 });
  await cat.save(wide);
  await cat.close();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('usage mistakes and unusable inputs: status 2, one line naming the argument and the value', () => {
  it('each mistake', () => {
    const o = join(dir, 'never.jsonl');
    const aDir = join(dir, 'a-dir');
    mkdirSync(aDir);
    const npy = join(ex, 'items.npy');
    const s = ['score', '--model', model, '--catalogue', items];
    const cases: Array<[string[], NodeJS.ProcessEnv, string]> = [
      [[...s, '--input', join(dir, 'none.jsonl'), '--out', o], {}, `--input ${join(dir, 'none.jsonl')}: no such file (ENOENT)`],
      [[...s, '--input', aDir, '--out', o], {}, `--input ${aDir}: is a directory, not a file`],
      [[...s, '--input', usersPath, '--out', aDir], {}, `--out ${aDir}: is a directory`],
      [['score', '--model', model, '--catalogue', npy, '--input', usersPath, '--out', o], {}, `--catalogue ${npy}: not a recscore catalogue (bad magic) (a .npy matrix: build a catalogue from it with recscore catalogue build --vectors ${npy} --out FILE.rsc)`],
      [['score', '--model', npy, '--catalogue', items, '--input', usersPath, '--out', o], {}, `--model ${npy}: not a valid ONNX protobuf: field 1250: invalid tag (field 0, wire type 0) (at byte 8)`],
      [[...s, '--input', usersPath, '--out', o, '--bogus'], {}, "unknown option '--bogus'"],
      [[...s, '--input', usersPath, '--out', o, '--unknown', 'maybe'], {}, "option '--unknown <policy>' argument 'maybe' is invalid. Allowed choices are error, skip."],
      [[...s, '--input', usersPath, '--out', o, '--k', 'ten'], {}, "option '--k <k>' argument 'ten' is invalid. --k must be a positive integer, got ten"],
      [[...s, '--input', usersPath, '--out', o, '--shard', '3/3'], {}, '--shard must be I/N or auto/N with 0 <= I < N, got 3/3'],
      [[...s, '--input', usersPath, '--out', o, '--shard', '1/0'], {}, '--shard must be I/N or auto/N with 0 <= I < N, got 1/0'],
      [[...s, '--input', usersPath, '--out', o, '--shard', 'auto/4'], { JOB_COMPLETION_INDEX: undefined }, '--shard auto/4: JOB_COMPLETION_INDEX is not set (it is set in the pods of a Kubernetes Indexed Job)'],
      [[...s, '--input', usersPath, '--out', o, '--shard', 'auto/4'], { JOB_COMPLETION_INDEX: '4' }, '--shard auto/4: JOB_COMPLETION_INDEX must be an integer in 0..3, got "4"'],
      [[...s, '--input', usersPath, '--out', o, '--shard', 'auto/4'], { JOB_COMPLETION_INDEX: 'x' }, '--shard auto/4: JOB_COMPLETION_INDEX must be an integer in 0..3, got "x"'],
      [[...s, '--input', '-', '--out', o, '--shard', '1/2'], {}, '--shard 1/2: --input - is a stream, which one reader cannot split among shards: split it upstream (Spark partitions, split -n l/N), or give a file'],
      [[...s, '--input', usersPath, '--out', o, '--vocabulary', join(dir, 'none.txt')], {}, `--vocabulary ${join(dir, 'none.txt')}: no such file (ENOENT)`],
      [[...s, '--input', usersPath, '--out', usersPath, '--resume'], {}, `--resume: no checkpoint ${usersPath}.progress (start without --resume)`],
      [['eval', '--model', model, '--catalogue', items, '--input', aDir], {}, `--input ${aDir}: is a directory, not a file`],
    ];
    for (const [args, env, message] of cases) {
      const r = run(args, { env, input: '' });
      expect(usageError(r), args.join(' ')).toBe(`recscore: ${message}\n`);
    }
    // Nothing was written by any of them.
    expect(listing(dir)).toEqual(['a-dir', 'items.rsc', 'wide.rsc']);
    rmSync(aDir, { recursive: true });
  });

  it('eval on an empty input: "no sessions in INPUT"', () => {
    const empty = join(dir, 'empty.jsonl');
    for (const content of ['', '\n\n  \n']) {
      writeFileSync(empty, content);
      expect(usageError(run(['eval', '--model', model, '--catalogue', items, '--input', empty]))).toBe(`recscore: no sessions in ${empty}\n`);
    }
    expect(usageError(run(['eval', '--model', model, '--catalogue', items, '--input', '-'], { input: '' }))).toBe('recscore: no sessions in -\n');
    rmSync(empty);
  });

  it('--resume on a job that never started starts it (a retried pod can always pass --resume)', () => {
    const out = join(dir, 'first.jsonl');
    const r = run(['score', '--model', model, '--catalogue', items, '--input', usersPath, '--out', out, '--k', '2', '--resume']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toBe('scored 500 users (resumed at line 1)\n');
    expect(readFileSync(out, 'utf8').trim().split('\n')).toHaveLength(500);
    rmSync(out);
    rmSync(`${out}.progress`);
  });
});

describe('--max-errors counts every per-line failure', () => {
  const bad = [
    ['{"user": "a", "history": [1, 2', /^line 2: not JSON \(/],
    ['{"user": "b", "history": "1 2"}', /^line 3: "history" must be an array of item ids, got "1 2"$/],
    ['{"user": "c", "history": [5, 99999]}', /^line 4: history\[1\] = 99999 is not in the catalogue$/],
    ['{"user": "d", "history": [5, 2050]}', /^line 5: history\[1\] = 2050 is not an item of the model \(0\.\.1999\)$/],
    ['{"user": "e", "history": []}', /^line 6: history is empty$/],
    ['{"user": null, "history": [1]}', /^line 7: "user" must be a string or a number, got null$/],
  ] as const;
  const lines = [users[0], ...bad.map((b) => b[0]), users[1], users[2]];

  it('records each with its line number and reason; N of them pass, N + 1 stop with status 1 and a summary', async () => {
    const input = join(dir, 'mixed.jsonl');
    writeFileSync(input, lines.join('\n') + '\n');
    const base = ['score', '--model', model, '--catalogue', wide, '--input', input, '--k', '4'];
    const out = join(dir, 'ok.jsonl');
    const r = run([...base, '--out', out, '--max-errors', String(bad.length)]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toBe(`scored 3 users, ${bad.length} bad lines skipped (${out}.errors.jsonl)\n`);
    expect(readFileSync(out, 'utf8')).toBe(await expectedLines(wide, parseUsers([users[0], users[1], users[2]].join('\n')), 4));
    const errors = readFileSync(`${out}.errors.jsonl`, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { line: number; error: string });
    expect(errors.map((e) => e.line)).toEqual([2, 3, 4, 5, 6, 7]);
    errors.forEach((e, i) => expect(e.error).toMatch(bad[i][1]));

    const stop = join(dir, 'stop.jsonl');
    const s = run([...base, '--out', stop, '--max-errors', String(bad.length - 1)]);
    expect(s.status).toBe(1);
    expect(s.stderr.split('\n')).toEqual([
      `recscore: line 7: "user" must be a string or a number, got null`,
      `recscore: stopped at line 7: more than ${bad.length - 1} bad lines (--max-errors ${bad.length - 1}, recorded in ${stop}.errors.jsonl); 1 users scored before it are in ${stop}; fix the line and rerun with --resume, or allow bad lines with --max-errors N`,
      '',
    ]);
    expect(readFileSync(`${stop}.errors.jsonl`, 'utf8').trim().split('\n')).toHaveLength(bad.length - 1);
    expect(readFileSync(stop, 'utf8')).toBe(await expectedLines(wide, parseUsers(users[0]), 4));
    // Fixed, the job resumes at the line it stopped at and ends as the tolerant run did.
    lines[6] = '{"user": "g", "history": [1]}';
    writeFileSync(input, lines.join('\n') + '\n');
    const again = run([...base, '--out', stop, '--max-errors', String(bad.length - 1), '--resume']);
    expect(again.status, again.stderr).toBe(0);
    expect(again.stderr).toBe(`scored 4 users, ${bad.length - 1} bad lines skipped (${stop}.errors.jsonl) (resumed at line 7)\n`);
    expect(readFileSync(stop, 'utf8')).toBe(await expectedLines(wide, parseUsers([users[0], '{"user": "g", "history": [1]}', users[1], users[2]].join('\n')), 4));
  });

  it('--unknown skip drops unknown ids (never maps them to 0); a history left empty is still an error', async () => {
    const input = join(dir, 'skip.jsonl');
    writeFileSync(input, ['{"user": "x", "history": [99999, 7, 2050, 9]}', '{"user": "y", "history": [99999]}'].join('\n') + '\n');
    const out = join(dir, 'skip-out.jsonl');
    const r = run(['score', '--model', model, '--catalogue', wide, '--input', input, '--k', '4', '--out', out, '--unknown', 'skip', '--max-errors', '1']);
    expect(r.status, r.stderr).toBe(0);
    expect(readFileSync(out, 'utf8')).toBe(await expectedLines(wide, [{ user: 'x', history: [7, 9] }], 4));
    expect(JSON.parse(readFileSync(`${out}.errors.jsonl`, 'utf8'))).toEqual({ line: 2, error: 'line 2: history is empty (its 1 ids are all unknown, skipped by --unknown skip)' });
  });
});
