/**
 * The command line against what a buggy writer or an attacker can hand it: deep nesting, null
 * lines, wrong types, corrupt checkpoints, directories and FIFOs as paths. Every such input is a
 * per-line error with its line number or one message with status 2, never "internal error".
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { crc32 } from 'node:zlib';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { readCheckpoint } from '../src/batch/checkpoint.js';
import { failure } from '../src/cli/failure.js';
import { lines } from '../src/batch/jsonl.js';
import { score } from '../src/batch/score_job.js';
import { UserError } from '../src/cli/user_error.js';
import {
  Catalogue,
  ClosedError,
  Encoder,
  FileError,
  FormatError,
  InvalidArgumentError,
  ModelError,
  NativeLoadError,
  OutOfRangeError,
  PeerMissingError,
  UnsupportedModelError,
} from '../src/index.js';
import { randomMatrix } from './helpers.js';

const root = new URL('..', import.meta.url).pathname;
const cli = join(root, 'dist', 'cli.js');
const ex = join(root, 'models', 'example');
const model = join(ex, 'session_lstm.onnx');
const users = join(ex, 'users.jsonl');
const dir = mkdtempSync(join(tmpdir(), 'recscore-hostile-'));
const items = join(dir, 'items.rsc');
const fifo = join(dir, 'fifo');
const aDir = join(dir, 'a-directory');

function run(args: string[], input?: string): { status: number | null; stdout: string; stderr: string } {
  // A timeout: a FIFO that blocked would otherwise hang the suite.
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 30_000, input, env: { ...process.env, RECSCORE_NATIVE: '' } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Status 1 (more bad lines than --max-errors): the line's error, then the summary; no stack. */
function expectTooMany(r: { status: number | null; stderr: string }, message: RegExp): void {
  expect(r.status, r.stderr).toBe(1);
  expect(r.stderr).not.toContain('internal error');
  expect(r.stderr).not.toMatch(/\n\s+at /);
  expect(r.stderr).toMatch(message);
  expect(r.stderr.trim().split('\n')).toHaveLength(2);
}

/** Status 2, exactly one line on stderr, no stack, no "internal error". */
function expectUserError(r: { status: number | null; stderr: string }, message: string | RegExp): void {
  expect(r.status, r.stderr).toBe(2);
  expect(r.stderr).not.toContain('internal error');
  expect(r.stderr).not.toMatch(/\n\s+at /);
  if (typeof message === 'string') expect(r.stderr).toBe(`recscore: ${message}\n`);
  else expect(r.stderr).toMatch(message);
}

beforeAll(() => {
  mkdirSync(aDir);
  expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
  const r = run(['catalogue', 'build', '--vectors', join(ex, 'items.npy'), '--out', items]);
  expect(r.status, r.stderr).toBe(0);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const firstUsers = readFileSync(users, 'utf8').trim().split('\n').slice(0, 3);

describe('recscore score: bad lines are per-line errors', () => {
  it('a history nested 1M levels deep is a per-line error (stops the job, or is counted by --max-errors)', () => {
    const input = join(dir, 'deep.jsonl');
    const n = 1_000_000;
    writeFileSync(input, `${firstUsers[0]}\n{"user":1,"history":${'['.repeat(n)}${']'.repeat(n)}}\n${firstUsers[1]}\n`);
    const base = ['score', '--model', model, '--catalogue', items, '--input', input, '--k', '3'];
    const stop = run([...base, '--out', join(dir, 'deep-out.jsonl')]);
    expectTooMany(stop, /^recscore: line 2: history\[0\] must be a catalogue id \(a string or an integer\), got Array\(1\)\nrecscore: stopped at line 2: no bad lines are allowed; 1 users scored before it/);
    const out = join(dir, 'deep-tolerant.jsonl');
    expect(run([...base, '--out', out, '--max-errors', '1']).status).toBe(0);
    expect(readFileSync(out, 'utf8').trim().split('\n')).toHaveLength(2);
    expect(JSON.parse(readFileSync(`${out}.errors.jsonl`, 'utf8'))).toEqual({ line: 2, error: 'line 2: history[0] must be a catalogue id (a string or an integer), got Array(1)' });
  });

  it('null, wrong types and a missing user are counted by --max-errors with their line numbers', () => {
    const input = join(dir, 'types.jsonl');
    const bad = ['null', '{"user":"b","history":5}', '{"user":"c","history":[1.5]}', '{"user":"d","history":[{}]}', '{"history":[1]}', '[1,2]', '{"user":"e","history":[true]}', '"text"'];
    writeFileSync(input, [firstUsers[0], ...bad, firstUsers[1]].join('\n') + '\n');
    const base = ['score', '--model', model, '--catalogue', items, '--input', input, '--k', '3'];
    const out = join(dir, 'types-out.jsonl');
    const r = run([...base, '--out', out, '--max-errors', String(bad.length)]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toContain(`scored 2 users, ${bad.length} bad lines skipped`);
    const errors = readFileSync(`${out}.errors.jsonl`, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { line: number; error: string });
    expect(errors).toEqual([
      { line: 2, error: 'line 2: expected an object with "user" and "history", got null' },
      { line: 3, error: 'line 3: "history" must be an array of item ids, got 5' },
      { line: 4, error: 'line 4: history[0] must be a catalogue id (a string or an integer), got 1.5' },
      { line: 5, error: 'line 5: history[0] must be a catalogue id (a string or an integer), got Object' },
      { line: 6, error: 'line 6: "user" must be a string or a number, got undefined' },
      { line: 7, error: 'line 7: expected an object with "user" and "history", got Array(2)' },
      { line: 8, error: 'line 8: history[0] must be a catalogue id (a string or an integer), got true' },
      { line: 9, error: 'line 9: expected an object with "user" and "history", got "text"' },
    ]);
    // One fewer allowed: the job stops at the last bad line, everything before it written.
    const stop = run([...base, '--out', join(dir, 'types-stop.jsonl'), '--max-errors', String(bad.length - 1)]);
    expectTooMany(stop, /^recscore: line 9: expected an object with "user" and "history", got "text"\nrecscore: stopped at line 9: more than 7 bad lines \(--max-errors 7, recorded in .*types-stop\.jsonl\.errors\.jsonl\); 1 users scored before it are in /);
  });

  it('--max-errors counts an id outside the model’s vocabulary (an encoder error)', async () => {
    // 2,100 catalogue items; the model knows items 0..1999.
    const wide = join(dir, 'wide.rsc');
    const cat = Catalogue.fromVectors(randomMatrix(2100, 32, 5), { dim: 32 });
    await cat.save(wide);
    await cat.close();
    const input = join(dir, 'vocab.jsonl');
    writeFileSync(input, [firstUsers[0], '{"user":"x","history":[5, 2050]}', firstUsers[1]].join('\n') + '\n');
    const base = ['score', '--model', model, '--catalogue', wide, '--input', input, '--k', '3'];
    expectTooMany(run([...base, '--out', join(dir, 'vocab-stop.jsonl')]), /^recscore: line 2: history\[1\] = 2050 is not an item of the model \(0\.\.1999\)\n/);
    const out = join(dir, 'vocab-ok.jsonl');
    expect(run([...base, '--out', out, '--max-errors', '1']).status).toBe(0);
    expect(JSON.parse(readFileSync(`${out}.errors.jsonl`, 'utf8'))).toEqual({ line: 2, error: 'line 2: history[1] = 2050 is not an item of the model (0..1999)' });
  });

  it('a batch the encoder refuses is retried user by user: only the bad lines are errors, in line order', async () => {
    const cat = Catalogue.fromVectors(randomMatrix(50, 4, 9), { dim: 4 });
    // An encoder whose vocabulary is unknown (as some onnxruntime models): it refuses item 13 itself.
    const encoder = {
      dim: 4,
      vocab: null,
      backend: 'onnxruntime',
      async encode(hs: number[][]): Promise<Float32Array> {
        hs.forEach((h, u) => h.forEach((id, p) => {
          if (id === 13) throw new OutOfRangeError(`histories[${u}][${p}] = 13 is not an item index of the model (0..12)`);
        }));
        return new Float32Array(hs.length * 4).fill(0.5);
      },
    } as unknown as Encoder;
    const input = join(dir, 'retry.jsonl');
    writeFileSync(input, ['{"user":1,"history":[1]}', '{"user":2,"history":[2,13]}', 'null', '{"user":4,"history":[13]}', '{"user":5,"history":[5]}'].join('\n') + '\n');
    const common = { encoder, catalogue: cat, input, k: 2, excludeHistory: true, threads: 1, resume: false, shard: { index: 0, count: 1 }, batch: 10, identity: 'x', progress: { write: () => true } };
    const out = join(dir, 'retry-out.jsonl');
    const r = await score({ ...common, out, maxErrors: 3 });
    expect(r).toMatchObject({ scored: 2, errors: 3, complete: true });
    expect(readFileSync(out, 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { user: number }).user)).toEqual([1, 5]);
    expect(readFileSync(`${out}.errors.jsonl`, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as object)).toEqual([
      { line: 2, error: 'line 2: history[1] = 13 is not an item index of the model (0..12)' },
      { line: 3, error: 'line 3: expected an object with "user" and "history", got null' },
      { line: 4, error: 'line 4: history[0] = 13 is not an item index of the model (0..12)' },
    ]);
    // Beyond --max-errors: stops at the first bad line with the one before it written, and the
    // checkpoint points at that line.
    const out2 = join(dir, 'retry-stop.jsonl');
    await expect(score({ ...common, out: out2, maxErrors: 0 })).rejects.toThrow(/^line 2: history\[1\] = 13 is not an item index/);
    expect(readFileSync(out2, 'utf8').trim().split('\n')).toHaveLength(1);
    expect(readCheckpoint(`${out2}.progress`)).toMatchObject({ nextLine: 2, inputBytes: '{"user":1,"history":[1]}\n'.length, scored: 1, complete: false });
    await cat.close();
  });
});

describe('recscore eval: bad lines', () => {
  it('a null line, wrong types and deep nesting stop eval with status 2 and the line number', () => {
    const cases: Array<[string, string]> = [
      ['null', 'line 2: expected {"history": [...], "next": id}'],
      ['{"history": 3, "next": 1}', 'line 2: expected {"history": [...], "next": id}'],
      ['{"history": [1], "next": 1.5}', 'line 2: next must be a catalogue id (a string or an integer), got 1.5'],
      ['{"history": [[[[[1]]]]], "next": 1}', 'line 2: history[0] must be a catalogue id (a string or an integer), got Array(1)'],
      [`{"history": ${'['.repeat(1e6)}${']'.repeat(1e6)}, "next": 1}`, 'line 2: history[0] must be a catalogue id (a string or an integer), got Array(1)'],
      ['{"history": [1], "next": 99999}', 'line 2: next = 99999 is not in the catalogue'],
    ];
    for (const [line, message] of cases) {
      const input = join(dir, 'eval-bad.jsonl');
      writeFileSync(input, `{"history": [1, 2], "next": 3}\n${line}\n`);
      expectUserError(run(['eval', '--model', model, '--catalogue', items, '--input', input]), message);
    }
  });
});

describe('recscore score --resume: a corrupt checkpoint', () => {
  it('exits 2 with exactly "checkpoint FILE is unreadable: delete it or run without --resume"', () => {
    const out = join(dir, 'resume.jsonl');
    const args = ['score', '--model', model, '--catalogue', items, '--input', users, '--k', '3', '--out', out, '--resume'];
    expect(run(args.slice(0, -1)).status).toBe(0);
    const good = readFileSync(`${out}.progress`);
    const ck = readCheckpoint(`${out}.progress`);
    // A slot: JSON, a space, the CRC-32 of the JSON in hex, a newline, spaces to 1024 bytes.
    const slot = (fields: unknown): Buffer => {
      const json = JSON.stringify(fields);
      return Buffer.from(`${json} ${crc32(json).toString(16).padStart(8, '0')}\n`.padEnd(1024, ' '));
    };
    const flipped = Buffer.from(good);
    flipped[10] ^= 1;
    flipped[1024 + 10] ^= 1;
    const corrupt = [
      Buffer.alloc(0),
      Buffer.from('garbage'),
      Buffer.from(JSON.stringify(ck)),
      flipped,
      Buffer.concat([slot({ ...ck, nextLine: -1 }), slot({ ...ck, outBytes: '12' })]),
      Buffer.concat([slot({ ...ck, seq: undefined }), slot(null)]),
    ];
    for (const bytes of corrupt) {
      writeFileSync(`${out}.progress`, bytes);
      expectUserError(run(args), `checkpoint ${out}.progress is unreadable: delete it or run without --resume`);
    }
    // A save cut short (the newer slot torn) leaves the older one: the job resumes from it.
    const torn = Buffer.from(good);
    const newer = ck.seq % 2;
    torn.fill(0x20, newer * 1024 + 20, newer * 1024 + 1024);
    writeFileSync(`${out}.progress`, torn);
    const whole = readFileSync(out, 'utf8');
    const again = run(args);
    expect(again.status, again.stderr).toBe(0);
    expect(readFileSync(out, 'utf8')).toBe(whole);
    rmSync(`${out}.progress`);
    mkdirSync(`${out}.progress`);
    expectUserError(run(args), `checkpoint ${out}.progress is unreadable: delete it or run without --resume`);
  });
});

describe('recscore: paths that are not usable files', () => {
  it('directories, FIFOs and missing files exit 2 with one line naming the path', () => {
    const o = join(dir, 'never.jsonl');
    const cases: Array<[string[], string]> = [
      [['score', '--model', aDir, '--catalogue', items, '--input', users, '--out', o], `--model ${aDir}: is a directory, not a regular file`],
      [['score', '--model', fifo, '--catalogue', items, '--input', users, '--out', o], `--model ${fifo}: is a FIFO, not a regular file`],
      [['score', '--model', model, '--catalogue', aDir, '--input', users, '--out', o], `--catalogue ${aDir}: is a directory, not a regular file`],
      [['score', '--model', model, '--catalogue', fifo, '--input', users, '--out', o], `--catalogue ${fifo}: is a FIFO, not a regular file`],
      [['score', '--model', model, '--catalogue', join(dir, 'none.rsc'), '--input', users, '--out', o], `--catalogue ${join(dir, 'none.rsc')}: no such file (ENOENT)`],
      [['score', '--model', model, '--catalogue', items, '--input', aDir, '--out', o], `--input ${aDir}: is a directory, not a file`],
      [['score', '--model', model, '--catalogue', items, '--input', join(dir, 'none.jsonl'), '--out', o], `--input ${join(dir, 'none.jsonl')}: no such file (ENOENT)`],
      [['score', '--model', model, '--catalogue', items, '--input', users, '--out', aDir], `--out ${aDir}: is a directory`],
      [['score', '--model', model, '--catalogue', items, '--input', users, '--out', join(dir, 'no', 'x.jsonl')], `--out ${join(dir, 'no', 'x.jsonl')}: cannot use the directory ${join(dir, 'no')} (ENOENT)`],
      [['eval', '--model', model, '--catalogue', fifo, '--input', users], `--catalogue ${fifo}: is a FIFO, not a regular file`],
      [['eval', '--model', model, '--catalogue', items, '--input', aDir], `--input ${aDir}: is a directory, not a file`],
      [['catalogue', 'inspect', aDir], `catalogue ${aDir}: is a directory, not a regular file`],
      [['catalogue', 'inspect', fifo], `catalogue ${fifo}: is a FIFO, not a regular file`],
      [['catalogue', 'build', '--vectors', fifo, '--out', join(dir, 'x.rsc')], `--vectors ${fifo}: is a FIFO, not a regular file`],
      [['catalogue', 'build', '--vectors', join(ex, 'items.npy'), '--ids', aDir, '--out', join(dir, 'x.rsc')], `--ids ${aDir}: is a directory, not a regular file`],
      [['catalogue', 'build', '--vectors', join(ex, 'items.npy'), '--out', aDir], `--out ${aDir}: is a directory`],
      [['score', '--model', model, '--catalogue', items, '--input', users, '--out', o, '--threads', '100000'], ''],
    ];
    for (const [args, message] of cases) {
      const r = run(args);
      if (message) expectUserError(r, message);
      else expectUserError(r, /--threads must be at most 1024, got 100000/);
    }
  });

  it('--input may be a FIFO or /dev/stdin (a stream), with the same output as a file', async () => {
    const lines = readFileSync(users, 'utf8').split('\n').slice(0, 40).join('\n') + '\n';
    const fromFile = join(dir, 'in-file.jsonl');
    writeFileSync(fromFile, lines);
    const base = ['score', '--model', model, '--catalogue', items, '--k', '5'];
    expect(run([...base, '--input', fromFile, '--out', join(dir, 's-file.jsonl')]).status).toBe(0);
    const stdin = run([...base, '--input', '/dev/stdin', '--out', join(dir, 's-stdin.jsonl')], lines);
    expect(stdin.status, stdin.stderr).toBe(0);
    const child = spawn(process.execPath, [cli, ...base, '--input', fifo, '--out', join(dir, 's-fifo.jsonl')], { stdio: ['ignore', 'ignore', 'pipe'] });
    writeFileSync(fifo, lines); // blocks until the child opens the FIFO
    const status = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    expect(status).toBe(0);
    const expected = readFileSync(join(dir, 's-file.jsonl'), 'utf8');
    expect(readFileSync(join(dir, 's-stdin.jsonl'), 'utf8')).toBe(expected);
    expect(readFileSync(join(dir, 's-fifo.jsonl'), 'utf8')).toBe(expected);
  });
});

describe('reading JSONL: bounded lines, exact offsets', () => {
  it('keeps byte offsets across chunks, and skips a line longer than the limit without keeping it', async () => {
    const path = join(dir, 'lines.jsonl');
    const big = 'x'.repeat(3 << 20); // spans several 1 MiB chunks
    const content = `a\r\n${big}\n\nlast`;
    writeFileSync(path, content);
    const read = async (max?: number, start = 0, first = 1): Promise<Array<{ number: number; text: string; end: number; tooLong?: boolean }>> => {
      const out = [];
      for await (const l of lines(path, { start, firstLine: first, maxLineBytes: max, skipLongLines: true })) out.push(l);
      return out;
    };
    const all = await read();
    expect(all.map((l) => [l.number, l.text.length, l.end, l.tooLong ?? false])).toEqual([
      [1, 1, 3, false],
      [2, big.length, 4 + big.length, false],
      [3, 0, 5 + big.length, false],
      [4, 4, content.length, false],
    ]);
    expect(all[1].text).toBe(big);
    const bounded = await read(1 << 20);
    expect(bounded.map((l) => [l.number, l.text, l.end, l.tooLong ?? false])).toEqual([
      [1, 'a', 3, false],
      [2, '', 4 + big.length, true],
      [3, '', 5 + big.length, false],
      [4, 'last', content.length, false],
    ]);
    // A stream is not read past a line that does not end within the limit.
    const stream: Array<{ number: number; end: number; tooLong?: boolean; last?: boolean }> = [];
    for await (const l of lines(path, { maxLineBytes: 1 << 20 })) stream.push(l);
    expect(stream.map((l) => [l.number, l.end, l.tooLong ?? false, l.last ?? false])).toEqual([
      [1, 3, false, false],
      [2, 3, true, true],
    ]);
    // From an offset (resume): the same lines, numbered on.
    expect((await read(undefined, 4 + big.length, 3)).map((l) => [l.number, l.text, l.end])).toEqual([
      [3, '', 5 + big.length],
      [4, 'last', content.length],
    ]);
  });
});

describe('recscore: how errors end a command', () => {
  it('every library error class exits 2 with its message; anything else is an internal error (1)', () => {
    const errors: Error[] = [
      new UserError('u'),
      new InvalidArgumentError('bad argument'),
      new OutOfRangeError('too large'),
      new FormatError('/f', 'truncated'),
      new FileError('/f', 'is a FIFO, not a regular file'),
      new ModelError('not a model'),
      new UnsupportedModelError('op X'),
      new PeerMissingError('onnxruntime-node', 'install onnxruntime-node'),
      new NativeLoadError('no addon', []),
      Object.assign(new Error("ENOSPC: no space left on device, write"), { code: 'ENOSPC', syscall: 'write' }),
    ];
    for (const e of errors) expect(failure(e)).toEqual({ status: 2, text: `recscore: ${e.message}\n` });
    for (const e of [new TypeError('x is undefined'), new RangeError('Maximum call stack size exceeded'), new ClosedError('catalogue')]) {
      const f = failure(e);
      expect(f.status).toBe(1);
      expect(f.text).toMatch(/^recscore: internal error: /);
    }
  });
});
