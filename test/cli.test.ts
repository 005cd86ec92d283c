import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { CheckpointFile, readCheckpoint } from '../src/batch/checkpoint.js';
import { Catalogue, Encoder, evaluate, metricsFromRanks } from '../src/index.js';

const root = new URL('..', import.meta.url).pathname;
const cli = join(root, 'dist', 'cli.js');
const ex = join(root, 'models', 'example');
const model = join(ex, 'session_lstm.onnx');
const dir = mkdtempSync(join(tmpdir(), 'recscore-cli-'));
const items = join(dir, 'items.rsc');

function run(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', env: { ...process.env, RECSCORE_NATIVE: '' } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

beforeAll(() => {
  expect(existsSync(cli), `${cli} is missing: npm install builds it`).toBe(true);
  const r = run(['catalogue', 'build', '--vectors', join(ex, 'items.npy'), '--bias', join(ex, 'bias.npy'), '--out', items]);
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const users = readFileSync(join(ex, 'users.jsonl'), 'utf8').trim().split('\n');

/** The library's answer for one input line. */
async function expected(lines: string[], k: number): Promise<string> {
  const cat = await Catalogue.open(items);
  const enc = await Encoder.load(model);
  const parsed = lines.map((l) => JSON.parse(l) as { user: string; history: number[] });
  const v = await enc.encode(parsed.map((p) => p.history));
  const res = cat.topK(v, { k, exclude: parsed.map((p) => p.history) });
  const out = parsed.map((p, u) => {
    const rows = Array.from(res.rows.subarray(u * res.k, (u + 1) * res.k));
    return `${JSON.stringify({ user: p.user, items: rows.map((r) => cat.id(r)), scores: Array.from(res.scores.subarray(u * res.k, (u + 1) * res.k)) })}\n`;
  });
  return out.join('');
}

describe('recscore CLI', () => {
  it('catalogue inspect reports the header and verifies the checksum', () => {
    const r = run(['catalogue', 'inspect', items, '--json']);
    expect(r.status).toBe(0);
    const info = JSON.parse(r.stdout) as { items: number; dim: number; bias: boolean; checksum: string };
    expect(info.items).toBe(2000);
    expect(info.dim).toBe(32);
    expect(info.bias).toBe(true);
    expect(info.checksum).toMatch(/\(verified\)$/);
  });

  it('score writes exactly what the library API computes', async () => {
    const out = join(dir, 'recs.jsonl');
    const r = run(['score', '--model', model, '--catalogue', items, '--input', join(ex, 'users.jsonl'), '--out', out, '--k', '7', '--batch', '64']);
    expect(r.status).toBe(0);
    expect(r.stderr).toContain('scored 500 users');
    expect(readFileSync(out, 'utf8')).toBe(await expected(users, 7));
  });

  it('catalogue build --precision int8 scores exactly like float32', async () => {
    const packed = join(dir, 'items-int8.rsc');
    const b = run(['catalogue', 'build', '--vectors', join(ex, 'items.npy'), '--bias', join(ex, 'bias.npy'), '--precision', 'int8', '--out', packed]);
    expect(b.status).toBe(0);
    expect(JSON.parse(run(['catalogue', 'inspect', packed, '--json']).stdout).precision).toMatch(/^int8/);
    const outs = [items, packed].map((c, i) => {
      const out = join(dir, `prec${i}.jsonl`);
      expect(run(['score', '--model', model, '--catalogue', c, '--input', join(ex, 'users.jsonl'), '--out', out, '--k', '10', '--batch', '4']).status).toBe(0);
      return readFileSync(out, 'utf8');
    });
    expect(outs[1]).toBe(outs[0]);
    expect(run(['catalogue', 'build', '--vectors', join(ex, 'items.npy'), '--precision', 'fp4', '--out', join(dir, 'x.rsc')]).stderr).toMatch(/--precision fp4: must be f32, int8(, int4)? or bf16/);
  });

  it('shards together equal the whole', async () => {
    const parts = [0, 1, 2].map((i) => {
      const out = join(dir, `shard${i}.jsonl`);
      expect(run(['score', '--model', model, '--catalogue', items, '--input', join(ex, 'users.jsonl'), '--out', out, '--k', '3', '--shard', `${i}/3`]).status).toBe(0);
      return readFileSync(out, 'utf8');
    });
    // Contiguous parts (0-based I), each about a third of the lines: concatenated, the whole.
    for (const part of parts) expect(Math.abs(part.trim().split('\n').length - 500 / 3)).toBeLessThan(10);
    expect(parts.join('')).toBe(await expected(users, 3));
  });

  it('--resume after SIGKILL mid-job gives exactly the full output', async () => {
    const input = join(dir, 'many.jsonl');
    const many = Array.from({ length: 120 }, (_, rep) => users.map((l) => l.replace(/"user": "u/, `"user": "r${rep}-u`))).flat();
    writeFileSync(input, many.join('\n') + '\n');
    const args = ['score', '--model', model, '--catalogue', items, '--input', input, '--k', '20', '--batch', '64', '--threads', '1'];
    const whole = join(dir, 'whole.jsonl');
    expect(run([...args, '--out', whole]).status).toBe(0);
    const out = join(dir, 'killed.jsonl');
    const child = spawn(process.execPath, [cli, ...args, '--out', out], { stdio: 'ignore' });
    // Kill it once a few checkpoints are down but well before the end.
    await new Promise<void>((resolve, reject) => {
      const poll = setInterval(() => {
        try {
          const ck = readCheckpoint(`${out}.progress`);
          if (ck.nextLine > 2000) {
            clearInterval(poll);
            child.kill('SIGKILL');
            resolve();
          }
        } catch {
          // not written yet
        }
      }, 2);
      child.once('exit', () => {
        clearInterval(poll);
        resolve();
      });
      child.once('error', reject);
    });
    if (child.exitCode === null && child.signalCode === null) await new Promise((r) => child.once('exit', r));
    const ck = readCheckpoint(`${out}.progress`);
    expect(ck.complete).toBe(false); // it really was killed mid-job
    expect(statSync(out).size).toBeLessThan(statSync(whole).size);
    const r = run([...args, '--out', out, '--resume']);
    expect(r.status).toBe(0);
    expect(r.stderr).toContain(`resumed at line ${ck.nextLine}`);
    expect(readFileSync(out, 'utf8')).toBe(readFileSync(whole, 'utf8'));
    expect(run([...args, '--out', out, '--resume']).status).toBe(0); // already complete: a no-op
    expect(readFileSync(out, 'utf8')).toBe(readFileSync(whole, 'utf8'));
    // A checkpoint that points past the output (the output lost data) is refused, not padded.
    const { seq, ...done } = readCheckpoint(`${out}.progress`);
    const file = new CheckpointFile(`${out}.progress`, seq);
    await file.save({ ...done, complete: false });
    file.close();
    writeFileSync(out, readFileSync(out).subarray(0, 1000));
    const lost = run([...args, '--out', out, '--resume']);
    expect(lost.status).toBe(2);
    expect(lost.stderr).toMatch(/is shorter than .*progress says/);
    const other = run([...args, '--out', out, '--resume', '--k', '5']);
    expect(other.stderr).toMatch(/was written for another model, catalogue, vocabulary, shard, k or option/);
  });

  it('a malformed line stops the job with everything before it written; --max-errors skips and records it', async () => {
    const input = join(dir, 'bad.jsonl');
    const lines = [...users.slice(0, 6), '{"user": "x", "history": [1, 2', ...users.slice(6, 10), '{"user": "y", "history": [99999]}', ...users.slice(10, 12)];
    writeFileSync(input, lines.join('\n') + '\n');
    const base = ['score', '--model', model, '--catalogue', items, '--input', input, '--k', '4'];
    const out = join(dir, 'bad-out.jsonl');
    const r = run([...base, '--out', out]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^recscore: line 7: not JSON/);
    expect(r.stderr).toContain(`recscore: stopped at line 7: no bad lines are allowed; 6 users scored before it are in ${out}; fix the line and rerun with --resume`);
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace for user errors
    expect(readFileSync(out, 'utf8')).toBe(await expected(users.slice(0, 6), 4));
    // Fix the line, resume: the job goes on from line 7 and stops again at line 12.
    lines[6] = users[100];
    writeFileSync(input, lines.join('\n') + '\n');
    const again = run([...base, '--out', out, '--resume']);
    expect(again.status).toBe(1);
    expect(again.stderr).toMatch(/line 12: history\[0\] = 99999 is not in the catalogue/);
    const tolerant = join(dir, 'tolerant.jsonl');
    const t = run([...base, '--out', tolerant, '--max-errors', '1']);
    expect(t.status).toBe(0);
    expect(readFileSync(tolerant, 'utf8')).toBe(await expected([...lines.slice(0, 11), ...lines.slice(12)], 4));
    const errors = readFileSync(`${tolerant}.errors.jsonl`, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { line: number; error: string });
    expect(errors).toEqual([{ line: 12, error: 'line 12: history[0] = 99999 is not in the catalogue' }]);
  });

  it('eval matches the library and the metrics match hand-computed values', async () => {
    const r = run(['eval', '--model', model, '--catalogue', items, '--input', join(ex, 'sessions.jsonl'), '--k', '20', '--json']);
    expect(r.status).toBe(0);
    const cli = JSON.parse(r.stdout) as Record<string, unknown>;
    const cat = await Catalogue.open(items);
    const enc = await Encoder.load(model);
    const sessions = readFileSync(join(ex, 'sessions.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { history: number[]; next: number });
    expect(cli).toEqual(await evaluate({ encoder: enc, catalogue: cat, sessions, k: 20 }));
    expect(cli.sessions).toBe(1000);
    // Ranks 1, 3, miss, 2 at k = 3; items shown: row 0 twice, rows 1 and 2 once, of 4 items;
    // popularity: 6 events, row 0 three times.
    const m = metricsFromRanks([1, 3, null, 2], 3, new Map([[0, 2], [1, 1], [2, 1]]), { counts: new Map([[0, 3], [1, 2], [2, 1]]), total: 6, catalogueSize: 4 });
    expect(m.recall).toBe(0.75);
    expect(m.hitRate).toBe(0.75);
    expect(m.precision).toBe(0.25);
    expect(m.mrr).toBeCloseTo((1 + 1 / 3 + 1 / 2) / 4, 12);
    expect(m.ndcg).toBeCloseTo((1 + 1 / 2 + 1 / Math.log2(3)) / 4, 12);
    expect(m.coverage).toBe(0.75);
    expect(m.novelty).toBeCloseTo((2 * -Math.log2(4 / 10) + -Math.log2(3 / 10) + -Math.log2(2 / 10)) / 4, 12);
  });

  it('demo runs the pipeline on the bundled example', () => {
    const r = run(['demo', '--scale-items', '0']);
    expect(r.status).toBe(0);
    for (const section of ['1. The example shop', '2. Recommendations', '3. A live session', '4. Next-item evaluation', '5. Timings']) {
      expect(r.stdout).toContain(section);
    }
    expect(r.stdout).toMatch(/Recall@20 0\.\d{3}/);
  });

  it('user errors: a clear message, status 2, no stack trace', () => {
    const cases: Array<[string[], RegExp]> = [
      [['score', '--model', join(dir, 'none.onnx'), '--catalogue', items, '--input', 'x', '--out', join(dir, 'o1')], /--model .*none\.onnx: no such file/],
      [['score', '--model', join(root, 'models', 'fixtures', 'lstm1_bf_ylast_tanh.onnx'), '--catalogue', items, '--input', join(ex, 'users.jsonl'), '--out', join(dir, 'o2')], /the model's vectors have 6 dimensions but the catalogue's have 32/],
      [['score', '--model', model, '--catalogue', items, '--input', join(ex, 'users.jsonl'), '--out', join(dir, 'o3'), '--shard', '3/3'], /^recscore: --shard must be I\/N or auto\/N with 0 <= I < N, got 3\/3\n$/],
      [['catalogue', 'build', '--vectors', join(root, 'test', 'fixtures', 'items_f64.npy'), '--out', join(dir, 'x.rsc')], /dtype <f8 is not float32/],
      [['catalogue', 'inspect', join(ex, 'users.jsonl')], /not a recscore catalogue/],
      [['eval', '--model', model, '--catalogue', items, '--input', join(ex, 'users.jsonl')], /line 1: expected \{"history": \[\.\.\.\], "next": id\}/],
    ];
    for (const [args, message] of cases) {
      const r = run(args);
      expect(r.status, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
  });
});
