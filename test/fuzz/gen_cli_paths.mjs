/**
 * Family d (gen_cli.mjs): paths and checkpoints. casePaths gives --model, --catalogue, --input or
 * --out as a directory, a FIFO, a missing path, /dev/null, /dev/zero, an empty or garbage file,
 * the wrong kind of file or an existing output; caseResume stops a `score` job (a bad line beyond
 * --max-errors, SIGKILL, SIGINT or SIGTERM), sometimes corrupts its `.progress` checkpoint as
 * bytes, and resumes it.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';

import { wrong } from './common.mjs';
import { classifyRun, fifoWriter, runCli } from './gen_cli_exec.mjs';
import { compareScoreOutput, expectedScores, readOutput, validHistory } from './gen_cli_jsonl.mjs';

export async function casePaths(ctx, rng) {
  const s = ctx.shared;
  const pair = s.small;
  const valid = join(ctx.caseDir, 'users.jsonl');
  const content = Buffer.from(`${JSON.stringify({ user: 1, history: [1, 2] })}\n${JSON.stringify({ user: 2, history: [3] })}\n`);
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
    const users = empty ? [] : [{ user: 1, history: [1, 2] }, { user: 2, history: [3] }];
    if (cmd === 'score') compareScoreOutput(readFileSync(outPath, 'utf8'), expectedScores(pair, users, 100, true), 'score');
    return { outcome: 'correct', detail: `exit 0 with ${what}` };
  } finally {
    stop?.();
  }
}

/**
 * A job stopped, then resumed (docs/pipelines.md, Resuming): stopped at a bad line beyond
 * --max-errors (exit 1; the line is then fixed), by SIGKILL mid-run, or by SIGINT/SIGTERM (exit
 * 130/143, "stopped after line L", lines up to L written), or never started (--resume on a new
 * job starts it). The checkpoint is an opaque file to the harness (its format is the CLI's own):
 * it is left alone or corrupted as bytes. Then `--resume` (again after a second SIGKILL, at
 * times) must end with the output of an uninterrupted run, or refuse the corrupted checkpoint
 * with exit 2; a finished job resumed again changes nothing; no temporary file is left behind.
 */
export async function caseResume(ctx, rng) {
  const s = ctx.shared;
  const pair = s.small;
  const how = rng.weighted([
    [4, 'bad line'],
    [4, 'SIGKILL'],
    [1, 'SIGTERM'],
    [1, 'SIGINT'],
    [1, 'fresh'],
  ]);
  const big = how.startsWith('SIG');
  const n = big ? rng.int(300, 4000) : rng.int(4, 14);
  const lines = Array.from({ length: n }, (_, i) => JSON.stringify({ user: i + 1, history: validHistory(rng, pair, 5).concat([rng.int(0, pair.vocab - 1)]) }));
  // 'bad line': nb bad lines with --max-errors nb - 1; the job stops at the last one, which is then fixed.
  const nb = how === 'bad line' ? rng.int(1, 3) : 0;
  const badAt = nb ? rng.shuffle(Array.from({ length: n - 1 }, (_, i) => i + 2)).slice(0, nb).sort((a, b) => a - b) : [];
  const maxErrors = badAt.length ? badAt.length - 1 : rng.pick([0, 0, 2]);
  const stopAt = badAt.length ? badAt[badAt.length - 1] : null;
  const fixed = stopAt ? lines[stopAt - 1] : null;
  for (const b of badAt) lines[b - 1] = rng.pick(['null', '{"user":1,"history":[]}', `{"user":1,"history":[${pair.vocab + 3}]}`, '{"user":1,"history":"x"}', '{']);
  const inPath = join(ctx.caseDir, 'users.jsonl');
  const gz = rng.bool(0.25);
  const out = join(ctx.caseDir, gz ? 'recs.jsonl.gz' : 'recs.jsonl');
  const ck = `${out}.progress`;
  const write = () => writeFileSync(inPath, `${lines.join('\n')}\n`);
  write();
  const batch = big ? rng.pick([1, 2, 4, 16, 64]) : rng.int(1, 3);
  const base = ['score', '--model', pair.model, '--catalogue', pair.catalogue, '--input', inPath, '--out', out, '--batch', String(batch), '--threads', '1', '--k', '5', '--max-errors', String(maxErrors)];
  const what = `${n} lines, batch ${batch}, --max-errors ${maxErrors}${gz ? ', .gz output' : ''}`;
  const users = (upto) =>
    lines
      .map((l, i) => ({ l, i }))
      .filter(({ l, i }) => i < upto && !badAt.slice(0, -1).includes(i + 1))
      .map(({ l }) => JSON.parse(l));
  const stopArgs = how === 'fresh' ? [...base, '--resume'] : base;
  // Some kills land in the first milliseconds of the output, before or as the first checkpoint is written.
  const kill = big ? { signal: how, afterFile: rng.bool(0.85) ? out : null, delayMs: rng.bool(0.3) ? rng.int(0, 8) : rng.int(0, 400) } : null;
  ctx.kind = `recscore score --resume, stopped by ${how === 'bad line' ? `bad lines ${badAt}` : how}${kill ? ` ${kill.delayMs} ms after ${kill.afterFile ? 'the output appears' : 'the start'}` : ''}: ${what}`;
  const r1 = await runCli(ctx, stopArgs, { kill });
  let c1;
  if (how === 'bad line') {
    c1 = classifyRun(r1);
    if (c1.outcome === 'ok') wrong(`the first run exited 0 despite bad line ${stopAt} beyond --max-errors ${maxErrors}`);
    if (c1.outcome !== 'typed') return { ...c1, detail: `first run: ${c1.detail}` };
    if (r1.code !== 1) wrong(`the first run exited ${r1.code} for bad line ${stopAt} beyond --max-errors (it must exit 1): ${c1.message}`);
    if (/line (\d+)/.exec(c1.message)?.[1] !== String(stopAt)) wrong(`the first run stopped with "${c1.message}", expected line ${stopAt}`);
    compareScoreOutput(readOutput(out), expectedScores(pair, users(stopAt - 1), 5, true), `stopped at line ${stopAt}`);
    lines[stopAt - 1] = fixed;
    write();
  } else if (how === 'fresh') {
    c1 = classifyRun(r1);
    // "--resume on a job that has not written anything starts it" (docs/pipelines.md).
    if (c1.outcome === 'typed') wrong(`--resume of a new job on valid lines exited ${r1.code}: ${c1.message}`);
    if (c1.outcome !== 'ok') return { ...c1, detail: `--resume of a new job: ${c1.detail}` };
  } else {
    const sig = { SIGINT: 130, SIGTERM: 143 }[how];
    if (r1.timedOut) return { outcome: 'hang', detail: `first run: no exit within 10 s (killed)` };
    if (r1.code === 0 || r1.signal === how) {
      // Done before the signal came, or the signal came as it was exiting.
    } else if (sig && r1.code === sig) {
      const m = /stopped after line (\d+); rerun with --resume/.exec(r1.stderr);
      if (!m) wrong(`${how}: exit ${sig} without "stopped after line L; rerun with --resume": ${r1.stderr.slice(0, 200)}`);
      compareScoreOutput(readOutput(out), expectedScores(pair, users(Number(m[1])), 5, true), `${how}: stopped after line ${m[1]}`);
    } else if (r1.signal !== 'SIGKILL') {
      const c = classifyRun(r1);
      return { ...c, outcome: c.outcome === 'typed' || c.outcome === 'ok' ? 'untyped' : c.outcome, detail: `first run (${how}): exit ${r1.code ?? r1.signal}: ${c.detail ?? ''}` };
    }
  }
  const corruption = corruptCheckpoint(rng, ck, ctx);
  ctx.kind = `${ctx.kind}; checkpoint ${corruption.what}`;
  const expected = expectedScores(pair, users(n), 5, true);
  let r2 = null;
  for (let attempt = 0; attempt < 3; attempt++) {
    // A second SIGKILL, at times, in the resumed run.
    const kill2 = big && attempt === 0 && rng.bool(0.3) ? { signal: 'SIGKILL', afterFile: null, delayMs: rng.int(100, 700) } : null;
    r2 = await runCli(ctx, [...base, '--resume'], { kill: kill2 });
    if (!(kill2 && r2.signal === 'SIGKILL')) break;
  }
  const c2 = classifyRun(r2);
  if (corruption.must === 'refuse') {
    if (c2.outcome === 'ok') wrong(`--resume accepted a checkpoint ${corruption.what} (${corruption.why})`);
    if (c2.outcome === 'typed' && r2.code !== 2) wrong(`--resume with a checkpoint ${corruption.what} exited ${r2.code} (an unreadable checkpoint exits 2): ${c2.message}`);
    return { ...c2, detail: `resume: ${c2.detail}` };
  }
  if (c2.outcome === 'typed') {
    if (corruption.must === 'resume') wrong(`--resume refused an intact checkpoint after ${how}: ${c2.message}`);
    if (r2.code !== 2) wrong(`--resume with a checkpoint ${corruption.what} exited ${r2.code} (a usable input and no bad line: an unreadable checkpoint exits 2): ${c2.message}`);
    return { ...c2, detail: `resume: ${c2.detail}` };
  }
  if (c2.outcome !== 'ok') return { ...c2, detail: `resume: ${c2.detail}` };
  const text = readOutput(out);
  compareScoreOutput(text, expected, `resumed after ${how} with checkpoint ${corruption.what}`);
  const errs = existsSync(`${out}.errors.jsonl`) ? readFileSync(`${out}.errors.jsonl`, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l).line) : [];
  if (errs.join(',') !== badAt.slice(0, -1).join(',')) wrong(`resumed after ${how}: the errors file names lines [${errs}], expected [${badAt.slice(0, -1)}]`);
  if (rng.bool(0.3)) {
    // A finished job resumed again: exit 0, nothing changed.
    const before = readFileSync(out);
    const r3 = await runCli(ctx, [...base, '--resume']);
    const c3 = classifyRun(r3);
    if (c3.outcome !== 'ok') return { ...c3, detail: `resume of a finished job: ${c3.detail}` };
    if (!readFileSync(out).equals(before)) wrong('--resume of a finished job changed its output');
  }
  const allowed = new Set(['users.jsonl', basename(out), basename(ck), `${basename(out)}.errors.jsonl`, 'stdin-content', 'fifo-content.jsonl']);
  const left = readdirSync(ctx.caseDir).filter((f) => !allowed.has(f));
  if (left.length) wrong(`files left behind after the resumed job: ${left.join(', ')} (no temporary file is ever created)`);
  return { outcome: 'correct', detail: `resumed after ${how} to ${n} lines (checkpoint ${corruption.what})` };
}

/**
 * Corrupts the checkpoint as bytes (its format is the CLI's business). `must`: 'resume' (left
 * intact), 'refuse' (an old-version JSON checkpoint, refused as unreadable per the CHANGELOG, or
 * none that can be read), or 'either' (a refusal with exit 2, or a resume that ends right).
 */
function corruptCheckpoint(rng, path, ctx) {
  if (!existsSync(path)) return { what: '(none written)', must: 'either' };
  const buf = statSync(path).isFile() ? readFileSync(path) : Buffer.alloc(0);
  const how = rng.weighted([
    [8, 'none'],
    [2, 'truncate'],
    [1, 'garbage'],
    [1, 'empty'],
    [2, 'oldJson'],
    [3, 'flip'],
    [1, 'zeroHalf'],
    [1, 'swapHalves'],
    [1, 'deep'],
    [1, 'directory'],
    [1, 'fifo'],
  ]);
  if (how === 'none') return { what: 'intact', must: 'resume' };
  if (how === 'truncate') {
    const len = rng.int(0, Math.max(0, buf.length - 1));
    writeFileSync(path, buf.subarray(0, len));
    return { what: `truncated to ${len} of ${buf.length} bytes`, must: 'either' };
  }
  if (how === 'garbage') {
    writeFileSync(path, rng.bytes(rng.int(1, 3000)));
    return { what: 'random bytes', must: 'refuse', why: 'random bytes' };
  }
  if (how === 'empty') {
    writeFileSync(path, '');
    return { what: 'empty', must: 'refuse', why: 'an empty file holds no checkpoint' };
  }
  if (how === 'oldJson') {
    const v = rng.pick([
      JSON.stringify({ nextLine: 2, inputBytes: 10, outBytes: 0, errorBytes: 0, scored: 0, errors: 0, complete: false }),
      JSON.stringify({ nextLine: 1, inputBytes: 0, outBytes: 0, errorBytes: 0, scored: 0, errors: 0, complete: true }),
      'null',
      '[]',
      '{}',
    ]);
    writeFileSync(path, v);
    return { what: `replaced by JSON ${v.slice(0, 40)}`, must: 'refuse', why: 'checkpoints of earlier versions are refused as unreadable' };
  }
  if (how === 'flip') {
    const b = Buffer.from(buf);
    const flips = rng.int(1, 3);
    for (let i = 0; i < flips && b.length > 0; i++) b[rng.int(0, b.length - 1)] ^= 1 << rng.int(0, 7);
    writeFileSync(path, b);
    return { what: `${flips} bit(s) flipped`, must: 'either' };
  }
  if (how === 'zeroHalf' || how === 'swapHalves') {
    const h = Math.floor(buf.length / 2);
    const b = how === 'zeroHalf' ? Buffer.concat(rng.bool(0.5) ? [Buffer.alloc(h), buf.subarray(h)] : [buf.subarray(0, h), Buffer.alloc(buf.length - h)]) : Buffer.concat([buf.subarray(h), buf.subarray(0, h)]);
    writeFileSync(path, b);
    return { what: how === 'zeroHalf' ? 'half zeroed' : 'halves swapped', must: 'either' };
  }
  if (how === 'deep') {
    writeFileSync(path, `${'['.repeat(1_000_000)}${']'.repeat(1_000_000)}`);
    return { what: 'nested 1M deep', must: 'refuse', why: 'not a checkpoint' };
  }
  if (how === 'directory') {
    rmSync(path);
    mkdirSync(path);
    return { what: 'a directory', must: 'refuse', why: 'a directory' };
  }
  rmSync(path);
  execFileSync('mkfifo', [path]);
  return { what: 'a FIFO', must: 'refuse', why: 'a FIFO' };
}
