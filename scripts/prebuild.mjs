#!/usr/bin/env node
// `prepack`: builds the addon for this platform into prebuilds/<platform>-<arch>/recscore.node,
// the place the loader (src/native/addon.ts) looks after a local build. One binary serves every Node
// >= 20 (Node-API 8). libstdc++ is linked statically, so only glibc (and libgcc_s, which comes
// with it) is needed; the glibc floor is read off the binary's symbol versions and written beside
// it, and the build fails if it is above GLIBC_FLOOR (the one the README promises).
//
// Adding linux-arm64: run this script on an arm64 machine (or with CXX=aarch64-linux-gnu-g++ and
// a cross cmake toolchain file, see README "Install"), then pack: every folder under prebuilds/
// ships.
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const GLIBC_FLOOR = [2, 34];
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const target = `${process.platform}-${process.arch}`;
const out = join(root, 'build-prebuild');
const cmakeJs = join(root, 'node_modules', 'cmake-js', 'bin', 'cmake-js');
const t0 = Date.now();
// dist/ first: the package ships it.
execFileSync(process.execPath, [join(root, 'node_modules', 'tsup', 'dist', 'cli-default.js')], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
execFileSync(
  process.execPath,
  [cmakeJs, 'compile', '--log-level', 'warn', '-O', out, '--CDRECSCORE_STATIC_RUNTIME=ON'],
  { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] },
);
const built = join(out, 'Release', 'recscore.node');
const dir = join(root, 'prebuilds', target);
rmSync(dir, { recursive: true, force: true });
mkdirSync(dir, { recursive: true });
copyFileSync(built, join(dir, 'recscore.node'));

// The newest GLIBC_x.y symbol version the binary needs is the oldest glibc it runs on.
let glibc = null;
if (process.platform === 'linux') {
  const bytes = readFileSync(built).toString('latin1');
  const versions = [...bytes.matchAll(/GLIBC_(\d+)\.(\d+)/g)].map((m) => [Number(m[1]), Number(m[2])]);
  versions.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  if (versions.length > 0) glibc = versions[versions.length - 1].join('.');
  if (/libstdc\+\+\.so/.test(bytes)) throw new Error(`${built} still needs libstdc++.so: the static link failed`);
  const top = versions[versions.length - 1];
  if (top && (top[0] > GLIBC_FLOOR[0] || (top[0] === GLIBC_FLOOR[0] && top[1] > GLIBC_FLOOR[1]))) {
    throw new Error(`${built} needs glibc ${glibc}, above the promised ${GLIBC_FLOOR.join('.')}: see native/binding/glibc_compat.cc`);
  }
}
writeFileSync(join(dir, 'recscore.json'), `${JSON.stringify({ target, napi: 8, glibc }, null, 2)}\n`);
console.error(`prebuild: ${join('prebuilds', target, 'recscore.node')} (glibc >= ${glibc}) in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
