#!/usr/bin/env node
// `install`: does nothing when a prebuilt addon for this platform loads (the common case, and
// the package works the same when install scripts do not run at all); builds from source with
// cmake-js otherwise, or always when RECSCORE_CUDA=ON or `--build-from-source` is given. In a
// clone of the repository it builds the addon and the TypeScript (dist/), so `npm install` and
// `npm ci` leave a working checkout without a `prepare` script that consumers would inherit.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const env = process.env;
const truthy = (v) => v !== undefined && v !== '' && v !== '0' && v.toLowerCase() !== 'false' && v.toLowerCase() !== 'off';
const cuda = truthy(env.RECSCORE_CUDA);
// A clone of the repository (it has the C++ tests, which the package does not ship) always builds.
const clone = existsSync(join(root, 'native', 'core', 'tests'));
const fromSource =
  cuda ||
  clone ||
  process.argv.includes('--build-from-source') ||
  truthy(env.npm_config_build_from_source) ||
  truthy(env.RECSCORE_BUILD_FROM_SOURCE);
const prebuild = join(root, 'prebuilds', `${process.platform}-${process.arch}`, 'recscore.node');

function prebuildLoads() {
  if (!existsSync(prebuild)) return 'no prebuild for ' + `${process.platform}-${process.arch}`;
  // Load it in a child: a binary for a newer glibc must not take this process down.
  const r = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(prebuild)})`], { encoding: 'utf8' });
  return r.status === 0 ? null : `the prebuild does not load here: ${(r.stderr || '').trim().split('\n').find((l) => /Error/.test(l)) ?? 'unknown error'}`;
}

const why = cuda ? 'RECSCORE_CUDA=ON' : clone ? 'a clone of the repository' : fromSource ? 'a build from source was asked for' : prebuildLoads();
if (why === null) process.exit(0);
if (!clone) console.error(`recscore: building the native addon from source (${why})`);
const cmakeJs = createRequire(join(root, 'package.json')).resolve('cmake-js/bin/cmake-js');
const args = [cmakeJs, 'compile', '--log-level', 'warn'];
if (cuda) args.push('--CDRECSCORE_CUDA=ON');
try {
  execFileSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
  if (clone) execFileSync(process.execPath, [createRequire(join(root, 'package.json')).resolve('tsup/dist/cli-default.js')], { cwd: root, stdio: 'inherit' });
} catch {
  console.error(
    'recscore: the build from source failed. It needs cmake >= 3.15 and a C++17 compiler (g++ or clang++); ' +
      `install them and run: node ${join(root, 'scripts', 'install.mjs')} --build-from-source`,
  );
  process.exit(1);
}
