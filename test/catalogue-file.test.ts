import { mkdtempSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { Catalogue, ClosedError, FormatError, InvalidArgumentError } from '../src/index.js';
import { expectTopK, randomMatrix } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'recscore-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const fixture = (name: string): string => new URL(`./fixtures/${name}`, import.meta.url).pathname;

function build(n = 1001, d = 19): { c: Catalogue; items: Float32Array; bias: Float32Array; d: number; n: number } {
  const items = randomMatrix(n, d, 3);
  const bias = randomMatrix(n, 1, 4);
  const ids = Array.from({ length: n }, (_, i) => `item-${i}`);
  const attributes = Uint32Array.from({ length: n }, (_, i) => i & 7);
  return { c: Catalogue.fromVectors(items, { dim: d, ids, bias, attributes }), items, bias, d, n };
}

describe('catalogue files', () => {
  it('round-trips matrix, ids, bias and attributes; the opened file scores identically', async () => {
    const { c, items, bias, d, n } = build();
    const path = join(dir, 'a.rsc');
    await c.save(path);
    // 64-byte aligned matrix (packed in panels of 16 rows) at the end of the file
    expect((statSync(path).size - Math.ceil(n / 16) * 16 * d * 4) % 64).toBe(0);
    const o = await Catalogue.open(path);
    expect(o.size).toBe(n);
    expect(o.dim).toBe(d);
    expect(o.path).toBe(path);
    expect(o.id(5)).toBe('item-5');
    expect(o.row('item-1000')).toBe(1000);
    expect(o.has('item-1001')).toBe(false);
    expect(o.vector(7)).toEqual(items.slice(7 * d, 8 * d));
    expect(o.bias(9)).toBe(bias[9]);
    expect(o.attributes(13)).toBe(5);
    const users = randomMatrix(4, d, 8);
    const opts = { k: 15, exclude: [[1], null, [2, 3], []], filter: { noneOf: 1 } };
    expect(o.topK(users, opts)).toEqual(c.topK(users, opts));
    expectTopK(o.topK(users, { k: 15 }), { items, dim: d, bias }, users, 15);
    expect(await o.topKAsync(users, opts)).toEqual(c.topK(users, opts));
    await o.close();
    await c.close();
  });

  it('stores integer ids compactly and mixed ids as they are', async () => {
    const items = randomMatrix(4, 2, 1);
    for (const ids of [[10, 20, 30, 2 ** 40], ['a', 7, 'c', 9]]) {
      const path = join(dir, `ids-${ids.length}-${typeof ids[0]}.rsc`);
      await Catalogue.fromVectors(items, { dim: 2, ids }).save(path);
      const o = await Catalogue.open(path);
      expect([0, 1, 2, 3].map((r) => o.id(r))).toEqual(ids);
      expect(o.row(ids[3])).toBe(3);
      await o.close();
    }
  });

  it('default ids are row numbers', async () => {
    const path = join(dir, 'rows.rsc');
    await Catalogue.fromVectors(randomMatrix(3, 2, 1), { dim: 2 }).save(path);
    const o = await Catalogue.open(path, { verify: false });
    expect(o.id(2)).toBe(2);
    expect(o.row(1)).toBe(1);
    expect(() => o.row(3)).toThrow(/id 3 is not in the catalogue/);
    await o.close();
  });

  it('rejects a file of another format', async () => {
    const path = join(dir, 'other.bin');
    writeFileSync(path, Buffer.from('PK\u0003\u0004 this is a zip file, not a catalogue'));
    await expect(Catalogue.open(path)).rejects.toThrow(FormatError);
    await expect(Catalogue.open(path)).rejects.toThrow(/not a recscore catalogue \(bad magic\)/);
    writeFileSync(path, Buffer.alloc(3));
    await expect(Catalogue.open(path)).rejects.toThrow(/not a recscore catalogue \(only 3 bytes\)/);
  });

  it('rejects a missing file with the OS error', async () => {
    await expect(Catalogue.open(join(dir, 'nope.rsc'))).rejects.toThrow(/ENOENT/);
  });

  it('detects truncation, with or without verify', async () => {
    const { c } = build(200, 8);
    const path = join(dir, 'trunc.rsc');
    await c.save(path);
    truncateSync(path, statSync(path).size - 4);
    for (const verify of [true, false]) {
      const err = await Catalogue.open(path, { verify }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(FormatError);
      expect((err as FormatError).code).toBe('ERR_RECSCORE_FORMAT');
      expect((err as Error).message).toMatch(/truncated: expected \d+ bytes, found \d+/);
    }
    truncateSync(path, 30);
    await expect(Catalogue.open(path)).rejects.toThrow(/truncated or corrupt: header length/);
  });

  it('detects a corrupted matrix through the checksum, and a corrupted header', async () => {
    const { c } = build(300, 8);
    const path = join(dir, 'corrupt.rsc');
    await c.save(path);
    const good = readFileSync(path);
    const bad = Buffer.from(good);
    bad[bad.length - 100] ^= 0x40;
    writeFileSync(path, bad);
    await expect(Catalogue.open(path)).rejects.toThrow(/corrupt: matrix checksum mismatch/);
    const hdr = Buffer.from(good);
    hdr[40] ^= 0x01;
    writeFileSync(path, hdr);
    await expect(Catalogue.open(path, { verify: false })).rejects.toThrow(/corrupt: header checksum mismatch/);
    const ver = Buffer.from(good);
    ver.writeUInt32LE(99, 8);
    writeFileSync(path, ver);
    await expect(Catalogue.open(path)).rejects.toThrow(/format version 99 is not supported/);
    writeFileSync(path, Buffer.concat([good, Buffer.alloc(64)]));
    await expect(Catalogue.open(path)).rejects.toThrow(/trailing data/);
  });

  it('save replaces an existing file atomically and leaves no temporary files', async () => {
    const path = join(dir, 'atomic.rsc');
    await Catalogue.fromVectors(randomMatrix(5, 3, 1), { dim: 3 }).save(path);
    await Catalogue.fromVectors(randomMatrix(9, 3, 2), { dim: 3 }).save(path);
    expect((await Catalogue.open(path)).size).toBe(9);
    const { readdirSync } = await import('node:fs');
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('close during save waits for the save, which writes the whole file', async () => {
    const { c } = build(20_000, 16);
    const path = join(dir, 'racing.rsc');
    await c.save(path);
    const mapped = await Catalogue.open(path);
    const copy = join(dir, 'racing-copy.rsc');
    const saving = mapped.save(copy);
    await mapped.close();
    await saving;
    const back = await Catalogue.open(copy);
    expect(back.size).toBe(20_000);
    await back.close();
  });

  it('close waits for running work, then rejects new calls with ClosedError', async () => {
    const { c } = build(50_000, 32);
    const path = join(dir, 'close.rsc');
    await c.save(path);
    const o = await Catalogue.open(path);
    const users = randomMatrix(64, 32, 5);
    const running = o.topKAsync(users, { k: 10 });
    const closing = o.close();
    const res = await running;
    expect(res.rows.length).toBe(640);
    await closing;
    expect(o.closed).toBe(true);
    expect(() => o.topK(users, { k: 1 })).toThrow(ClosedError);
    await expect(o.topKAsync(users, { k: 1 })).rejects.toMatchObject({ code: 'ERR_CLOSED' });
    expect(() => o.id(0)).toThrow('catalogue is closed');
    await expect(o.save(join(dir, 'x.rsc'))).rejects.toThrow(ClosedError);
    await o.close(); // idempotent
  });
});

describe('Catalogue.fromNpy', () => {
  it('imports a float32 C-order matrix written by NumPy', async () => {
    const c = await Catalogue.fromNpy(fixture('items.npy'));
    expect(c.size).toBe(37);
    expect(c.dim).toBe(5);
    const expected = JSON.parse(readFileSync(fixture('items_expected.json'), 'utf8')) as { users: number[][] };
    expect(c.vector(3)).toEqual(c.vector(30)); // the fixture duplicates row 3
    expect(c.vector(0).length).toBe(5);
    expect(expected.users.length).toBe(2);
  });

  it.each([
    ['items_f64.npy', /dtype <f8 is not float32/],
    ['items_fortran.npy', /Fortran-order arrays are not supported/],
    ['items_3d.npy', /expected a 2-D array \(items × dim\), got shape \(37, 5, 1\)/],
    ['items_expected.json', /not a \.npy file/],
  ])('rejects %s', async (name, message) => {
    await expect(Catalogue.fromNpy(fixture(name))).rejects.toThrow(message);
    await expect(Catalogue.fromNpy(fixture(name))).rejects.toBeInstanceOf(FormatError);
  });

  it('rejects a truncated .npy', async () => {
    const path = join(dir, 'short.npy');
    writeFileSync(path, readFileSync(fixture('items.npy')).subarray(0, 300));
    await expect(Catalogue.fromNpy(path)).rejects.toThrow(/truncated: shape \(37, 5\) needs 868 bytes, file has 300/);
  });

  it('checks ids and bias given alongside', async () => {
    await expect(Catalogue.fromNpy(fixture('items.npy'), { ids: ['a'] })).rejects.toThrow(InvalidArgumentError);
    await expect(Catalogue.fromNpy(fixture('items.npy'), { bias: new Float32Array(36) })).rejects.toThrow(
      'options.bias has 36 entries for 37 items',
    );
  });
});
