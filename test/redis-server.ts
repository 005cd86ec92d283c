/**
 * A real redis-server for tests: started on a free port in a temporary directory (no RDB, no
 * AOF), optionally with an ACL user and TLS, and stopped (or SIGKILLed and restarted on the same
 * port). `redisServerPath()` is null where redis-server is not installed: suites skip then.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { fileURLToPath } from 'node:url';

export function redisServerPath(): string | null {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const p = join(dir, 'redis-server');
    if (dir && existsSync(p)) return p;
  }
  return null;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export interface RedisServerOptions {
  /** An ACL user (with every permission) besides the default user. */
  user?: { name: string; password: string };
  /** Serve TLS only (a self-signed certificate made with openssl). */
  tls?: boolean;
}

export interface RedisServer {
  readonly port: number;
  readonly dir: string;
  /** The CA (the self-signed certificate) when tls. */
  readonly ca: string | null;
  /** redis:// (or rediss://) URL, with user:password@ when given. */
  url(auth?: { name: string; password: string }): string;
  /** SIGKILL: the server dies at once, mid-command. */
  kill(): Promise<void>;
  /** Starts it again on the same port (after kill). */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export async function startRedis(o: RedisServerOptions = {}): Promise<RedisServer> {
  const bin = redisServerPath();
  if (!bin) throw new Error('redis-server is not on PATH');
  const dir = mkdtempSync(join(tmpdir(), 'recscore-redis-'));
  const port = await freePort();
  let ca: string | null = null;
  const args = ['--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--logfile', join(dir, 'redis.log')];
  if (o.tls) {
    const key = join(dir, 'key.pem');
    const cert = join(dir, 'cert.pem');
    execFileSync(
      'openssl',
      ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'],
      { stdio: 'ignore' },
    );
    ca = readFileSync(cert, 'utf8');
    args.push('--port', '0', '--tls-port', String(port), '--tls-cert-file', cert, '--tls-key-file', key, '--tls-ca-cert-file', cert, '--tls-auth-clients', 'no');
  } else {
    args.push('--port', String(port));
  }
  if (o.user) args.push('--user', o.user.name, 'on', `>${o.user.password}`, '~*', '&*', '+@all');

  let child: ChildProcess | null = null;
  const launch = async (): Promise<void> => {
    const c = spawn(bin, args, { stdio: 'ignore' });
    child = c;
    const exited = new Promise<never>((_, reject) => c.once('exit', (code) => reject(new Error(`redis-server exited (${code}): ${log()}`))));
    exited.catch(() => undefined);
    for (let i = 0; ; i++) {
      if (await answers(port, ca)) return;
      if (c.exitCode !== null) await exited;
      if (i > 200) throw new Error(`redis-server did not start on port ${port}: ${log()}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  };
  const log = (): string => {
    try {
      return readFileSync(join(dir, 'redis.log'), 'utf8').slice(-2000);
    } catch {
      return '(no log)';
    }
  };
  const kill = async (): Promise<void> => {
    const c = child;
    child = null;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const gone = new Promise((r) => c.once('exit', r));
    c.kill('SIGKILL');
    await gone;
  };
  await launch();
  return {
    port,
    dir,
    ca,
    url: (auth) => `${o.tls ? 'rediss' : 'redis'}://${auth ? `${encodeURIComponent(auth.name)}:${encodeURIComponent(auth.password)}@` : ''}${o.tls ? 'localhost' : '127.0.0.1'}:${port}`,
    kill,
    restart: launch,
    stop: async () => {
      await kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Whether something answers a PING on the port (+PONG, or -NOAUTH: it is up either way). */
function answers(port: number, ca: string | null): Promise<boolean> {
  return new Promise((resolve) => {
    const s = ca ? tlsConnect({ port, host: '127.0.0.1', ca, servername: 'localhost' }) : netConnect(port, '127.0.0.1');
    const done = (ok: boolean): void => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(1000, () => done(false));
    s.once('error', () => done(false));
    s.once(ca ? 'secureConnect' : 'connect', () => s.write('PING\r\n'));
    s.once('data', (d: Buffer) => done(/^[+-]/.test(d.toString())));
  });
}

/**
 * A second process for the concurrency test: a script (bundled with esbuild from the store's
 * source, its packages left to node_modules) that takes `url prefix user n`, prints `ready` once
 * connected, waits for `go` on stdin, appends c0…c{n-1} to the user's history with n concurrent
 * updates, and prints `{ ok, errors }`.
 */
export async function bundleChildScript(): Promise<string> {
  const { build } = await import('esbuild');
  const root = fileURLToPath(new URL('..', import.meta.url));
  const out = join(root, 'node_modules', '.cache', 'recscore-test', `redis-child-${process.pid}.mjs`);
  const source = `
import { createInterface } from 'node:readline';
import { RedisSessionStore } from './src/sessions/redis_store.ts';
const [url, prefix, user, n] = process.argv.slice(2);
const store = new RedisSessionStore({ url, prefix, historyLimit: 1000 });
await store.get(user);
console.log('ready');
const rl = createInterface({ input: process.stdin });
for await (const line of rl) if (line === 'go') break;
rl.close();
process.stdin.destroy();
const results = await Promise.allSettled(Array.from({ length: Number(n) }, (_, i) => store.update(user, (cur) => ({
  state: Float32Array.of((cur?.state?.[0] ?? 0) + 1), history: [...(cur?.history ?? []), 'c' + i], model: 'm1',
}))));
console.log(JSON.stringify({ ok: results.filter((r) => r.status === 'fulfilled').length, errors: results.filter((r) => r.status === 'rejected').map((r) => String(r.reason)) }));
await store.close();
`;
  await build({
    stdin: { contents: source, resolveDir: root, loader: 'ts', sourcefile: 'redis-child.ts' },
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    outfile: out,
    logLevel: 'error',
  });
  return out;
}

/** The bit patterns of a Float32Array (NaN payloads and -0 included), or null. */
export const bits = (a: Float32Array | null): number[] | null => (a ? Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length)) : null);

/** What f throws (or returns, when it does not throw). */
export function thrown(f: () => unknown): unknown {
  try {
    return f();
  } catch (e) {
    return e;
  }
}
