/**
 * One version of what a ScoringEngine serves: a catalogue and a model, the pool of workers that
 * hold them and the batcher that feeds that pool. `engine.update()` makes a new generation and
 * swaps it in; requests already accepted finish on the old one, which is retired (its pool
 * stopped, its files unmapped) after its last answer.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

import { Piscina } from 'piscina';

import { Catalogue, type ItemId } from '../catalogue/catalogue.js';
import { Encoder } from '../encoder/encoder.js';
import { InvalidArgumentError, ModelError, WorkerCrashError, reviveError } from '../errors.js';
import { fileError } from '../file_check.js';
import type { Level } from '../native/addon.js';
import { packageRoot } from '../native/addon.js';
import { describe } from '../validate.js';
import { Batcher } from './batcher.js';
import type { Counters } from './counters.js';
import { IdMap } from './ids.js';
import { StepBatcher } from './step_batcher.js';
import { type EngineSettings, vocabularyOf } from './options.js';
import type { WorkerInit, WorkerResult, WorkerTask } from './protocol.js';
import type { EngineOptions } from './types.js';

function workerFile(): string {
  return pathToFileURL(join(packageRoot(), 'dist', 'engine-worker.js')).href;
}

/** What a generation is made of; `reuse` hands over the previous generation's open objects. */
export interface GenerationSpec {
  model: string | Uint8Array;
  catalogue: string | Catalogue;
  /** How errors name the catalogue argument ('options.catalogue', 'change.catalogue'). */
  name: string;
  reuse?: { catalogue?: Generation; model?: Generation };
}

export class Generation {
  readonly catalogue: Catalogue;
  /** The main thread's encoder: metadata (dim, vocabulary, state size, backend, level). */
  readonly encoder: Encoder;
  readonly ids: IdMap;
  readonly batcher: Batcher;
  /** Session pushes' steps, batched across users. */
  readonly steps: StepBatcher;
  /** The model's source, kept for updates that change only the catalogue. */
  readonly model: string | Uint8Array;
  /** sha256 of the model bytes: session states of another model are stale (it fixes the state size too). */
  readonly modelKey: string;
  readonly modelHash: string;
  /** How long the workers took to load (ms, all in parallel). */
  readyMs = 0;
  readonly #pool: Piscina;
  #ownsCatalogue: boolean;
  #ownsEncoder: boolean;

  private constructor(p: {
    catalogue: Catalogue;
    ownsCatalogue: boolean;
    encoder: Encoder;
    ownsEncoder: boolean;
    model: string | Uint8Array;
    modelHash: string;
    pool: Piscina;
    toModel: (id: ItemId) => number | undefined;
    settings: EngineSettings;
    counters: Counters;
    opts: EngineOptions;
  }) {
    this.catalogue = p.catalogue;
    this.#ownsCatalogue = p.ownsCatalogue;
    this.encoder = p.encoder;
    this.#ownsEncoder = p.ownsEncoder;
    this.model = p.model;
    this.modelHash = p.modelHash;
    this.modelKey = p.modelHash;
    this.#pool = p.pool;
    this.ids = new IdMap(p.catalogue, p.toModel);
    this.batcher = new Batcher({
      ...p.settings,
      counters: p.counters,
      logger: p.opts.logger,
      catalogueSize: p.catalogue.size,
      run: (task) => this.run(task),
      items: (res, u, k) => this.ids.items(res, u, k),
    });
    this.steps = new StepBatcher({ run: (task) => this.run(task), threads: p.settings.threads, stateSize: p.encoder.stateSize });
  }

  /**
   * Opens (or reuses) the catalogue, verified here once (workers map the same file version and
   * skip the check), loads the model's metadata, starts the workers in parallel and waits until
   * each has loaded both, so that a bad file fails here and not on a request.
   */
  static async create(spec: GenerationSpec, opts: EngineOptions, settings: EngineSettings, counters: Counters, isa: Level): Promise<Generation> {
    let catalogue: Catalogue;
    let ownsCatalogue: boolean;
    if (spec.reuse?.catalogue) {
      catalogue = spec.reuse.catalogue.catalogue;
      ownsCatalogue = false; // handed over by adopt() once this generation is live
    } else if (typeof spec.catalogue === 'string') {
      catalogue = await Catalogue.open(spec.catalogue, { logger: opts.logger });
      ownsCatalogue = true;
    } else if (spec.catalogue instanceof Catalogue) {
      catalogue = spec.catalogue;
      ownsCatalogue = false;
    } else {
      throw new InvalidArgumentError(`${spec.name} must be a path or a Catalogue, got ${describe(spec.catalogue)}`);
    }
    let encoder: Encoder | null = null;
    let pool: Piscina | null = null;
    try {
      if (spec.reuse?.model) {
        encoder = spec.reuse.model.encoder;
      } else {
        // Loaded first: Encoder.load checks that a path is a regular file before anything reads it.
        // The main thread needs only the model's metadata (the workers encode): no folded
        // embedding tables (foldBytes 0), one thread.
        encoder = await Encoder.load(spec.model, { backend: opts.backend ?? 'auto', threads: 1, isa, foldBytes: 0 });
      }
      const modelHash = spec.reuse?.model ? spec.reuse.model.modelHash : await hashModel(spec.model);
      if (encoder.dim !== catalogue.dim) {
        throw new ModelError(`the model's vectors have ${encoder.dim} dimensions, the catalogue's ${catalogue.dim}`);
      }
      const init: WorkerInit = { model: spec.model, catalogue: catalogue._share(), backend: opts.backend, isa: encoder.level, testHooks: opts.testHooks };
      pool = new Piscina({
        filename: workerFile(),
        minThreads: settings.threads,
        maxThreads: settings.threads,
        idleTimeout: Number.POSITIVE_INFINITY,
        concurrentTasksPerWorker: 1,
        workerData: init,
      });
      const g = new Generation({
        catalogue,
        ownsCatalogue,
        encoder,
        ownsEncoder: !spec.reuse?.model,
        model: spec.model,
        modelHash,
        pool,
        toModel: vocabularyOf(opts.vocabulary, encoder.vocab),
        settings,
        counters,
        opts,
      });
      const t0 = performance.now();
      const answers = await Promise.all(Array.from({ length: settings.threads }, () => g.run({ op: 'ready' })));
      for (const a of answers) if (!a.ok) throw reviveError(a.error);
      g.readyMs = performance.now() - t0;
      return g;
    } catch (e) {
      await pool?.destroy();
      if (encoder && !spec.reuse?.model) await encoder.close();
      if (ownsCatalogue) await catalogue.close();
      throw e;
    }
  }

  /** Takes over closing what `reuse` handed over (the previous generation no longer closes it). */
  adopt(prev: Generation): void {
    if (prev.catalogue === this.catalogue && prev.#ownsCatalogue) {
      prev.#ownsCatalogue = false;
      this.#ownsCatalogue = true;
    }
    if (prev.encoder === this.encoder && prev.#ownsEncoder) {
      prev.#ownsEncoder = false;
      this.#ownsEncoder = true;
    }
  }

  /** Runs one task on this generation's pool, turning worker deaths into WorkerCrashError. */
  async run(task: WorkerTask, transfer?: ArrayBuffer[]): Promise<WorkerResult> {
    try {
      return (await this.#pool.run(task, transfer ? { transferList: transfer } : undefined)) as WorkerResult;
    } catch (e) {
      throw new WorkerCrashError(`a worker stopped while answering: ${(e as Error).message}`, { cause: e });
    }
  }

  /** The pool's worker threads (tests terminate one to simulate a crash). */
  threads(): ReadonlyArray<{ terminate(): Promise<number> }> {
    return this.#pool.threads as unknown as ReadonlyArray<{ terminate(): Promise<number> }>;
  }

  /** After the last accepted request is answered: stops the workers, closes what it owns. */
  async retire(): Promise<void> {
    await this.batcher.whenIdle();
    await this.steps.whenIdle();
    try {
      await this.#pool.destroy();
    } finally {
      if (this.#ownsEncoder) await this.encoder.close();
      if (this.#ownsCatalogue) await this.catalogue.close();
    }
  }
}

async function hashModel(model: string | Uint8Array): Promise<string> {
  const bytes = typeof model === 'string' ? await readFile(model).catch((e: unknown) => Promise.reject(fileError(model, e))) : model;
  return createHash('sha256').update(bytes).digest('hex');
}
