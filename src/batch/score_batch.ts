/** Scoring one batch of the score job: encode + top-k for its good lines, ids out, bad lines found. */
import type { Catalogue, ItemId } from '../catalogue/catalogue.js';
import type { Encoder } from '../encoder/encoder.js';
import { InvalidArgumentError, ModelError, OutOfRangeError } from '../errors.js';
import type { Level } from '../native/addon.js';
import { itemsOf, rank } from '../pipeline.js';
import { UserError } from '../cli/user_error.js';
import { LIMITS } from '../limits.js';
import type { OutRow } from './columnar_out.js';
import { parseUserLine, resolveHistory, userRecord } from './records.js';
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

/**
 * An input line as a scorer entry: its user and history resolved, or, for a line that is bad (too
 * long, not a user record, an id nobody knows, a user the output format refuses), its error.
 * Other errors propagate. `value`: the record already decoded (Parquet, Arrow), else `text` is
 * parsed as JSON.
 */
export function lineEntry(
  line: { number: number; start: number; crcBefore: number; text: string; tooLong?: boolean; value?: unknown },
  o: { ids: IdResolver; encoder: Encoder; unknown: 'error' | 'skip'; userError?: (user: ItemId) => string | null },
): Entry {
  const entry: Entry = { line: line.number, start: line.start, crcBefore: line.crcBefore };
  try {
    if (line.tooLong) throw new UserError(`line ${line.number}: longer than ${LIMITS.maxLineBytes} bytes`);
    const rec = line.value !== undefined ? userRecord(line.value, line.number) : parseUserLine(line.text, line.number);
    const ue = o.userError?.(rec.user) ?? null;
    if (ue !== null) throw new UserError(`line ${line.number}: ${ue}`);
    const h = resolveHistory(rec.history, line.number, o.ids, o.encoder, o.unknown);
    entry.user = rec.user;
    entry.indices = h.indices;
    entry.rows = h.rows;
  } catch (e) {
    if (!(e instanceof UserError)) throw e;
    entry.error = e.message;
  }
  return entry;
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
