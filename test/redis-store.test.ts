/**
 * RedisSessionStore against a real redis-server (test/redis-server.ts starts one per suite on a
 * free port). Without redis-server on PATH the suite is skipped, with the reason printed.
 */
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { inspect } from 'node:util';

import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { ClosedError, InvalidArgumentError, PeerMissingError, SessionStoreError } from '../src/errors.js';
import { _setIoredisLoader, RedisSessionStore, type RedisSessionStoreOptions } from '../src/sessions/redis_store.js';
import type { SessionRecord } from '../src/sessions/store.js';
import { bits, bundleChildScript, freePort, type RedisServer, redisServerPath, startRedis, thrown } from './redis-server.js';

const bin = redisServerPath();
if (!bin) console.log('test/redis-store.test.ts: skipped: redis-server is not on PATH (Debian: apt-get install redis-server; .ci/run installs it)');

/** Appends `ev` to the user's history (the state counts events in its first float). */
const append = (ev: string | number) => (cur: SessionRecord | undefined) => ({
  state: Float32Array.of((cur?.state?.[0] ?? 0) + 1),
  history: [...(cur?.history ?? []), ev],
  model: 'm1',
});

let prefixes = 0;
const uniquePrefix = (): string => `t${process.pid}:${prefixes++}:`;

describe.skipIf(!bin)('RedisSessionStore (real redis-server)', () => {
  let server: RedisServer;
  let raw: Redis;
  const stores: RedisSessionStore[] = [];
  const open = (o: Partial<RedisSessionStoreOptions> = {}): RedisSessionStore => {
    const s = new RedisSessionStore({ url: server.url(), prefix: uniquePrefix(), historyLimit: 1000, ...o });
    stores.push(s);
    return s;
  };

  beforeAll(async () => {
    server = await startRedis();
    raw = new Redis({ port: server.port, host: '127.0.0.1', lazyConnect: true });
    raw.on('error', () => undefined); // the kill test takes the server away
    await raw.connect();
  });
  afterAll(async () => {
    for (const s of stores) await s.close();
    raw?.disconnect();
    await server?.stop();
  });

  it('round-trips records: float32 state bit for bit, string and numeric users and ids', async () => {
    const store = open();
    const specials = new Float32Array(new Uint32Array([0x7fc00001, 0xffc12345, 0x80000000, 0x00000001, 0x7f7fffff, 0xff800000, 0x3eaaaaab]).buffer);
    const cases: Array<[string | number, Float32Array | null, Array<string | number>]> = [
      ['alice', specials, ['a', 1, Number.MAX_SAFE_INTEGER, -5, '', 'ü→∞']],
      ['42', Float32Array.of(1.5, -2.25), [42]],
      [42, Float32Array.of(3, 4), ['42']],
      [0, null, []],
      [-7, new Float32Array(0), [0, -0 + 1]],
      ['', Float32Array.of(Math.PI), ['x']],
      [Number.MAX_SAFE_INTEGER, Float32Array.of(-0), [Number.MIN_SAFE_INTEGER]],
    ];
    for (const [user, state, history] of cases) {
      const before = Date.now();
      const written = await store.update(user, (cur) => {
        expect(cur).toBeUndefined();
        return { state: state && state.slice(), history: [...history], model: `model-${String(user)}` };
      });
      const after = Date.now();
      expect(written?.version).toBe(1);
      const got = await store.get(user);
      expect(got).toBeDefined();
      expect(bits(got!.state)).toEqual(bits(state));
      expect(got!.history).toEqual(history);
      expect(got!.model).toBe(`model-${String(user)}`);
      expect(got!.version).toBe(1);
      expect(got!.lastSeen).toBeGreaterThanOrEqual(before);
      expect(got!.lastSeen).toBeLessThanOrEqual(after);
    }
    // The string '42' and the number 42 are two users, under two keys.
    expect((await store.get('42'))!.history).toEqual([42]);
    expect((await store.get(42))!.history).toEqual(['42']);
    expect(await raw.exists(`${store.prefix}s:42`, `${store.prefix}n:42`)).toBe(2);
    expect(await store.get('nobody')).toBeUndefined();
    await expect(store.get(1.5)).rejects.toBeInstanceOf(InvalidArgumentError);
  });

  it('increments the version on every write; fn sees the previous record; null deletes', async () => {
    const store = open({ historyLimit: 3 });
    for (let i = 1; i <= 5; i++) {
      const r = await store.update('u', (cur) => {
        expect(cur?.version ?? 0).toBe(i - 1);
        return append(i)(cur);
      });
      expect(r!.version).toBe(i);
    }
    const got = await store.get('u');
    expect(got!.history).toEqual([3, 4, 5]); // historyLimit 3: the last three
    expect(got!.state![0]).toBe(5);
    expect(await store.update('u', () => null)).toBeNull();
    expect(await store.get('u')).toBeUndefined();
    expect((await store.update('u', append('again')))!.version).toBe(1);
    expect(await store.delete('u')).toBe(true);
    expect(await store.delete('u')).toBe(false);
  });

  it('a write by another store between the read and the write: fn runs again on the newer record', async () => {
    const prefix = uniquePrefix();
    const a = open({ prefix });
    const b = open({ prefix });
    await a.update('u', append('x'));
    const seen: Array<Array<string | number>> = [];
    const r = await a.update('u', async (cur) => {
      seen.push(cur!.history);
      if (seen.length === 1) await b.update('u', append('y'));
      return append('a')(cur);
    });
    expect(seen).toEqual([['x'], ['x', 'y']]);
    expect(r!.history).toEqual(['x', 'y', 'a']);
    expect(r!.version).toBe(3);
    expect((await b.get('u'))!.history).toEqual(['x', 'y', 'a']);
  });

  it('a record deleted and written afresh meanwhile (the same version again) is still a conflict', async () => {
    const prefix = uniquePrefix();
    const a = open({ prefix });
    const b = open({ prefix });
    await a.update('u', append('x'));
    const seen: Array<Array<string | number>> = [];
    const r = await a.update('u', async (cur) => {
      seen.push(cur!.history);
      if (seen.length === 1) {
        await b.delete('u');
        expect((await b.update('u', append('y')))!.version).toBe(1); // the version a read
      }
      return append('a')(cur);
    });
    expect(seen).toEqual([['x'], ['y']]);
    expect(r!.history).toEqual(['y', 'a']);
  });

  it('an update that always loses gives up with SessionStoreError after maxAttempts', async () => {
    const prefix = uniquePrefix();
    const a = open({ prefix, maxAttempts: 3 });
    const b = open({ prefix });
    let calls = 0;
    const e = await a
      .update('u', async (cur) => {
        calls++;
        await b.update('u', append(`b${calls}`));
        return append('a')(cur);
      })
      .catch((err: unknown) => err);
    expect(e).toBeInstanceOf(SessionStoreError);
    expect((e as Error).message).toMatch(/gave up after 3 attempts/);
    expect(calls).toBe(3);
    expect((await b.get('u'))!.history).toEqual(['b1', 'b2', 'b3']);
  });

  it('an error thrown by fn rejects the update unchanged and writes nothing', async () => {
    const store = open();
    await store.update('u', append('a'));
    const boom = new Error('boom');
    await expect(store.update('u', () => Promise.reject(boom))).rejects.toBe(boom);
    await expect(store.update('u', () => ({ state: null, history: [1.5], model: 'm' }))).rejects.toBeInstanceOf(InvalidArgumentError);
    const got = await store.get('u');
    expect(got!.version).toBe(1);
    expect(got!.history).toEqual(['a']);
  });

  it('sets the TTL on every write; an idle record expires', async () => {
    const store = open({ ttlMs: 400 });
    await store.update('u', append(1));
    const key = `${store.prefix}s:u`;
    const ttl1 = await raw.pttl(key);
    expect(ttl1).toBeGreaterThan(0);
    expect(ttl1).toBeLessThanOrEqual(400);
    await raw.pexpire(key, 100_000); // as if an older write had set a long TTL: the next write resets it
    await store.update('u', append(2));
    expect(await raw.pttl(key)).toBeLessThanOrEqual(400);
    let gone = false;
    for (let i = 0; i < 100 && !gone; i++) {
      await new Promise((r) => setTimeout(r, 50));
      gone = (await store.get('u')) === undefined;
    }
    expect(gone).toBe(true);
    expect((await store.update('u', append(3)))!.version).toBe(1);
    const forever = open({ ttlMs: Infinity, prefix: store.prefix });
    await forever.update('u', append(4)); // no expiry: the TTL set before is cleared
    expect(await raw.pttl(key)).toBe(-1);
  });

  it('size() counts the keys under its prefix only (SCAN, glob characters escaped)', async () => {
    const store = open({ prefix: `glob*[?]${uniquePrefix()}` });
    const other = open();
    for (let i = 0; i < 37; i++) await store.update(i % 2 ? i : `u${i}`, append(i));
    for (let i = 0; i < 5; i++) await other.update(i, append(i));
    await raw.set(`${store.prefix.replace('*[?]', 'XX?')}zzz`, 'x'); // matched by the unescaped pattern
    expect(await store.size()).toBe(37);
    expect(await other.size()).toBe(5);
    await store.delete(1);
    expect(await store.size()).toBe(36);
  });

  it('200 concurrent updates from two stores (two clients) to one user lose nothing', async () => {
    const prefix = uniquePrefix();
    const a = open({ prefix });
    const b = open({ prefix });
    const events = Array.from({ length: 200 }, (_, i) => (i % 2 ? `b${i}` : i));
    await Promise.all(events.map((ev, i) => (i % 2 ? b : a).update('hot', append(ev))));
    const got = await a.get('hot');
    expect(got!.history.length).toBe(200);
    expect(new Set(got!.history)).toEqual(new Set(events));
    expect(got!.version).toBe(200);
    expect(got!.state![0]).toBe(200);
  });

  it('200 concurrent updates from this process and a second node process lose nothing', async () => {
    const prefix = uniquePrefix();
    const store = open({ prefix });
    const script = await bundleChildScript();
    const child = spawn(process.execPath, [script, server.url(), prefix, 'hot', '100'], { stdio: ['pipe', 'pipe', 'inherit'] });
    const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
    expect((await lines.next()).value).toBe('ready');
    child.stdin!.write('go\n');
    const mine = Array.from({ length: 100 }, (_, i) => store.update('hot', append(`p${i}`)));
    await Promise.all(mine);
    const report = JSON.parse((await lines.next()).value as string) as { ok: number; errors: string[] };
    rmSync(script, { force: true });
    expect(report).toEqual({ ok: 100, errors: [] });
    const got = await store.get('hot');
    const expected = [...Array.from({ length: 100 }, (_, i) => `p${i}`), ...Array.from({ length: 100 }, (_, i) => `c${i}`)];
    expect(got!.history.length).toBe(200);
    expect(new Set(got!.history)).toEqual(new Set(expected));
    expect(got!.version).toBe(200);
  });

  it('a record that is not a session, or a key of another type, is a SessionStoreError', async () => {
    const store = open();
    await raw.set(`${store.prefix}s:junk`, 'hello');
    await raw.set(`${store.prefix}s:long`, 'x'.repeat(40));
    await raw.hset(`${store.prefix}s:hash`, 'a', '1');
    const e1 = await store.get('junk').catch((e: unknown) => e);
    expect(e1).toBeInstanceOf(SessionStoreError);
    expect((e1 as Error).message).toMatch(/not a session record at "t\d+:\d+:s:junk": a session record is at least 36 bytes, got 5$/);
    await expect(store.get('long')).rejects.toThrow(/not a session record at "t\d+:\d+:s:long": not a recscore session record \(bad magic\)$/);
    await expect(store.update('junk', append(1))).rejects.toBeInstanceOf(SessionStoreError);
    await expect(store.update('hash', append(1))).rejects.toBeInstanceOf(SessionStoreError);
    expect(await raw.get(`${store.prefix}s:junk`)).toBe('hello');
  });

  it('a shared client stays open after close(); a closed store refuses calls', async () => {
    const client = new Redis({ port: server.port, host: '127.0.0.1' });
    const store = new RedisSessionStore({ client, prefix: uniquePrefix() });
    await store.update(1, append(1));
    await store.close();
    await store.close(); // idempotent
    await expect(store.get(1)).rejects.toBeInstanceOf(ClosedError);
    expect(await client.ping()).toBe('PONG');
    client.disconnect();
  });

  it('Redis killed mid-load: calls reject with SessionStoreError, then work again after a restart', async () => {
    const store = open({ commandTimeoutMs: 1000, connectTimeoutMs: 1000 });
    let stop = false;
    let ok = 0;
    const failures: unknown[] = [];
    const worker = async (w: number): Promise<void> => {
      for (let i = 0; !stop; i++) {
        try {
          await store.update(`w${w}`, append(i));
          ok++;
        } catch (e) {
          failures.push(e);
          await new Promise((r) => setTimeout(r, 5));
        }
      }
    };
    const workers = Array.from({ length: 16 }, (_, w) => worker(w));
    while (ok < 200) await new Promise((r) => setTimeout(r, 5));
    await server.kill();
    // Every call now rejects (the test timeout bounds how long: nothing hangs).
    const e = await store.get('w0').catch((err: unknown) => err);
    expect(e).toBeInstanceOf(SessionStoreError);
    while (failures.length < 50) await new Promise((r) => setTimeout(r, 5));
    stop = true;
    await Promise.all(workers);
    for (const f of failures) expect(f).toBeInstanceOf(SessionStoreError);
    await server.restart();
    let back = false;
    for (let i = 0; i < 400 && !back; i++) {
      back = await store.get('w0').then(
        () => true,
        () => false,
      );
      if (!back) await new Promise((r) => setTimeout(r, 25));
    }
    expect(back).toBe(true);
    // The restarted server kept nothing (no persistence): the same store object writes afresh.
    expect((await store.update('w0', append('after')))!.history).toEqual(['after']);
    expect(await store.size()).toBe(1);
  }, 60_000);
});

describe.skipIf(!bin)('RedisSessionStore: ACL users, TLS, unreachable servers, the missing peer', () => {
  const user = { name: 'recscore', password: 'S3cret-pa55word-never-shown' };
  let server: RedisServer;
  beforeAll(async () => {
    server = await startRedis({ user });
  });
  afterAll(async () => {
    await server?.stop();
  });

  /** Every way the value could be shown (its string, message, stack, and inspection with its causes). */
  const expectNoPassword = (v: unknown, pw: string): void =>
    expect(`${String(v)} ${v instanceof Error ? v.message + v.stack : ''} ${inspect(v, { depth: 8 })}`).not.toMatch(new RegExp(`${pw}|${encodeURIComponent(pw)}`));

  it('an ACL user with its password works; the password is in no message, string or inspection', async () => {
    const store = new RedisSessionStore({ url: server.url(user), prefix: uniquePrefix() });
    expect((await store.update('u', append(1)))!.version).toBe(1);
    expect(String(store)).toContain('***');
    expectNoPassword(store, user.password);
    await store.close();
  });

  it('a wrong password and an unreachable port reject with SessionStoreError, the password redacted', async () => {
    const wrong = { name: user.name, password: 'Wr0ng-pa55word-never-shown' };
    const bad = new RedisSessionStore({ url: server.url(wrong), prefix: uniquePrefix(), connectTimeoutMs: 2000 });
    const e1 = await bad.update('u', append(1)).catch((e: unknown) => e);
    expect(e1).toBeInstanceOf(SessionStoreError);
    expect((e1 as Error).message).toMatch(/WRONGPASS|NOAUTH|auth/i);
    expectNoPassword(e1, wrong.password);
    await bad.close();

    const nowhere = new RedisSessionStore({ url: `redis://${user.name}:${encodeURIComponent(user.password)}@127.0.0.1:${await freePort()}`, connectTimeoutMs: 1000 });
    const e2 = await nowhere.get('u').catch((e: unknown) => e);
    expect(e2).toBeInstanceOf(SessionStoreError);
    expect((e2 as Error).message).toMatch(/ECONNREFUSED/);
    expectNoPassword(e2, user.password);
    const e3 = await nowhere.get('u').catch((e: unknown) => e); // between reconnection attempts: at once
    expect(e3).toBeInstanceOf(SessionStoreError);
    expectNoPassword(e3, user.password);
    await nowhere.close();
    // Not a Redis URL, and one that does not parse: the messages show no password either.
    for (const url of [`http://u:${user.password}@host`, `redis://u:${user.password}@host:port`]) {
      const e = thrown(() => new RedisSessionStore({ url }));
      expect(e).toBeInstanceOf(InvalidArgumentError);
      expectNoPassword(e, user.password);
    }
  });

  it('rediss:// (TLS, a self-signed certificate given as the CA)', async () => {
    let tls: RedisServer;
    try {
      tls = await startRedis({ tls: true });
    } catch (e) {
      console.log(`TLS case skipped: no TLS redis-server here (${(e as Error).message.slice(0, 200)})`);
      return;
    }
    try {
      const store = new RedisSessionStore({ url: tls.url(), tls: { ca: tls.ca! }, prefix: uniquePrefix() });
      const state = Float32Array.of(0.1, 0.2);
      await store.update(7, () => ({ state, history: [1, 'two'], model: 'm' }));
      const got = await store.get(7);
      expect(bits(got!.state)).toEqual(bits(state));
      expect(got!.history).toEqual([1, 'two']);
      await store.close();
      // Without the CA the self-signed certificate is refused.
      const untrusted = new RedisSessionStore({ url: tls.url(), connectTimeoutMs: 2000 });
      await expect(untrusted.get(7)).rejects.toBeInstanceOf(SessionStoreError);
      await untrusted.close();
    } finally {
      await tls.stop();
    }
  });

  it('without ioredis: PeerMissingError naming the package', async () => {
    _setIoredisLoader(() => {
      throw Object.assign(new Error("Cannot find module 'ioredis'"), { code: 'MODULE_NOT_FOUND' });
    });
    try {
      const e = thrown(() => new RedisSessionStore({ url: server.url() }));
      expect(e).toBeInstanceOf(PeerMissingError);
      expect((e as PeerMissingError).peer).toBe('ioredis');
      expect((e as Error).message).toBe('RedisSessionStore needs the ioredis package: npm install ioredis');
      _setIoredisLoader(() => {
        throw new SyntaxError('broken install');
      });
      expect(thrown(() => new RedisSessionStore({ url: server.url() }))).toBeInstanceOf(SessionStoreError);
    } finally {
      _setIoredisLoader(null);
    }
    const again = new RedisSessionStore({ url: server.url() }); // the real ioredis again
    expect(await again.get('nobody')).toBeUndefined();
    await again.close();
  });
});
