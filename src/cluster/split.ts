/**
 * Catalogues split by rows: `splitCatalogue` writes P catalogue files, each a contiguous run of
 * the source's rows keeping their ids, bias and attributes, and `split.json` (each part's row
 * offset and digest). A job on a split catalogue scores every chunk against every part; each
 * (chunk, part) writes its partial top-k with global rows to `.partials/`, and the worker that
 * commits the last partial of a chunk merges them: score descending, then the lower global row
 * (the tie rule of docs/arithmetic.md), so the merged lines are the unsplit job's byte for byte.
 */
import { existsSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';

import { catalogueDigest } from '../batch/checkpoint.js';
import { Catalogue, type ItemId } from '../catalogue/catalogue.js';
import { writeAtomically } from '../atomic_file.js';
import { InvalidArgumentError } from '../errors.js';
import { ChunkDataError, commitText } from './chunk.js';
import { type ChunkPlan, partName, sha256 } from './manifest.js';

export const SPLIT = 'split.json';

export interface SplitManifest {
  format: 'recscore-split/1';
  source: { digest: string; items: number; dim: number };
  parts: Array<{ file: string; offset: number; rows: number; digest: string }>;
}

/** Splits `catalogue` into `parts` row ranges under `outDir` (part-P.rsc and split.json). */
export async function splitCatalogue(o: { catalogue: string; parts: number; outDir: string }): Promise<SplitManifest> {
  if (!Number.isSafeInteger(o.parts) || o.parts < 1) throw new InvalidArgumentError(`--parts must be a positive integer, got ${o.parts}`);
  const src = await Catalogue.open(o.catalogue);
  try {
    if (o.parts > src.size) throw new InvalidArgumentError(`--parts ${o.parts}: the catalogue has ${src.size} items`);
    mkdirSync(o.outDir, { recursive: true });
    const parts: SplitManifest['parts'] = [];
    for (let p = 0; p < o.parts; p++) {
      const a = Math.floor((p * src.size) / o.parts);
      const b = Math.floor(((p + 1) * src.size) / o.parts);
      const vectors = new Float32Array((b - a) * src.dim);
      const ids: ItemId[] = [];
      for (let r = a; r < b; r++) {
        vectors.set(src.vector(r), (r - a) * src.dim);
        ids.push(src.id(r));
      }
      const bias = src.hasBias ? Float32Array.from({ length: b - a }, (_, i) => src.bias(a + i)) : undefined;
      const attributes = src.hasAttributes ? Uint32Array.from({ length: b - a }, (_, i) => src.attributes(a + i)) : undefined;
      const part = Catalogue.fromVectors(vectors, { dim: src.dim, ids, bias, attributes, precision: src.precision, keepCompressed: true });
      const file = `part-${p}.rsc`;
      const path = join(o.outDir, file);
      const tmp = join(o.outDir, `.${file}.tmp`);
      await part.save(tmp);
      await part.close();
      renameSync(tmp, path);
      parts.push({ file, offset: a, rows: b - a, digest: catalogueDigest(path) });
    }
    const m: SplitManifest = { format: 'recscore-split/1', source: { digest: catalogueDigest(o.catalogue), items: src.size, dim: src.dim }, parts };
    await writeAtomically(join(o.outDir, SPLIT), async (fh) => {
      await fh.writeFile(`${JSON.stringify(m, null, 1)}\n`);
    });
    return m;
  } finally {
    await src.close();
  }
}

/** The split manifest of a directory, or null when it has none. */
export function readSplit(dir: string): { manifest: SplitManifest; text: string } | null {
  const path = join(dir, SPLIT);
  if (!existsSync(path)) return null;
  const text = readFileSync(path, 'utf8');
  return { manifest: JSON.parse(text) as SplitManifest, text };
}

export const splitDigest = (text: string): string => `split:${sha256(text)}`;

/**
 * What history resolution needs of "the catalogue" for one part: membership in any part (as the
 * unsplit catalogue), and rows in this part only (-1 elsewhere: nothing to exclude here).
 */
export function unionView(part: Catalogue, all: ReadonlyArray<Catalogue>): Catalogue {
  return {
    get size() {
      return part.size;
    },
    id: (row: number) => part.id(row),
    has: (id: ItemId) => all.some((c) => c.has(id)),
    row: (id: ItemId) => (part.has(id) ? part.row(id) : -1),
  } as unknown as Catalogue;
}

export function partialPath(outDir: string, index: number, total: number, part: number): string {
  return join(outDir, '.partials', `${partName(index, total)}.p${part}`);
}

interface PartialLine {
  u?: ItemId;
  i?: ItemId[];
  s?: number[];
  r?: number[];
  line?: number;
  error?: string;
}

/**
 * Merges a chunk's partials into its part once all `parts` exist (false: not yet). Bad lines are
 * the same in every partial (they depend on the line, not the part); one that is not fails the chunk.
 */
export async function mergeChunk(o: { outDir: string; chunk: ChunkPlan; total: number; parts: number; k: number }): Promise<boolean> {
  const part = join(o.outDir, partName(o.chunk.index, o.total));
  if (existsSync(part)) return true;
  const paths = Array.from({ length: o.parts }, (_, p) => partialPath(o.outDir, o.chunk.index, o.total, p));
  if (!paths.every((p) => existsSync(p))) return false;
  const lists = paths.map((p) => readFileSync(p, 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as PartialLine));
  const n = lists[0].length;
  if (lists.some((l) => l.length !== n)) throw new ChunkDataError(`chunk ${o.chunk.index}: its partial results disagree on the number of lines`, []);
  let out = '';
  let errors = '';
  for (let i = 0; i < n; i++) {
    const first = lists[0][i];
    if (first.error !== undefined) {
      if (lists.some((l) => l[i].line !== first.line)) throw new ChunkDataError(`chunk ${o.chunk.index}: line ${first.line} is bad in one part and not another`, [first.line as number]);
      errors += `${JSON.stringify({ line: first.line, error: first.error })}\n`;
      continue;
    }
    const cand: Array<{ id: ItemId; s: number; r: number }> = [];
    for (const l of lists) {
      const e = l[i];
      if (e.error !== undefined) throw new ChunkDataError(`chunk ${o.chunk.index}: line ${e.line} is bad in one part and not another`, [e.line as number]);
      (e.i as ItemId[]).forEach((id, j) => cand.push({ id, s: (e.s as number[])[j], r: (e.r as number[])[j] }));
    }
    cand.sort((a, b) => b.s - a.s || a.r - b.r);
    const top = cand.slice(0, o.k);
    out += `${JSON.stringify({ user: first.u, items: top.map((c) => c.id), scores: top.map((c) => c.s) })}\n`;
  }
  if (errors) {
    commitText(join(o.outDir, `${partName(o.chunk.index, o.total, 'errors-')}.jsonl`), errors);
  }
  commitText(part, out);
  return true;
}
