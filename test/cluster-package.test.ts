/**
 * The `recscore/cluster` subpath as published (dist/cluster.js and dist/cluster.cjs, built by
 * tsup): both formats export the same API, and without bullmq installed the first call that
 * needs it throws a PeerMissingError naming bullmq and ioredis (loading the module does not).
 */
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { root } from './pipeline-helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'recscore-cluster-pkg-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const API = ['ARITHMETIC_CONTRACT', 'ChunkDataError', 'ClusterConfigError', 'JobRefusedError', 'PeerMissingError', 'jobStatus', 'startWorker', 'submitJob', 'waitForJob'];

describe('recscore/cluster', () => {
  it('is exported for import and require, with the same API', async () => {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { exports: Record<string, { import: { default: string }; require: { default: string } }>; peerDependenciesMeta: Record<string, { optional: boolean }> };
    expect(pkg.peerDependenciesMeta.bullmq.optional).toBe(true);
    const sub = pkg.exports['./cluster'];
    const esm = (await import(join(root, sub.import.default))) as Record<string, unknown>;
    const cjs = createRequire(import.meta.url)(join(root, sub.require.default)) as Record<string, unknown>;
    for (const mod of [esm, cjs]) {
      for (const name of API) expect(mod[name], name).toBeDefined();
      expect(mod.ARITHMETIC_CONTRACT).toBe(1);
    }
  });

  it('without bullmq: PeerMissingError naming bullmq and ioredis, from ESM and CJS', () => {
    // A copy of dist with every installed package but bullmq.
    cpSync(join(root, 'dist'), join(dir, 'dist'), { recursive: true });
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'recscore', type: 'module' }));
    mkdirSync(join(dir, 'node_modules'));
    for (const name of readdirSync(join(root, 'node_modules'))) {
      if (name !== 'bullmq' && name !== '.bin') symlinkSync(join(root, 'node_modules', name), join(dir, 'node_modules', name));
    }
    const body = `.startWorker({ redis: 'redis://127.0.0.1:1', dataRoots: ['${dir}'] }).then(() => console.log('started?'), (e) => console.log(JSON.stringify({ name: e.name, code: e.code, peer: e.peer, message: e.message })))`;
    for (const script of [`import('./dist/cluster.js').then((m) => m${body})`, `require('./dist/cluster.cjs')${body}`]) {
      const r = spawnSync(process.execPath, [script.startsWith('require') ? '--input-type=commonjs' : '--input-type=module', '-e', script], { cwd: dir, encoding: 'utf8', timeout: 30_000 });
      expect(r.status, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout)).toEqual({
        name: 'PeerMissingError',
        code: 'ERR_PEER_MISSING',
        peer: 'bullmq, ioredis',
        message: 'recscore cluster needs the packages bullmq and ioredis: npm install bullmq ioredis',
      });
    }
  });
});
