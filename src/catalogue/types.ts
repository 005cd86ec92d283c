/** The catalogue's public option and result types, and what crosses to worker threads. */
import type { CatalogueHeader } from './header.js';
import type { Logger } from '../logger.js';
import type { FileVersion } from './layout.js';
import type { CompressedParts, Level, NativeMappedFile } from '../native/addon.js';

export type ItemId = string | number;

export interface CatalogueOptions {
  /** Vector dimension d; `vectors.length` must be a multiple of it. */
  dim: number;
  /** External id per row (unique strings or safe integers). Defaults to the row number. */
  ids?: ReadonlyArray<ItemId>;
  /** Per-item bias b_j added to every score: score = u·x_j + b_j. */
  bias?: Float32Array | ReadonlyArray<number>;
  /** Per-item attribute bits (uint32), for `filter` in topK. */
  attributes?: Uint32Array | ReadonlyArray<number>;
  /**
   * Also keep a compact copy ('int8' with a per-row scale, or 'bf16') that scans read instead of
   * the float32 rows; results stay exactly the float32 top-k (default 'f32': none).
   */
  precision?: Precision;
  /**
   * Receives a `warn` line when the compact copy would not pay (its error bound leaves most rows
   * as candidates on a probe of the catalogue's own rows): the catalogue is then built without it.
   */
  logger?: Logger;
  /** Keep the compact copy even where the probe finds it would not pay (tests, experiments). */
  keepCompressed?: boolean;
}

export type Precision = 'f32' | 'int8' | 'bf16';

/** Selects items by their attribute bits: all of `allOf`, at least one of `anyOf`, none of `noneOf`. */
export interface AttributeFilter {
  allOf?: number;
  anyOf?: number;
  noneOf?: number;
}

export interface TopKOptions {
  /** Results per user, >= 1. k larger than the catalogue returns every item (k = size). */
  k: number;
  /** Per user (one entry per user, null for none): rows that user must not get. */
  exclude?: ReadonlyArray<ArrayLike<number> | null | undefined>;
  /** Only these rows are eligible (for every user of the call). */
  allow?: ArrayLike<number>;
  /** Only items whose attribute bits pass are eligible (needs a catalogue with attributes). */
  filter?: AttributeFilter;
  /** Threads to split the catalogue over; defaults to the CPUs this process may use (the cgroup quota in a container). */
  threads?: number;
  /**
   * CPU level of the kernels: 'auto' (default: the best this CPU runs, capped by
   * RECSCORE_MAX_LEVEL), 'avx512', 'avx2' or 'scalar'. Every level gives the same bits.
   */
  isa?: 'auto' | Level;
}

/**
 * Top-k results, row-major B×k: user u's i-th best item is `rows[u*k + i]` with score
 * `scores[u*k + i]`. Sorted by score descending, ties by lower row. Positions no eligible item
 * fills hold row -1 and score -Infinity.
 */
export interface TopKResult {
  k: number;
  rows: Int32Array;
  scores: Float32Array;
  /** Compressed catalogues: how many rows each user's scan had to rescore in float32 (debug). */
  candidates?: Int32Array;
}

export interface OpenOptions {
  /**
   * Every open checks the structure: the header's fields (count, dim, offsets, sizes), the ids
   * (unique; strings or safe integers), the bias (finite), the attributes' length and the layout
   * of the sections against the file's size.
   *
   * `true` (the default) also reads the whole file once, in the pass that checks the checksums,
   * and refuses it unless every matrix value is finite, every row's norm is at most the header's
   * `maxRowNorm`, and a compressed section agrees with the float32 rows (each row's recorded
   * error bound covers its compact copy's actual error). A file that opens verified always
   * gives exact answers. The result is remembered per file version (device, inode, size, times
   * and header checksum) for the life of the process, so re-opening a verified file is instant.
   *
   * `false` checks the structure only: opening is instant whatever the size, and a file whose
   * contents are wrong behind correct checksums is not detected.
   *
   * A refused file is a FormatError naming the section and the rule.
   */
  verify?: boolean;
  /**
   * Receives a one-line `info` notice when the file is format version 1 (row-major), which is
   * repacked in memory once per process; `recscore catalogue upgrade` converts it.
   */
  logger?: Logger;
}

export interface NpyOptions {
  precision?: Precision;
  /** As CatalogueOptions.logger. */
  logger?: Logger;
  /** As CatalogueOptions.keepCompressed. */
  keepCompressed?: boolean;
  ids?: ReadonlyArray<ItemId>;
  bias?: Float32Array | ReadonlyArray<number>;
  attributes?: Uint32Array | ReadonlyArray<number>;
}

/** Which file a mapped catalogue came from: a worker must map the very same one. */
export interface FileIdentity {
  dev: number;
  ino: number;
  size: number;
  mtimeMs: number;
  checksum: number;
}

/**
 * What crosses to a worker thread: never the matrix (a worker maps the same file, or views the
 * same shared memory) and never the ids (workers return rows; the main thread maps them).
 */
export type SharedCatalogue =
  | {
      kind: 'file';
      path: string;
      identity: FileIdentity;
      headerCrc: number;
      version: 1 | 2;
      /** The header's numbers (count, dim, offsets); its ids, bias and attributes left out. */
      header: CatalogueHeader;
      bias: Float32Array | null;
      attributes: Uint32Array | null;
      maxRowNorm: number;
      /** Version 1: the panels and compact copy the main thread repacked (shared memory). */
      panels: Float32Array | null;
      compressed: CompressedParts | null;
    }
  | {
      kind: 'memory';
      panels: Float32Array;
      size: number;
      dim: number;
      bias: Float32Array | null;
      attributes: Uint32Array | null;
      maxRowNorm: number;
      compressed: CompressedParts | null;
    };

/** @internal */
/** Where a catalogue opened from a file came from (for handing to worker threads). */
export interface FileOrigin {
  path: string;
  identity: FileIdentity;
  headerCrc: number;
  version: FileVersion;
  header: CatalogueHeader;
}

/** @internal */
export interface CatalogueParts {
  compressed?: CompressedParts | null;
  trustedIds?: boolean;
  /** A worker's catalogue: ids stay on the main thread, which maps rows to ids. */
  idsWithheld?: boolean;
  origin?: FileOrigin;
  /** The contents passed the deep checks (built here, or a file opened with verification). */
  verified: boolean;
  /** The matrix packed in panels (layout.ts). */
  panels: Float32Array;
  size: number;
  dim: number;
  ids: ReadonlyArray<ItemId> | null;
  bias: Float32Array | null;
  attributes: Uint32Array | null;
  maxRowNorm: number;
  mapping: NativeMappedFile | null;
}

