/**
 * Catalogue: N items with ids, a float32 N×d matrix, optional per-item bias and attribute bits,
 * scored against user vectors by the native fused top-k kernel.
 */
import { buildParts, indexIds, isRowNumber, probeCompressed } from './build.js';
import { FORMAT_VERSION, compressedViews, writeCatalogueFile } from './file.js';
import type { CatalogueHeader } from './header.js';
import { type FileVersion, matrixBytes, panelRow } from './layout.js';
import { mapSameFile, openCatalogueFile } from './open.js';
import { packPanels, prepareTopK } from './topk.js';
import type { CatalogueOptions, CatalogueParts, FileIdentity, FileOrigin, ItemId, NpyOptions, OpenOptions, Precision, SharedCatalogue, TopKOptions, TopKResult } from './types.js';
import { verifyContent } from './verify.js';
import { ClosedError, FormatError, InvalidArgumentError, OutOfRangeError, fromNative } from '../errors.js';
import { LIMITS } from '../limits.js';
import { loggerOption } from '../logger.js';
import { type CompressedParts, type NativeCatalogue, type NativeMappedFile, type NativeTopKArgs, native } from '../native/addon.js';
import { readNpyFloat32 } from './npy.js';
import { pathArg } from '../file_check.js';
import { atMost, describe, float32Array, optionsObject, positiveInt } from '../validate.js';
import { VERSION } from '../version.js';

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
} from './types.js';

export class Catalogue {
  #panels: Float32Array;
  readonly #size: number;
  readonly #dim: number;
  readonly #ids: ReadonlyArray<ItemId> | null;
  #rowOf: Map<ItemId, number> | null = null;
  readonly #bias: Float32Array | null;
  readonly #maxBias: number;
  readonly #attributes: Uint32Array | null;
  readonly #maxRowNorm: number;
  #mapping: NativeMappedFile | null;
  readonly #origin: FileOrigin | null;
  readonly #idsWithheld: boolean;
  #verified: boolean;
  #compressed: CompressedParts | null;
  #handle: NativeCatalogue | null = null;
  #closed = false;
  #pending = new Set<Promise<unknown>>();

  private constructor(p: CatalogueParts) {
    this.#panels = p.panels;
    this.#size = p.size;
    this.#dim = p.dim;
    this.#ids = p.ids;
    this.#bias = p.bias;
    this.#attributes = p.attributes;
    this.#maxRowNorm = p.maxRowNorm;
    this.#mapping = p.mapping;
    this.#origin = p.origin ?? null;
    this.#idsWithheld = p.idsWithheld ?? false;
    this.#verified = p.verified;
    this.#compressed = p.compressed ?? null;
    let mb = 0;
    if (p.bias) for (let i = 0; i < p.bias.length; i++) mb = Math.max(mb, Math.abs(p.bias[i]));
    this.#maxBias = mb;
    // New catalogues check their ids are unique now; a file's ids were checked when it was
    // opened (header.ts), so its index is built on first use.
    if (p.ids && !p.mapping && !p.trustedIds) this.#rowOf = indexIds(p.ids);
  }

  /**
   * Builds a catalogue from an N×d row-major matrix. The vectors are packed into panels in shared
   * memory (so worker threads can use them without a copy); later changes to `vectors` do not
   * affect it.
   */
  static fromVectors(vectors: Float32Array, opts: CatalogueOptions): Catalogue {
    float32Array('vectors', vectors);
    if (typeof opts !== 'object' || opts === null) {
      throw new InvalidArgumentError(`options must be an object with dim, got ${describe(opts)}`);
    }
    const dim = atMost('options.dim', positiveInt('options.dim', opts.dim), LIMITS.maxDim);
    return Catalogue.#build(vectors, dim, opts, 'vectors');
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
    const o = optionsObject('options', opts);
    const verify = o.verify ?? true;
    if (typeof verify !== 'boolean') throw new InvalidArgumentError(`options.verify must be a boolean, got ${describe(verify)}`);
    const f = await openCatalogueFile(path, verify, loggerOption('options.logger', o.logger));
    const h = f.header;
    const header = { ...h, ids: null, bias: null, attributes: null };
    return new Catalogue({
      panels: f.panels,
      size: h.count,
      dim: h.dim,
      ids: f.data.ids,
      bias: f.data.bias,
      attributes: f.data.attributes,
      maxRowNorm: h.maxRowNorm,
      mapping: f.mapping,
      compressed: f.compressed,
      origin: { path, identity: f.identity, headerCrc: f.headerCrc, version: f.version, header },
      verified: f.verified,
    });
  }

  /** The builder: the same rules a file must pass (build.ts), as argument errors. */
  static #build(data: Float32Array, dim: number, opts: NpyOptions, name: string): Catalogue {
    const logger = loggerOption('options.logger', opts.logger);
    const b = buildParts(data, dim, opts, name);
    const c = new Catalogue({ ...b, panels: packPanels(data, b.size, dim), dim, mapping: null, verified: true });
    const keep = opts.keepCompressed ?? false;
    if (typeof keep !== 'boolean') throw new InvalidArgumentError(`options.keepCompressed must be a boolean, got ${describe(keep)}`);
    const probe = b.compressed && !keep ? probeCompressed(b.size, dim, data, (users, k) => c.topK(users, { k, threads: 1 }).candidates) : null;
    if (probe && !probe.pays) {
      logger?.warn?.(
        { precision: b.compressed?.precision, items: b.size, meanCandidates: probe.mean },
        `the ${b.compressed?.precision} copy would not pay: its error bound leaves ${Math.round(probe.mean)} of ${b.size} rows to rescore per user on a probe; the catalogue is built without it (exact float32 scans)`,
      );
      c.#compressed = null;
      c.#handle?.close(); // the probe's handle pinned the copy: the next call makes one without it
      c.#handle = null;
    }
    return c;
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
    return this.#origin?.path ?? null;
  }

  /** The format version of the file this catalogue was opened from (null: built in memory). */
  get formatVersion(): FileVersion | null {
    return this.#origin?.version ?? null;
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
    this.#row(row);
    if (this.#idsWithheld) this.#checkIds();
    return this.#ids ? this.#ids[row] : row;
  }

  #row(row: number): void {
    this.#check();
    if (!Number.isInteger(row) || row < 0 || row >= this.#size) {
      throw new OutOfRangeError(`row must be an integer in 0..${this.#size - 1}, got ${describe(row)}`);
    }
  }

  /** The row of an id. Throws OutOfRangeError for an unknown id. */
  row(id: ItemId): number {
    this.#checkIds();
    const index = this.#index();
    const r = index ? index.get(id) : isRowNumber(id, this.#size) ? id : undefined;
    if (r === undefined) throw new OutOfRangeError(`id ${describe(id)} is not in the catalogue`);
    return r;
  }

  /** Whether an id is in the catalogue. */
  has(id: ItemId): boolean {
    this.#checkIds();
    const index = this.#index();
    return index ? index.has(id) : isRowNumber(id, this.#size);
  }

  /** A copy of one item's vector. */
  vector(row: number): Float32Array {
    this.#row(row);
    return panelRow(this.#panels, this.#dim, row);
  }

  /** The bias of a row (0 when the catalogue has none). */
  bias(row: number): number {
    this.#row(row);
    return this.#bias ? this.#bias[row] : 0;
  }

  /** Attribute bits of a row (0 when the catalogue has none). */
  attributes(row: number): number {
    this.#row(row);
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
    const [panels, count, dim, ids, bias, attributes, maxRowNorm, compressed] = [
      this.#panels, this.#size, this.#dim, this.#ids, this.#bias, this.#attributes, this.#maxRowNorm, this.#compressed,
    ];
    if (this.#idsWithheld) throw new InvalidArgumentError('a worker thread\'s catalogue cannot be saved');
    const write = async (): Promise<void> => {
      if (!this.#verified) {
        const target = { version: FORMAT_VERSION, matrix: panels, count, dim, bias, maxRowNorm, compressed } as const;
        await verifyContent(this.path ?? 'catalogue', target);
        this.#verified = true;
      }
      await writeCatalogueFile(path, { panels, count, dim, ids, bias, attributes, maxRowNorm, compressed }, VERSION);
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
    this.#handle?.close();
    this.#handle = null;
    this.#mapping?.close();
    this.#mapping = null;
    this.#panels = new Float32Array(0);
    this.#compressed = null;
  }

  /**
   * @internal What a worker thread needs to score against this catalogue without copying the
   * matrix: the file to map, or the shared in-memory parts; never the ids.
   */
  _share(): SharedCatalogue {
    this.#check();
    const [bias, attributes, maxRowNorm, compressed] = [this.#bias, this.#attributes, this.#maxRowNorm, this.#compressed];
    const o = this.#origin;
    if (o && this.#mapping) {
      // Version 1: the repacked panels (shared memory) travel; version 2: the worker maps them.
      const repacked = o.version === 1;
      return { kind: 'file', ...o, bias, attributes, maxRowNorm, panels: repacked ? this.#panels : null, compressed: repacked ? compressed : null };
    }
    return { kind: 'memory', panels: this.#panels, size: this.#size, dim: this.#dim, bias, attributes, maxRowNorm, compressed };
  }

  /** @internal The other side of `_share` (in a worker thread). */
  static async _fromShared(s: SharedCatalogue): Promise<Catalogue> {
    const common = { ids: null, idsWithheld: true, bias: s.bias, attributes: s.attributes, maxRowNorm: s.maxRowNorm, verified: true };
    if (s.kind === 'memory') {
      return new Catalogue({ ...common, panels: s.panels, size: s.size, dim: s.dim, compressed: s.compressed, mapping: null });
    }
    // The deep pass ran where the file was first opened; mapSameFile makes sure this is that very
    // file version, and no header is decoded here.
    const h = s.header;
    const { mapping, buffer } = await mapSameFile(s.path, s.identity, s.headerCrc);
    const panels = s.panels ?? new Float32Array(buffer, h.dataOffset, matrixBytes(s.version, h.count, h.dim) / 4);
    const compressed = s.version === 1 ? s.compressed : compressedViews(buffer, h, s.version);
    const origin = { path: s.path, identity: s.identity, headerCrc: s.headerCrc, version: s.version, header: h };
    return new Catalogue({ ...common, panels, size: h.count, dim: h.dim, compressed, mapping, origin });
  }

  #index(): Map<ItemId, number> | null {
    if (!this.#rowOf && this.#ids) this.#rowOf = indexIds(this.#ids);
    return this.#rowOf;
  }

  #check(): void {
    if (this.#closed) throw new ClosedError('catalogue');
  }

  #checkIds(): void {
    this.#check();
    if (this.#idsWithheld) throw new InvalidArgumentError('a worker thread\'s catalogue has no ids: map rows on the main thread');
  }

  /** The native catalogue object, made on first use (it pins the views once). */
  #native(): NativeCatalogue {
    this.#handle ??= new (native().Catalogue)({
      n: this.#size,
      d: this.#dim,
      panels: this.#panels,
      bias: this.#bias ?? undefined,
      attributes: this.#attributes ?? undefined,
      compressed: this.#compressed ?? undefined,
    });
    return this.#handle;
  }

  /** Validates everything and builds the native arguments; null for an empty batch. */
  #prepare(users: Float32Array, opts: TopKOptions): NativeTopKArgs | null {
    this.#check();
    const state = {
      handle: () => this.#native(),
      size: this.#size,
      dim: this.#dim,
      maxBias: this.#maxBias,
      maxRowNorm: this.#maxRowNorm,
      hasAttributes: this.#attributes !== null,
      compressed: this.#compressed?.precision ?? null,
    };
    return prepareTopK(state, users, opts);
  }

  #empty(opts: TopKOptions): TopKResult {
    return { k: Math.min(opts.k, this.#size), rows: new Int32Array(0), scores: new Float32Array(0) };
  }
}
