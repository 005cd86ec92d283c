/**
 * Family d (gen_cli.mjs): command lines and `catalogue build`. caseArgs runs malformed or valid
 * command lines and `catalogue inspect`/`build` on hostile paths; caseBuild builds a catalogue
 * from ids, attributes and bias files that are valid or subtly not, and reopens what it built.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { wrong } from './common.mjs';
import { classifyRun, runCli } from './gen_cli_exec.mjs';

export async function caseArgs(ctx, rng) {
  const s = ctx.shared;
  const pair = s.small;
  const inPath = join(ctx.caseDir, 'users.jsonl');
  writeFileSync(inPath, '{"user":1,"history":[1]}\n');
  const out = join(ctx.caseDir, 'recs.jsonl');
  const base = ['score', '--model', pair.model, '--catalogue', pair.catalogue, '--input', inPath, '--out', out];
  const items = join(ctx.root, 'test', 'fixtures', 'items.npy');
  const x = join(ctx.caseDir, 'x.rsc');
  // [argv, exit 0 expected: true, false, or null for either]
  const [v, ok] = rng.pick([
    [[], null],
    [['--help'], true],
    [['--version'], true],
    [['nonsense'], false],
    [['score'], false],
    [['score', '--model'], false],
    [[...base, '--unknown'], false],
    [[...base, 'extra', 'positional'], false],
    [base.filter((_x, i) => i !== 2 && i !== 1), false],
    [[...base, '--k'], false],
    [[...base, '--k=3'], true],
    [[...base, '--k', '3', '--k', '4'], true],
    [['eval', '--model', pair.model], false],
    [['catalogue', 'inspect', s.files.dir], false],
    [['catalogue', 'inspect', s.files.fifo], false],
    [['catalogue', 'inspect', s.files.garbage], false],
    [['catalogue', 'inspect', '/dev/zero'], false],
    [['catalogue', 'inspect', pair.catalogue, '--json'], true],
    [['catalogue', 'build', '--vectors', s.files.garbage, '--out', x], false],
    [['catalogue', 'build', '--vectors', items, '--out', x, '--precision', 'int4'], false],
    [['catalogue', 'build', '--vectors', s.files.fifo, '--out', x], false],
    [['catalogue', 'build', '--vectors', s.files.dir, '--out', x], false],
    [['catalogue', 'build', '--vectors', items, '--ids', s.files.garbage, '--out', x], false],
    [['catalogue', 'build', '--vectors', items, '--ids', s.files.fifo, '--out', x], false],
    [['catalogue', 'build', '--vectors', items, '--attributes', s.files.garbage, '--out', x], false],
    [['catalogue', 'build', '--vectors', items, '--bias', s.files.dir, '--out', x], false],
    [['catalogue', 'build', '--vectors', items, '--out', ctx.caseDir], false],
    [['catalogue', 'build', '--vectors', items, '--out', join(ctx.caseDir, 'no', 'dir', 'x.rsc')], false],
    [['--', 'score'], false],
  ]);
  ctx.kind = `recscore ${v.map((a) => a.replace(ctx.root, '.').replace(ctx.caseDir, 'CASE').replace(ctx.tmp, 'TMP')).join(' ')}`;
  const r = await runCli(ctx, v);
  const c = classifyRun(r);
  if (c.outcome === 'typed' && ok === true) wrong(`exit 2 for a valid command: ${c.detail}`);
  if (c.outcome !== 'ok') return c;
  if (ok === false) wrong(`exit 0 for ${ctx.kind}`);
  return { outcome: 'correct', detail: 'exit 0' };
}

/** A 1-D float32 .npy file. */
function npy1d(values) {
  const header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${values.length},), }`;
  const pad = 64 - ((10 + header.length + 1) % 64);
  const h = Buffer.from(`${header}${' '.repeat(pad === 64 ? 0 : pad)}\n`, 'latin1');
  const pre = Buffer.alloc(10);
  Buffer.from('\x93NUMPY', 'latin1').copy(pre, 0);
  pre[6] = 1;
  pre[7] = 0;
  pre.writeUInt16LE(h.length, 8);
  return Buffer.concat([pre, h, Buffer.from(Float32Array.from(values).buffer)]);
}

/** `catalogue build` with ids, attributes and bias files that are valid or subtly not. */
export async function caseBuild(ctx, rng) {
  const items = join(ctx.root, 'test', 'fixtures', 'items.npy'); // 37 × 5
  const n = 37;
  const argv = ['catalogue', 'build', '--vectors', items, '--out', join(ctx.caseDir, 'out.rsc')];
  const what = [];
  let bad = false;
  let ids = null;
  if (rng.bool(0.6)) {
    const numeric = rng.bool(0.5);
    ids = Array.from({ length: n }, (_, i) => (numeric ? String(i * 3 + 1) : `sku-${i}`));
    const e = rng.pick(['none', 'none', 'duplicate', 'short', 'long', 'blank', 'crlf', 'unicode', 'huge', 'float', 'leadingZero', 'space']);
    const i = rng.int(0, n - 2);
    if (e === 'duplicate') (ids[i + 1] = ids[i]), (bad = true);
    else if (e === 'short') ids.pop(), (bad = true);
    else if (e === 'long') ids.push('extra'), (bad = true);
    else if (e === 'blank') ids[i] = '';
    else if (e === 'unicode') ids[i] = 'ü😀\u0000';
    else if (e === 'huge') ids[i] = '99999999999999999999';
    else if (e === 'float') ids[i] = '1.5';
    else if (e === 'leadingZero') ids[i] = '007';
    else if (e === 'space') ids[i] = ` ${ids[i]}`;
    const file = join(ctx.caseDir, 'ids.txt');
    writeFileSync(file, `${ids.join(e === 'crlf' ? '\r\n' : '\n')}\n`);
    argv.push('--ids', file);
    what.push(`ids ${numeric ? 'numeric' : 'strings'} ${e}`);
  }
  if (rng.bool(0.5)) {
    const attrs = Array.from({ length: n }, () => String(rng.int(0, 255)));
    const e = rng.pick(['none', 'none', 'float', 'negative', 'big', 'word', 'nan', 'short', 'long']);
    const i = rng.int(0, n - 1);
    if (e === 'float') attrs[i] = '1.5';
    else if (e === 'negative') attrs[i] = '-1';
    else if (e === 'big') attrs[i] = '4294967296';
    else if (e === 'word') attrs[i] = 'abc';
    else if (e === 'nan') attrs[i] = 'NaN';
    else if (e === 'short') attrs.pop();
    else if (e === 'long') attrs.push('1');
    if (e !== 'none') bad = true;
    const file = join(ctx.caseDir, 'attrs.txt');
    writeFileSync(file, `${attrs.join('\n')}\n`);
    argv.push('--attributes', file);
    what.push(`attributes ${e}`);
  }
  if (rng.bool(0.4)) {
    const bias = Array.from({ length: n }, () => rng.normal());
    const e = rng.pick(['none', 'none', 'nan', 'inf', 'huge', 'short']);
    if (e === 'nan') bias[rng.int(0, n - 1)] = NaN;
    else if (e === 'inf') bias[rng.int(0, n - 1)] = -Infinity;
    else if (e === 'huge') bias[rng.int(0, n - 1)] = 3e38;
    else if (e === 'short') bias.pop();
    if (e !== 'none') bad = true;
    const file = join(ctx.caseDir, 'bias.npy');
    writeFileSync(file, npy1d(bias));
    argv.push('--bias', file);
    what.push(`bias ${e}`);
  }
  if (rng.bool(0.3)) argv.push('--precision', rng.pick(['int8', 'bf16', 'f32']));
  ctx.kind = `recscore catalogue build (37 × 5) ${what.join(', ') || 'plain'}${argv.includes('--precision') ? ` ${argv[argv.length - 1]}` : ''}`;
  const r = await runCli(ctx, argv);
  const c = classifyRun(r);
  if (c.outcome === 'typed' && !bad) wrong(`refused a valid catalogue build: ${c.detail}`);
  if (c.outcome !== 'ok') return c;
  if (bad) wrong(`built a catalogue from invalid input (${what.join(', ')})`);
  const cat = await ctx.lib.Catalogue.open(join(ctx.caseDir, 'out.rsc'));
  try {
    if (cat.size !== n) wrong(`built ${cat.size} items, expected ${n}`);
    if (ids) {
      const got = Array.from({ length: n }, (_, r0) => cat.id(r0));
      if (new Set(got).size !== n) wrong('built a catalogue with duplicate ids');
      for (const id of got) if (!(typeof id === 'string' || Number.isSafeInteger(id))) wrong(`built an id ${String(id)}`);
      // Each line is its id: as a number when every line is a canonical integer, else as a string.
      got.forEach((id, r0) => {
        if (String(id) !== ids[r0] && id !== ids[r0].replace(/\r$/, '')) wrong(`row ${r0} has id ${JSON.stringify(id)}, the file says ${JSON.stringify(ids[r0])}`);
      });
    }
  } finally {
    await cat.close();
  }
  return { outcome: 'correct', detail: 'built and reopened' };
}
