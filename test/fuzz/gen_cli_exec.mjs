/**
 * Family d (gen_cli.mjs): running the CLI. runCli starts `node <build>/cli.js` in its own process
 * group (stdin, when given, through a shell pipe) and kills the group after CLI_TIMEOUT_MS (or,
 * with `kill`, sends a signal mid-run: after a file appears, or after a delay);
 * fifoWriter feeds a FIFO from a helper process; classifyRun sorts a run into exit 0, a typed
 * refusal (exit 2 with a `recscore: …` message, no stack), an untyped error, a crash or a hang.
 */
import { spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const CLI_TIMEOUT_MS = 10_000;

/**
 * `env`: variables set (a value of undefined removes one; JOB_COMPLETION_INDEX is removed unless
 * given). `kill`: { signal, afterFile, delayMs }: the signal goes to the process group `delayMs`
 * after `afterFile` exists (polled every 2 ms), or after the start when `afterFile` is null.
 */
export function runCli(ctx, args, { stdin = null, timeout = CLI_TIMEOUT_MS, env = {}, kill = null } = {}) {
  return new Promise((resolve) => {
    const childEnv = { ...process.env, NODE_OPTIONS: '' };
    delete childEnv.JOB_COMPLETION_INDEX;
    for (const [k, v] of Object.entries(env)) {
      if (v === undefined) delete childEnv[k];
      else childEnv[k] = v;
    }
    // stdin, when given, comes through a shell pipe (a FIFO, as in `cat users.jsonl | recscore …`).
    let cmd = process.execPath;
    let argv = [ctx.cli, ...args];
    if (stdin !== null) {
      const src = join(ctx.caseDir, 'stdin-content');
      writeFileSync(src, stdin);
      cmd = 'sh';
      argv = ['-c', 'f=$1; shift; cat "$f" | "$@"', 'sh', src, process.execPath, ctx.cli, ...args];
    }
    const child = spawn(cmd, argv, { cwd: ctx.caseDir, stdio: ['ignore', 'pipe', 'pipe'], detached: true, env: childEnv });
    let out = '';
    let err = '';
    let timedOut = false;
    const cap = (s, d) => (s.length > 200_000 ? s : s + d);
    child.stdout.on('data', (d) => (out = cap(out, d)));
    child.stderr.on('data', (d) => (err = cap(err, d)));
    const t = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    }, timeout);
    let exited = false;
    let sent = null;
    let poll = null;
    const send = () => {
      if (exited) return;
      sent = kill.signal;
      try {
        process.kill(-child.pid, kill.signal);
      } catch {
        // gone
      }
    };
    if (kill) {
      if (kill.afterFile) {
        poll = setInterval(() => {
          if (exited || !existsSync(kill.afterFile)) return;
          clearInterval(poll);
          poll = null;
          setTimeout(send, kill.delayMs);
        }, 2);
      } else setTimeout(send, kill.delayMs);
    }
    child.on('exit', (code, signal) => {
      exited = true;
      clearTimeout(t);
      if (poll) clearInterval(poll);
      resolve({ code, signal, timedOut, stdout: out, stderr: err, args, sent });
    });
  });
}

/** Writes `content` into a FIFO from a helper process (killed when the case ends). */
export function fifoWriter(ctx, fifo, content) {
  const src = join(ctx.caseDir, 'fifo-content.jsonl');
  writeFileSync(src, content);
  const w = spawn('sh', ['-c', 'cat "$1" > "$2"', 'sh', src, fifo], { stdio: 'ignore', detached: true });
  return () => {
    try {
      process.kill(-w.pid, 'SIGKILL');
    } catch {
      // gone
    }
  };
}

const STACK = /^\s+at\s.+(\(.*:\d+:\d+\)|:\d+:\d+)$/m;

/** The outcome class of one CLI run, before its output is checked. */
export function classifyRun(r) {
  // The message line and the first stack frame, else the last lines.
  const lines = r.stderr.trim().split('\n');
  const at = lines.findIndex((l) => /internal error|Error:|^recscore: /.test(l));
  const frame = lines.find((l) => /^\s+at\s/.test(l) && !/node:internal/.test(l))?.trim();
  const tail = (at >= 0 ? `${lines[at]}${frame ? ` (${frame})` : ''}` : lines.slice(-4).join(' | ')).slice(0, 400);
  if (r.timedOut) return { outcome: 'hang', detail: `no exit within ${CLI_TIMEOUT_MS / 1000} s (killed)` };
  if (r.signal) return { outcome: 'crash', detail: `killed by ${r.signal}: ${tail}` };
  if (r.code === 0) return { outcome: 'ok' };
  if (r.code === 2) {
    const msg = r.stderr.split('\n').find((l) => l.startsWith('recscore: ') || l.startsWith('error: ') || l.startsWith('Usage: '));
    if (!msg) return { outcome: 'untyped', detail: `exit 2 without a "recscore: …" message: ${tail}` };
    if (STACK.test(r.stderr) || /internal error/.test(r.stderr)) return { outcome: 'untyped', detail: `exit 2 with a stack trace: ${tail}` };
    return { outcome: 'typed', detail: msg.slice(0, 300), message: msg };
  }
  if (r.code === 1) {
    // Status 1 is a data refusal: more bad lines than --max-errors allows (#14), said in one
    // `recscore: …` line with no stack; anything else exiting 1 is an untyped error.
    const msg = r.stderr.split('\n').find((l) => l.startsWith('recscore: '));
    if (msg && !STACK.test(r.stderr) && !/internal error/.test(r.stderr)) return { outcome: 'typed', detail: msg.slice(0, 300), message: msg };
    return { outcome: 'untyped', detail: `exit 1: ${tail}` };
  }
  return { outcome: 'crash', detail: `exit ${r.code}: ${tail}` };
}
