/**
 * Catalogue: N items with ids, a float32 N×d matrix, optional per-item bias and attribute bits,
 * scored against user vectors by the native fused top-k kernel.
 */
import { buildParts, indexIds, isRowNumber } from './catalogue_build.js';
import { writeCatalogueFile } from './catalogue_file.js';
import { openCatalogueFile, sameVersion } from './catalogue_open.js';
import { packPanels, prepareTopK } from './catalogue_topk.js';
import type { CatalogueOptions, FileIdentity, ItemId, NpyOptions, OpenOptions, Precision, SharedCatalogue, TopKOptions, TopKResult } from './catalogue_types.js';
import { verifyContent } from './catalogue_verify.js';
import { ClosedError, FormatError, InvalidArgumentError, OutOfRangeError, fromNative } from './errors.js';
import { LIMITS } from './limits.js';
import { type CompressedParts, type NativeMappedFile, type NativeTopKArgs, native } from './native.js';
import { readNpyFloat32 } from './npy.js';
import { pathArg } from './file_check.js';
import { atMost, describe, float32Array, optionsObject, positiveInt } from './validate.js';
import { VERSION } from './version.js';

export type {
  AttributeFilter,
  CatalogueOptions,
  FileIdentity,
  ItemId,
  NpyOptions,
  OpenOptions,
  Precision,
  SharedCatalogue,
  TopKOptions,
  TopKResult,
} from './catalogue_types.js';

interface Parts {
  compressed?: CompressedParts | null;
  panels?: Float32Array | null;
  trustedIds?: boolean;
  identity?: FileIdentity;
  /** The contents passed the deep checks (built here, or a file opened with verification). */
  verified: boolean;
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
  #verified: boolean;
  #compressed: CompressedParts | null;
  #panels: Float32Array | null;
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
    this.#verified = p.verified;
    this.#compressed = p.compressed ?? null;
    this.#panels = p.panels ?? null;
    let mb = 0;
    if (p.bias) for (let i = 0; i < p.bias.length; i++) mb = Math.max(mb, Math.abs(p.bias[i]));
    this.#maxBias = mb;
    // New catalogues check their ids are unique now; a file's ids were checked when it was
    // opened (catalogue_header.ts), so its index is built on first use.
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
    const dim = atMost('options.dim', positiveInt('options.dim', opts.dim), LIMITS.maxDim);
    const copy = new Float32Array(new SharedArrayBuffer(vectors.byteLength));
    copy.set(vectors);
    return Catalogue.#build(copy, dim, opts, 'vectors');
  }

  /** Imports a float32 C-order .npy matrix of shape (N, d) (a regular file; FileError otherwise). */
  static async fromNpy(path: string, opts?: NpyOptions): Promise<Catalogue> {
    pathArg('path', path);
    const o = optionsObject('options', opts);
    const npy = await readNpyFloat32(path, true);
    if (npy.shape.length !== 2) {
      throw new FormatError(path, `expected a 2-D array (items × dim), got shape (${npy.shape.join(', ')})`);
    }
    const dim = npy.shape[1];
    if (dim < 1 || dim > LIMITS.maxDim) {
      throw new OutOfRangeError(`${path}: shape (${npy.shape.join(', ')}) has ${dim} columns; a catalogue's dim must be in 1..${LIMITS.maxDim}`);
    }
    return Catalogue.#build(npy.data, dim, o, path);
  }

  /**
   * Opens a catalogue file written by `save`: the matrix is memory-mapped, not read (beyond the
   * one verification pass per file version; see OpenOptions.verify). A path that is missing, not
   * readable or not a regular file is a FileError; a file that breaks a rule, a FormatError.
   */
  static async open(path: string, opts?: OpenOptions): Promise<Catalogue> {
    pathArg('path', path);
    const verify = optionsObject('options', opts).verify ?? true;
    if (typeof verify !== 'boolean') throw new InvalidArgumentError(`options.verify must be a boolean, got ${describe(verify)}`);
    const f = await openCatalogueFile(path, verify);
    const h = f.header;
    return new Catalogue({
      vectors: f.vectors,
      size: h.count,
      dim: h.dim,
      ids: f.data.ids,
      bias: f.data.bias,
      attributes: f.data.attributes,
      maxRowNorm: h.maxRowNorm,
      mapping: f.mapping,
      path,
      compressed: f.compressed,
      identity: f.identity,
      verified: f.verified,
    });
  }

  /** The builder: the same rules a file must pass (catalogue_build.ts), as argument errors. */
  static #build(data: Float32Array, dim: number, opts: NpyOptions, name: string): Catalogue {
    const b = buildParts(data, dim, opts, name);
    return new Catalogue({ ...b, vectors: data, dim, mapping: null, path: null, verified: true });
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

  /**
   * Writes the catalogue file (atomically: a temporary file renamed over `path`). A catalogue
   * opened with `verify: false` is checked first, so that save never writes a file open refuses.
   */
  async save(path: string): Promise<void> {
    this.#check();
    pathArg('path', path);
    const parts = { ...this.#parts(), count: this.#size };
    const write = async (): Promise<void> => {
      if (!this.#verified) {
        await verifyContent(this.#path ?? 'catalogue', parts);
        this.#verified = true;
      }
      await writeCatalogueFile(path, parts, VERSION);
    };
    // Counted as running work: close() waits for it before releasing the matrix.
    const p = write();
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
    this.#panels = null;
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
    if (this.#path && this.#mapping && this.#identity) return { path: this.#path, identity: this.#identity, panels: this.#packed() };
    if (!(this.#vectors.buffer instanceof SharedArrayBuffer)) {
      throw new InvalidArgumentError('this catalogue cannot be shared with worker threads');
    }
    return { parts: this.#parts(), panels: this.#packed() };
  }

  #packed(): Float32Array {
    this.#panels ??= packPanels(this.#vectors, this.#size, this.#dim);
    return this.#panels;
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
      // This thread's module instance has its own (empty) verified-files map: the structure is
      // checked again here, but the deep pass ran where the file was first opened, and the
      // identity check below makes sure this is that very file version.
      const c = await Catalogue.open(s.path, { verify: false });
      c.#panels = s.panels ?? null;
      if (!sameVersion(c.#identity as FileIdentity, s.identity)) {
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
      panels: s.panels,
      mapping: null,
      path: null,
      trustedIds: true,
      verified: true, // built (and checked) on the thread that shared it
    });
  }

  #index(): Map<ItemId, number> | null {
    if (!this.#rowOf && this.#ids) this.#rowOf = indexIds(this.#ids);
    return this.#rowOf;
  }

  #check(): void {
    if (this.#closed) throw new ClosedError('catalogue');
  }

  /** Validates everything and builds the native arguments; null for an empty batch. */
  #prepare(users: Float32Array, opts: TopKOptions): NativeTopKArgs | null {
    this.#check();
    const [vectors, size, dim, bias, maxBias] = [this.#vectors, this.#size, this.#dim, this.#bias, this.#maxBias];
    const [maxRowNorm, attributes, compressed] = [this.#maxRowNorm, this.#attributes, this.#compressed];
    const state = { vectors, size, dim, bias, maxBias, maxRowNorm, attributes, compressed, panels: () => this.#packed() };
    return prepareTopK(state, users, opts);
  }

  #empty(opts: TopKOptions): TopKResult {
    return { k: Math.min(opts.k, this.#size), rows: new Int32Array(0), scores: new Float32Array(0) };
  }
}
