/**
 * Next-item evaluation: for each session, rank the whole catalogue by the model's user vector
 * for the history and see where the true next item lands.
 *
 * Metrics at k, averaged over sessions, with one relevant item per session:
 *   Recall@k (= HitRate@k)  next item in the top k
 *   MRR@k                   1/rank when it is, else 0
 *   NDCG@k                  1/log2(rank + 1) when it is, else 0 (the ideal DCG is 1)
 *   Precision@k             Recall@k / k
 *   coverage                distinct items recommended / catalogue size
 *   novelty                 mean over recommended items of -log2 p(i), with p(i) the item's
 *                           share of the events in the evaluation sessions (add-one smoothed)
 * Ties: items are ranked by score, equal scores by the lower catalogue row, exactly as topK
 * orders them. With history exclusion (the default), a next item that is already in the history
 * can never be recommended and counts as a miss.
 */
import type { Catalogue, ItemId } from '../catalogue/catalogue.js';
import type { Encoder } from '../encoder/encoder.js';
import { IdResolver, Vocabulary } from '../batch/vocabulary.js';
import { InvalidArgumentError, OutOfRangeError } from '../errors.js';
import { LIMITS } from '../limits.js';
import { rank } from '../pipeline.js';
import { type Level, resolveLevel } from '../native/addon.js';
import { arrayLike, atMost, describe, kOption, optionalPositiveInt, threadsOption } from '../validate.js';

export interface EvalSession {
  history: ReadonlyArray<ItemId>;
  next: ItemId;
}

export interface EvalMetrics {
  sessions: number;
  k: number;
  recall: number;
  hitRate: number;
  mrr: number;
  ndcg: number;
  precision: number;
  coverage: number;
  novelty: number;
  excludeHistory: boolean;
  tiePolicy: string;
}

export const TIE_POLICY = 'score descending, equal scores by the lower catalogue row (as topK)';

/**
 * Metrics from the 1-based rank of each session's next item (null: not in the top k), how often
 * each catalogue row was recommended, and item popularity counts (by catalogue row).
 */
export function metricsFromRanks(
  ranks: ReadonlyArray<number | null>,
  k: number,
  shownCounts: ReadonlyMap<number, number>,
  popularity: { counts: ReadonlyMap<number, number>; total: number; catalogueSize: number },
): Omit<EvalMetrics, 'excludeHistory' | 'tiePolicy'> {
  const n = ranks.length;
  let hits = 0;
  let rr = 0;
  let dcg = 0;
  for (const r of ranks) {
    if (r === null) continue;
    hits++;
    rr += 1 / r;
    dcg += 1 / Math.log2(r + 1);
  }
  let info = 0;
  let shown = 0;
  const denom = popularity.total + popularity.catalogueSize;
  for (const [row, times] of shownCounts) {
    info += times * -Math.log2(((popularity.counts.get(row) ?? 0) + 1) / denom);
    shown += times;
  }
  const recall = n ? hits / n : 0;
  return {
    sessions: n,
    k,
    recall,
    hitRate: recall,
    mrr: n ? rr / n : 0,
    ndcg: n ? dcg / n : 0,
    precision: recall / k,
    coverage: shownCounts.size / popularity.catalogueSize,
    novelty: shown ? info / shown : 0,
  };
}

/** Evaluates `encoder` + `catalogue` on next-item sessions (catalogue ids; numeric = model index). */
export async function evaluate(o: {
  encoder: Encoder;
  catalogue: Catalogue;
  sessions: Iterable<EvalSession> | AsyncIterable<EvalSession>;
  k: number;
  excludeHistory?: boolean;
  batchSize?: number;
  threads?: number;
  /** CPU level of the scan (default 'auto'). */
  isa?: 'auto' | Level;
  /** Maps a catalogue id to the model's item index (default: numeric ids are the indices). */
  toModel?: (id: ItemId) => number;
  /**
   * SKU ids, as `recscore score --vocabulary`: entry i (or line i of a file, one id per line) is
   * the model's item i. Histories and `next` are then vocabulary ids (compared as strings); one
   * the vocabulary lacks is an OutOfRangeError, never item 0. Catalogue rows are found by the SKU
   * in a catalogue built with string ids, else by the model's item number.
   */
  vocabulary?: ReadonlyArray<string | number> | string;
}): Promise<EvalMetrics> {
  if (typeof o !== 'object' || o === null) throw new InvalidArgumentError(`options must be an object, got ${describe(o)}`);
  const { encoder, catalogue } = o;
  const it = o.sessions as { [Symbol.iterator]?: unknown; [Symbol.asyncIterator]?: unknown } | null;
  if (typeof it !== 'object' || it === null || (typeof it[Symbol.iterator] !== 'function' && typeof it[Symbol.asyncIterator] !== 'function')) {
    throw new InvalidArgumentError(`options.sessions must be an iterable of {history, next}, got ${describe(o.sessions)}`);
  }
  const k = kOption('options.k', o.k);
  const threads = o.threads === undefined ? undefined : threadsOption('options.threads', o.threads, 1);
  const isa = resolveLevel('options.isa', o.isa);
  const batchSize = atMost('options.batchSize', optionalPositiveInt('options.batchSize', o.batchSize, 256), LIMITS.maxBatch);
  const excludeHistory = o.excludeHistory ?? true;
  if (o.vocabulary !== undefined && o.toModel !== undefined) throw new InvalidArgumentError('options.vocabulary and options.toModel are two ways to map ids: give one');
  const vocabulary = o.vocabulary === undefined ? null : typeof o.vocabulary === 'string' ? Vocabulary.load(o.vocabulary, 'options.vocabulary') : Vocabulary.from(o.vocabulary, 'options.vocabulary');
  const ids = vocabulary ? new IdResolver(catalogue, vocabulary) : null;
  const toModel = o.toModel ?? ((id: ItemId) => id as number);
  /** An id's model index and catalogue row (-1: not in the catalogue, with a vocabulary only). */
  const resolve = (id: ItemId, where: string): { index: number; row: number } => {
    if (!ids || !vocabulary) return { index: -1, row: catalogue.row(id) };
    const index = vocabulary.index(id);
    if (index === undefined) throw new OutOfRangeError(`${where} = ${describe(id)} is not in options.vocabulary`);
    const c = ids.catalogueId(id, index);
    return { index, row: c === undefined ? -1 : catalogue.row(c) };
  };
  const ranks: Array<number | null> = [];
  const shown = new Map<number, number>();
  const counts = new Map<number, number>();
  let total = 0;
  let batch: Array<{ indices: number[]; exclude: number[]; target: number }> = [];
  const flush = async (): Promise<void> => {
    if (batch.length === 0) return;
    const res = await rank(encoder, catalogue, {
      histories: batch.map((s) => s.indices),
      k,
      exclude: excludeHistory ? batch.map((s) => s.exclude) : undefined,
      threads,
      isa,
    });
    batch.forEach((s, u) => {
      const rows = Array.from(res.rows.subarray(u * res.k, (u + 1) * res.k)).filter((r) => r >= 0);
      const at = s.target < 0 ? -1 : rows.indexOf(s.target);
      ranks.push(at >= 0 ? at + 1 : null);
      for (const r of rows) shown.set(r, (shown.get(r) ?? 0) + 1);
    });
    batch = [];
  };
  let i = 0;
  for await (const s of o.sessions as AsyncIterable<EvalSession>) {
    if (typeof s !== 'object' || s === null) throw new InvalidArgumentError(`sessions[${i}] must be {history, next}, got ${describe(s)}`);
    arrayLike(`sessions[${i}].history`, s.history, 'an array of ids', LIMITS.maxHistory);
    const history = Array.from(s.history).map((id, j) => ({ id, ...resolve(id, `sessions[${i}].history[${j}]`) }));
    const next = resolve(s.next, `sessions[${i}].next`);
    i++;
    for (const { row } of [...history, next]) {
      if (row < 0) continue;
      counts.set(row, (counts.get(row) ?? 0) + 1);
      total++;
    }
    batch.push({
      indices: history.map((h) => (vocabulary ? h.index : toModel(h.id))),
      exclude: history.filter((h) => h.row >= 0).map((h) => h.row),
      target: next.row,
    });
    if (batch.length >= batchSize) await flush();
  }
  await flush();
  return {
    ...metricsFromRanks(ranks, k, shown, { counts, total, catalogueSize: catalogue.size }),
    excludeHistory,
    tiePolicy: TIE_POLICY,
  };
}
