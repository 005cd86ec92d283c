/**
 * CPU levels: what nativeInfo() reports against /proc/cpuinfo (an independent reading of the
 * CPU), RECSCORE_MAX_LEVEL, and the arithmetic contract seen from the API: every level gives the
 * same top-k rows and score bits, and the same encoder outputs.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';

import { describe, expect, it } from 'vitest';

import { Catalogue, Encoder, nativeInfo } from '../src/index.js';
import { type Level, allLevels } from '../src/native/addon.js';
import { randomMatrix } from './helpers.js';

const root = new URL('..', import.meta.url).pathname;
const flags = existsSync('/proc/cpuinfo')
  ? new Set((/^flags\s*:\s*(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? '').split(/\s+/))
  : null;

describe('CPU levels', () => {
  it('the TS Level type names exactly the levels native code defines, in order', () => {
    // A compile-time mirror of native/core/platform/levels.h: a level added there must be added
    // to the Level type too (this list is the type's members, spelled once in this test).
    const typed: Level[] = ['scalar', 'avx2', 'avx512'];
    expect(allLevels()).toEqual(typed);
  });

  it('nativeInfo() reports the levels and features /proc/cpuinfo shows', (ctx) => {
    if (!flags || process.arch !== 'x64') {
      console.warn('skipped: needs an x86-64 Linux /proc/cpuinfo');
      ctx.skip();
      return;
    }
    const info = nativeInfo();
    const want: string[] = ['scalar'];
    if (flags.has('avx2') && flags.has('fma')) want.push('avx2');
    if (want.includes('avx2') && ['avx512f', 'avx512bw', 'avx512vl', 'avx512dq'].every((f) => flags.has(f))) want.push('avx512');
    expect(info.levels).toEqual(want);
    // The default is the highest level, unless this process runs with RECSCORE_MAX_LEVEL set.
    const cap = want.indexOf(process.env.RECSCORE_MAX_LEVEL ?? '');
    expect(info.level).toBe(want[cap >= 0 ? cap : want.length - 1]);
    expect(info.features.avx512vnni).toBe(want.includes('avx512') && flags.has('avx512_vnni'));
    expect(info.features.bf16).toBe(want.includes('avx512') && flags.has('avx512_bf16'));
    expect(info.features.vnni).toBe(info.features.avx512vnni || (want.includes('avx2') && flags.has('avx_vnni')));
    expect(info.isas).toEqual(info.levels);
    expect(info.bestIsa).toBe(info.level);
  });

  it('RECSCORE_MAX_LEVEL caps the default level; a name that is no level is ignored with a warning', () => {
    const run = (value: string) =>
      execFileSync(
        process.execPath,
        ['-e', "const { nativeInfo } = require('./dist/index.cjs'); const i = nativeInfo(); console.log(JSON.stringify([i.level, i.levels]))"],
        { cwd: root, env: { ...process.env, RECSCORE_MAX_LEVEL: value }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
      );
    const levels = nativeInfo().levels;
    expect(JSON.parse(run('scalar'))).toEqual(['scalar', levels]);
    if (levels.includes('avx2')) expect(JSON.parse(run('avx2'))).toEqual(['avx2', levels]);
    const bad = spawnSync(
      process.execPath,
      ['-e', "const { nativeInfo } = require('./dist/index.cjs'); console.log(JSON.stringify(nativeInfo().level))"],
      { cwd: root, env: { ...process.env, RECSCORE_MAX_LEVEL: 'sse9' }, encoding: 'utf8' },
    );
    expect(JSON.parse(bad.stdout)).toBe(levels[levels.length - 1]);
    expect(bad.stderr).toContain('RECSCORE_MAX_LEVEL=sse9 names no level (scalar, avx2, avx512); it is ignored');
  });

  it('every level gives the same top-k rows and score bits, on 1 and 2 threads', () => {
    const d = 67;
    const n = 3001;
    const items = randomMatrix(n, d, 5);
    const bias = randomMatrix(n, 1, 6);
    const c = Catalogue.fromVectors(items, { dim: d, bias });
    for (const b of [1, 3, 37]) {
      const users = randomMatrix(b, d, 7 + b);
      const ref = c.topK(users, { k: 25, isa: 'scalar', threads: 1 });
      for (const isa of nativeInfo().levels) {
        for (const threads of [1, 2]) {
          const r = c.topK(users, { k: 25, isa, threads });
          expect(Array.from(r.rows)).toEqual(Array.from(ref.rows));
          expect(new Uint32Array(r.scores.buffer)).toEqual(new Uint32Array(ref.scores.buffer));
        }
      }
    }
  });

  it('every level gives the same encoder outputs, bit for bit', async () => {
    const histories = [[1, 2, 3], [4], [], [5, 6, 7, 8, 9, 10, 11]];
    let ref: Uint32Array | null = null;
    for (const isa of nativeInfo().levels) {
      const e = await Encoder.load(`${root}models/fixtures/lstm2_bf_ylast_sigmoid.onnx`, { isa, threads: 1 });
      const bits = new Uint32Array((await e.encode(histories)).buffer);
      if (ref) expect(bits).toEqual(ref);
      ref = bits;
      await e.close();
    }
  });
});
