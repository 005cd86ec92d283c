/**
 * The one loader of the native addon. It looks in a fixed list of places and, when none holds a
 * loadable binary, throws a NativeLoadError that lists them all and says how to build it.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { NativeLoadError } from './errors.js';

export type Isa = 'avx2' | 'scalar';

export interface NativeTopKArgs {
  items: Float32Array;
  n: number;
  d: number;
  users: Float32Array;
  k: number;
  bias?: Float32Array;
  exclOffsets?: Int32Array;
  exclRows?: Int32Array;
  allow?: Int32Array;
  attributes?: Uint32Array;
  filterAll?: number;
  filterAny?: number;
  filterNone?: number;
  threads?: number;
  isa?: Isa;
  compressed?: CompressedParts;
}

/** The compact copy of a compressed catalogue and its per-row bound terms (see compressed.h). */
export interface CompressedParts {
  precision: 'int8' | 'bf16';
  data: Int8Array | Uint16Array;
  scale?: Float32Array;
  err: Float32Array;
  errBias?: Float32Array;
}

export interface NativeTopKResult {
  rows: Int32Array;
  scores: Float32Array;
  candidates?: Int32Array;
}

export interface NativeMappedFile {
  readonly buffer: ArrayBuffer;
  readonly size: number;
  close(): void;
}

export interface NativeAddon {
  readonly isas: Isa[];
  readonly bestIsa: Isa;
  readonly MappedFile: new (path: string) => NativeMappedFile;
  topK(args: NativeTopKArgs): NativeTopKResult;
  topKAsync(args: NativeTopKArgs): Promise<NativeTopKResult>;
  matrixStats(args: { values: Float32Array; rows: number; d: number }): {
    firstNonFinite: number;
    maxRowNorm: number;
    maxAbs: number;
  };
  compress(args: { values: Float32Array; rows: number; d: number; bias?: Float32Array; precision: 'int8' | 'bf16' }): Omit<CompressedParts, 'precision'>;
  /** Memory read bandwidth in GB/s over `values` (benchmarks). */
  readBandwidth(args: { values: Float32Array; threads?: number; reps?: number }): number;
}

function moduleDir(): string {
  // tsup shims import.meta.url in the CommonJS build.
  return dirname(fileURLToPath(import.meta.url));
}

/** The package root: the nearest folder upwards whose package.json is recscore's. */
export function packageRoot(): string {
  let dir = moduleDir();
  for (;;) {
    const pj = join(dir, 'package.json');
    if (existsSync(pj)) {
      try {
        if ((JSON.parse(readFileSync(pj, 'utf8')) as { name?: string }).name === 'recscore') return dir;
      } catch {
        // not ours; keep looking
      }
    }
    const up = dirname(dir);
    if (up === dir) return moduleDir();
    dir = up;
  }
}

let cached: NativeAddon | undefined;

/** The glibc this process runs on ('musl' or null when not glibc), from Node's own report. */
function runtimeLibc(): string | null {
  if (process.platform !== 'linux') return null;
  const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header;
  return header?.glibcVersionRuntime ?? 'musl';
}

/** Why a prebuilt binary may not load here: an older glibc than it needs, or musl. */
function prebuildHint(dir: string): string {
  let floor: string | null = null;
  try {
    floor = (JSON.parse(readFileSync(join(dir, 'recscore.json'), 'utf8')) as { glibc?: string | null }).glibc ?? null;
  } catch {
    // no metadata: say nothing about glibc
  }
  const libc = runtimeLibc();
  if (libc === 'musl') return ' This prebuild needs glibc; this system uses another C library (musl?).';
  if (floor && libc) {
    const [a, b] = floor.split('.').map(Number);
    const [c, d] = libc.split('.').map(Number);
    if (c < a || (c === a && d < b)) return ` This prebuild needs glibc >= ${floor}; this system has ${libc}.`;
  }
  return '';
}

/** Loads (once per thread) and returns the addon. */
export function native(): NativeAddon {
  if (cached) return cached;
  const root = packageRoot();
  const prebuilds = join(root, 'prebuilds', `${process.platform}-${process.arch}`);
  // A local build wins over the prebuild: it is what `npm run build:native` just made.
  const candidates = [
    ...(process.env.RECSCORE_NATIVE ? [process.env.RECSCORE_NATIVE] : []),
    join(root, 'build', 'Release', 'recscore.node'),
    join(root, 'build', 'Debug', 'recscore.node'),
    join(prebuilds, 'recscore.node'),
  ];
  const req = createRequire(join(root, 'package.json'));
  const problems: string[] = [];
  for (const file of candidates) {
    if (!existsSync(file)) {
      problems.push(`  ${file} (not found)`);
      continue;
    }
    try {
      cached = req(file) as NativeAddon;
      return cached;
    } catch (e) {
      const hint = file.startsWith(prebuilds) ? prebuildHint(prebuilds) : '';
      problems.push(`  ${file} (failed to load: ${(e as Error).message.split('\n')[0]}${hint})`);
    }
  }
  throw new NativeLoadError(
    'recscore: the native addon could not be loaded. Looked in:\n' +
      problems.join('\n') +
      `\nBuild it from source (needs cmake >= 3.15 and a C++17 compiler): node ${join(root, 'scripts', 'install.mjs')} ` +
      '--build-from-source, or point RECSCORE_NATIVE at a recscore.node file.',
    candidates,
  );
}
