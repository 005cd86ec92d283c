/** MemorySessionStore: the asynchronous in-process session store (LRU, TTL, per-user updates, snapshots). */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { pack } from 'msgpackr';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';

import { ClosedError, InvalidArgumentError } from '../src/errors.js';
import { MemorySessionStore } from '../src/sessions/memory_store.js';
import type { SessionRecord } from '../src/sessions/store.js';

const bits = (a: Float32Array | null): number[] | null => (a ? Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length)) : null);
const append = (ev: string | number, model = 'm1') => (cur: SessionRecord | undefined) => ({
  state: Float32Array.of((cur?.state?.[0] ?? 0) + 1, 0.5),
  history: [...(cur?.history ?? []), ev],
  model,
});
const dir = mkdtempSync(join(tmpdir(), 'recscore-memstore-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(() => {
  vi.useRealTimers();
});

describe('MemorySessionStore', () => {
  it('has the SessionStore defaults and checks its options and users', async () => {
    const s = new MemorySessionStore();
    expect([s.kind, s.maxSessions, s.ttlMs, s.historyLimit]).toEqual(['memory', 1_000_000, 86_400_000, 200]);
    expect(() => new MemorySessionStore({ ttlMs: 0 })).toThrow(InvalidArgumentError);
    expect(() => new MemorySessionStore({ maxSessions: 1.5 })).toThrow(InvalidArgumentError);
    expect(new MemorySessionStore({ ttlMs: Infinity }).ttlMs).toBe(Infinity); // as the engine's options allow
    await expect(s.get(1.5)).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(s.update({} as never, append(1))).rejects.toBeInstanceOf(InvalidArgumentError);
  });

  it('versions, lastSeen, history limit, null deletes; string and numeric users are distinct', async () => {
    const s = new MemorySessionStore({ historyLimit: 3 });
    for (let i = 1; i <= 5; i++) {
      const before = Date.now();
      const r = await s.update('u', (cur) => {
        expect(cur?.version ?? 0).toBe(i - 1);
        return append(i)(cur);
      });
      expect(r!.version).toBe(i);
      expect(r!.lastSeen).toBeGreaterThanOrEqual(before);
      expect(r!.lastSeen).toBeLessThanOrEqual(Date.now());
    }
    expect((await s.get('u'))!.history).toEqual([3, 4, 5]);
    await s.update(7, append('n'));
    await s.update('7', append('s'));
    expect((await s.get(7))!.history).toEqual(['n']);
    expect((await s.get('7'))!.history).toEqual(['s']);
    expect(await s.update('u', () => null)).toBeNull();
    expect(await s.get('u')).toBeUndefined();
    expect((await s.update('u', append('again')))!.version).toBe(1);
    expect(await s.delete('u')).toBe(true);
    expect(await s.delete('u')).toBe(false);
    expect(await s.size()).toBe(2);
  });

  it('copies records in and out: a caller mutating what it holds changes nothing', async () => {
    const s = new MemorySessionStore();
    const state = Float32Array.of(1, 2);
    const history = ['a'];
    const written = await s.update('u', () => ({ state, history, model: 'm' }));
    state[0] = 99;
    history.push('b');
    written!.state![1] = 99;
    const got = await s.get('u');
    expect(Array.from(got!.state!)).toEqual([1, 2]);
    expect(got!.history).toEqual(['a']);
    got!.history.push('c');
    expect((await s.get('u'))!.history).toEqual(['a']);
  });

  it('an error thrown by fn, or contents that are not a record, reject and write nothing', async () => {
    const s = new MemorySessionStore();
    await s.update('u', append('a'));
    const boom = new Error('boom');
    await expect(s.update('u', () => Promise.reject(boom))).rejects.toBe(boom);
    await expect(s.update('u', () => ({ state: [1] as never, history: [], model: 'm' }))).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(s.update('u', () => ({ state: null, history: [NaN], model: 'm' }))).rejects.toBeInstanceOf(InvalidArgumentError);
    const got = await s.get('u');
    expect([got!.version, got!.history]).toEqual([1, ['a']]);
  });

  it('evicts the least recently used (get counts as use) beyond maxSessions', async () => {
    const s = new MemorySessionStore({ maxSessions: 3 });
    for (const u of ['a', 'b', 'c']) await s.update(u, append(u));
    await s.get('a');
    await s.update('d', append('d'));
    expect(await s.get('b')).toBeUndefined();
    for (const u of ['a', 'c', 'd']) expect((await s.get(u))!.history).toEqual([u]);
    expect(await s.size()).toBe(3);
    await s.update('c', append('c2')); // a write is a use too: a is now the oldest
    await s.update('e', append('e'));
    expect(await s.get('a')).toBeUndefined();
    expect(await s.size()).toBe(3);
  });

  it('a record idle longer than ttlMs is gone (get, update, size, sweep)', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(1_000_000);
    const s = new MemorySessionStore({ ttlMs: 1000 });
    await s.update('a', append(1));
    await s.update('b', append(1));
    vi.setSystemTime(1_000_600);
    await s.update('b', append(2)); // b written again: its idle time restarts
    vi.setSystemTime(1_001_000);
    expect((await s.get('a'))!.version).toBe(1); // exactly ttlMs idle: still live
    vi.setSystemTime(1_001_001);
    expect(await s.get('a')).toBeUndefined();
    expect(await s.size()).toBe(1);
    vi.setSystemTime(1_001_601);
    expect(s.sweep()).toBe(1);
    expect(await s.size()).toBe(0);
    const r = await s.update('b', (cur) => {
      expect(cur).toBeUndefined();
      return append(3)(cur);
    });
    expect([r!.version, r!.history]).toEqual([1, [3]]);
  });

  it('200 concurrent updates of one user, each awaiting inside fn, lose nothing', async () => {
    const s = new MemorySessionStore({ historyLimit: 1000 });
    const events = Array.from({ length: 200 }, (_, i) => i);
    const results = await Promise.all(
      events.map((ev) =>
        s.update('hot', async (cur) => {
          await new Promise((r) => setTimeout(r, Math.random() * 2));
          return append(ev)(cur);
        }),
      ),
    );
    const got = await s.get('hot');
    expect(got!.history).toEqual(events); // in the order the updates were asked for
    expect(got!.version).toBe(200);
    expect(got!.state![0]).toBe(200);
    expect(results.map((r) => r!.version)).toEqual(events.map((i) => i + 1));
  });

  it('delete waits for the updates asked before it; close() refuses later calls', async () => {
    const s = new MemorySessionStore();
    const pending = s.update('u', async (cur) => {
      await new Promise((r) => setTimeout(r, 5));
      return append(1)(cur);
    });
    expect(await s.delete('u')).toBe(true);
    await pending;
    expect(await s.get('u')).toBeUndefined();
    await s.close();
    await s.close();
    await expect(s.get('u')).rejects.toBeInstanceOf(ClosedError);
    await expect(s.update('u', append(1))).rejects.toBeInstanceOf(ClosedError);
  });

  it('snapshot and restore: records bit for bit, with versions, lastSeen and models', async () => {
    const s = new MemorySessionStore();
    const specials = new Float32Array(new Uint32Array([0x7fc00001, 0x80000000, 0x00000001, 0x7f800000]).buffer);
    await s.update('a', () => ({ state: specials, history: [1, 'two', Number.MAX_SAFE_INTEGER], model: 'M' }));
    await s.update('a', (cur) => ({ ...cur!, history: [...cur!.history, 3] }));
    await s.update(5, () => ({ state: Float32Array.of(1, 2, 3, 4), history: [], model: 'M' }));
    await s.update('stale', () => ({ state: Float32Array.of(9), history: ['x'], model: 'old' })); // another model's record
    const path = join(dir, 'snap.msgpack');
    await s.snapshot(path, 'M', 4);

    const t = new MemorySessionStore();
    expect(await t.restore(path, 'M', 4)).toBeNull();
    expect(await t.size()).toBe(3);
    for (const u of ['a', 5, 'stale'] as const) {
      const [x, y] = [await s.get(u), await t.get(u)];
      expect(bits(y!.state)).toEqual(bits(x!.state));
      expect({ ...y, state: null }).toEqual({ ...x, state: null });
    }
    expect((await t.get('a'))!.version).toBe(2);
    expect((await t.get('stale'))!.model).toBe('old');

    const other = new MemorySessionStore();
    expect(await other.restore(path, 'N', 4)).toMatch(/another model/);
    expect(await other.restore(path, 'M', 8)).toMatch(/another model/);
    expect(await other.restore(join(dir, 'none'), 'M', 4)).toMatch(/ENOENT/);
    writeFileSync(join(dir, 'junk'), Buffer.from([0xc1, 0x00, 0xff]));
    expect(await other.restore(join(dir, 'junk'), 'M', 4)).toMatch(/corrupt|not a session snapshot/);
    expect(await other.size()).toBe(0);
  });

  it("restores the synchronous SessionStore's snapshots (version 1): records get version 1 and the model", async () => {
    // Version 1, as the synchronous store wrote it: entries [user, state bytes, history, lastSeen].
    const bytes = (f: Float32Array): Uint8Array => new Uint8Array(f.buffer);
    const seen = Date.now() - 5;
    const v1 = (entries: unknown[]): Buffer => pack({ format: 'recscore-sessions', version: 1, model: 'M', stateSize: 2, entries });
    const path = join(dir, 'v1.msgpack');
    writeFileSync(path, v1([['a', bytes(Float32Array.of(0.25, -1)), [1, 2], seen], [9, bytes(Float32Array.of(3, 4)), ['z'], Date.now()]]));
    const s = new MemorySessionStore({ historyLimit: 1 });
    expect(await s.restore(path, 'M', 2)).toBeNull();
    const a = await s.get('a');
    expect([Array.from(a!.state!), a!.history, a!.version, a!.model, a!.lastSeen]).toEqual([[0.25, -1], [2], 1, 'M', seen]);
    expect((await s.get(9))!.history).toEqual(['z']);
    // A corrupt entry restores nothing.
    const badPath = join(dir, 'bad.msgpack');
    writeFileSync(badPath, v1([['a', bytes(Float32Array.of(1)), [], 0]])); // a state of 1 float where the model's is 2
    const t = new MemorySessionStore();
    expect(await t.restore(badPath, 'M', 2)).toMatch(/entry 0 has a state of 4 bytes/);
    expect(await t.size()).toBe(0);
  });
});
