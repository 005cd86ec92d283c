/**
 * SKU ids: a vocabulary file holds one id per line, and line i (0-based) is the model's item i.
 * History ids are looked up in it (as strings: the integer 123 and the string "123" are the same
 * SKU); ids it does not hold are errors for the caller to report or drop, never item 0.
 *
 * With a catalogue built with the SKU strings as its ids, catalogue ids are the SKUs; with one
 * whose ids are the model's item numbers, the vocabulary maps those numbers back to SKUs for output.
 */
import { readFileSync } from 'node:fs';

import type { Catalogue, ItemId } from '../catalogue/catalogue.js';
import { InvalidArgumentError } from '../errors.js';
import { regularFileSync } from '../file_check.js';
import { describe } from '../validate.js';

export class Vocabulary {
  readonly ids: ReadonlyArray<string>;
  readonly #index: Map<string, number>;

  private constructor(ids: string[], where: (i: number) => string) {
    const index = new Map<string, number>();
    ids.forEach((id, i) => {
      if (id === '') throw new InvalidArgumentError(`${where(i)} is empty`);
      const prev = index.get(id);
      if (prev !== undefined) throw new InvalidArgumentError(`${where(i)} = ${describe(id)} repeats ${where(prev)}`);
      index.set(id, i);
    });
    this.ids = ids;
    this.#index = index;
  }

  /** A vocabulary file: UTF-8, one id per line (a final newline and CRLF endings allowed). */
  static load(path: string, name = 'vocabulary'): Vocabulary {
    regularFileSync(path);
    const text = readFileSync(path, 'utf8');
    const ids = text.split('\n');
    if (ids.length > 0 && ids[ids.length - 1] === '') ids.pop();
    return new Vocabulary(
      ids.map((l) => l.replace(/\r$/, '')),
      (i) => `${name} ${path} line ${i + 1}`,
    );
  }

  /** From ids in model order (index i is the model's item i). */
  static from(ids: ReadonlyArray<string | number>, name = 'vocabulary'): Vocabulary {
    if (!Array.isArray(ids)) throw new InvalidArgumentError(`${name} must be an array of ids or a file path, got ${describe(ids)}`);
    return new Vocabulary(
      ids.map((id, i) => {
        if (typeof id !== 'string' && !(typeof id === 'number' && Number.isSafeInteger(id))) {
          throw new InvalidArgumentError(`${name}[${i}] must be a string or an integer, got ${describe(id)}`);
        }
        return String(id);
      }),
      (i) => `${name}[${i}]`,
    );
  }

  get size(): number {
    return this.ids.length;
  }

  /** The model's item index of an id, or undefined. */
  index(id: ItemId): number | undefined {
    return this.#index.get(typeof id === 'string' ? id : String(id));
  }
}

/** How ids of a history become model indices and catalogue rows, and rows become output ids. */
export class IdResolver {
  readonly catalogue: Catalogue;
  readonly vocabulary: Vocabulary | null;
  /** The catalogue's ids are strings (SKUs) rather than item numbers. */
  readonly stringIds: boolean;

  constructor(catalogue: Catalogue, vocabulary: Vocabulary | null) {
    this.catalogue = catalogue;
    this.vocabulary = vocabulary;
    this.stringIds = catalogue.size > 0 && typeof catalogue.id(0) === 'string';
  }

  /** The catalogue id of a vocabulary id (model index `index`), or undefined when the catalogue lacks it. */
  catalogueId(id: ItemId, index: number): ItemId | undefined {
    const c = this.stringIds ? (typeof id === 'string' ? id : String(id)) : index;
    return this.catalogue.has(c) ? c : undefined;
  }

  /** The id to output for a catalogue id. */
  outputId(id: ItemId): ItemId {
    if (this.vocabulary && typeof id === 'number' && id >= 0 && id < this.vocabulary.size) return this.vocabulary.ids[id];
    return id;
  }
}
