/**
 * The cluster's optional peers, bullmq and ioredis, loaded on first use (a program that never
 * runs a cluster command does not need them). Missing: a PeerMissingError naming both packages.
 */
import { createRequire } from 'node:module';
import type { ConnectionOptions } from 'node:tls';

import { InvalidArgumentError, PeerMissingError } from '../errors.js';
import { redactUrl } from '../redact_url.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
export type BullMQ = typeof import('bullmq');
export type RedisClient = import('ioredis').Redis;
type RedisCtor = new (url: string, options?: Record<string, unknown>) => RedisClient;

let bull: BullMQ | null = null;
let redisCtor: RedisCtor | null = null;

const MESSAGE = 'recscore cluster needs the packages bullmq and ioredis: npm install bullmq ioredis';

function load<T>(name: string): T {
  const req = createRequire(import.meta.url);
  try {
    return req(name) as T;
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    if (code === 'MODULE_NOT_FOUND' || code === 'ERR_MODULE_NOT_FOUND') throw new PeerMissingError('bullmq, ioredis', MESSAGE, { cause: e });
    throw e;
  }
}

/** The bullmq module. */
export function bullmq(): BullMQ {
  bull ??= load<BullMQ>('bullmq');
  return bull;
}

/** A new ioredis connection to `url` (redis://, rediss:// with user:password@ for ACLs). */
export function redisClient(url: string, o: { tls?: ConnectionOptions; forWorker?: boolean } = {}): RedisClient {
  if (!redisCtor) {
    const mod = load<{ default?: RedisCtor; Redis?: RedisCtor }>('ioredis');
    redisCtor = (mod.Redis ?? mod.default ?? mod) as RedisCtor;
  }
  const options: Record<string, unknown> = { lazyConnect: false };
  // BullMQ's blocking worker connections must retry forever rather than fail a command.
  if (o.forWorker) options.maxRetriesPerRequest = null;
  if (o.tls || url.startsWith('rediss://')) options.tls = { ...(o.tls ?? {}) };
  return new redisCtor(url, options);
}

/**
 * Waits for the client's first connection; an error before it (refused, TLS, auth) disconnects
 * and rejects with the error's message and the URL without its password. Later errors go to
 * `onError` (ioredis reconnects by itself).
 */
export async function connected(client: RedisClient, url: string, onError: (e: Error) => void = () => undefined): Promise<void> {
  try {
    await new Promise<void>((resolve, reject) => {
      if (client.status === 'ready') return resolve();
      const ok = (): void => {
        client.off('error', fail);
        resolve();
      };
      const fail = (e: Error): void => {
        client.off('ready', ok);
        reject(e);
      };
      client.once('ready', ok);
      client.once('error', fail);
    });
  } catch (e) {
    client.disconnect();
    const msg = (e as Error).message.split(url).join(redactUrl(url));
    throw new ClusterConnectError(`cannot use Redis at ${redactUrl(url)}: ${msg}`);
  }
  client.on('error', onError);
}

/** The first connection to Redis failed (unreachable, TLS, authentication). */
export class ClusterConnectError extends InvalidArgumentError {
  constructor(message: string) {
    super(message);
    this.name = 'ClusterConnectError';
  }
}
