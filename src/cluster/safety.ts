/**
 * What keeps a job from making a worker misbehave: data roots (every path a job names must
 * resolve, symlinks followed, inside one of the worker's --data-root dirs), HMAC signatures of
 * job payloads (--secret-file), and the Redis eviction policy BullMQ needs.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { readFileSync, realpathSync, statSync } from 'node:fs';
import { isAbsolute, resolve, sep } from 'node:path';

import { InvalidArgumentError } from '../errors.js';
import { redactUrl } from '../redact_url.js';

/** A job the worker must not run (outside the roots, unsigned, altered, another contract). */
export class JobRefusedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'JobRefusedError';
  }
}

/** Redis or the cluster's options are set up so that jobs could be lost or misread. */
export class ClusterConfigError extends InvalidArgumentError {
  constructor(message: string) {
    super(message);
    this.name = 'ClusterConfigError';
  }
}

/** The data roots, resolved (each must be an existing directory). */
export function resolveRoots(roots: ReadonlyArray<string>): string[] {
  if (roots.length === 0) throw new ClusterConfigError('a worker needs at least one --data-root DIR: it reads and writes nothing outside its roots');
  return roots.map((r) => {
    let real: string;
    try {
      real = realpathSync(r);
    } catch (e) {
      throw new ClusterConfigError(`--data-root ${r}: ${(e as { code?: string }).code ?? 'cannot be resolved'}`);
    }
    if (!statSync(real).isDirectory()) throw new ClusterConfigError(`--data-root ${r}: not a directory`);
    return real;
  });
}

/** The real path of `path` (which must exist) when it lies inside a root; refuses it otherwise. */
export function confine(what: string, path: unknown, roots: ReadonlyArray<string>): string {
  if (typeof path !== 'string' || path === '' || !isAbsolute(path)) throw new JobRefusedError(`${what} must be an absolute path, got ${JSON.stringify(path)}`);
  let real: string;
  try {
    real = realpathSync(resolve(path));
  } catch (e) {
    throw new JobRefusedError(`${what} ${path}: ${(e as { code?: string }).code ?? 'cannot be resolved'}`);
  }
  const inside = roots.some((r) => real === r || real.startsWith(r.endsWith(sep) ? r : r + sep));
  if (!inside) throw new JobRefusedError(`${what} ${path} resolves to ${real}, outside this worker's --data-root (${roots.join(', ')}): refused`);
  return real;
}

/** JSON with object keys sorted: the text a signature covers. */
export function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .filter((k) => o[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

/** The secret in a file (surrounding whitespace dropped); at least 16 bytes. */
export function readSecret(file: string): Buffer {
  let text: string;
  try {
    text = readFileSync(file, 'utf8').trim();
  } catch (e) {
    throw new ClusterConfigError(`--secret-file ${file}: ${(e as { code?: string }).code ?? 'cannot be read'}`);
  }
  if (Buffer.byteLength(text) < 16) throw new ClusterConfigError(`--secret-file ${file}: the secret must be at least 16 bytes`);
  return Buffer.from(text);
}

export function sign(payload: Record<string, unknown>, secret: Buffer): string {
  const { sig: _sig, ...rest } = payload;
  return createHmac('sha256', secret).update(canonical(rest)).digest('hex');
}

/** Refuses a payload without a signature or whose signature does not match. */
export function verify(payload: Record<string, unknown>, secret: Buffer): void {
  const sig = payload.sig;
  if (typeof sig !== 'string' || !/^[0-9a-f]{64}$/.test(sig)) throw new JobRefusedError('the job is not signed, and this worker runs with --secret-file: refused');
  const want = Buffer.from(sign(payload, secret), 'hex');
  if (!timingSafeEqual(want, Buffer.from(sig, 'hex'))) throw new JobRefusedError('the job’s signature does not match its payload (altered, or signed with another secret): refused');
}

/** What ioredis's INFO needs of a client. */
export interface InfoClient {
  info(section: string): Promise<string>;
}

/** Refuses a Redis whose maxmemory-policy would let it evict BullMQ's keys. */
export async function checkEvictionPolicy(client: InfoClient, url: string): Promise<void> {
  const info = await client.info('memory');
  const m = /^maxmemory_policy:(\S+)/m.exec(info);
  if (!m) return;
  if (m[1] !== 'noeviction') {
    throw new ClusterConfigError(
      `Redis at ${redactUrl(url)} has maxmemory-policy ${m[1]}: it may evict queued jobs, which BullMQ cannot recover. Set it to noeviction: redis-cli CONFIG SET maxmemory-policy noeviction (and maxmemory-policy noeviction in redis.conf, or the parameter group of a managed Redis)`,
    );
  }
}
