// Small helpers shared by the benchmark files: seeded data, medians, formatting, loading.
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
export const ROOT = dirname(BENCH_DIR);
export const require = createRequire(import.meta.url);

/** mulberry32: a small, fast, seeded 32-bit PRNG (same data on every run and machine). */
export function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

/** A fresh Float32Array of n values uniform in [-1, 1), from `seed`. */
export function uniform(n, seed) {
  const next = prng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = next() * (2 / 4294967296) - 1;
  return out;
}

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** The addon, loaded directly (its benchmark helper readBandwidth is not part of the public API). */
export function loadAddon() {
  return require(join(ROOT, 'build', 'Release', 'recscore.node'));
}

export function packageVersion(name) {
  try {
    return JSON.parse(readFileSync(join(ROOT, 'node_modules', name, 'package.json'), 'utf8')).version;
  } catch {
    return null;
  }
}

/** Times `fn` (sync or async) `runs` times after `warmup` calls; returns per-run milliseconds. */
export async function timeRuns(fn, { runs, warmup = 1 }) {
  for (let i = 0; i < warmup; i++) await fn();
  const ms = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await fn();
    ms.push(performance.now() - t0);
  }
  return ms;
}

export function fmt(x, digits = 2) {
  if (x == null || Number.isNaN(x)) return '–';
  if (!Number.isFinite(x)) return String(x);
  const a = Math.abs(x);
  if (a >= 1000) return x.toFixed(0);
  if (a >= 100) return x.toFixed(Math.max(0, digits - 2));
  if (a >= 10) return x.toFixed(Math.max(0, digits - 1));
  return x.toFixed(digits);
}

export function fmtCount(x) {
  if (x == null) return '–';
  if (x >= 1e6) return `${fmt(x / 1e6)}M`;
  if (x >= 1e3) return `${fmt(x / 1e3)}k`;
  return fmt(x);
}

/** An aligned text table (console.table quotes strings and adds an index column). */
export function textTable(rows, columns) {
  const cols = columns ?? Object.keys(rows[0] ?? {});
  const cells = rows.map((r) => cols.map((c) => (r[c] == null ? '' : String(r[c]))));
  const width = cols.map((c, i) => Math.max(c.length, ...cells.map((r) => r[i].length)));
  const line = (vals) =>
    vals.map((v, i) => (i < 2 ? v.padEnd(width[i]) : v.padStart(width[i]))).join('  ');
  return [line(cols), width.map((w) => '-'.repeat(w)).join('  '), ...cells.map(line)].join('\n');
}

/**
 * CPU time snapshot: the whole machine's busy and steal time (/proc/stat, Linux) and this
 * process's own CPU time. `cpuSince(a)` says how much CPU other processes used in between, which
 * is what makes timings on a small shared machine unreliable.
 */
export function cpuSnapshot() {
  let busy = null;
  let steal = null;
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    const [user, nice, system, , , irq, softirq, st] = f;
    busy = (user + nice + system + irq + softirq) / 100; // USER_HZ = 100 on Linux
    steal = (st ?? 0) / 100;
  } catch {
    // not Linux: no machine-wide figure
  }
  const own = process.cpuUsage();
  return { at: performance.now(), busy, steal, own: (own.user + own.system) / 1e6 };
}

export function cpuSince(a) {
  const b = cpuSnapshot();
  const wall = (b.at - a.at) / 1e3;
  if (a.busy == null) return { wallSeconds: wall, otherCpuSeconds: null, stealSeconds: null };
  return {
    wallSeconds: +wall.toFixed(2),
    otherCpuSeconds: +Math.max(0, b.busy - a.busy - (b.own - a.own)).toFixed(2),
    stealSeconds: +(b.steal - a.steal).toFixed(2),
  };
}
