/**
 * RedisSessionStore: sessions shared by every process that uses the same Redis and prefix. One
 * Redis string per user (record_codec.ts), written only by a Lua compare-and-set that also sets
 * the TTL, so an update is atomic across processes and a write is whole or absent. ioredis is an
 * optional peer dependency, loaded the first time a store is constructed.
 */
import { createHash } from 'node:crypto';
import type { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
import type { ConnectionOptions } from 'node:tls';
import { inspect } from 'node:util';

import type { ItemId } from '../catalogue/catalogue.js';
import { ClosedError, InvalidArgumentError, PeerMissingError, SessionStoreError } from '../errors.js';
import { describe, optionalPositiveInt } from '../validate.js';
import { redactUrl } from '../redact_url.js';
import { PerUserQueue } from './per_user_queue.js';
import { CAS_END, CAS_START, casBytes, checkContents, checkUser, decodeRecord, encodeRecord, newTag, ttlOption } from './record_codec.js';
import type { SessionRecord, SessionStore, SessionUpdate } from './store.js';

/** What the store needs of a client: ioredis's `Redis` has all of it. */
export interface RedisClientLike extends EventEmitter {
  readonly status: string;
  callBuffer(command: string, args: Array<string | Buffer | number>): Promise<unknown>;
  connect(): Promise<void>;
  quit(): Promise<unknown>;
  disconnect(): void;
}

export interface RedisSessionStoreOptions {
  /** `redis://[user:password@]host[:port][/db]` or `rediss://…` (TLS). Required unless `client` is given. */
  url?: string;
  /** Key prefix; a user's key is `${prefix}s:${id}` for a string id, `${prefix}n:${id}` for a number. */
  prefix?: string;
  /** Sessions idle longer than this expire (ms, rounded up; Infinity: never; default 24 h). Every write sets the key's TTL. */
  ttlMs?: number;
  /** Events kept per session (default 200). */
  historyLimit?: number;
  /** Longest wait for a connection (ms; default 5000). */
  connectTimeoutMs?: number;
  /** Longest wait for one Redis reply (ms; default 2000). */
  commandTimeoutMs?: number;
  /** An update whose record another writer keeps changing gives up after this many tries (default 100). */
  maxAttempts?: number;
  /** TLS options for `rediss://` (a private CA, servername, …). */
  tls?: ConnectionOptions;
  /** An existing ioredis client to use (shared with other code); close() leaves it open. */
  client?: RedisClientLike;
}

type RedisCtor = new (options: Record<string, unknown>) => RedisClientLike;

function defaultLoader(): RedisCtor {
  const req = createRequire(import.meta.url);
  const mod = req('ioredis') as { default?: RedisCtor; Redis?: RedisCtor };
  return (mod.Redis ?? mod.default ?? mod) as RedisCtor;
}
let loader: () => RedisCtor = defaultLoader;
let loaded: RedisCtor | null = null;

/** @internal Tests: replaces how ioredis is loaded (null restores the default). */
export function _setIoredisLoader(fn: (() => unknown) | null): void {
  loader = (fn as (() => RedisCtor) | null) ?? defaultLoader;
  loaded = null;
}

function ioredis(): RedisCtor {
  if (loaded) return loaded;
  try {
    loaded = loader();
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    if (code !== 'MODULE_NOT_FOUND' && code !== 'ERR_MODULE_NOT_FOUND') {
      throw new SessionStoreError(`ioredis is installed but failed to load: ${(e as Error).message}`, { cause: e });
    }
    throw new PeerMissingError('ioredis', 'RedisSessionStore needs the ioredis package: npm install ioredis', { cause: e });
  }
  return loaded;
}

export { redactUrl };

// KEYS[1] the user's key; ARGV[1] the expected version+tag ('' for no record), ARGV[2] the new
// record ('' to delete), ARGV[3] the TTL (ms; 0: none). Returns {1} when written, {0, current} otherwise.
const CAS = `local cur = redis.call('GETRANGE', KEYS[1], ${CAS_START}, ${CAS_END})
if cur ~= ARGV[1] then return {0, cur} end
if ARGV[2] == '' then redis.call('DEL', KEYS[1]) return {1} end
if ARGV[3] == '0' then redis.call('SET', KEYS[1], ARGV[2]) else redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) end
return {1}`;
const CAS_SHA = createHash('sha1').update(CAS).digest('hex');
const EMPTY: Buffer = Buffer.alloc(0);

export class RedisSessionStore implements SessionStore {
  readonly kind = 'redis';
  readonly prefix: string;
  readonly ttlMs: number;
  readonly historyLimit: number;
  readonly connectTimeoutMs: number;
  readonly commandTimeoutMs: number;
  readonly maxAttempts: number;
  readonly #where: string;
  readonly #secrets: string[];
  readonly #client: RedisClientLike;
  readonly #owned: boolean;
  readonly #queue = new PerUserQueue();
  #lastError: Error | null = null;
  #connecting: Promise<void> | null = null;
  #closed = false;
  readonly #onError = (e: Error): void => {
    this.#lastError = e;
  };

  constructor(o: RedisSessionStoreOptions) {
    if (o === null || typeof o !== 'object') throw new InvalidArgumentError(`options must be an object, got ${describe(o)}`);
    this.prefix = o.prefix ?? 'recscore:session:';
    if (typeof this.prefix !== 'string') throw new InvalidArgumentError(`options.prefix must be a string, got ${describe(this.prefix)}`);
    this.ttlMs = ttlOption('options.ttlMs', o.ttlMs, 24 * 3600 * 1000);
    this.historyLimit = optionalPositiveInt('options.historyLimit', o.historyLimit, 200);
    this.connectTimeoutMs = optionalPositiveInt('options.connectTimeoutMs', o.connectTimeoutMs, 5000);
    this.commandTimeoutMs = optionalPositiveInt('options.commandTimeoutMs', o.commandTimeoutMs, 2000);
    this.maxAttempts = optionalPositiveInt('options.maxAttempts', o.maxAttempts, 100);
    if (o.client !== undefined) {
      if (o.client === null || typeof (o.client as { callBuffer?: unknown }).callBuffer !== 'function') {
        throw new InvalidArgumentError(`options.client must be an ioredis client, got ${describe(o.client)}`);
      }
      this.#client = o.client;
      this.#owned = false;
      this.#where = 'the given client';
      this.#secrets = [];
    } else {
      const parsed = parseUrl(o.url);
      this.#where = parsed.redacted;
      this.#secrets = [...new Set([parsed.password, parsed.rawPassword])].filter((p) => p !== '');
      const Redis = ioredis();
      this.#client = new Redis({
        host: parsed.host,
        port: parsed.port,
        username: parsed.username || undefined,
        password: parsed.password || undefined,
        db: parsed.db,
        tls: parsed.tls ? { ...(o.tls ?? {}) } : undefined,
        lazyConnect: true,
        // Calls during an outage fail at once; the client reconnects in the background.
        enableOfflineQueue: false,
        autoResendUnfulfilledCommands: false,
        maxRetriesPerRequest: 0,
        connectTimeout: this.connectTimeoutMs,
        commandTimeout: this.commandTimeoutMs,
        retryStrategy: (times: number) => Math.min(50 * times, 1000),
        reconnectOnError: () => false,
      });
      this.#owned = true;
    }
    this.#client.on('error', this.#onError);
  }

  toString(): string {
    return `RedisSessionStore(${this.#where}, prefix ${JSON.stringify(this.prefix)})`;
  }

  [inspect.custom](): string {
    return this.toString();
  }

  /** The Redis key of a user. */
  key(user: ItemId): string {
    checkUser(user);
    return typeof user === 'string' ? `${this.prefix}s:${user}` : `${this.prefix}n:${String(user)}`;
  }

  async get(user: ItemId): Promise<SessionRecord | undefined> {
    const key = this.key(user);
    const raw = await this.#call('get', 'GET', [key]);
    return raw === null ? undefined : this.#decode('get', raw, key);
  }

  update(user: ItemId, fn: SessionUpdate): Promise<SessionRecord | null> {
    let key: string;
    try {
      key = this.key(user);
      if (typeof fn !== 'function') throw new InvalidArgumentError(`fn must be a function, got ${describe(fn)}`);
    } catch (e) {
      return Promise.reject(e);
    }
    // One update per user at a time from this process: retries are only for other processes.
    return this.#queue.run(user, () => this.#update(user, key, fn));
  }

  async #update(user: ItemId, key: string, fn: SessionUpdate): Promise<SessionRecord | null> {
    for (let attempt = 1; ; attempt++) {
      const raw = await this.#call('update', 'GET', [key]);
      const current = raw === null ? undefined : this.#decode('update', raw, key);
      const expected = raw === null ? EMPTY : casBytes(raw as Buffer);
      const contents = await fn(current);
      let record: SessionRecord | null = null;
      let value: Buffer = EMPTY;
      if (contents !== null) {
        const c = checkContents(contents, this.historyLimit);
        record = { ...c, version: (current?.version ?? 0) + 1, lastSeen: Date.now() };
        value = encodeRecord(record, newTag());
      }
      const reply = await this.#script(key, expected, value);
      if (reply) return record;
      if (attempt >= this.maxAttempts) {
        throw new SessionStoreError(
          `update of user ${describe(user)} gave up after ${attempt} attempts: other writers kept changing the record (Redis at ${this.#where})`,
        );
      }
      // Another writer won: back off a little (randomised, growing) and read again.
      await new Promise((r) => setTimeout(r, Math.random() * Math.min(2 ** attempt, 50)));
    }
  }

  /** Forgets the user (after the updates of that user this process asked for before). */
  delete(user: ItemId): Promise<boolean> {
    let key: string;
    try {
      key = this.key(user);
    } catch (e) {
      return Promise.reject(e);
    }
    return this.#queue.run(user, async () => (await this.#call('delete', 'DEL', [key])) === 1);
  }

  /** Keys under the prefix (SCAN; the count of a moment, as other processes write meanwhile). */
  async size(): Promise<number> {
    const pattern = `${this.prefix.replace(/[*?[\]\\]/g, '\\$&')}*`;
    const seen = new Set<string>();
    let cursor = '0';
    do {
      const reply = (await this.#call('size', 'SCAN', [cursor, 'MATCH', pattern, 'COUNT', 1000])) as [Buffer, Buffer[]];
      if (!Array.isArray(reply) || reply.length !== 2 || !Array.isArray(reply[1])) throw this.#fail('size', new Error('unexpected SCAN reply'));
      cursor = String(reply[0]);
      for (const k of reply[1]) seen.add(k.toString('latin1'));
    } while (cursor !== '0');
    return seen.size;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#client.off('error', this.#onError);
    if (!this.#owned) return;
    this.#client.on('error', () => undefined); // late socket errors of a client going away
    if (this.#client.status === 'ready') {
      try {
        await withTimeout(this.#client.quit(), this.commandTimeoutMs);
        return;
      } catch {
        // fall through: drop the connection
      }
    }
    this.#client.disconnect();
  }

  /** Runs the compare-and-set; true when it wrote. */
  async #script(key: string, expected: Buffer, value: Buffer): Promise<boolean> {
    const args = [key, expected, value, Number.isFinite(this.ttlMs) ? Math.ceil(this.ttlMs) : 0];
    let reply: unknown;
    try {
      reply = await this.#call('update', 'EVALSHA', [CAS_SHA, 1, ...args]);
    } catch (e) {
      const cause = (e as { cause?: { message?: unknown } }).cause;
      if (!(typeof cause?.message === 'string' && cause.message.startsWith('NOSCRIPT'))) throw e;
      // A Redis that restarted (or another database) has not seen the script yet.
      reply = await this.#call('update', 'EVAL', [CAS, 1, ...args]);
    }
    if (!Array.isArray(reply) || (reply[0] !== 0 && reply[0] !== 1)) throw this.#fail('update', new Error(`unexpected script reply ${describe(reply)}`));
    return reply[0] === 1;
  }

  #decode(op: string, raw: unknown, key: string): SessionRecord {
    if (!Buffer.isBuffer(raw)) throw this.#fail(op, new Error(`unexpected reply ${describe(raw)}`));
    try {
      return decodeRecord(raw);
    } catch (e) {
      throw this.#fail(op, e, `holds something that is not a session record at ${JSON.stringify(key)}`);
    }
  }

  /** One Redis command, bounded in time; every failure is a SessionStoreError. */
  async #call(op: string, command: string, args: Array<string | Buffer | number>): Promise<unknown> {
    if (this.#closed) throw new ClosedError('RedisSessionStore');
    await this.#ready(op);
    try {
      return await withTimeout(this.#client.callBuffer(command, args), this.commandTimeoutMs);
    } catch (e) {
      throw this.#fail(op, e);
    }
  }

  /**
   * Waits for a connection being made (the first one, or a reconnection under way); a client that
   * is between attempts (reconnecting, closed) fails at once rather than queueing the call.
   */
  async #ready(op: string): Promise<void> {
    const c = this.#client;
    if (c.status === 'ready') return;
    if (c.status === 'wait') c.connect().catch(() => undefined);
    else if (c.status !== 'connecting' && c.status !== 'connect') {
      throw this.#fail(op, this.#lastError ?? new Error(`not connected (${c.status})`), `is unavailable (${c.status})`);
    }
    this.#connecting ??= new Promise<void>((resolve, reject) => {
      const done = (err: Error | null): void => {
        clearTimeout(timer);
        c.off('ready', onReady);
        c.off('error', onError);
        c.off('close', onClose);
        this.#connecting = null;
        if (err) reject(err);
        else resolve();
      };
      const onReady = (): void => done(null);
      const onError = (e: Error): void => done(e);
      const onClose = (): void => done(this.#lastError ?? new Error('connection closed'));
      const timer = setTimeout(() => done(new Error(`no connection within ${this.connectTimeoutMs} ms`)), this.connectTimeoutMs);
      c.on('ready', onReady);
      c.on('error', onError);
      c.on('close', onClose);
    });
    try {
      await this.#connecting;
    } catch (e) {
      throw this.#fail(op, e, 'could not connect');
    }
  }

  /** A SessionStoreError for a failed call: the URL redacted, the password nowhere. */
  #fail(op: string, e: unknown, what = 'failed'): SessionStoreError {
    if (e instanceof SessionStoreError || e instanceof ClosedError) return e as SessionStoreError;
    const cause = scrub(e, this.#secrets);
    const msg = cause instanceof Error ? cause.message : String(cause);
    return new SessionStoreError(`session store ${op}: Redis at ${this.#where} ${what}${what ? ': ' : ''}${msg}`, { cause });
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no reply within ${ms} ms`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

/** Removes the password from an error (its message, stack, and the AUTH/HELLO command it carries). */
function scrub(e: unknown, secrets: string[]): unknown {
  const hide = (s: string): string => secrets.reduce((t, secret) => t.split(secret).join('***'), s);
  if (!(e instanceof Error)) return secrets.length ? hide(String(e)) : e;
  const cmd = (e as { command?: { name?: string; args?: unknown[] } }).command;
  if (cmd && typeof cmd === 'object' && /^(auth|hello)$/i.test(String(cmd.name)) && Array.isArray(cmd.args)) {
    cmd.args = cmd.args.map(() => '***');
  }
  e.message = hide(e.message);
  if (e.stack) e.stack = hide(e.stack);
  return e;
}

/** host, port, ACL user and password, db and TLS from a redis:// or rediss:// URL. */
function parseUrl(url: unknown) {
  if (typeof url !== 'string') throw new InvalidArgumentError(`options.url must be a redis:// or rediss:// URL, got ${describe(url)}`);
  const redacted = redactUrl(url);
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new InvalidArgumentError(`options.url is not a URL: ${JSON.stringify(redacted)}`);
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') {
    throw new InvalidArgumentError(`options.url must be a redis:// or rediss:// URL, got ${JSON.stringify(redacted)}`);
  }
  const path = u.pathname.replace(/^\//, '');
  const db = path === '' ? 0 : Number(path);
  if (!Number.isSafeInteger(db) || db < 0) throw new InvalidArgumentError(`options.url names no database number: ${JSON.stringify(redacted)}`);
  return {
    host: u.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1',
    port: u.port ? Number(u.port) : 6379,
    username: decodeURIComponent(u.username),
    password: decodeURIComponent(u.password),
    rawPassword: u.password,
    db,
    tls: u.protocol === 'rediss:',
    redacted,
  };
}
