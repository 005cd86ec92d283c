import type { ItemId } from '../catalogue/catalogue.js';

/** Runs tasks one after another per user (each after every earlier one for that user settled). */
export class PerUserQueue {
  #tails = new Map<ItemId, Promise<unknown>>();

  run<T>(user: ItemId, fn: () => Promise<T>): Promise<T> {
    const prev = this.#tails.get(user);
    const next = prev ? prev.then(fn, fn) : fn();
    const tail = next.then(
      () => undefined,
      () => undefined,
    );
    this.#tails.set(user, tail);
    void tail.then(() => {
      if (this.#tails.get(user) === tail) this.#tails.delete(user);
    });
    return next;
  }
}
