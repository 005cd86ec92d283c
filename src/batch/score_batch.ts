/** Scoring one batch of the score job: encode + top-k for its good lines, ids out, bad lines found. */
import type { Catalogue, ItemId } from '../catalogue/catalogue.js';
import type { Encoder } from '../encoder/encoder.js';
import { InvalidArgumentError, ModelError, OutOfRangeError } from '../errors.js';
import type { Level } from '../native/addon.js';
import { itemsOf, rank } from '../pipeline.js';
import type { OutRow } from './columnar_out.js';
import type { IdResolver } from './vocabulary.js';

/** One input line of this shard: a user to score, or why the line is bad. */
export interface Entry {
  line: number;
  start: number;
  crcBefore: number;
  user?: ItemId;
  indices?: number[];
  rows?: number[];
  error?: string;
}

/** Errors the library raises for what a line holds (as opposed to files, bugs, the machine). */
function isDataError(e: unknown): e is Error {
  return e instanceof InvalidArgumentError || e instanceof OutOfRangeError || e instanceof ModelError;
}

/**
 * A batch's scorer: the top-k rows of its good entries. A batch the library refuses is retried
 * user by user, so each bad line is found (its `error` set).
 */
export function batchScorer(o: {
  encoder: Encoder;
  catalogue: Catalogue;
  ids: IdResolver;
  k: number;
  excludeHistory: boolean;
  threads: number;
  isa?: Level;
}): (entries: Entry[]) => Promise<Map<Entry, OutRow>> {
  const { encoder, catalogue, ids } = o;
  /** Top-k rows for users; throws what the encoder or the scan throws. */
  const scoreUsers = async (users: Entry[]): Promise<OutRow[]> => {
    const exclude = o.excludeHistory ? users.map((b) => b.rows as number[]) : undefined;
    const res = await rank(encoder, catalogue, { histories: users.map((b) => b.indices as number[]), k: o.k, exclude, threads: o.threads, isa: o.isa });
    return users.map((b, u) => {
      const { items, scores } = itemsOf(catalogue, res, u);
      return { user: b.user as ItemId, items: ids.vocabulary ? items.map((id) => ids.outputId(id)) : items, scores };
    });
  };

  return async (entries: Entry[]): Promise<Map<Entry, OutRow>> => {
    const users = entries.filter((b) => b.error === undefined);
    const text = new Map<Entry, OutRow>();
    if (users.length === 0) return text;
    try {
      (await scoreUsers(users)).forEach((t, u) => text.set(users[u], t));
    } catch (e) {
      if (!isDataError(e)) throw e;
      for (const b of users) {
        try {
          text.set(b, (await scoreUsers([b]))[0]);
        } catch (e1) {
          if (!isDataError(e1)) throw e1;
          b.error = `line ${b.line}: ${e1.message.replace(/^histories\[0\]/, 'history')}`;
        }
      }
    }
    return text;
  };
}
