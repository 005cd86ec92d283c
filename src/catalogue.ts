/**
 * Catalogue: N items with ids, a float32 N×d matrix, optional per-item bias and attribute bits,
 * scored against user vectors by the native fused top-k kernel.
 */
import { stat } from 'node:fs/promises';
import { availableParallelism, totalmem } from 'node:os';

import {
  compressedCrc,
  compressedViews,
  copyFloat32,
  copyUint32,
  crc32Chunked,
  decodeIds,
  readCatalogueHeader,
  writeCatalogueFile,
} from './catalogue_file.js';
import { ClosedError, FormatError, InvalidArgumentError, OutOfRangeError, fromNative } from './errors.js';
import { type CompressedParts, type Isa, type NativeMappedFile, type NativeTopKArgs, native } from './native.js';
import { readNpyFloat32 } from './npy.js';
import {
  arrayLike,
  copyRows,
  describe,
  float32Array,
  nonFiniteName,
  optionalPositiveInt,
  positiveInt,
  uint32,
} from './validate.js';
import { VERSION } from './version.js';

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
  /** Threads to split the catalogue over; defaults to os.availableParallelism(). */
  threads?: number;
  /** Kernel: 'auto' (default: the best this CPU runs), 'avx2' or 'scalar'. */
  isa?: 'auto' | Isa;
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
   * Check the CRC-32 of the whole matrix while opening (default true; about 4 GB/s). With false,
   * opening is instant whatever the size; the header and the file size are still checked.
   */
  verify?: boolean;
}

export interface NpyOptions {
  precision?: Precision;
  ids?: ReadonlyArray<ItemId>;
  bias?: Float32Array | ReadonlyArray<number>;
  attributes?: Uint32Array | ReadonlyArray<number>;
}

const COMPRESSED_MAX_BATCH = 8;

/** Copies a compact copy into shared memory, so worker threads can use it without a copy. */
function shareCompressed(precision: 'int8' | 'bf16', c: Omit<CompressedParts, 'precision'>): CompressedParts {
  const share = <T extends Int8Array | Uint16Array | Float32Array>(a: T, make: (b: SharedArrayBuffer) => T): T => {
    const out = make(new SharedArrayBuffer(a.byteLength));
    out.set(a as never);
    return out;
  };
  return {
    precision,
    data: c.data instanceof Int8Array ? share(c.data, (b) => new Int8Array(b)) : share(c.data as Uint16Array, (b) => new Uint16Array(b)),
    scale: c.scale ? share(c.scale, (b) => new Float32Array(b)) : undefined,
    err: share(c.err, (b) => new Float32Array(b)),
    errBias: c.errBias ? share(c.errBias, (b) => new Float32Array(b)) : undefined,
  };
}

/** Scores above this magnitude could overflow float32 inside the dot product. */
const SCORE_LIMIT = 1e37;

/** Which file a mapped catalogue came from: a worker must map the very same one. */
export interface FileIdentity {
  ino: number;
  size: number;
  checksum: number;
}

export type SharedCatalogue =
  | { path: string; identity: FileIdentity }
  | {
      parts: {
        vectors: Float32Array;
        dim: number;
        ids: ReadonlyArray<ItemId> | null;
        bias: Float32Array | null;
        attributes: Uint32Array | null;
        maxRowNorm: number;
        compressed: CompressedParts | null;
      };
    };

interface Parts {
  compressed?: CompressedParts | null;
  trustedIds?: boolean;
  identity?: FileIdentity;
  vectors: Float32Array;
  size: number;
  dim: number;
  ids: ReadonlyArray<ItemId> | null;
  bias: Float32Array | null;
  attributes: Uint32Array | null;
  maxRowNorm: number;
  mapping: NativeMappedFile | null;
  path: string | null;
}

export class Catalogue {
  #vectors: Float32Array;
  readonly #size: number;
  readonly #dim: number;
  readonly #ids: ReadonlyArray<ItemId> | null;
  #rowOf: Map<ItemId, number> | null = null;
  readonly #bias: Float32Array | null;
  readonly #maxBias: number;
  readonly #attributes: Uint32Array | null;
  readonly #maxRowNorm: number;
  #mapping: NativeMappedFile | null;
  readonly #path: string | null;
  readonly #identity: FileIdentity | null;
  #compressed: CompressedParts | null;
  #closed = false;
  #pending = new Set<Promise<unknown>>();

  private constructor(p: Parts) {
    this.#vectors = p.vectors;
    this.#size = p.size;
    this.#dim = p.dim;
    this.#ids = p.ids;
    this.#bias = p.bias;
    this.#attributes = p.attributes;
    this.#maxRowNorm = p.maxRowNorm;
    this.#mapping = p.mapping;
    this.#path = p.path;
    this.#identity = p.identity ?? null;
    this.#compressed = p.compressed ?? null;
    let mb = 0;
    if (p.bias) for (let i = 0; i < p.bias.length; i++) mb = Math.max(mb, Math.abs(p.bias[i]));
    this.#maxBias = mb;
    // New catalogues check their ids are unique now; a file's ids were checked when it was
    // written (and its header is checksummed), so its index is built on first use.
    if (p.ids && !p.mapping && !p.trustedIds) this.#rowOf = indexIds(p.ids);
  }

  /**
   * Builds a catalogue from an N×d row-major matrix. The vectors are copied into shared memory
   * (so worker threads can use them without a copy); later changes to `vectors` do not affect it.
   */
  static fromVectors(vectors: Float32Array, opts: CatalogueOptions): Catalogue {
    float32Array('vectors', vectors);
    if (typeof opts !== 'object' || opts === null) {
      throw new InvalidArgumentError(`options must be an object with dim, got ${describe(opts)}`);
    }
    const dim = positiveInt('options.dim', opts.dim);
    const copy = new Float32Array(new SharedArrayBuffer(vectors.byteLength));
    copy.set(vectors);
    return Catalogue.#build(copy, dim, opts, 'vectors', null, null);
  }

  /** Imports a float32 C-order .npy matrix of shape (N, d). */
  static async fromNpy(path: string, opts: NpyOptions = {}): Promise<Catalogue> {
    if (typeof path !== 'string') throw new InvalidArgumentError(`path must be a string, got ${describe(path)}`);
    const npy = await readNpyFloat32(path, true);
    if (npy.shape.length !== 2) {
      throw new FormatError(path, `expected a 2-D array (items × dim), got shape (${npy.shape.join(', ')})`);
    }
    return Catalogue.#build(npy.data, npy.shape[1], opts, path, null, null);
  }

  /** Opens a catalogue file written by `save`: the matrix is memory-mapped, not read. */
  static async open(path: string, opts: OpenOptions = {}): Promise<Catalogue> {
    if (typeof path !== 'string') throw new InvalidArgumentError(`path must be a string, got ${describe(path)}`);
    const verify = opts.verify ?? true;
    const { header: h } = await readCatalogueHeader(path);
    const st = await stat(path);
    let mapping: NativeMappedFile;
    try {
      mapping = new (native().MappedFile)(path);
    } catch (e) {
      throw fromNative(e);
    }
    try {
      if (mapping.size !== (h.compressed ? h.compressed.end : h.dataOffset + h.dataBytes)) {
        throw new FormatError(path, `file changed while opening (size ${mapping.size})`);
      }
      const bytes = new Uint8Array(mapping.buffer, h.dataOffset, h.dataBytes);
      if (verify && (await crc32Chunked(bytes)) !== h.checksum.value) {
        throw new FormatError(path, 'corrupt: matrix checksum mismatch');
      }
      const compressed = compressedViews(mapping.buffer, h);
      if (verify && compressed && h.compressed && (await compressedCrc(compressed)) !== h.compressed.checksum.value) {
        throw new FormatError(path, 'corrupt: compressed section checksum mismatch');
      }
      const vectors = new Float32Array(mapping.buffer, h.dataOffset, h.count * h.dim);
      return new Catalogue({
        vectors,
        size: h.count,
        dim: h.dim,
        ids: decodeIds(h.ids),
        bias: h.bias ? copyFloat32(h.bias) : null,
        attributes: h.attributes ? copyUint32(h.attributes) : null,
        maxRowNorm: h.maxRowNorm,
        mapping,
        path,
        compressed,
        identity: { ino: st.ino, size: st.size, checksum: h.checksum.value },
      });
    } catch (e) {
      mapping.close();
      throw e;
    }
  }

  static #build(
    data: Float32Array,
    dim: number,
    opts: NpyOptions,
    name: string,
    mapping: NativeMappedFile | null,
    path: string | null,
  ): Catalogue {
    if (data.length === 0) throw new OutOfRangeError(`${name} is empty: a catalogue needs at least one item`);
    if (data.length % dim !== 0) {
      throw new InvalidArgumentError(`${name}.length (${data.length}) is not a multiple of dim (${dim})`);
    }
    const size = data.length / dim;
    if (size > 0x7fffffff) throw new OutOfRangeError(`${name} has ${size} rows; at most 2^31-1 are supported`);
    const st = native().matrixStats({ values: data, rows: size, d: dim });
    if (st.firstNonFinite >= 0) {
      const i = st.firstNonFinite;
      throw new InvalidArgumentError(
        `${name}[${i}] (row ${Math.floor(i / dim)}, component ${i % dim}) is ${nonFiniteName(data[i])}`,
      );
    }
    if (st.maxRowNorm > SCORE_LIMIT) {
      throw new OutOfRangeError(`${name} has a row of norm ${st.maxRowNorm}; scores could overflow float32`);
    }
    const ids = opts.ids === undefined ? null : checkIds(opts.ids, size);
    const bias = opts.bias === undefined ? null : checkBias(opts.bias, size);
    const attributes = opts.attributes === undefined ? null : checkAttributes(opts.attributes, size);
    const precision = opts.precision ?? 'f32';
    if (precision !== 'f32' && precision !== 'int8' && precision !== 'bf16') {
      throw new InvalidArgumentError(`options.precision must be 'f32', 'int8' or 'bf16', got ${describe(precision)}`);
    }
    const compressed = precision === 'f32' ? null : shareCompressed(precision, native().compress({ values: data, rows: size, d: dim, bias: bias ?? undefined, precision }));
    return new Catalogue({ vectors: data, size, dim, ids, bias, attributes, maxRowNorm: st.maxRowNorm, mapping, path, compressed });
  }

  /** Number of items N. */
  get size(): number {
    return this.#size;
  }

  /** Vector dimension d. */
  get dim(): number {
    return this.#dim;
  }

  /** The file this catalogue was opened from, if any. */
  get path(): string | null {
    return this.#path;
  }

  /** 'f32', or the compact copy scans read ('int8', 'bf16'). */
  get precision(): Precision {
    return this.#compressed?.precision ?? 'f32';
  }

  get hasBias(): boolean {
    return this.#bias !== null;
  }

  get hasAttributes(): boolean {
    return this.#attributes !== null;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** The id of a row. */
  id(row: number): ItemId {
    this.#check();
    if (!Number.isInteger(row) || row < 0 || row >= this.#size) {
      throw new OutOfRangeError(`row must be an integer in 0..${this.#size - 1}, got ${describe(row)}`);
    }
    return this.#ids ? this.#ids[row] : row;
  }

  /** The row of an id. Throws OutOfRangeError for an unknown id. */
  row(id: ItemId): number {
    this.#check();
    const index = this.#index();
    const r = index ? index.get(id) : isRowNumber(id, this.#size) ? id : undefined;
    if (r === undefined) throw new OutOfRangeError(`id ${describe(id)} is not in the catalogue`);
    return r;
  }

  /** Whether an id is in the catalogue. */
  has(id: ItemId): boolean {
    this.#check();
    const index = this.#index();
    return index ? index.has(id) : isRowNumber(id, this.#size);
  }

  /** A copy of one item's vector. */
  vector(row: number): Float32Array {
    this.id(row);
    return this.#vectors.slice(row * this.#dim, (row + 1) * this.#dim);
  }

  /** The bias of a row (0 when the catalogue has none). */
  bias(row: number): number {
    this.id(row);
    return this.#bias ? this.#bias[row] : 0;
  }

  /** Attribute bits of a row (0 when the catalogue has none). */
  attributes(row: number): number {
    this.id(row);
    return this.#attributes ? this.#attributes[row] : 0;
  }

  /**
   * Exact top-k for each user (B×d row-major `users`), synchronously: blocks the calling thread
   * for the whole scan. For worker threads and batch code; use topKAsync on a main thread.
   */
  topK(users: Float32Array, opts: TopKOptions): TopKResult {
    const a = this.#prepare(users, opts);
    if (!a) return this.#empty(opts);
    try {
      return { k: a.k, ...native().topK(a) };
    } catch (e) {
      throw fromNative(e);
    }
  }

  /** Like topK, but runs on the libuv pool and never blocks the event loop. Never throws: rejects. */
  topKAsync(users: Float32Array, opts: TopKOptions): Promise<TopKResult> {
    let a: NativeTopKArgs | null;
    try {
      a = this.#prepare(users, opts);
    } catch (e) {
      return Promise.reject(e);
    }
    if (!a) return Promise.resolve(this.#empty(opts));
    const k = a.k;
    const p = native()
      .topKAsync(a)
      .then(
        (r) => ({ k, ...r }),
        (e: unknown) => {
          throw fromNative(e);
        },
      );
    this.#pending.add(p);
    const done = (): void => {
      this.#pending.delete(p);
    };
    p.then(done, done);
    return p;
  }

  /** Writes the catalogue file (atomically: a temporary file renamed over `path`). */
  async save(path: string): Promise<void> {
    this.#check();
    if (typeof path !== 'string') throw new InvalidArgumentError(`path must be a string, got ${describe(path)}`);
    // Counted as running work: close() waits for it before releasing the matrix.
    const p = writeCatalogueFile(path, { ...this.#parts(), count: this.#size }, VERSION);
    this.#pending.add(p);
    try {
      await p;
    } finally {
      this.#pending.delete(p);
    }
  }

  /**
   * Waits for running topKAsync calls, then releases the matrix (unmaps the file). Later calls
   * throw ClosedError. Idempotent.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    while (this.#pending.size > 0) await Promise.allSettled([...this.#pending]);
    this.#mapping?.close();
    this.#mapping = null;
    this.#vectors = new Float32Array(0);
    this.#compressed = null;
  }

  /** @internal The shared matrix, for handing to worker threads. */
  get _vectors(): Float32Array {
    this.#check();
    return this.#vectors;
  }

  /**
   * @internal What a worker thread needs to score against this catalogue without copying the
   * matrix: the file to map, or the shared in-memory parts.
   */
  _share(): SharedCatalogue {
    this.#check();
    if (this.#path && this.#mapping && this.#identity) return { path: this.#path, identity: this.#identity };
    if (!(this.#vectors.buffer instanceof SharedArrayBuffer)) {
      throw new InvalidArgumentError('this catalogue cannot be shared with worker threads');
    }
    return { parts: this.#parts() };
  }

  /** The catalogue's contents (shared views, not copies). */
  #parts(): Extract<SharedCatalogue, { parts: unknown }>['parts'] {
    return {
      vectors: this.#vectors,
      dim: this.#dim,
      ids: this.#ids,
      bias: this.#bias,
      attributes: this.#attributes,
      maxRowNorm: this.#maxRowNorm,
      compressed: this.#compressed,
    };
  }

  /** @internal The other side of `_share`. */
  static async _fromShared(s: SharedCatalogue): Promise<Catalogue> {
    if ('path' in s) {
      const c = await Catalogue.open(s.path, { verify: false });
      const id = c.#identity as FileIdentity;
      if (id.ino !== s.identity.ino || id.size !== s.identity.size || id.checksum !== s.identity.checksum) {
        await c.close();
        throw new FormatError(s.path, 'the catalogue file changed since it was first opened (a worker must map the same file)');
      }
      return c;
    }
    const p = s.parts;
    return new Catalogue({
      vectors: p.vectors,
      size: p.vectors.length / p.dim,
      dim: p.dim,
      ids: p.ids,
      bias: p.bias,
      attributes: p.attributes,
      maxRowNorm: p.maxRowNorm,
      compressed: p.compressed,
      mapping: null,
      path: null,
      trustedIds: true,
    });
  }

  #index(): Map<ItemId, number> | null {
    if (!this.#rowOf && this.#ids) this.#rowOf = indexIds(this.#ids);
    return this.#rowOf;
  }

  #check(): void {
    if (this.#closed) throw new ClosedError('catalogue');
  }

  #empty(opts: TopKOptions): TopKResult {
    return { k: Math.min(opts.k, this.#size), rows: new Int32Array(0), scores: new Float32Array(0) };
  }

  /** Validates everything and builds the native arguments; null for an empty batch. */
  #prepare(users: Float32Array, opts: TopKOptions): NativeTopKArgs | null {
    this.#check();
    float32Array('users', users);
    if (typeof opts !== 'object' || opts === null) {
      throw new InvalidArgumentError(`options must be an object with k, got ${describe(opts)}`);
    }
    const d = this.#dim;
    const n = this.#size;
    const kWanted = positiveInt('options.k', opts.k);
    const k = Math.min(kWanted, n);
    if (users.length % d !== 0) {
      throw new InvalidArgumentError(`users.length (${users.length}) is not a multiple of the catalogue's dim (${d})`);
    }
    const b = users.length / d;
    if (b * k > 0x7fffffff) {
      throw new OutOfRangeError(`the result would hold ${b}×${k} entries; split the batch (at most 2^31-1)`);
    }
    const threads = optionalPositiveInt('options.threads', opts.threads, availableParallelism());
    // Each thread keeps up to 2k candidates per user: refuse what memory cannot hold.
    const arena = Math.min(threads, availableParallelism()) * b * (2 * k + 16) * 8;
    if (arena > Math.min(totalmem() / 2, 16 * 2 ** 30)) {
      throw new OutOfRangeError(`${b} users × k = ${k} needs ${(arena / 2 ** 30).toFixed(1)} GiB of selection buffers; split the batch`);
    }
    const isa = opts.isa ?? 'auto';
    if (isa !== 'auto' && isa !== 'avx2' && isa !== 'scalar') {
      throw new InvalidArgumentError(`options.isa must be 'auto', 'avx2' or 'scalar', got ${describe(isa)}`);
    }
    if (isa === 'avx2' && !native().isas.includes('avx2')) {
      throw new InvalidArgumentError(`options.isa 'avx2' is not supported by this CPU`);
    }
    // Every value finite, and no score able to overflow float32 (|u·x + b| <= |u||x| + |b|).
    for (let u = 0; u < b; u++) {
      let sq = 0;
      for (let p = u * d, e = p + d; p < e; p++) {
        const x = users[p];
        if (!Number.isFinite(x)) {
          throw new InvalidArgumentError(`users[${p}] (user ${u}, component ${p - u * d}) is ${nonFiniteName(x)}`);
        }
        sq += x * x;
      }
      if (Math.sqrt(sq) * this.#maxRowNorm + this.#maxBias > SCORE_LIMIT) {
        throw new OutOfRangeError(`user ${u} has norm ${Math.sqrt(sq)}; its scores could overflow float32`);
      }
    }
    if (b === 0) return null;

    const args: NativeTopKArgs = { items: this.#vectors, n, d, users, k, threads, isa: isa === 'auto' ? native().bestIsa : isa };
    // The compact copy pays off where the scan is bound by memory: a few users per call. Batches
    // are bound by arithmetic and read the float32 rows directly (the same exact result).
    if (this.#compressed && b < COMPRESSED_MAX_BATCH) args.compressed = this.#compressed;
    if (this.#bias) args.bias = this.#bias;

    if (opts.exclude !== undefined) {
      const ex = opts.exclude;
      if (!Array.isArray(ex)) {
        throw new InvalidArgumentError(`options.exclude must be an array with one entry per user, got ${describe(ex)}`);
      }
      if (ex.length !== b) {
        throw new InvalidArgumentError(`options.exclude has ${ex.length} entries for ${b} users`);
      }
      const offsets = new Int32Array(b + 1);
      let total = 0;
      for (let u = 0; u < b; u++) {
        const e = ex[u] as unknown;
        if (e !== null && e !== undefined) total += arrayLike(`options.exclude[${u}]`, e).length;
        offsets[u + 1] = total;
      }
      const rows = new Int32Array(total);
      for (let u = 0; u < b; u++) {
        const e = ex[u];
        if (e !== null && e !== undefined) copyRows(`options.exclude[${u}]`, e, n, rows, offsets[u]);
      }
      if (total > 0) {
        args.exclOffsets = offsets;
        args.exclRows = rows;
      }
    }
    if (opts.allow !== undefined) {
      const a = arrayLike('options.allow', opts.allow);
      const rows = new Int32Array(a.length);
      copyRows('options.allow', a, n, rows, 0);
      args.allow = rows;
    }
    if (opts.filter !== undefined) {
      const f = opts.filter;
      if (typeof f !== 'object' || f === null) {
        throw new InvalidArgumentError(`options.filter must be an object, got ${describe(f)}`);
      }
      if (!this.#attributes) {
        throw new InvalidArgumentError('options.filter needs a catalogue built with attributes');
      }
      args.attributes = this.#attributes;
      args.filterAll = f.allOf === undefined ? 0 : uint32('options.filter.allOf', f.allOf);
      args.filterAny = f.anyOf === undefined ? 0 : uint32('options.filter.anyOf', f.anyOf);
      args.filterNone = f.noneOf === undefined ? 0 : uint32('options.filter.noneOf', f.noneOf);
    }
    return args;
  }
}

function isRowNumber(id: ItemId, size: number): id is number {
  return typeof id === 'number' && Number.isInteger(id) && id >= 0 && id < size;
}

function indexIds(ids: ReadonlyArray<ItemId>): Map<ItemId, number> {
  const m = new Map<ItemId, number>();
  for (let i = 0; i < ids.length; i++) {
    const prev = m.get(ids[i]);
    if (prev !== undefined) {
      throw new InvalidArgumentError(`options.ids are not unique: ${describe(ids[i])} is at rows ${prev} and ${i}`);
    }
    m.set(ids[i], i);
  }
  return m;
}

function checkIds(ids: unknown, size: number): ItemId[] {
  if (!Array.isArray(ids)) throw new InvalidArgumentError(`options.ids must be an array, got ${describe(ids)}`);
  if (ids.length !== size) {
    throw new InvalidArgumentError(`options.ids has ${ids.length} entries for ${size} items`);
  }
  for (let i = 0; i < ids.length; i++) {
    const v = ids[i] as unknown;
    if (!(typeof v === 'string' || (typeof v === 'number' && Number.isSafeInteger(v)))) {
      throw new InvalidArgumentError(`options.ids[${i}] must be a string or a safe integer, got ${describe(v)}`);
    }
  }
  return ids.slice() as ItemId[];
}

function checkBias(bias: unknown, size: number): Float32Array {
  const a = arrayLike('options.bias', bias);
  if (a.length !== size) throw new InvalidArgumentError(`options.bias has ${a.length} entries for ${size} items`);
  const out = new Float32Array(new SharedArrayBuffer(size * 4));
  for (let i = 0; i < size; i++) {
    const v = a[i];
    if (typeof v !== 'number' || !Number.isFinite(v) || !Number.isFinite(Math.fround(v))) {
      throw new InvalidArgumentError(`options.bias[${i}] must be a finite float32, got ${describe(v)}`);
    }
    if (Math.abs(v) > SCORE_LIMIT) throw new OutOfRangeError(`options.bias[${i}] = ${v} could overflow scores`);
    out[i] = v;
  }
  return out;
}

function checkAttributes(attrs: unknown, size: number): Uint32Array {
  const a = arrayLike('options.attributes', attrs);
  if (a.length !== size) {
    throw new InvalidArgumentError(`options.attributes has ${a.length} entries for ${size} items`);
  }
  const out = new Uint32Array(new SharedArrayBuffer(size * 4));
  for (let i = 0; i < size; i++) out[i] = uint32(`options.attributes[${i}]`, a[i]);
  return out;
}
