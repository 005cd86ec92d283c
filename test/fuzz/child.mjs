/**
 * One fuzz worker process: runs a list of cases of one family against the library in a build
 * folder and reports each on file descriptor 3 as a JSON line ({t: 'start'|'result', ...}), so
 * that a crash or a hang can be pinned on the case that was running.
 *
 *   node test/fuzz/child.mjs --family a --seed 1 --build dist --cases 0,1,2 [--keep DIR]
 */
import { mkdirSync, mkdtempSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

import { Wrong, errText, rejected } from './common.mjs';
import { caseRng } from './prng.mjs';

const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
export const FAMILY_MODULES = { a: './gen_catalogue.mjs', b: './gen_onnx.mjs', c: './gen_api.mjs', d: './gen_cli.mjs' };

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

const family = arg('family');
const seed = arg('seed', '1');
const buildArg = arg('build', 'dist');
const build = isAbsolute(buildArg) ? buildArg : join(ROOT, buildArg);
const cases = arg('cases', '').split(',').filter(Boolean).map(Number);
const keep = arg('keep');
const verbose = process.argv.includes('--verbose');

let fd = 3;
function send(o) {
  const line = `${JSON.stringify(o)}\n`;
  try {
    writeSync(fd, line);
  } catch {
    fd = 1;
    writeSync(1, `@@fuzz ${line}`);
  }
}

let current = null;
const unhandled = [];
process.on('unhandledRejection', (e) => {
  unhandled.push(e);
});
process.on('uncaughtException', (e) => {
  send({ t: 'result', i: current, outcome: 'crash', detail: `uncaught exception: ${errText(e)}` });
  process.exit(70);
});

const mod = await import(FAMILY_MODULES[family]);
const lib = await import(pathToFileURL(join(build, 'index.js')).href);
const tmp = keep ? resolve(keep) : mkdtempSync(join(arg('tmp', tmpdir()), `${family}-`));
mkdirSync(tmp, { recursive: true });
const ctx = { lib, build, cli: join(build, 'cli.js'), root: ROOT, tmp, seed, verbose, family };
// What the running case is doing, sent ahead: a case that hangs or crashes still has a description.
let kindNow = null;
Object.defineProperty(ctx, 'kind', {
  get: () => kindNow,
  set(v) {
    kindNow = v;
    send({ t: 'kind', i: current, kind: v });
  },
});
ctx.shared = await mod.setup(ctx);
send({ t: 'ready' });

for (const i of cases) {
  current = i;
  kindNow = null;
  send({ t: 'start', i });
  const caseDir = join(tmp, `case-${i}`);
  mkdirSync(caseDir, { recursive: true });
  ctx.caseDir = caseDir;
  const t0 = performance.now();
  let r;
  try {
    r = await mod.run(ctx, caseRng(seed, family, i), i);
  } catch (e) {
    r = e instanceof Wrong ? { outcome: 'wrong', detail: e.message } : rejected(e, 'harness');
    if (verbose) console.error(e);
  }
  // Let late rejections of this case surface before it is reported.
  await new Promise((res) => setImmediate(res));
  await new Promise((res) => setTimeout(res, 0));
  if (unhandled.length) {
    const e = unhandled.splice(0);
    r = { ...r, outcome: 'untyped', detail: `unhandled rejection: ${errText(e[0])}; case: ${r.detail ?? ''}` };
  }
  send({ t: 'result', i, ms: Math.round(performance.now() - t0), ...r, kind: r.kind ?? kindNow ?? undefined });
  if (!keep) rmSync(caseDir, { recursive: true, force: true });
}
current = null;
await mod.teardown?.(ctx);
if (!keep) rmSync(tmp, { recursive: true, force: true });
send({ t: 'done' });
// Handles (worker pools, onnxruntime threads) must not keep a finished worker alive.
process.exit(0);
