/**
 * Parquet and Arrow IPC in and out of `recscore score`, checked by independent implementations:
 * DuckDB (@duckdb/node-api) writes the Parquet inputs and reads the Parquet outputs; flechette
 * (@uwdata/flechette, an Arrow implementation other than the apache-arrow that recscore uses)
 * writes the Arrow inputs and reads the Arrow outputs (DuckDB reads Arrow IPC only through an
 * extension that it downloads, which this machine cannot). The reference is the library.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { int64, list, tableFromArrays, tableFromIPC, tableToIPC, utf8 } from '@uwdata/flechette';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { ex, expectedLines, listing, model, parseUsers, run, runBytes, usageError, usersPath } from './pipeline-helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'recscore-columnar-'));
const items = join(dir, 'items.rsc');
const usersText = readFileSync(usersPath, 'utf8');
const users = parseUsers(usersText);
let whole = ''; // the library's answer, as JSONL
let duck: DuckDBConnection;
const base = (input: string, out: string, extra: string[] = []): string[] => ['score', '--model', model, '--catalogue', items, '--k', '6', '--input', input, '--out', out, '--quiet', ...extra];

beforeAll(async () => {
  expect(run(['catalogue', 'build', '--vectors', join(ex, 'items.npy'), '--bias', join(ex, 'bias.npy'), '--out', items]).status).toBe(0);
  whole = await expectedLines(items, users, 6);
  duck = await (await DuckDBInstance.create(':memory:')).connect();
});
afterAll(() => {
  duck.closeSync();
  rmSync(dir, { recursive: true, force: true });
});

/** Rows of a Parquet file as DuckDB reads them, as the CLI's JSONL would print them. */
async function duckRows(path: string, userType = 'VARCHAR'): Promise<string> {
  const types = await duck.runAndReadAll(`SELECT typeof("user") AS u, typeof(items) AS i, typeof(scores) AS s FROM read_parquet('${path}') LIMIT 1`);
  expect(types.getRowObjectsJS()[0]).toMatchObject({ u: userType, s: 'FLOAT[]' });
  const r = await duck.runAndReadAll(`SELECT "user", items, scores FROM read_parquet('${path}')`);
  return r
    .getRowObjectsJS()
    .map((row) => {
      const plain = (v: unknown): unknown => (typeof v === 'bigint' ? Number(v) : v);
      const l = (v: unknown): unknown[] => ((v as { items: unknown[] }).items ?? (v as unknown[])).map(plain);
      return `${JSON.stringify({ user: plain(row.user), items: l(row.items), scores: l(row.scores) })}\n`;
    })
    .join('');
}

/** Rows of an Arrow IPC file or stream as flechette reads them, as JSONL. */
function flechetteRows(bytes: Uint8Array): string {
  const t = tableFromIPC(bytes, { useBigInt: false });
  expect(t.schema.fields.map((f) => f.name)).toEqual(['user', 'items', 'scores']);
  return t
    .toArray()
    .map((r) => `${JSON.stringify({ user: r.user, items: Array.from(r.items as ArrayLike<number>), scores: Array.from(r.scores as ArrayLike<number>) })}\n`)
    .join('');
}

describe('Parquet', () => {
  it('out: DuckDB reads user, items (BIGINT[]) and scores (FLOAT[]) equal to the library', async () => {
    const out = join(dir, 'recs.parquet');
    const r = run(base(usersPath, out));
    expect(r.status, r.stderr).toBe(0);
    expect(await duckRows(out)).toBe(whole);
    const t = await duck.runAndReadAll(`SELECT typeof(items) AS i FROM read_parquet('${out}') LIMIT 1`);
    expect(t.getRowObjectsJS()[0].i).toBe('BIGINT[]');
    // --format parquet to stdout: the same file.
    const std = runBytes(base(usersPath, '-', ['--format', 'parquet']));
    expect(std.status, std.stderr).toBe(0);
    writeFileSync(join(dir, 'std.parquet'), std.stdout);
    expect(await duckRows(join(dir, 'std.parquet'))).toBe(whole);
    expect(listing(dir)).toEqual(['items.rsc', 'recs.parquet', 'std.parquet']);
    rmSync(join(dir, 'std.parquet'));
  });

  it('in: DuckDB-written Parquet (string and integer users, BIGINT[] and INTEGER[] histories), from a file and from stdin', async () => {
    const pq = join(dir, 'in.parquet');
    await duck.run(`COPY (SELECT "user", history FROM read_json('${usersPath}')) TO '${pq}' (FORMAT parquet)`);
    const r = run(base(pq, '-'));
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toBe(whole);
    const piped = run(base('-', '-'), { input: readFileSync(pq) });
    expect(piped.stdout).toBe(whole);
    // Integer users and INTEGER[] histories, written by DuckDB in row groups of 100.
    const pq2 = join(dir, 'in-int.parquet');
    await duck.run(`COPY (SELECT CAST(substr("user", 2) AS INTEGER) AS "user", CAST(history AS INTEGER[]) AS history FROM read_json('${usersPath}')) TO '${pq2}' (FORMAT parquet, ROW_GROUP_SIZE 100)`);
    const ints = users.map((u) => ({ ...u, user: Number(u.user.slice(1)) }));
    const expected = await expectedLines(items, ints, 6);
    expect(run(base(pq2, '-')).stdout).toBe(expected);
    // Integer users stay integers in a Parquet output.
    const out = join(dir, 'int-users.parquet');
    expect(run(base(pq2, out)).status).toBe(0);
    expect(await duckRows(out, 'BIGINT')).toBe(expected);
    // Shards of a Parquet input: contiguous rows, concatenated the whole.
    const parts = [0, 1, 2].map((i) => run(base(pq2, '-', ['--shard', `${i}/3`])).stdout);
    expect(parts.join('')).toBe(expected);
    rmSync(out);
  });

  it('SKU strings: VARCHAR[] histories in, VARCHAR[] items out', async () => {
    const vocab = join(dir, 'vocab.txt');
    const sku = (i: number): string => `sku-${i * 3}`;
    writeFileSync(vocab, Array.from({ length: 2000 }, (_, i) => sku(i)).join('\n') + '\n');
    const pq = join(dir, 'in-sku.parquet');
    await duck.run(`COPY (SELECT "user", list_transform(history, x -> 'sku-' || (x * 3)) AS history FROM read_json('${usersPath}')) TO '${pq}' (FORMAT parquet)`);
    const out = join(dir, 'sku.parquet');
    const r = run(base(pq, out, ['--vocabulary', vocab]));
    expect(r.status, r.stderr).toBe(0);
    const t = await duck.runAndReadAll(`SELECT typeof(items) AS i FROM read_parquet('${out}') LIMIT 1`);
    expect(t.getRowObjectsJS()[0].i).toBe('VARCHAR[]');
    expect(await duckRows(out)).toBe(await expectedLines(items, users, 6, (id) => sku(id as number)));
  });

  it('usage errors: a Parquet input without the columns, --resume with a Parquet output', async () => {
    const pq = join(dir, 'wrong.parquet');
    await duck.run(`COPY (SELECT 1 AS a, [1, 2] AS b) TO '${pq}' (FORMAT parquet)`);
    expect(usageError(run(base(pq, '-')))).toBe(`recscore: --input ${pq}: the Parquet input needs the columns "user" and "history", it has "a", "b"\n`);
    expect(usageError(run(base(usersPath, join(dir, 'x.parquet'), ['--resume'])))).toBe(
      'recscore: --resume needs JSONL output: a Parquet output is finished once, at the end (run the job again without --resume)\n',
    );
    expect(usageError(run(base(usersPath, '-', ['--format', 'xml'])))).toBe('recscore: --format must be one of jsonl, parquet, arrow, arrows, got xml\n');
    // A file that starts like Parquet but is not: one line, and a new job leaves no file behind.
    const corrupt = join(dir, 'corrupt.parquet');
    writeFileSync(corrupt, Buffer.concat([Buffer.from('PAR1'), Buffer.alloc(64, 7)]));
    const before = listing(dir);
    expect(usageError(run(base(corrupt, join(dir, 'never.jsonl'))))).toMatch(new RegExp(`^recscore: --input ${corrupt}: not a readable Parquet file \\(`));
    expect(listing(dir)).toEqual(before);
  });
});

describe('Arrow IPC', () => {
  it('out: an Arrow file (.arrow) and an Arrow stream (--format arrows to stdout), read by flechette', () => {
    const out = join(dir, 'recs.arrow');
    expect(run(base(usersPath, out)).status).toBe(0);
    const bytes = readFileSync(out);
    expect(bytes.subarray(0, 6).toString()).toBe('ARROW1');
    expect(flechetteRows(bytes)).toBe(whole);
    const std = runBytes(base(usersPath, '-', ['--format', 'arrows', '--batch', '64']));
    expect(std.status, std.stderr).toBe(0);
    const streamBytes = std.stdout;
    expect(streamBytes.readUInt32LE(0)).toBe(0xffffffff);
    expect(flechetteRows(streamBytes)).toBe(whole);
  });

  it('in: flechette-written Arrow streams and files (Utf8 users, Int64 lists), stdin to stdout as Spark mapInArrow pipes them', () => {
    const table = tableFromArrays(
      { user: users.map((u) => u.user), history: users.map((u) => u.history) },
      { types: { user: utf8(), history: list(int64()) } },
    );
    for (const format of ['stream', 'file'] as const) {
      const ipc = tableToIPC(table, { format }) as Uint8Array;
      const path = join(dir, `in.${format}.arrow`);
      writeFileSync(path, ipc);
      const fromFile = run(base(path, '-'));
      expect(fromFile.status, fromFile.stderr).toBe(0);
      expect(fromFile.stdout).toBe(whole);
      const piped = runBytes(base('-', '-', ['--format', 'arrows']), { input: Buffer.from(ipc) });
      expect(piped.status, piped.stderr).toBe(0);
      expect(flechetteRows(piped.stdout)).toBe(whole);
    }
  });
});
