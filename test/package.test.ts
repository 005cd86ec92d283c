import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { VERSION } from '../src/index.js';

const root = new URL('..', import.meta.url).pathname;
const node = (args: string[], cwd = root, env: NodeJS.ProcessEnv = process.env): string =>
  execFileSync(process.execPath, args, { cwd, encoding: 'utf8', env });

describe('the package', () => {
  it('works through ESM import', () => {
    const out = node([
      '--input-type=module',
      '-e',
      "import { Catalogue, nativeInfo } from 'recscore'; const c = Catalogue.fromVectors(new Float32Array([1,0, 0,1, 1,1]), { dim: 2 }); const r = c.topK(new Float32Array([1, 0.5]), { k: 2 }); console.log(JSON.stringify([Array.from(r.rows), nativeInfo().isas.includes('scalar')]));",
    ]);
    expect(JSON.parse(out)).toEqual([[2, 0], true]);
  });

  it('loads and runs an encoder through ESM import (CommonJS dependencies interoperate)', () => {
    const out = node([
      '--input-type=module',
      '-e',
      "import { Encoder } from 'recscore'; for (const backend of ['native', 'onnxruntime']) { const e = await Encoder.load('models/fixtures/lstm1_bf_ylast_tanh.onnx', { backend }); const v = await e.encode([[1, 2, 3]]); console.log(e.backend, v.length); }",
    ]);
    expect(out.trim().split('\n')).toEqual(['native 6', 'onnxruntime 6']);
  });

  it('works through CommonJS require', () => {
    const out = node([
      '--input-type=commonjs',
      '-e',
      "const { Catalogue, InvalidArgumentError } = require('recscore'); const c = Catalogue.fromVectors(new Float32Array([1,0, 0,1, 1,1]), { dim: 2 }); let code; try { c.topK(new Float32Array(2), { k: 0 }); } catch (e) { code = e instanceof InvalidArgumentError && e instanceof TypeError && e.code; } console.log(JSON.stringify([Array.from(c.topK(new Float32Array([0, 1]), { k: 1 }).rows), code]));",
    ]);
    expect(JSON.parse(out)).toEqual([[1], 'ERR_RECSCORE_INVALID_ARGUMENT']);
  });

  it('ships type declarations for both module systems', () => {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
      exports: { '.': { import: { types: string }; require: { types: string } } };
    };
    for (const t of [pkg.exports['.'].import.types, pkg.exports['.'].require.types]) {
      expect(readFileSync(join(root, t), 'utf8')).toMatch(/declare class Catalogue/);
    }
  });

  it('VERSION matches package.json', () => {
    expect(VERSION).toBe((JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version);
  });

  it('without a built addon, the loader lists every place it looked and how to build it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'recscore-noaddon-'));
    try {
      cpSync(join(root, 'dist'), join(dir, 'dist'), { recursive: true });
      writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'recscore', main: 'dist/index.cjs' }));
      symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'));
      const out = node(
        [
          '-e',
          "try { require('./dist/index.cjs').nativeInfo(); console.log('loaded?'); } catch (e) { console.log(JSON.stringify({ name: e.name, code: e.code, message: e.message, tried: e.tried })); }",
        ],
        dir,
        { ...process.env, RECSCORE_NATIVE: '' },
      );
      const err = JSON.parse(out) as { name: string; code: string; message: string; tried: string[] };
      expect(err.name).toBe('NativeLoadError');
      expect(err.code).toBe('ERR_RECSCORE_NATIVE_LOAD');
      expect(err.tried).toEqual([
        join(dir, 'build', 'Release', 'recscore.node'),
        join(dir, 'build', 'Debug', 'recscore.node'),
        join(dir, 'prebuilds', `${process.platform}-${process.arch}`, 'recscore.node'),
      ]);
      for (const p of err.tried) expect(err.message).toContain(`${p} (not found)`);
      expect(err.message).toMatch(/scripts\/install\.mjs --build-from-source/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a prebuild that cannot load says why (its glibc floor against this system) and how to build', () => {
    const dir = mkdtempSync(join(tmpdir(), 'recscore-badprebuild-'));
    try {
      cpSync(join(root, 'dist'), join(dir, 'dist'), { recursive: true });
      writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'recscore', main: 'dist/index.cjs' }));
      symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'));
      const pre = join(dir, 'prebuilds', `${process.platform}-${process.arch}`);
      mkdirSync(pre, { recursive: true });
      writeFileSync(join(pre, 'recscore.node'), 'not an ELF file');
      writeFileSync(join(pre, 'recscore.json'), JSON.stringify({ glibc: '9.99' }));
      const out = node(
        ['-e', "try { require('./dist/index.cjs').nativeInfo(); } catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); }"],
        dir,
        { ...process.env, RECSCORE_NATIVE: '' },
      );
      const err = JSON.parse(out) as { code: string; message: string };
      expect(err.code).toBe('ERR_RECSCORE_NATIVE_LOAD');
      const glibc = (process.report.getReport() as { header: { glibcVersionRuntime?: string } }).header.glibcVersionRuntime;
      expect(err.message).toContain(`${join(pre, 'recscore.node')} (failed to load: `);
      expect(err.message).toContain(`This prebuild needs glibc >= 9.99; this system has ${glibc}.`);
      expect(err.message).toContain(`${join(dir, 'scripts', 'install.mjs')} --build-from-source`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
