/**
 * SKU ids: `--vocabulary FILE` (line i is the model's item i) maps history ids to model indices
 * and catalogue rows, and rows back to SKUs for output; unknown ids are line errors or dropped
 * with `--unknown skip`, never item 0. The same option in `evaluate()` and `recscore eval`.
 * References: the library's encode + topK on the model's item numbers, mapped by hand.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { Catalogue, Encoder, evaluate, OutOfRangeError } from '../src/index.js';
import { ex, model, parseUsers, run, usersPath } from './pipeline-helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'recscore-vocab-'));
const items = join(dir, 'items.rsc'); // ids: row numbers = the model's item numbers
const skuCat = join(dir, 'sku.rsc'); // ids: SKUs, rows in reverse order of the model's items
const vocabFile = join(dir, 'vocab.txt');
const N = 2000;
const sku = (i: number): string => `SKU-${((i * 7919) % 100_003).toString(36).toUpperCase()}`;
const vocab = Array.from({ length: N }, (_, i) => sku(i));
const users = parseUsers(readFileSync(usersPath, 'utf8')).slice(0, 60);

beforeAll(async () => {
  expect(new Set(vocab).size).toBe(N);
  writeFileSync(vocabFile, vocab.join('\n') + '\n');
  expect(run(['catalogue', 'build', '--vectors', join(ex, 'items.npy'), '--bias', join(ex, 'bias.npy'), '--out', items]).status).toBe(0);
  // The same items stored under their SKUs in reverse order: row r holds item N-1-r, so a history
  // must be joined to rows by SKU, not by number.
  const cat = await Catalogue.open(items);
  const vectors = new Float32Array(N * cat.dim);
  const bias = new Float32Array(N);
  for (let r = 0; r < N; r++) {
    vectors.set(cat.vector(N - 1 - r), r * cat.dim);
    bias[r] = cat.bias(N - 1 - r);
  }
  const reversed = Catalogue.fromVectors(vectors, { dim: cat.dim, bias, ids: Array.from({ length: N }, (_, r) => vocab[N - 1 - r]) });
  await reversed.save(skuCat);
  await reversed.close();
  await cat.close();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The library on item numbers: each user's top-k as SKUs, in the CLI's line format. */
async function reference(hs: Array<{ user: string; history: number[] }>, k: number): Promise<string> {
  const cat = await Catalogue.open(items);
  const enc = await Encoder.load(model);
  const res = cat.topK(await enc.encode(hs.map((u) => u.history)), { k, exclude: hs.map((u) => u.history) });
  await enc.close();
  await cat.close();
  return hs
    .map((u, i) => {
      const rows = Array.from(res.rows.subarray(i * k, (i + 1) * k));
      return `${JSON.stringify({ user: u.user, items: rows.map((r) => vocab[r]), scores: Array.from(res.scores.subarray(i * k, (i + 1) * k)) })}\n`;
    })
    .join('');
}

const skuLines = (hs: Array<{ user: string; history: number[] }>): string => hs.map((u) => JSON.stringify({ user: u.user, history: u.history.map((i) => vocab[i]) })).join('\n') + '\n';

describe('recscore score --vocabulary', () => {
  it('SKU histories in, SKUs out: with a numeric catalogue (mapped back) and with a catalogue built with the SKUs', async () => {
    const input = join(dir, 'skus.jsonl');
    writeFileSync(input, skuLines(users));
    const expected = await reference(users, 8);
    for (const cat of [items, skuCat]) {
      const out = join(dir, `out-${cat === items ? 'num' : 'sku'}.jsonl`);
      const r = run(['score', '--model', model, '--catalogue', cat, '--input', input, '--out', out, '--k', '8', '--vocabulary', vocabFile]);
      expect(r.status, r.stderr).toBe(0);
      expect(readFileSync(out, 'utf8')).toBe(expected);
    }
  });

  it('an unknown id is a line error, or dropped with --unknown skip: never item 0', async () => {
    const input = join(dir, 'unknown.jsonl');
    const h = users[0].history;
    writeFileSync(input, `${JSON.stringify({ user: 'a', history: ['NOPE', ...h.map((i) => vocab[i])] })}\n${JSON.stringify({ user: 'b', history: h.map((i) => vocab[i]) })}\n`);
    const base = ['score', '--model', model, '--catalogue', items, '--input', input, '--k', '8', '--vocabulary', vocabFile];
    const stop = run([...base, '--out', join(dir, 'u1.jsonl')]);
    expect(stop.status).toBe(1);
    expect(stop.stderr.split('\n')[0]).toBe('recscore: line 1: history[0] = "NOPE" is not in the vocabulary');
    const skip = join(dir, 'u2.jsonl');
    expect(run([...base, '--out', skip, '--unknown', 'skip']).status).toBe(0);
    const lines = readFileSync(skip, 'utf8').split('\n');
    // Dropped: user a's answer is user b's (the same known history), not that of [item 0, ...history].
    expect(JSON.parse(lines[0])).toEqual({ ...JSON.parse(lines[1]), user: 'a' });
    expect(lines[0]).not.toBe((await reference([{ user: 'a', history: [0, ...h] }], 8)).trim());
  });

  it('a vocabulary with an empty line or a repeated id is a usage error naming the file and line', () => {
    const bad = join(dir, 'bad-vocab.txt');
    const input = join(dir, 'skus.jsonl');
    for (const [text, message] of [
      ['A\nB\nA\n', `recscore: --vocabulary ${bad} line 3 = "A" repeats --vocabulary ${bad} line 1\n`],
      ['A\n\nB\n', `recscore: --vocabulary ${bad} line 2 is empty\n`],
    ]) {
      writeFileSync(bad, text);
      const r = run(['score', '--model', model, '--catalogue', items, '--input', input, '--out', join(dir, 'never.jsonl'), '--vocabulary', bad]);
      expect(r.status).toBe(2);
      expect(r.stderr).toBe(message);
    }
  });
});

describe('evaluate({ vocabulary }) and recscore eval --vocabulary', () => {
  const sessions = readFileSync(join(ex, 'sessions.jsonl'), 'utf8').trim().split('\n').slice(0, 300).map((l) => JSON.parse(l) as { history: number[]; next: number });
  const skuSessions = sessions.map((s) => ({ history: s.history.map((i) => vocab[i]), next: vocab[s.next] }));

  it('the same metrics as on item numbers, from an array, a file, with either catalogue, and from the CLI', async () => {
    const enc = await Encoder.load(model);
    const cat = await Catalogue.open(items);
    const sc = await Catalogue.open(skuCat);
    const plain = await evaluate({ encoder: enc, catalogue: cat, sessions, k: 10 });
    expect(plain.sessions).toBe(300);
    expect(await evaluate({ encoder: enc, catalogue: cat, sessions: skuSessions, k: 10, vocabulary: vocab })).toEqual(plain);
    expect(await evaluate({ encoder: enc, catalogue: cat, sessions: skuSessions, k: 10, vocabulary: vocabFile })).toEqual(plain);
    expect(await evaluate({ encoder: enc, catalogue: sc, sessions: skuSessions, k: 10, vocabulary: vocab })).toEqual(plain);
    await expect(evaluate({ encoder: enc, catalogue: cat, sessions: [{ history: ['NOPE'], next: vocab[1] }], k: 10, vocabulary: vocab })).rejects.toThrow(
      new OutOfRangeError('sessions[0].history[0] = "NOPE" is not in options.vocabulary'),
    );
    await enc.close();
    await cat.close();
    await sc.close();
    const input = join(dir, 'sessions-sku.jsonl');
    writeFileSync(input, skuSessions.map((s) => JSON.stringify(s)).join('\n') + '\n');
    const r = run(['eval', '--model', model, '--catalogue', skuCat, '--input', input, '--k', '10', '--vocabulary', vocabFile, '--json']);
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual(plain);
  });
});
