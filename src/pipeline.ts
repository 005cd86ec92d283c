/**
 * The one encode → exclude → top-k → ids pipeline (docs/architecture.md). Everything that turns
 * histories into recommendations goes through it: `recscore score` (batch/score_job.ts),
 * `evaluate()` (eval/), the engine's workers and its sessions (engine/), later the cluster.
 *
 * It has three stages, so that a service can run the middle one on a worker thread while ids
 * stay on the main thread (they never cross to workers):
 *   - ids → rows: `rowsOf` (exclusions, allow-lists) and the caller's vocabulary (histories);
 *   - `rank`: encode the model indices and take the top-k over catalogue rows (any thread;
 *     `sync` on worker threads, which must not queue on the libuv pool the process shares);
 *   - rows → ids: `itemsOf`.
 * `recommend` composes the three for callers that hold the encoder and the catalogue in one place.
 */
import type { AttributeFilter, Catalogue, ItemId, TopKResult } from './catalogue/catalogue.js';
import type { Encoder } from './encoder/encoder.js';
import type { Level } from './native/addon.js';

/** Every option of the pipeline, named once. */
export interface PipelineOptions {
  /** Results per user. */
  k: number;
  /**
   * What each user must not get: 'history' (the user's own history, the default), 'none', or
   * per user an array of catalogue ids (null or undefined: none).
   */
  exclude?: 'history' | 'none' | ReadonlyArray<ReadonlyArray<ItemId> | null | undefined>;
  /** Only items whose attribute bits pass (needs a catalogue with attributes). */
  filter?: AttributeFilter;
  /** Only these catalogue ids are eligible. */
  allow?: ReadonlyArray<ItemId>;
  /** Catalogue id → the model's item index (default: numeric ids are the indices). */
  vocabulary?: (id: ItemId) => number;
  /** CPU level of the kernels. */
  isa?: 'auto' | Level;
  /** Threads of the encoder and the scan (default: the CPUs this process may use). */
  threads?: number;
}

/** What `rank` takes: everything already in rows and model indices. */
export interface RankRequest {
  /** Per user, the model's item indices, oldest first. */
  histories: ReadonlyArray<ArrayLike<number>>;
  k: number;
  /** Per user, catalogue rows not to return (or undefined). */
  exclude?: ReadonlyArray<ArrayLike<number> | null | undefined>;
  allow?: ArrayLike<number>;
  filter?: AttributeFilter;
  isa?: 'auto' | Level;
  threads?: number;
}

/** The catalogue rows of ids (OutOfRangeError for an id the catalogue does not hold). */
export function rowsOf(catalogue: Catalogue, ids: ReadonlyArray<ItemId>): number[] {
  return ids.map((id) => catalogue.row(id));
}

/** Encodes and ranks, on this thread, blocking it (worker threads, batch code). */
export function rankSync(encoder: Encoder, catalogue: Catalogue, r: RankRequest): TopKResult {
  return catalogue.topK(encoder.encodeSync(r.histories), topKOptions(r)); // encodeSync: native backend only
}

/** Encodes and ranks without blocking the event loop (the native backend's work runs on the libuv pool). */
export async function rank(encoder: Encoder, catalogue: Catalogue, r: RankRequest): Promise<TopKResult> {
  const vectors = await encoder.encode(r.histories);
  return catalogue.topKAsync(vectors, topKOptions(r));
}

/** A worker thread's rank: synchronous when the encoder is native, else onnxruntime's async run. */
export function rankOnWorker(encoder: Encoder, catalogue: Catalogue, r: RankRequest): TopKResult | Promise<TopKResult> {
  return encoder.backend === 'native' ? rankSync(encoder, catalogue, r) : rank(encoder, catalogue, r);
}

function topKOptions(r: RankRequest): Parameters<Catalogue['topK']>[1] {
  return { k: r.k, exclude: r.exclude, allow: r.allow, filter: r.filter, threads: r.threads, isa: r.isa };
}

/** User `u`'s results as ids and scores (at most `k`, stopping at the first empty position). */
export function itemsOf(catalogue: Catalogue, res: TopKResult, u: number, k = res.k): { items: ItemId[]; scores: number[] } {
  const items: ItemId[] = [];
  const scores: number[] = [];
  for (let i = 0; i < Math.min(k, res.k); i++) {
    const row = res.rows[u * res.k + i];
    if (row < 0) break;
    items.push(catalogue.id(row));
    scores.push(res.scores[u * res.k + i]);
  }
  return { items, scores };
}

/**
 * The whole pipeline for users given by their histories of catalogue ids: the top-k per user as
 * ids and scores, plus the raw rows (evaluation ranks by row).
 */
export async function recommend(
  encoder: Encoder,
  catalogue: Catalogue,
  histories: ReadonlyArray<ReadonlyArray<ItemId>>,
  o: PipelineOptions,
): Promise<{ result: TopKResult; users: Array<{ items: ItemId[]; scores: number[] }> }> {
  const toModel = o.vocabulary ?? ((id: ItemId) => id as number);
  const ex = o.exclude ?? 'history';
  const exclude =
    ex === 'none' ? undefined : ex === 'history' ? histories.map((h) => rowsOf(catalogue, h)) : ex.map((e) => (e ? rowsOf(catalogue, e) : undefined));
  const result = await rank(encoder, catalogue, {
    histories: histories.map((h) => h.map(toModel)),
    k: o.k,
    exclude,
    allow: o.allow ? rowsOf(catalogue, o.allow) : undefined,
    filter: o.filter,
    isa: o.isa,
    threads: o.threads,
  });
  return { result, users: histories.map((_, u) => itemsOf(catalogue, result, u)) };
}
