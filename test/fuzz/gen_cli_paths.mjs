/**
 * Family d (gen_cli.mjs): paths and checkpoints. casePaths gives --model, --catalogue, --input or
 * --out as a directory, a FIFO, a missing path, /dev/null, /dev/zero, an empty or garbage file,
 * the wrong kind of file or an existing output; caseResume stops a `score` job at a bad line,
 * corrupts its `.progress` checkpoint and resumes it.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { wrong } from './common.mjs';
import { classifyRun, fifoWriter, runCli } from './gen_cli_exec.mjs';
import { compareScoreOutput, expectedScores, validHistory } from './gen_cli_jsonl.mjs';

export async function casePaths(ctx, rng) {
  const s = ctx.shared;
  const pair = s.small;
  const valid = join(ctx.caseDir, 'users.jsonl');
  const content = Buffer.from(`${JSON.stringify({ user: 1, history: [1, 2] })}\n${JSON.stringify({ user: 2, history: [] })}\n`);
  writeFileSync(valid, content);
  const out = join(ctx.caseDir, 'recs.jsonl');
  const pick = (role) => {
    // A FIFO with no writer is refused for the model and the catalogue; --input is a stream,
    // where waiting for a writer is right (the FIFO-with-a-writer case checks that it works).
    const v = rng.pick(['dir', ...(role === 'input' ? [] : ['fifo']), 'missing', 'devnull', 'devzero', 'garbage', 'empty', 'swapped', 'relative', 'proc']);
    return {
      v,
      path: {
        dir: s.files.dir,
        fifo: s.files.fifo,
        missing: join(ctx.caseDir, 'nope', 'missing'),
        devnull: '/dev/null',
        devzero: '/dev/zero',
        garbage: s.files.garbage,
        empty: s.files.empty,
        swapped: role === 'model' ? pair.catalogue : role === 'catalogue' ? pair.model : pair.model,
        relative: 'no-such-file',
        proc: '/proc/self/status',
      }[v],
    };
  };
  const cmd = rng.bool(0.75) ? 'score' : 'eval';
  const role = rng.pick(cmd === 'score' ? ['model', 'catalogue', 'input', 'out', 'inputFifoWriter', 'outExists', 'outDir'] : ['model', 'catalogue', 'input', 'inputFifoWriter']);
  let inputKind = 'valid';
  let model = pair.model;
  let catalogue = pair.catalogue;
  let input = valid;
  let outPath = out;
  let what;
  let stop = null;
  if (role === 'model' || role === 'catalogue' || role === 'input') {
    const p = pick(role);
    what = `--${role} ${p.v}`;
    if (role === 'model') model = p.path;
    else if (role === 'catalogue') catalogue = p.path;
    else {
      input = p.path;
      inputKind = p.v;
    }
  } else if (role === 'out') {
    const v = rng.pick(['missingDir', 'dir', 'fifo', 'devnull', 'input']);
    what = `--out ${v}`;
    outPath = { missingDir: join(ctx.caseDir, 'no', 'such', 'out.jsonl'), dir: join(ctx.caseDir), fifo: join(ctx.caseDir, 'out.fifo'), devnull: '/dev/null', input: valid }[v];
    if (v === 'fifo') execFileSync('mkfifo', [outPath]);
    if (v === 'devnull') outPath = join(ctx.caseDir, 'null-link');
    if (v === 'devnull') execFileSync('ln', ['-s', '/dev/null', outPath]);
  } else if (role === 'inputFifoWriter') {
    input = join(ctx.caseDir, 'in.fifo');
    execFileSync('mkfifo', [input]);
    stop = fifoWriter(ctx, input, cmd === 'score' ? content : Buffer.from('{"history":[1,2],"next":3}\n'));
    what = '--input FIFO with a writer';
  } else if (role === 'outExists') {
    writeFileSync(out, 'old\n');
    what = '--out exists';
  } else {
    what = '--out is a directory';
    outPath = ctx.caseDir;
  }
  if (cmd === 'eval' && input === valid) writeFileSync(valid, '{"history":[1,2],"next":3}\n');
  const argv = cmd === 'score' ? ['score', '--model', model, '--catalogue', catalogue, '--input', input, '--out', outPath, '--threads', '1'] : ['eval', '--model', model, '--catalogue', catalogue, '--input', input, '--threads', '1', '--json'];
  ctx.kind = `recscore ${cmd} ${what}`;
  try {
    const r = await runCli(ctx, argv);
    const c = classifyRun(r);
    if (c.outcome !== 'ok') return c;
    // Exit 0 is right for a FIFO with a writer, and for empty streams (an empty file, /dev/null).
    const empty = role === 'input' && (inputKind === 'empty' || inputKind === 'devnull');
    if (!(role === 'inputFifoWriter' || empty)) wrong(`${cmd} exited 0 with ${what}`);
    const users = empty ? [] : [{ user: 1, history: [1, 2] }, { user: 2, history: [] }];
    if (cmd === 'score') compareScoreOutput(readFileSync(outPath, 'utf8'), expectedScores(pair, users, 100, true), 'score');
    return { outcome: 'correct', detail: `exit 0 with ${what}` };
  } finally {
    stop?.();
  }
}

export async function caseResume(ctx, rng) {
  const s = ctx.shared;
  const pair = s.small;
  const n = rng.int(4, 14);
  const badAt = rng.int(2, n);
  const lines = Array.from({ length: n }, (_, i) => JSON.stringify({ user: i + 1, history: validHistory(rng, pair, 5) }));
  const good = lines[badAt - 1];
  lines[badAt - 1] = 'null';
  const inPath = join(ctx.caseDir, 'users.jsonl');
  const out = join(ctx.caseDir, 'recs.jsonl');
  writeFileSync(inPath, `${lines.join('\n')}\n`);
  const base = ['score', '--model', pair.model, '--catalogue', pair.catalogue, '--input', inPath, '--out', out, '--batch', String(rng.int(1, 3)), '--threads', '1', '--k', '5'];
  ctx.kind = `recscore score --resume: ${n} lines, line ${badAt} bad first`;
  const r1 = await runCli(ctx, base);
  const c1 = classifyRun(r1);
  if (c1.outcome !== 'typed') {
    if (c1.outcome === 'ok') wrong(`the first run exited 0 despite line ${badAt} = null and --max-errors 0`);
    return { ...c1, detail: `first run: ${c1.detail}` };
  }
  const ck = `${out}.progress`;
  const corruption = corruptCheckpoint(rng, ck, ctx);
  lines[badAt - 1] = good;
  writeFileSync(inPath, `${lines.join('\n')}\n`);
  ctx.kind = `recscore score --resume: ${n} lines, line ${badAt} fixed; checkpoint ${corruption}`;
  const r2 = await runCli(ctx, [...base, '--resume']);
  const c2 = classifyRun(r2);
  if (c2.outcome !== 'ok') return { ...c2, detail: `resume: ${c2.detail}` };
  const users = lines.map((l) => JSON.parse(l));
  compareScoreOutput(readFileSync(out, 'utf8'), expectedScores(pair, users, 5, true), `resume with checkpoint ${corruption}`);
  return { outcome: 'correct', detail: `resumed to ${n} users` };
}

function corruptCheckpoint(rng, path, ctx) {
  if (!existsSync(path)) return '(none written)';
  const text = readFileSync(path, 'utf8');
  const how = rng.weighted([
    [2, 'none'],
    [2, 'truncate'],
    [1, 'garbage'],
    [1, 'empty'],
    [2, 'notObject'],
    [6, 'field'],
    [1, 'deep'],
    [1, 'utf8'],
    [1, 'directory'],
    [1, 'fifo'],
  ]);
  if (how === 'none') return 'intact';
  if (how === 'truncate') {
    const len = rng.int(0, text.length - 1);
    writeFileSync(path, text.slice(0, len));
    return `truncated to ${len} chars`;
  }
  if (how === 'garbage') {
    writeFileSync(path, rng.bytes(rng.int(1, 300)));
    return 'random bytes';
  }
  if (how === 'empty') {
    writeFileSync(path, '');
    return 'empty';
  }
  if (how === 'notObject') {
    const v = rng.pick(['null', '[]', '1', '"x"', 'true', '[{"nextLine":1}]']);
    writeFileSync(path, v);
    return v;
  }
  if (how === 'deep') {
    writeFileSync(path, `${'['.repeat(1_000_000)}${']'.repeat(1_000_000)}`);
    return 'nested 1M deep';
  }
  if (how === 'utf8') {
    writeFileSync(path, Buffer.concat([Buffer.from(text.slice(0, 10)), Buffer.from([0xff, 0xfe]), Buffer.from(text.slice(10))]));
    return 'invalid UTF-8';
  }
  if (how === 'directory') {
    rmSync(path);
    mkdirSync(path);
    return 'a directory';
  }
  if (how === 'fifo') {
    rmSync(path);
    execFileSync('mkfifo', [path]);
    return 'a FIFO';
  }
  const ck = JSON.parse(text);
  const field = rng.pick(['nextLine', 'inputBytes', 'outBytes', 'errorBytes', 'scored', 'errors', 'complete', 'k', 'shard', 'identity', 'excludeHistory', 'inputTail', 'input', 'drop']);
  if (field === 'drop') {
    const k = rng.pick(Object.keys(ck));
    delete ck[k];
    writeFileSync(path, JSON.stringify(ck));
    return `without ${k}`;
  }
  // Values a reader can tell are wrong (a plausible value, like complete: true or outBytes: 0,
  // is a different checkpoint, not a corrupt one).
  const v = rng.pick(field === 'complete' || field === 'excludeHistory' ? ['x', 1, null, [], {}] : [-1, 1.5, 1e20, 'x', null, true, [], {}, 2 ** 53, NaN]);
  ck[field] = v;
  writeFileSync(path, JSON.stringify(ck));
  return `${field} = ${JSON.stringify(v)}`;
}
