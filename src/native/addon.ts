/**
 * The one loader of the native addon. It looks in a fixed list of places and, when none holds a
 * loadable binary, throws a NativeLoadError that lists them all and says how to build it.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { InvalidArgumentError, NativeLoadError } from '../errors.js';
import { describe } from '../validate.js';

/**
 * A CPU level (native/core/platform/levels.h is the one definition): the instructions a call's
 * kernels may use. Every level computes the same bits (docs/arithmetic.md); higher is faster.
 */
export type Level = 'scalar' | 'avx2' | 'avx512'; // the names of native/core/platform/levels.h (test/levels.test.ts checks)
/** @deprecated The old name of Level. */
export type Isa = Level;

/** Every level the addon knows, lowest first: the names come from native code, defined once there. */
export function allLevels(): readonly Level[] {
  return native().allLevels;
}

/** CPU features beyond the levels (compressed scans use them). */
export interface CpuFeatures {
  avx2: boolean;
  avx512: boolean;
  /** AVX-512 VNNI or AVX-VNNI. */
  vnni: boolean;
  avx512vnni: boolean;
  avxvnni: boolean;
  /** AVX512_BF16. */
  bf16: boolean;
}

export interface NativeTopKArgs {
  catalogue: NativeCatalogue;
  users: Float32Array;
  k: number;
  exclOffsets?: Int32Array;
  exclRows?: Int32Array;
  allow?: Int32Array;
  /** Filter on the catalogue's attributes. */
  filterAll?: number;
  filterAny?: number;
  filterNone?: number;
  threads?: number;
  isa?: Isa;
  /** Scan the compact copy (then rescore the candidates in float32). */
  useCompressed?: boolean;
  /** With useCompressed: batches of 16+ users share one int8 VNNI GEMM pass (int8, avx512 + VNNI). */
  compressedGemm?: boolean;
}

/**
 * The native catalogue object: validates the sizes once and pins the typed arrays (views of a
 * mapped file, or shared memory) until `close()`, so calls pass only the handle.
 */
export interface NativeCatalogue {
  readonly n: number;
  readonly d: number;
  close(): void;
}

export interface NativeCatalogueParts {
  n: number;
  d: number;
  /** The items packed in panels (native/core/gemm/contract.h). */
  panels: Float32Array;
  bias?: Float32Array;
  attributes?: Uint32Array;
  /** The compact copy in the panel layout of native/core/gemm/compact.h. */
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

/** What checkCompressed found (native/core/compressed.h, CompressedRule). */
export interface CompressedFault {
  row: number;
  rule: 'scale' | 'nonFinite' | 'farther' | 'err' | 'errBias';
  column: number;
  recorded: number;
  required: number;
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
  /** Levels this CPU runs, lowest first. */
  readonly levels: Level[];
  /** Every level this build knows, lowest first (platform/levels.h). */
  readonly allLevels: Level[];
  /** The default level: the highest, capped by RECSCORE_MAX_LEVEL. */
  readonly level: Level;
  readonly features: CpuFeatures;
  /** RECSCORE_MAX_LEVEL when it names no level (ignored), else null. */
  readonly badMaxLevel: string | null;
  /** Register-only FMA GFLOP/s of a level (benchmarks' compute ceiling). */
  fmaPeak(args: { level: Level; threads?: number; reps?: number }): number;
  readonly Catalogue: new (parts: NativeCatalogueParts) => NativeCatalogue;
  /** A row-major compact copy (format version 1) in the panel layout. */
  packCompact<T extends Int8Array | Uint16Array>(args: { precision: 'int8' | 'bf16'; data: T; rows: number; d: number }): T;
  /** Bounded spinning of idle team threads, in microseconds (0: sleep at once, the default). */
  setSpin(microseconds: number): void;
  /** Writes the rows packed in panels into out (ceil(rows / 16) * 16 * d floats). */
  packPanels(args: { values: Float32Array; rows: number; d: number; out: Float32Array }): void;
  /** Maps the file open on `fd` when given (the caller keeps and closes it), else opens `path`. */
  readonly MappedFile: new (path: string, fd?: number) => NativeMappedFile;
  topK(args: NativeTopKArgs): NativeTopKResult;
  topKAsync(args: NativeTopKArgs): Promise<NativeTopKResult>;
  /** `firstRowAbove`: the first row whose float64 norm exceeds `normLimit` (-1: none). */
  /** `panels`: values is packed in panels (the last panel's padding ignored); `firstNonFinite` is row * d + column either way. */
  matrixStats(args: { values: Float32Array; rows: number; d: number; normLimit?: number; panels?: boolean }): {
    firstNonFinite: number;
    maxRowNorm: number;
    maxAbs: number;
    firstRowAbove: number;
    rowNormAbove: number;
  };
  /** The first row whose compact copy or bound terms the compressed scan cannot rely on, or null. */
  checkCompressed(args: { panels: Float32Array; rows: number; d: number; bias?: Float32Array } & CompressedParts): CompressedFault | null;
  /** The compact copy of row-major `values`, in the panel layout. */
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

/**
 * The level for an `isa` option: 'auto' or undefined gives the default level; a level this CPU
 * does not run, or anything else, is an InvalidArgumentError naming the option.
 */
export function resolveLevel(name: string, value: unknown): Level {
  const n = native();
  if (value === undefined || value === 'auto') return n.level;
  if (typeof value !== 'string' || !(n.allLevels as readonly string[]).includes(value)) {
    throw new InvalidArgumentError(`${name} must be 'auto' or a level (${n.allLevels.join(', ')}), got ${describe(value)}`);
  }
  if (!n.levels.includes(value as Level)) {
    throw new InvalidArgumentError(`${name} '${value}' is not available on this CPU (it runs ${n.levels.join(', ')})`);
  }
  return value as Level;
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
      if (cached.badMaxLevel !== null && cached.badMaxLevel !== undefined) {
        process.emitWarning(
          `RECSCORE_MAX_LEVEL=${cached.badMaxLevel} names no level (${cached.allLevels.join(', ')}); it is ignored`,
          { code: 'RECSCORE_MAX_LEVEL' },
        );
      }
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
