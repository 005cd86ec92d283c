/**
 * Installs the package the way a service would: `npm pack` (which builds the prebuild), then the
 * tarball into fresh projects with every compiler and cmake hidden on PATH, with install scripts
 * off and on (and with pnpm when the registry has it). ESM and CommonJS consumers then encode
 * with a PyTorch-exported model and score against the bundled example catalogue; the results are
 * checked against PyTorch's outputs and a float64 brute force.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { expectTopK } from './helpers.js';

const root = new URL('..', import.meta.url).pathname;
const work = mkdtempSync(join(tmpdir(), 'recscore-consumer-'));
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const K = 10;

/** A PATH on which compilers, cmake, make and ninja exist but fail, as on a slim server image. */
function hiddenToolsPath(): string {
  const bin = join(work, 'no-compilers');
  mkdirSync(bin, { recursive: true });
  for (const tool of ['cc', 'gcc', 'g++', 'c++', 'clang', 'clang++', 'cmake', 'make', 'ninja']) {
    const f = join(bin, tool);
    writeFileSync(f, `#!/bin/sh\necho "${tool} is hidden by the consumer-install test" >&2\nexit 127\n`);
    chmodSync(f, 0o755);
  }
  return `${bin}:${process.env.PATH ?? ''}`;
}

function shellEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([key]) => !/^npm_/i.test(key)));
}

/** Packs a copy of the working tree (so this run's `prepare` and `prepack` cannot disturb dist/ and build/ under the other tests). */
function pack(): string {
  const src = join(work, 'src');
  const files = execFileSync('git', ['ls-files', '-co', '--exclude-standard', '-z'], { cwd: root, encoding: 'utf8' }).split('\0').filter(Boolean);
  for (const f of files) {
    if (!existsSync(join(root, f))) continue; // deleted in the working tree
    mkdirSync(dirname(join(src, f)), { recursive: true });
    cpSync(join(root, f), join(src, f));
  }
  symlinkSync(join(root, 'node_modules'), join(src, 'node_modules'));
  const out = execFileSync(npm, ['pack', '--json', '--pack-destination', work], {
    cwd: src,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    env: shellEnv(),
  });
  const info = JSON.parse(out.slice(out.indexOf('['))) as Array<{ filename: string; files: Array<{ path: string }> }>;
  packed = info[0].files.map((f) => f.path);
  return join(work, info[0].filename);
}

const consumerScript = (mode: 'esm' | 'cjs'): string => `
${mode === 'esm' ? "import { Catalogue, Encoder, nativeInfo } from 'recscore';" : "const { Catalogue, Encoder, nativeInfo } = require('recscore');"}
const { readFileSync } = require_('node:fs');
const { join, dirname } = require_('node:path');
async function main() {
  const [fixtureModel, fixtureJson, fallbackModel, out] = process.argv.slice(2);
  const pkg = dirname(require_.resolve('recscore/package.json'));
  const ex = join(pkg, 'models', 'example');
  const fixture = JSON.parse(readFileSync(fixtureJson, 'utf8'));
  const enc = await Encoder.load(fixtureModel);
  const encoded = Array.from(await enc.encode(fixture.histories));
  const model = await Encoder.load(join(ex, 'session_lstm.onnx'));
  const cat = await Catalogue.fromNpy(join(ex, 'items.npy'), { bias: readNpyBias(join(ex, 'bias.npy')) });
  const users = readFileSync(join(ex, 'users.jsonl'), 'utf8').trim().split('\\n').slice(0, 4).map((l) => JSON.parse(l).history);
  const vectors = await model.encode(users);
  const res = cat.topK(vectors, { k: ${K} });
  let peer = null;
  try { await Encoder.load(fallbackModel); } catch (e) { peer = { code: e.code, name: e.name, message: e.message }; }
  require_('node:fs').writeFileSync(out, JSON.stringify({
    backend: enc.backend, level: nativeInfo().bestIsa, encoded, vectors: Array.from(vectors),
    rows: Array.from(res.rows), scores: Array.from(res.scores), peer,
  }));
}
function readNpyBias(file) {
  const b = readFileSync(file);
  const headerLen = b.readUInt16LE(8);
  const body = b.subarray(10 + headerLen);
  return new Float32Array(body.buffer.slice(body.byteOffset, body.byteOffset + body.byteLength));
}
main().catch((e) => { console.error(e); process.exit(1); });
`.replace(/require_/g, mode === 'esm' ? 'requireCjs' : 'require').replace(
  /^/,
  mode === 'esm' ? "import { createRequire } from 'node:module';\nconst requireCjs = createRequire(import.meta.url);\n" : '',
);

function readNpyF32(file: string): { data: Float32Array; shape: number[] } {
  const b = readFileSync(file);
  const headerLen = b.readUInt16LE(8);
  const header = b.subarray(10, 10 + headerLen).toString('latin1');
  expect(header).toMatch(/'descr': '<f4'/);
  const shape = (/'shape': \(([^)]*)\)/.exec(header)?.[1] ?? '').split(',').filter((s) => s.trim()).map(Number);
  const body = b.subarray(10 + headerLen);
  return { data: new Float32Array(body.buffer.slice(body.byteOffset, body.byteOffset + body.byteLength)), shape };
}

interface Outcome {
  backend: string;
  level: string;
  encoded: number[];
  vectors: number[];
  rows: number[];
  scores: number[];
  peer: { code: string; name: string; message: string } | null;
}

let tarball = '';
let packed: string[] = [];
const PATH = hiddenToolsPath();
/**
 * The environment of a fresh shell: under `npm test`, npm's own npm_* variables (local_prefix
 * among them, which would point the consumer's npm at this repository) must not leak in.
 */
const consumerEnv = (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({
  ...shellEnv(),
  PATH,
  RECSCORE_NATIVE: '',
  ...extra,
});

/** Runs the ESM and CJS consumers in `project` and checks them against independent references. */
function checkConsumer(project: string): void {
  // A node_modules in a folder above the project (e.g. /tmp/node_modules) would leak packages in.
  const leaked = spawnSync(process.execPath, ['-e', "console.log(require.resolve('onnxruntime-node'))"], { cwd: project, encoding: 'utf8' });
  expect(leaked.status, `onnxruntime-node resolves from ${project} through a folder above it: ${leaked.stdout.trim()}`).not.toBe(0);
  const fixtureModel = join(root, 'models', 'fixtures', 'lstm2_bf_ylast_sigmoid.onnx');
  const fixtureJson = join(root, 'models', 'fixtures', 'lstm2_bf_ylast_sigmoid.json');
  const fallback = join(root, 'models', 'fixtures', 'lstm_layernorm.onnx');
  const fixture = JSON.parse(readFileSync(fixtureJson, 'utf8')) as { outputs: number[][] };
  const items = readNpyF32(join(root, 'models', 'example', 'items.npy'));
  const bias = readNpyF32(join(root, 'models', 'example', 'bias.npy')).data;
  for (const mode of ['esm', 'cjs'] as const) {
    const file = join(project, mode === 'esm' ? 'consumer.mjs' : 'consumer.cjs');
    writeFileSync(file, consumerScript(mode));
    const out = join(project, `${mode}.json`);
    const r = spawnSync(process.execPath, [file, fixtureModel, fixtureJson, fallback, out], {
      cwd: project,
      encoding: 'utf8',
      env: consumerEnv(),
    });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const o = JSON.parse(readFileSync(out, 'utf8')) as Outcome;
    expect(o.backend).toBe('native');
    // The encoder against PyTorch's own outputs.
    const want = fixture.outputs.flat();
    expect(o.encoded.length).toBe(want.length);
    o.encoded.forEach((v, i) => expect(Math.abs(v - want[i])).toBeLessThan(2e-5));
    // The top-k against a float64 brute force over the example catalogue.
    const res = { k: K, rows: Int32Array.from(o.rows), scores: Float32Array.from(o.scores) };
    expectTopK(res, { items: items.data, dim: items.shape[1], bias }, Float32Array.from(o.vectors), K);
    // Without onnxruntime-node, a model that needs it says what to install and why.
    expect(o.peer?.code).toBe('ERR_PEER_MISSING');
    expect(o.peer?.name).toBe('PeerMissingError');
    expect(o.peer?.message).toMatch(/the native encoder cannot run this model: op ReduceMean at node \/norm\/ReduceMean/);
    expect(o.peer?.message).toMatch(/npm install onnxruntime-node/);
  }
  expect(existsSync(join(project, 'node_modules', 'onnxruntime-node'))).toBe(false);
  // No build ran: the prebuild served (the compilers were hidden anyway).
  expect(existsSync(join(project, 'node_modules', 'recscore', 'build'))).toBe(false);
}

function newProject(name: string, extra: object = {}): string {
  const dir = join(work, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: `consumer-${name}`, version: '1.0.0', private: true, ...extra }));
  return dir;
}

describe('installing the packed package as a dependency', { timeout: 600_000 }, () => {
  beforeAll(() => {
    tarball = pack();
  }, 600_000);
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it('ships the prebuild, the sources to build from, and nothing of the tests or benchmarks', () => {
    expect(packed).toContain('prebuilds/linux-x64/recscore.node');
    expect(packed).toContain('CMakeLists.txt');
    expect(packed).toContain('native/core/gemm.cc');
    expect(packed).toContain('LICENSE');
    expect(packed).toContain('CHANGELOG.md');
    expect(packed).toContain('models/example/session_lstm.onnx');
    expect(packed.filter((f) => /^(bench|test|models\/fixtures|native\/core\/tests|src)\//.test(f))).toEqual([]);
  });

  // npm 11 runs a dependency's install script only when the project's allowScripts lists it.
  for (const scripts of ['off', 'on'] as const) {
    it(`npm install with install scripts ${scripts}, no compiler: ESM and CJS score exactly`, () => {
      const project = newProject(`npm-scripts-${scripts}`, scripts === 'on' ? { allowScripts: { recscore: true } } : {});
      const flags = scripts === 'off' ? ['--ignore-scripts'] : ['--foreground-scripts'];
      const r = spawnSync(npm, ['install', tarball, ...flags, '--no-audit', '--no-fund', '--prefer-offline'], {
        cwd: project,
        encoding: 'utf8',
        env: consumerEnv(),
      });
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout + r.stderr).not.toMatch(/building the native addon from source/);
      // With scripts on, recscore's install script ran (and found the prebuild loads: no build).
      if (scripts === 'on') expect(r.stdout).toMatch(/> recscore@[\d.]+ install\n> node scripts\/install\.mjs/);
      checkConsumer(project);
      if (scripts === 'on') {
        // RECSCORE_CUDA=ON always builds from source, prebuild or not: here it must try and fail.
        const cuda = spawnSync(process.execPath, [join(project, 'node_modules', 'recscore', 'scripts', 'install.mjs')], {
          cwd: project,
          encoding: 'utf8',
          env: consumerEnv({ RECSCORE_CUDA: 'ON' }),
        });
        expect(cuda.status).toBe(1);
        expect(cuda.stderr).toMatch(/building the native addon from source \(RECSCORE_CUDA=ON\)/);
        expect(cuda.stderr).toMatch(/needs cmake >= 3\.15 and a C\+\+17 compiler/);
      }
    });
  }

  it('pnpm add, no compiler: ESM and CJS score exactly', (ctx) => {
    const probe = spawnSync('npx', ['--yes', 'pnpm@9', '--version'], { encoding: 'utf8', cwd: work, env: consumerEnv() });
    if (probe.status !== 0) {
      console.warn(`skipped: pnpm@9 is not available from the npm registry here (${(probe.stderr || '').trim().split('\n').pop()})`);
      ctx.skip();
      return;
    }
    const project = newProject('pnpm');
    const r = spawnSync('npx', ['--yes', 'pnpm@9', 'add', tarball, '--prefer-offline'], {
      cwd: project,
      encoding: 'utf8',
      env: consumerEnv(),
    });
    expect(r.status, r.stderr + r.stdout).toBe(0);
    checkConsumer(project);
    expect(readdirSync(join(project, 'node_modules', '.pnpm')).some((d) => d.startsWith('onnxruntime-node'))).toBe(false);
  });
});
