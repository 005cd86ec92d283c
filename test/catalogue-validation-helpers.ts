/**
 * Shared by the catalogue validation tests (test/catalogue-validation-*.test.ts): a scratch
 * folder per test file, catalogues saved into it and edited as a buggy writer would, and the
 * expectation of an exact FormatError. Importing this module registers the scratch folder's
 * clean-up (afterAll) in the importing test file.
 */
import { closeSync, constants, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, expect } from 'vitest';

import { Catalogue, FormatError } from '../src/index.js';
import { type CatalogueFileView, editCatalogue } from './catalogue-edit.js';
import { randomMatrix } from './helpers.js';

export const root = new URL('..', import.meta.url).pathname;
export const dir = mkdtempSync(join(tmpdir(), 'recscore-validation-'));
export const fifo = join(dir, 'pipe.rsc');
afterAll(() => {
  // Should an open ever block on the FIFO, a writer releases it so the worker can exit.
  try {
    closeSync(openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK));
  } catch {
    // no reader waiting: nothing to release
  }
  rmSync(dir, { recursive: true, force: true });
});

let seq = 0;
export const fresh = (name: string): string => join(dir, `${seq++}-${name}`);

export async function rejection(p: Promise<unknown>): Promise<Error> {
  const r = await p.then(
    () => new Error('expected a rejection, but it resolved'),
    (e: unknown) => e as Error,
  );
  return r;
}

/** Expects a FormatError with exactly `${path}: ${message}`. */
export async function refused(path: string, message: string, verify = true): Promise<void> {
  const e = await rejection(Catalogue.open(path, { verify }));
  expect(e).toBeInstanceOf(FormatError);
  expect((e as FormatError).code).toBe('ERR_RECSCORE_FORMAT');
  expect(e.message).toBe(`${path}: ${message}`);
}

export interface Made {
  path: string;
  vectors: Float32Array;
  bias?: Float32Array;
}

/** Saves a catalogue (n × d random, row 17 and others well inside maxRowNorm) and returns its path. */
export async function saved(
  name: string,
  o: { n?: number; d?: number; ids?: Array<string | number>; bias?: boolean; precision?: 'f32' | 'int8' | 'bf16' } = {},
): Promise<Made> {
  const n = o.n ?? 40;
  const d = o.d ?? 6;
  const vectors = randomMatrix(n, d, 11);
  const bias = o.bias ? randomMatrix(n, 1, 12).map((x) => x + 0.25) : undefined;
  const c = Catalogue.fromVectors(vectors, { dim: d, ids: o.ids, bias, precision: o.precision });
  const path = fresh(name);
  await c.save(path);
  await c.close();
  return { path, vectors, bias };
}

export async function edited(name: string, o: Parameters<typeof saved>[1], edit: (f: CatalogueFileView) => void): Promise<string> {
  const { path } = await saved(name, o);
  editCatalogue(path, edit);
  return path;
}
