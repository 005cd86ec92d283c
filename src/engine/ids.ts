/** Catalogue ids <-> the model's item indices and catalogue rows, for the engine's requests. */
import type { Catalogue, ItemId } from '../catalogue/catalogue.js';
import { OutOfRangeError } from '../errors.js';
import { itemsOf } from '../pipeline.js';
import { arrayLike, describe } from '../validate.js';
import type { Recommendation } from './types.js';

export class IdMap {
  readonly #catalogue: Catalogue;
  readonly #toModel: (id: ItemId) => number | undefined;

  constructor(catalogue: Catalogue, toModel: (id: ItemId) => number | undefined) {
    this.#catalogue = catalogue;
    this.#toModel = toModel;
  }

  /** The model's item index of each id (catalogue ids; errors name the position). */
  toModelIds(ids: ReadonlyArray<ItemId>, name: string): number[] {
    return this.#map(ids, name, (id, i) => {
      const m = this.#toModel(id);
      if (m === undefined) throw new OutOfRangeError(`${name}[${i}] = ${describe(id)} has no item index in the model`);
      return m;
    });
  }

  /** The catalogue row of each id. */
  rowsOf(ids: ReadonlyArray<ItemId>, name: string): number[] {
    return this.#map(ids, name, (id) => this.#catalogue.row(id));
  }

  /** A worker's top-k rows as ids (k entries from user `u`). */
  items(res: { k: number; rows: Int32Array; scores: Float32Array }, u: number, k: number): Recommendation {
    const { items, scores } = itemsOf(this.#catalogue, res, u, k);
    return { items: items.map((id, i) => ({ id, score: scores[i] })) };
  }

  #map(ids: ReadonlyArray<ItemId>, name: string, f: (id: ItemId, i: number) => number): number[] {
    const a = arrayLike(name, ids, 'an array of ids');
    const out = new Array<number>(a.length);
    for (let i = 0; i < a.length; i++) {
      const id = a[i] as ItemId;
      if (!this.#catalogue.has(id)) throw new OutOfRangeError(`${name}[${i}] = ${describe(id)} is not in the catalogue`);
      out[i] = f(id, i);
    }
    return out;
  }
}
